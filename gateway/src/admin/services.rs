//! `/services` and their handlers: the latest revision of each service.

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::response::IntoResponse;

use super::render::{HandlerJson, ServiceJson};
use super::{Error, State};

pub async fn list(AxState(state): AxState<State>) -> impl IntoResponse {
    let schema = state.schema.snapshot();
    let services: Vec<_> = schema.services.values().map(ServiceJson::new).collect();
    Json(serde_json::json!({ "services": services }))
}

pub async fn get_one(AxState(state): AxState<State>, Path(name): Path<String>) -> Result<impl IntoResponse, Error> {
    let schema = state.schema.snapshot();
    let service = schema.service(&name).ok_or(Error::UnknownService(name))?;
    Ok(Json(ServiceJson::new(service)))
}

pub async fn handlers(AxState(state): AxState<State>, Path(name): Path<String>) -> Result<impl IntoResponse, Error> {
    let schema = state.schema.snapshot();
    let service = schema.service(&name).ok_or(Error::UnknownService(name))?;
    let handlers: Vec<_> = service.handlers.iter().map(HandlerJson::new).collect();
    Ok(Json(serde_json::json!({ "handlers": handlers })))
}

pub async fn handler(
    AxState(state): AxState<State>,
    Path((name, handler)): Path<(String, String)>,
) -> Result<impl IntoResponse, Error> {
    let schema = state.schema.snapshot();
    let service = schema.service(&name).ok_or_else(|| Error::UnknownService(name.clone()))?;
    let h = service.handler(&handler).ok_or(Error::UnknownHandler { service: name, handler: handler.clone() })?;
    Ok(Json(HandlerJson::new(h)))
}
