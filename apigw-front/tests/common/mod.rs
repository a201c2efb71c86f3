//! Shared test helpers: a stand-in ingress and API Gateway event builders.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Starts a tiny HTTP/1.1 server on 127.0.0.1:0 standing in for perdure's ingress.
///
/// - `/binary...`: answers 200 `application/octet-stream` with the request body.
/// - `/slow...`: waits 3 s, then answers 200.
/// - `/Greeter/...`, `/restate/...`: answers 200 JSON echoing method, path, query, selected
///   headers and the body (base64), with two `x-multi` header values.
/// - anything else: 404 JSON error in the ingress error shape.
pub async fn start_fake_ingress() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(ingress))
                    .await;
            });
        }
    });
    addr
}

async fn ingress(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path().to_string();

    if path.starts_with("/binary") {
        return Ok(Response::builder()
            .status(200)
            .header("content-type", "application/octet-stream")
            .body(Full::new(body))
            .unwrap());
    }
    if path.starts_with("/slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
        return Ok(Response::builder().status(200).body(Full::new(Bytes::new())).unwrap());
    }
    if path.starts_with("/Greeter/") || path.starts_with("/restate/") {
        let mut headers = serde_json::Map::new();
        for name in [
            "host",
            "content-length",
            "content-type",
            "idempotency-key",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-amzn-trace-id",
            "connection-specific",
            "te",
            "custom",
        ] {
            let values: Vec<Value> =
                parts.headers.get_all(name).iter().map(|v| json!(v.to_str().unwrap_or("<bin>"))).collect();
            if !values.is_empty() {
                headers.insert(name.to_string(), Value::Array(values));
            }
        }
        let echo = json!({
            "method": parts.method.as_str(),
            "path": path,
            "query": parts.uri.query(),
            "headers": headers,
            "body_b64": B64.encode(&body),
        });
        return Ok(Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("x-multi", "one")
            .header("x-multi", "two")
            .body(Full::new(Bytes::from(echo.to_string())))
            .unwrap());
    }
    let service = path.trim_start_matches('/').split('/').next().unwrap_or("").to_string();
    let err = json!({ "message": format!("Service '{service}' not found. Make sure the service is registered."), "restate_code": "RT0018" });
    Ok(Response::builder()
        .status(404)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(err.to_string())))
        .unwrap())
}

/// A REST API (payload v1) proxy event.
pub fn v1_event(method: &str, path: &str, stage: &str, extra: Value) -> String {
    let mut event = json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {
            "Host": "abc.execute-api.eu-west-1.amazonaws.com",
            "X-Forwarded-Proto": "https"
        },
        "multiValueHeaders": {},
        "pathParameters": { "proxy": path.trim_start_matches('/') },
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "r1",
            "stage": stage,
            "requestId": "req-v1",
            "identity": { "sourceIp": "198.51.100.7" },
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": format!("/{stage}{path}"),
            "apiId": "abc"
        },
        "isBase64Encoded": false
    });
    merge(&mut event, extra);
    event.to_string()
}

/// An HTTP API (payload v2) proxy event.
pub fn v2_event(method: &str, raw_path: &str, stage: &str, raw_query: &str, extra: Value) -> String {
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": {
            "host": "abc.execute-api.eu-west-1.amazonaws.com",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc",
            "http": { "method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "curl/8" },
            "requestId": "req-v2",
            "routeKey": "$default",
            "stage": stage,
            "time": "06/May/2020:22:36:55 +0000",
            "timeEpoch": 1588804615616u64
        },
        "isBase64Encoded": false
    });
    merge(&mut event, extra);
    event.to_string()
}

fn merge(base: &mut Value, extra: Value) {
    if let (Value::Object(b), Value::Object(e)) = (base, extra) {
        for (k, v) in e {
            if let (Some(Value::Object(existing)), Value::Object(more)) = (b.get_mut(&k), &v) {
                for (k2, v2) in more {
                    existing.insert(k2.clone(), v2.clone());
                }
            } else {
                b.insert(k, v);
            }
        }
    }
}

pub fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
