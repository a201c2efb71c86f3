//! `forward` against a stand-in ingress on 127.0.0.1, with API Gateway v1 and v2 events.

mod common;

use base64::Engine as _;
use common::{B64, env, start_fake_ingress, v1_event, v2_event};
use lambda_http::{Body, Response};
use perdure_apigw_front::{Config, build_client, forward};
use serde_json::{Value, json};

fn config_for(url: &str, extra: &[(&str, &str)]) -> Config {
    let mut vars = env(&[("PERDURE_INGRESS_URL", url)]);
    vars.extend(env(extra));
    Config::from_env_map(&vars).unwrap()
}

async fn call(config: &Config, event: &str) -> Response<Body> {
    let request = lambda_http::request::from_str(event).expect("event parses");
    forward(config, &build_client(), request).await.expect("forward never fails")
}

fn json_body(response: &Response<Body>) -> Value {
    match response.body() {
        Body::Text(s) => serde_json::from_str(s).expect("json body"),
        other => panic!("expected a text body, got {other:?}"),
    }
}

#[tokio::test]
async fn v2_post_with_stage_in_path_is_forwarded() {
    let addr = start_fake_ingress().await;
    let config = config_for(&format!("http://{addr}"), &[]);
    let body = r#"{"name":"Ada"}"#;
    let event = v2_event(
        "POST",
        "/prod/Greeter/greet",
        "prod",
        "",
        json!({
            "headers": {
                "content-type": "application/json",
                "content-length": "999",
                "idempotency-key": "idem-1",
                "x-amzn-trace-id": "Root=1-abc",
                "te": "trailers",
                "custom": "a,b"
            },
            "body": body
        }),
    );
    let response = call(&config, &event).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    // HTTP API responses have no multiValueHeaders: repeated values are folded.
    assert_eq!(response.headers().get_all("x-multi").iter().collect::<Vec<_>>(), ["one, two"]);
    assert!(response.headers().get("content-length").is_none());

    let echo = json_body(&response);
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/Greeter/greet");
    assert_eq!(echo["query"], Value::Null);
    let h = &echo["headers"];
    assert_eq!(h["host"], json!([addr.to_string()]));
    assert_eq!(h["content-length"], json!([body.len().to_string()]));
    assert_eq!(h["content-type"], json!(["application/json"]));
    assert_eq!(h["idempotency-key"], json!(["idem-1"]));
    assert_eq!(h["x-amzn-trace-id"], json!(["Root=1-abc"]));
    assert_eq!(h["x-forwarded-proto"], json!(["https"]));
    assert_eq!(h["x-forwarded-for"], json!(["203.0.113.9"]));
    assert_eq!(h["custom"], json!(["a,b"]));
    assert!(h.get("te").is_none());
    assert_eq!(B64.decode(echo["body_b64"].as_str().unwrap()).unwrap(), body.as_bytes());
}

#[tokio::test]
async fn v2_default_stage_keyed_send_with_delay_and_strip_prefix() {
    let addr = start_fake_ingress().await;
    let config = config_for(&format!("http://{addr}"), &[("PERDURE_FRONT_STRIP_PREFIX", "/perdure")]);
    let event = v2_event(
        "POST",
        "/perdure/Greeter/my%20key/greet/send",
        "$default",
        "delay=10s&x=a%2Bb",
        json!({ "headers": { "content-type": "application/json" }, "body": "\"hi\"" }),
    );
    let response = call(&config, &event).await;
    assert_eq!(response.status(), 200);
    let echo = json_body(&response);
    assert_eq!(echo["path"], "/Greeter/my%20key/greet/send");
    assert_eq!(echo["query"], "delay=10s&x=a%2Bb");
}

#[tokio::test]
async fn v1_base64_body_and_multi_value_query() {
    let addr = start_fake_ingress().await;
    let config = config_for(&format!("http://{addr}"), &[]);
    let raw: Vec<u8> = vec![0, 159, 146, 150, 255, b'{', b'}'];
    let event = v1_event(
        "POST",
        "/Greeter/greet/send",
        "prod",
        json!({
            "headers": { "Content-Type": "application/octet-stream", "X-Forwarded-For": "192.0.2.1" },
            "queryStringParameters": { "delay": "5s" },
            "multiValueQueryStringParameters": { "delay": ["5s"] },
            "body": B64.encode(&raw),
            "isBase64Encoded": true
        }),
    );
    let response = call(&config, &event).await;
    assert_eq!(response.status(), 200);
    let echo = json_body(&response);
    // REST API responses keep repeated values separate (multiValueHeaders).
    assert_eq!(response.headers().get_all("x-multi").iter().collect::<Vec<_>>(), ["one", "two"]);
    assert_eq!(echo["path"], "/Greeter/greet/send");
    assert_eq!(echo["query"], "delay=5s");
    assert_eq!(echo["headers"]["x-forwarded-for"], json!(["192.0.2.1"]));
    assert_eq!(echo["headers"]["content-length"], json!([raw.len().to_string()]));
    assert_eq!(B64.decode(echo["body_b64"].as_str().unwrap()).unwrap(), raw);
}

#[tokio::test]
async fn v1_stage_in_path_and_binary_response() {
    let addr = start_fake_ingress().await;
    let config = config_for(&format!("http://{addr}"), &[]);
    let raw: Vec<u8> = (0u8..=255).collect();
    let event =
        v1_event("POST", "/prod/binary/echo", "prod", json!({ "body": B64.encode(&raw), "isBase64Encoded": true }));
    let response = call(&config, &event).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/octet-stream");
    match response.body() {
        Body::Binary(b) => assert_eq!(b, &raw),
        other => panic!("expected binary body, got {other:?}"),
    }
}

#[tokio::test]
async fn get_attach_and_output_paths_pass_through() {
    let addr = start_fake_ingress().await;
    let config = config_for(&format!("http://{addr}"), &[]);
    for suffix in ["attach", "output"] {
        let path = format!("/restate/invocation/inv_1abc/{suffix}");
        let response = call(&config, &v2_event("GET", &path, "$default", "", json!({}))).await;
        assert_eq!(response.status(), 200);
        let echo = json_body(&response);
        assert_eq!(echo["method"], "GET");
        assert_eq!(echo["path"], path);
        assert_eq!(B64.decode(echo["body_b64"].as_str().unwrap()).unwrap(), b"");
    }
    let response =
        call(&config, &v1_event("POST", "/restate/awakeables/sign_1xyz/resolve", "prod", json!({ "body": "42" })))
            .await;
    assert_eq!(json_body(&response)["path"], "/restate/awakeables/sign_1xyz/resolve");
}

#[tokio::test]
async fn ingress_error_status_and_body_are_kept() {
    let addr = start_fake_ingress().await;
    let config = config_for(&format!("http://{addr}"), &[]);
    let response = call(&config, &v2_event("POST", "/prod/Nope/handler", "prod", "", json!({}))).await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/json");
    let Body::Text(text) = response.body() else { panic!("text body") };
    assert_eq!(
        text,
        r#"{"message":"Service 'Nope' not found. Make sure the service is registered.","restate_code":"RT0018"}"#
    );
}

#[tokio::test]
async fn unreachable_ingress_is_502() {
    // Reserve a port and close it again so nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let config = config_for(&url, &[]);
    let response = call(&config, &v2_event("POST", "/Greeter/greet", "$default", "", json!({}))).await;
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = json_body(&response);
    assert_eq!(body["restate_code"], Value::Null);
    let message = body["message"].as_str().unwrap();
    eprintln!("502 message: {message}");
    assert!(message.contains(&url), "{message}");
    assert!(message.to_lowercase().contains("connect"), "{message}");
}

#[tokio::test]
async fn slow_ingress_is_504() {
    let addr = start_fake_ingress().await;
    let url = format!("http://{addr}");
    let config = config_for(&url, &[("PERDURE_FRONT_TIMEOUT", "200ms")]);
    let started = std::time::Instant::now();
    let response = call(&config, &v2_event("POST", "/slow/x", "$default", "", json!({}))).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(response.status(), 504);
    let body = json_body(&response);
    assert_eq!(body["restate_code"], Value::Null);
    let message = body["message"].as_str().unwrap();
    eprintln!("504 message: {message}");
    assert!(message.contains(&url) && message.contains("200ms"), "{message}");
}
