//! `POST /query`: SQL over the system tables ([`crate::query`]). An Arrow IPC stream unless
//! `Accept` is exactly `application/json`, which gets `{"rows":[…]}` (as Restate 1.7 answers);
//! either is written batch by batch as the scan reads, so a large answer never sits in memory.

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::State;
use crate::query::{QueryError, encode};

fn failure(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "message": message }))).into_response()
}

pub async fn query(AxState(state): AxState<State>, headers: HeaderMap, body: Bytes) -> Response {
    let is_json = |name: header::HeaderName| {
        headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
    };
    if is_json(header::CONTENT_TYPE).as_deref() != Some("application/json") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Expected request with `Content-Type: application/json`")
            .into_response();
    }
    #[derive(serde::Deserialize)]
    struct QueryRequest {
        query: String,
    }
    let request: QueryRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return failure(StatusCode::BAD_REQUEST, format!("the body must be {{\"query\": \"SELECT …\"}}: {e}"));
        }
    };
    let deadline = state.query.deadline();
    let limit = state.query.timeout();
    let (schema, mut batches) = match state.query.start(&request.query, deadline).await {
        Ok(started) => started,
        Err(e) => return refusal(e),
    };
    // The first batch decides the status (reading the tables happens before it); the rest
    // streams, cut short with the connection if it runs past the deadline.
    let first = match tokio::time::timeout_at(deadline, batches.next()).await {
        Err(_) => return refusal(QueryError::Timeout(limit)),
        Ok(Some(Err(e))) => return refusal(QueryError::Execution(e.to_string())),
        Ok(first) => first.map(|b| b.map_err(std::io::Error::other)),
    };
    let rest = batches.map(|b| b.map_err(std::io::Error::other));
    let stopped = async move {
        tokio::time::sleep_until(deadline).await;
    };
    let timed_out =
        futures::stream::once(async move { Err(std::io::Error::other(QueryError::Timeout(limit).to_string())) });
    let all: encode::Batches = Box::pin(
        futures::stream::iter(first)
            .chain(rest)
            .take_until(stopped)
            .chain(timed_out.take_while(move |_| futures::future::ready(tokio::time::Instant::now() >= deadline))),
    );
    let wants_json = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) == Some("application/json");
    if wants_json {
        ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(encode::json_stream(all))).into_response()
    } else {
        match encode::arrow_ipc_stream(schema, all) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/vnd.apache.arrow.stream")], Body::from_stream(body))
                .into_response(),
            Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, format!("Datafusion error: {e}")),
        }
    }
}

fn refusal(e: QueryError) -> Response {
    match e {
        e @ QueryError::Invalid(_) => failure(StatusCode::BAD_REQUEST, e.to_string()),
        e @ QueryError::Timeout(_) => failure(StatusCode::REQUEST_TIMEOUT, e.to_string()),
        e => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
