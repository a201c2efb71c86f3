//! `POST /query`: SQL over the system tables ([`crate::query`]). An Arrow IPC stream unless
//! `Accept` is exactly `application/json`, which gets `{"rows":[…]}` (as Restate 1.7 answers).

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

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
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Expected request with `Content-Type: application/json`").into_response();
    }
    #[derive(serde::Deserialize)]
    struct QueryRequest {
        query: String,
    }
    let request: QueryRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return failure(StatusCode::BAD_REQUEST, format!("the body must be {{\"query\": \"SELECT …\"}}: {e}")),
    };
    let answer = match state.query.run(&request.query).await {
        Ok(a) => a,
        Err(e @ QueryError::Invalid(_)) => return failure(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e @ QueryError::Timeout(_)) => return failure(StatusCode::REQUEST_TIMEOUT, e.to_string()),
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let wants_json = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) == Some("application/json");
    if wants_json {
        match encode::json_rows(&answer) {
            Ok(rows) => axum::Json(rows).into_response(),
            Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, format!("Datafusion error: {e}")),
        }
    } else {
        match encode::arrow_stream(&answer) {
            Ok(bytes) => ([(header::CONTENT_TYPE, "application/vnd.apache.arrow.stream")], bytes).into_response(),
            Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, format!("Datafusion error: {e}")),
        }
    }
}
