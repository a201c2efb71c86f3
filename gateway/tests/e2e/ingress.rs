//! Ingress errors: the status codes and messages Restate 1.7 answers, and bad input that
//! must not hurt the server.

use serde_json::json;

use crate::harness::*;

fn ingress_error(r: &Reply, status: u16, message: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let v = r.json();
    assert_eq!(v["code"], status);
    assert_eq!(v["source"], "ingress");
    assert!(v["message"].as_str().unwrap().contains(message), "{} does not contain {message}", v["message"]);
    assert_eq!(r.header("x-restate-error-source"), Some("ingress"));
}

#[test]
fn bad_requests_get_restates_status_codes() {
    let (perdure, _svc) = Perdure::start_with(&[("PERDURE_INGRESS__REQUEST_SIZE_LIMIT", "1024")])
        .serving(TsServices::start("h2", "v1"), json!({}));
    let i = &perdure.ingress;

    ingress_error(&post_json(&format!("{i}/NoSuchService/greet"), "\"x\""), 404, "service 'NoSuchService' not found");
    ingress_error(
        &post_json(&format!("{i}/Greeter/noSuchHandler"), "\"x\""),
        404,
        "the service 'Greeter' exists, but the handler 'noSuchHandler' was not found",
    );
    ingress_error(&request("PUT", &format!("{i}/Greeter/greet")), 405, "method not allowed");
    ingress_error(&request("DELETE", &format!("{i}/Greeter/greet")), 405, "method not allowed");
    ingress_error(
        &post_with(&format!("{i}/Greeter/greet"), "\"x\"", &[("content-type", "text/plain")]),
        400,
        "input validation error: Content-type 'text/plain' does not match 'application/json'",
    );
    ingress_error(&get(&format!("{i}/")), 400, "bad path: /");
    ingress_error(&post_json(&format!("{i}/Counter/add"), "1"), 400, "bad path, expected either");
    ingress_error(&post_json(&format!("{i}/Greeter/somekey/greet"), "\"x\""), 400, "bad path, expected either");
    ingress_error(
        &post_json(&format!("{i}/Greeter/greet/send?delay=banana"), "\"x\""),
        400,
        "bad delay query parameter",
    );
    // Out of range: refused before anything is logged, naming the value and the limit.
    for huge in ["PT99999999999999H", "P99999999999999999999D", "36501d"] {
        let r = post_json(&format!("{i}/Greeter/greet/send?delay={huge}"), "\"x\"");
        ingress_error(
            &r,
            400,
            &format!("bad delay query parameter, must be a ISO8601 duration: '{huge}' is longer than 36500d"),
        );
    }
    let r = http()
        .patch(format!("{}/services/Greeter", perdure.admin))
        .json(&json!({ "idempotency_retention": "99999999999d" }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body = r.text().unwrap();
    assert!(body.contains("idempotency_retention") && body.contains("36500d"), "{body}");
    ingress_error(&post_json(&format!("{i}/Greeter/greet?delay=1s"), "\"x\""), 400, "delay");
    ingress_error(
        &post_with(
            &format!("{i}/SleepWorkflow/w1/run"),
            "1",
            &[("content-type", "application/json"), ("idempotency-key", "x")],
        ),
        400,
        "cannot use the idempotency key with workflow handlers",
    );
    ingress_error(
        &get(&format!("{i}/restate/invocation/not-an-id/attach")),
        400,
        "bad invocation id 'not-an-id': bad format",
    );
    ingress_error(
        &get(&format!("{i}/restate/invocation/inc_1aBCdefGHIjkLMnoPQRsTuv/attach")),
        400,
        "unrecognized resource type: inc",
    );
    ingress_error(
        &get(&format!("{i}/restate/invocation/inv_1h6VL9iXJDkz0bdqyzuB2nLbvqPiMsfKWA/output")),
        404,
        "invocation not found",
    );
    ingress_error(&post_json(&format!("{i}/Greeter/greet"), &format!("\"{}\"", "x".repeat(2000))), 413, "too large");

    // Without a body and content type: accepted (the input is optional), like Restate.
    let r = request("GET", &format!("{i}/Greeter/greet"));
    assert_eq!((r.status, r.body.as_str()), (200, "\"Hello, undefined!\""));
    // Malformed JSON reaches the handler, which fails it terminally with 400.
    let r = post_json(&format!("{i}/Greeter/greet"), "{\"unterminated");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["source"], "invocation");

    // CORS preflight.
    let r = crate::harness::http()
        .request(reqwest::Method::OPTIONS, format!("{i}/Greeter/greet"))
        .header("origin", "http://example.test")
        .header("access-control-request-method", "POST")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "http://example.test");
    assert_eq!(r.headers()["access-control-allow-methods"], "POST");

    let health = get(&format!("{i}/restate/health")).json();
    let mut services: Vec<String> =
        health["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    services.sort();
    assert_eq!(services, ["Approval", "Counter", "Greeter", "Mailbox", "SleepWorkflow", "Waiter"]);

    // After all that, the server still serves.
    assert_eq!(post_json(&format!("{i}/Greeter/greet"), "\"ok\"").body, "\"Hello, ok!\"");
}
