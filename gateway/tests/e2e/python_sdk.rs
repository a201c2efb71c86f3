//! The Python SDK (restate-sdk 1.2.0 on hypercorn): a virtual object and a workflow with a
//! durable promise, over HTTP/2 (bidi) and HTTP/1.1 (request/response).

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

fn exercise(perdure: &Perdure, wf_key: &str) {
    let i = &perdure.ingress;
    assert_eq!(post_json(&format!("{i}/PyCounter/p1/add"), "2").body, "2");
    assert_eq!(post_json(&format!("{i}/PyCounter/p1/add"), "3").body, "5");
    // `get` takes no input (`"input": {}`): a request with a content type is refused, as Restate does.
    assert_eq!(post_json(&format!("{i}/PyCounter/p1/get"), "").status, 400);
    assert_eq!(get(&format!("{i}/PyCounter/p1/get")).body, "5");

    let r = post_json(&format!("{i}/PyOrder/{wf_key}/run/send"), "\"book\"");
    assert_eq!(r.status, 202, "{}", r.body);
    eventually(Duration::from_secs(10), "workflow waiting", || {
        (get(&format!("{i}/PyOrder/{wf_key}/status")).body == "\"waiting\"").then_some(())
    });
    assert_eq!(get(&format!("{i}/restate/workflow/PyOrder/{wf_key}/output")).status, 470);
    assert_eq!(post_json(&format!("{i}/PyOrder/{wf_key}/pay"), "\"card\"").body, "\"ok\"");
    let done = get(&format!("{i}/restate/workflow/PyOrder/{wf_key}/attach"));
    assert_eq!((done.status, done.body.as_str()), (200, "\"book paid with card\""));
    assert_eq!(get(&format!("{i}/PyOrder/{wf_key}/status")).body, "\"paid\"");
}

#[test]
fn python_object_and_workflow_over_http2() {
    let perdure = Perdure::start();
    let svc = PyServices::start();
    let (status, body) = perdure.register(&svc.url(), json!({}));
    assert_eq!(status, 201, "{body}");
    assert!(body["sdk_version"].as_str().unwrap_or_default().contains("python"), "{body}");
    let dp = get(&format!("{}/deployments", perdure.admin)).json();
    assert_eq!(dp["deployments"][0]["protocol_type"], "BidiStream");
    exercise(&perdure, "o1");
}

#[test]
fn python_object_and_workflow_over_http1_request_response() {
    let perdure = Perdure::start();
    let svc = PyServices::start();
    let (status, body) = perdure.register(&svc.url(), json!({ "use_http_11": true }));
    assert_eq!(status, 201, "{body}");
    let dp = get(&format!("{}/deployments", perdure.admin)).json();
    assert_eq!(dp["deployments"][0]["protocol_type"], "RequestResponse");
    exercise(&perdure, "o2");
}
