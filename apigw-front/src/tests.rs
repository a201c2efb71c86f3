use super::*;
use serde_json::{Value, json};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn config(prefix: Option<&str>) -> Config {
    let mut vars = env(&[(ENV_INGRESS_URL, "http://127.0.0.1:8080")]);
    if let Some(p) = prefix {
        vars.insert(ENV_STRIP_PREFIX.to_string(), p.to_string());
    }
    Config::from_env_map(&vars).unwrap()
}

fn v1_event(path: &str, stage: &str, extra: Value) -> Request {
    let mut event = json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "POST",
        "headers": { "Host": "abc.execute-api.eu-west-1.amazonaws.com" },
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "r1",
            "stage": stage,
            "requestId": "req-1",
            "identity": { "sourceIp": "198.51.100.7" },
            "resourcePath": "/{proxy+}",
            "httpMethod": "POST",
            "apiId": "abc"
        },
        "isBase64Encoded": false
    });
    merge(&mut event, extra);
    lambda_http::request::from_str(&event.to_string()).expect("v1 event parses")
}

fn v2_event(raw_path: &str, stage: &str, raw_query: &str, extra: Value) -> Request {
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": { "host": "abc.execute-api.eu-west-1.amazonaws.com" },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
            "http": { "method": "POST", "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "curl" },
            "requestId": "req-2",
            "routeKey": "$default",
            "stage": stage,
            "time": "06/May/2020:22:36:55 +0000",
            "timeEpoch": 1588804615616u64
        },
        "isBase64Encoded": false
    });
    merge(&mut event, extra);
    lambda_http::request::from_str(&event.to_string()).expect("v2 event parses")
}

fn merge(base: &mut Value, extra: Value) {
    if let (Value::Object(b), Value::Object(e)) = (base, extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
}

// --- config -----------------------------------------------------------------------------------

#[test]
fn config_minimal_uses_defaults() {
    let c = Config::from_env_map(&env(&[(ENV_INGRESS_URL, "http://10.0.0.5:8080/")])).unwrap();
    assert_eq!(c.ingress_url, "http://10.0.0.5:8080");
    assert_eq!(c.ingress_authority.as_str(), "10.0.0.5:8080");
    assert_eq!(c.ingress_base_path, "");
    assert_eq!(c.strip_prefix, None);
    assert_eq!(c.timeout, DEFAULT_TIMEOUT);
}

#[test]
fn config_all_variables() {
    let c = Config::from_env_map(&env(&[
        (ENV_INGRESS_URL, "http://ingress.internal:8080/base/"),
        (ENV_STRIP_PREFIX, "restate/"),
        (ENV_TIMEOUT, "500ms"),
    ]))
    .unwrap();
    assert_eq!(c.ingress_base_path, "/base");
    assert_eq!(c.strip_prefix.as_deref(), Some("/restate"));
    assert_eq!(c.timeout, Duration::from_millis(500));

    let c =
        Config::from_env_map(&env(&[(ENV_INGRESS_URL, "http://h:1"), (ENV_TIMEOUT, "25s"), (ENV_STRIP_PREFIX, "/")]))
            .unwrap();
    assert_eq!(c.timeout, Duration::from_secs(25));
    assert_eq!(c.strip_prefix, None);
}

#[test]
fn config_missing_url_names_variable() {
    let err = Config::from_env_map(&env(&[])).unwrap_err();
    assert_eq!(err, ConfigError::MissingIngressUrl);
    assert!(err.to_string().contains("PERDURE_INGRESS_URL"));
    let err = Config::from_env_map(&env(&[(ENV_INGRESS_URL, "  ")])).unwrap_err();
    assert_eq!(err, ConfigError::MissingIngressUrl);
}

#[test]
fn config_rejects_invalid_urls() {
    for bad in ["not a url", "10.0.0.5:8080", "/just/a/path", "ftp://h:21", "http://h:1/?x=1", "http://u:p@h:1"] {
        let err = Config::from_env_map(&env(&[(ENV_INGRESS_URL, bad)])).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidIngressUrl { .. }), "{bad}: {err:?}");
        assert!(err.to_string().contains("PERDURE_INGRESS_URL"), "{err}");
    }
}

#[test]
fn config_rejects_https_with_explanation() {
    let err = Config::from_env_map(&env(&[(ENV_INGRESS_URL, "https://ingress:8080")])).unwrap_err();
    assert!(matches!(err, ConfigError::HttpsNotSupported { .. }));
    let msg = err.to_string();
    assert!(msg.contains("PERDURE_INGRESS_URL") && msg.contains("https") && msg.contains("http://"), "{msg}");
}

#[test]
fn config_rejects_bad_timeout_and_prefix() {
    for bad in ["soon", "25", "0s"] {
        let err = Config::from_env_map(&env(&[(ENV_INGRESS_URL, "http://h:1"), (ENV_TIMEOUT, bad)])).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidTimeout { .. }), "{bad}: {err:?}");
        assert!(err.to_string().contains("PERDURE_FRONT_TIMEOUT"));
    }
    let err = Config::from_env_map(&env(&[(ENV_INGRESS_URL, "http://h:1"), (ENV_STRIP_PREFIX, "/a?b")])).unwrap_err();
    assert!(err.to_string().contains("PERDURE_FRONT_STRIP_PREFIX"));
}

// --- path ------------------------------------------------------------------------------------

#[test]
fn strip_stage_rules() {
    assert_eq!(strip_stage("/prod/Greeter/greet", Some("prod")), "/Greeter/greet");
    assert_eq!(strip_stage("/Greeter/greet", Some("prod")), "/Greeter/greet");
    assert_eq!(strip_stage("/prod", Some("prod")), "/");
    assert_eq!(strip_stage("/production/x", Some("prod")), "/production/x");
    assert_eq!(strip_stage("/$default/x", Some("$default")), "/$default/x");
    assert_eq!(strip_stage("/prod/x", None), "/prod/x");
}

#[test]
fn strip_prefix_rules() {
    assert_eq!(strip_prefix("/restate/Greeter/greet", Some("/restate")), "/Greeter/greet");
    assert_eq!(strip_prefix("/restate", Some("/restate")), "/");
    assert_eq!(strip_prefix("/restatex/a", Some("/restate")), "/restatex/a");
    assert_eq!(strip_prefix("/a", None), "/a");
}

#[test]
fn encode_path_keeps_valid_and_encodes_the_rest() {
    assert_eq!(encode_path("/Greeter/greet"), "/Greeter/greet");
    assert_eq!(encode_path("/Counter/my%20key/add"), "/Counter/my%20key/add");
    assert_eq!(encode_path("/Counter/my key/add"), "/Counter/my%20key/add");
    assert_eq!(encode_path("/C/100%/a"), "/C/100%25/a");
    assert_eq!(encode_path("/C/é?#/a"), "/C/%C3%A9%3F%23/a");
    assert_eq!(encode_path(""), "/");
}

#[test]
fn v1_stage_not_in_path() {
    // REST API default endpoint: `path` is the resource path without the stage.
    let req = v1_event("/Greeter/greet", "prod", json!({}));
    assert_eq!(request_stage(&req), Some("prod"));
    assert_eq!(ingress_path(&config(None), &req), "/Greeter/greet");
}

#[test]
fn v1_stage_in_path() {
    let req = v1_event("/prod/Greeter/greet", "prod", json!({}));
    assert_eq!(ingress_path(&config(None), &req), "/Greeter/greet");
}

#[test]
fn v2_stage_in_raw_path() {
    let req = v2_event("/prod/Greeter/greet", "prod", "", json!({}));
    assert_eq!(ingress_path(&config(None), &req), "/Greeter/greet");
}

#[test]
fn v2_default_stage_keeps_path() {
    let req = v2_event("/Greeter/greet", "$default", "", json!({}));
    assert_eq!(ingress_path(&config(None), &req), "/Greeter/greet");
    // A first segment that merely looks like a stage is kept with `$default`.
    let req = v2_event("/prod/Greeter/greet", "$default", "", json!({}));
    assert_eq!(ingress_path(&config(None), &req), "/prod/Greeter/greet");
}

#[test]
fn stage_then_prefix_are_stripped() {
    let req = v2_event("/prod/perdure/restate/invocation/inv_1/attach", "prod", "", json!({}));
    assert_eq!(ingress_path(&config(Some("/perdure")), &req), "/restate/invocation/inv_1/attach");
    let req = v1_event("/perdure/Greeter/greet", "prod", json!({}));
    assert_eq!(ingress_path(&config(Some("perdure")), &req), "/Greeter/greet");
}

// --- query -----------------------------------------------------------------------------------

#[test]
fn v2_query_is_raw() {
    let req = v2_event("/Greeter/greet/send", "$default", "delay=10s&x=a%20b", json!({}));
    assert_eq!(ingress_query(&req).as_deref(), Some("delay=10s&x=a%20b"));
    let req = v2_event("/Greeter/greet", "$default", "", json!({}));
    assert_eq!(ingress_query(&req), None);
}

#[test]
fn v1_query_is_reencoded() {
    let req = v1_event(
        "/Greeter/greet/send",
        "prod",
        json!({
            "queryStringParameters": { "delay": "10s", "n": "b" },
            "multiValueQueryStringParameters": { "delay": ["10s"], "n": ["a b", "c&d=e"] }
        }),
    );
    assert_eq!(ingress_query(&req).as_deref(), Some("delay=10s&n=a%20b&n=c%26d%3De"));
    let req = v1_event("/Greeter/greet", "prod", json!({}));
    assert_eq!(ingress_query(&req), None);
}

#[test]
fn ingress_uri_joins_base_path_and_query() {
    let c = Config::from_env_map(&env(&[(ENV_INGRESS_URL, "http://10.0.0.5:8080/base")])).unwrap();
    let uri = ingress_uri(&c, "/Greeter/greet/send", Some("delay=1s")).unwrap();
    assert_eq!(uri.to_string(), "http://10.0.0.5:8080/base/Greeter/greet/send?delay=1s");
}

// --- headers ---------------------------------------------------------------------------------

#[test]
fn request_header_filtering() {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("host", "abc.execute-api.eu-west-1.amazonaws.com"),
        ("content-length", "12"),
        ("connection", "keep-alive, x-private"),
        ("x-private", "1"),
        ("keep-alive", "timeout=5"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        ("te", "trailers"),
        ("trailer", "x-t"),
        ("content-type", "application/json"),
        ("idempotency-key", "abc"),
        ("x-amzn-trace-id", "Root=1-x"),
        ("x-forwarded-proto", "https"),
        ("accept", "a"),
    ] {
        h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    h.append("accept", HeaderValue::from_static("b"));

    let out = forward_request_headers(&h, Some("198.51.100.7"));
    let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
    for dropped in [
        "host",
        "content-length",
        "connection",
        "x-private",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
    ] {
        assert!(!names.contains(&dropped), "{dropped} should be dropped: {names:?}");
    }
    assert_eq!(out["content-type"], "application/json");
    assert_eq!(out["idempotency-key"], "abc");
    assert_eq!(out["x-amzn-trace-id"], "Root=1-x");
    assert_eq!(out["x-forwarded-proto"], "https");
    assert_eq!(out.get_all("accept").iter().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(out["x-forwarded-for"], "198.51.100.7");
}

#[test]
fn existing_x_forwarded_for_is_kept() {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.1, 10.0.0.1"));
    let out = forward_request_headers(&h, Some("198.51.100.7"));
    assert_eq!(out.get_all("x-forwarded-for").iter().collect::<Vec<_>>(), ["192.0.2.1, 10.0.0.1"]);
    assert!(!forward_request_headers(&HeaderMap::new(), None).contains_key("x-forwarded-for"));
}

#[test]
fn source_ip_from_both_payload_versions() {
    assert_eq!(source_ip(&v1_event("/a", "prod", json!({}))), Some("198.51.100.7"));
    assert_eq!(source_ip(&v2_event("/a", "$default", "", json!({}))), Some("203.0.113.9"));
}

#[test]
fn response_header_filtering_keeps_multi_values() {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("content-length", HeaderValue::from_static("2"));
    h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
    h.insert("connection", HeaderValue::from_static("close"));
    h.append("x-multi", HeaderValue::from_static("1"));
    h.append("x-multi", HeaderValue::from_static("2"));
    let out = response_headers(&h);
    assert_eq!(out.len(), 3);
    assert_eq!(out.get_all("x-multi").iter().collect::<Vec<_>>(), ["1", "2"]);
}

#[test]
fn repeated_headers_are_folded_for_http_api() {
    let mut h = HeaderMap::new();
    h.append("x-multi", HeaderValue::from_static("1"));
    h.append("x-multi", HeaderValue::from_static("2"));
    h.append("set-cookie", HeaderValue::from_static("a=1"));
    h.append("set-cookie", HeaderValue::from_static("b=2"));
    h.insert("content-type", HeaderValue::from_static("text/plain"));
    let out = fold_repeated_headers(h);
    assert_eq!(out.get_all("x-multi").iter().collect::<Vec<_>>(), ["1, 2"]);
    assert_eq!(out.get_all("set-cookie").iter().collect::<Vec<_>>(), ["a=1", "b=2"]);
    assert_eq!(out["content-type"], "text/plain");
}

// --- body ------------------------------------------------------------------------------------

#[test]
fn text_content_types() {
    assert!(is_text_content_type(Some("application/json")));
    assert!(is_text_content_type(Some("Application/JSON; charset=utf-8")));
    assert!(is_text_content_type(Some("text/plain")));
    assert!(is_text_content_type(Some("application/problem+json")));
    assert!(!is_text_content_type(Some("application/octet-stream")));
    assert!(!is_text_content_type(Some("application/jsonl")));
    assert!(!is_text_content_type(None));
}

#[test]
fn response_body_kinds() {
    let mut h = HeaderMap::new();
    assert!(matches!(response_body(&h, Bytes::new()), Body::Empty));
    assert!(matches!(response_body(&h, Bytes::from_static(b"\x00\x01")), Body::Binary(ref b) if b == b"\x00\x01"));
    h.insert("content-type", HeaderValue::from_static("application/json"));
    assert!(matches!(response_body(&h, Bytes::from_static(b"{}")), Body::Text(ref s) if s == "{}"));
    // Claims to be text but is not UTF-8: sent as binary so no byte is lost.
    assert!(matches!(response_body(&h, Bytes::from_static(b"\xff")), Body::Binary(_)));
}

#[test]
fn error_response_shape() {
    let r = error_response(StatusCode::BAD_GATEWAY, "boom");
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["content-type"], "application/json");
    let Body::Text(s) = r.body() else { panic!("text body") };
    let v: Value = serde_json::from_str(s).unwrap();
    assert_eq!(v, json!({ "message": "boom", "restate_code": null }));
}
