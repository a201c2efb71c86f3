//! The admin API: health, version (the CLI handshake), OpenAPI, services and handlers, and
//! its error shapes.

use serde_json::{Value, json};

use crate::harness::*;

#[test]
fn health_version_and_openapi() {
    let perdure = Perdure::start();
    let a = &perdure.admin;
    let h = get(&format!("{a}/health"));
    assert_eq!((h.status, h.body.as_str()), (200, ""));
    let v = get(&format!("{a}/version")).json();
    assert_eq!(v["min_admin_api_version"], 2);
    assert_eq!(v["max_admin_api_version"], 4);
    assert_eq!(v["ingress_endpoint"], format!("{}/", perdure.ingress));
    assert!(v["features"].is_object());
    let (major, minor) = {
        let parts: Vec<u64> = v["version"].as_str().unwrap().split('.').map(|p| p.parse().unwrap()).collect();
        (parts[0], parts[1])
    };
    assert!(major >= 1 && minor >= 5, "the CLI needs >= 1.5 for its current queries");
    // The same router under the version prefixes; V1 is refused like Restate does.
    assert_eq!(get(&format!("{a}/v4/health")).status, 200);
    assert_eq!(get(&format!("{a}/v2/deployments")).json(), json!({ "deployments": [] }));
    let v1 = get(&format!("{a}/v1/deployments"));
    assert_eq!(v1.status, 400);
    assert!(v1.body.contains("Unsupported Admin API version V1"));

    let spec = get(&format!("{a}/openapi")).json();
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/deployments"]["post"].is_object());
}

#[test]
fn services_and_handlers_describe_the_latest_revision() {
    let perdure = Perdure::start();
    let svc = TsServices::start("h2", "v1");
    let (_, reg) = perdure.register(&svc.url(), json!({}));
    let a = &perdure.admin;

    let list = get(&format!("{a}/services")).json();
    assert_eq!(list["services"].as_array().unwrap().len(), 6);
    let counter = get(&format!("{a}/services/Counter")).json();
    assert_eq!(counter["ty"], "VirtualObject");
    assert_eq!(counter["deployment_id"], reg["id"]);
    assert_eq!(counter["idempotency_retention"], "1d");
    assert_eq!(counter["abort_timeout"], "10m");
    assert_eq!(counter["enable_lazy_state"], false);
    assert_eq!(
        counter["retry_policy"],
        json!({"initial_interval":"500ms","exponentiation_factor":2.0,"max_attempts":70,"max_interval":"1m","on_max_attempts":"Pause"})
    );
    let handlers = get(&format!("{a}/services/Counter/handlers")).json();
    let get_handler = handlers["handlers"].as_array().unwrap().iter().find(|h| h["name"] == "get").unwrap().clone();
    assert_eq!(get_handler["ty"], "Shared");
    let wf = get(&format!("{a}/services/SleepWorkflow")).json();
    assert_eq!(wf["workflow_completion_retention"], "1d");
    let greet = get(&format!("{a}/services/Greeter/handlers/greet")).json();
    assert_eq!(
        greet,
        json!({"name":"greet","public":true,"input_description":"application/json","output_description":"application/json","retry_policy":{"max_attempts":null}})
    );

    let err = |r: Reply, status: u16, message: &str| {
        assert_eq!(r.status, status, "{}", r.body);
        let v: Value = r.json();
        assert_eq!(v["message"], message);
        assert!(v.get("restate_code").is_some());
    };
    err(get(&format!("{a}/services/NoSuchService")), 404, "The requested service 'NoSuchService' does not exist");
    err(
        get(&format!("{a}/services/Greeter/handlers/nope")),
        404,
        "The requested handler 'nope' on service 'Greeter' does not exist",
    );
    err(
        get(&format!("{a}/deployments/dp_11111111111111111111111")),
        404,
        "The requested deployment 'dp_11111111111111111111111' does not exist",
    );
    let malformed = get(&format!("{a}/deployments/not-an-id"));
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.body, "Invalid URL: Cannot parse `deployment` with value `not-an-id`: bad format");
}

#[test]
fn registration_errors() {
    let perdure = Perdure::start();
    let a = &perdure.admin;
    let (status, body) = perdure.register("http://127.0.0.1:9", json!({}));
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["restate_code"], "META0003");
    assert!(body["message"].as_str().unwrap().contains("error when calling 'http://127.0.0.1:9/'"), "{body}");

    let missing = post_with(&format!("{a}/deployments"), "{}", &[("content-type", "application/json")]);
    assert_eq!(missing.status, 422, "{}", missing.body);
    let bad_json = post_with(&format!("{a}/deployments"), "{\"uri\":", &[("content-type", "application/json")]);
    assert_eq!(bad_json.status, 400);
    assert!(bad_json.body.starts_with("Failed to parse the request body as JSON"), "{}", bad_json.body);
    let relative =
        post_with(&format!("{a}/deployments"), "{\"uri\":\"/foo\"}", &[("content-type", "application/json")]);
    assert_eq!(relative.status, 400);
    assert!(relative.json()["message"].as_str().unwrap().contains("is not absolute"));
    let unqualified = post_with(
        &format!("{a}/deployments"),
        "{\"arn\":\"arn:aws:lambda:eu-central-1:123456789012:function:greeter\"}",
        &[("content-type", "application/json")],
    );
    assert_eq!(unqualified.status, 400);
    assert!(unqualified.json()["message"].as_str().unwrap().contains("version or alias"));
    let wrong_method = request("PUT", &format!("{a}/deployments"));
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method.header("allow").unwrap().contains("POST"));
    assert_eq!(get(&format!("{a}/nope")).status, 404);
}

#[test]
fn an_endpoint_is_immutable_new_code_needs_a_new_deployment() {
    let perdure = Perdure::start();
    // Two different builds served one after another at the same port would be a change of
    // code under an existing deployment: simulate it with the h2 services and then
    // registering the same URI with a changed manifest (a different service set) is refused.
    let v1 = TsServices::start("h2", "v1");
    let url = v1.url();
    let (status, first) = perdure.register(&url, json!({}));
    assert_eq!(status, 201);
    drop(v1);
    // A Rust SDK endpoint with other services takes over the same port.
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let _rust = crate::rust_sdk::RustServices::start_on(port);
    let (status, body) = perdure.register(&url, json!({}));
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("immutable"), "{body}");
    // With force it is overwritten in place: same id, new revisions.
    let (status, forced) = perdure.register(&url, json!({ "force": true }));
    assert_eq!(status, 200, "{forced}");
    assert_eq!(forced["id"], first["id"]);
    // dry_run validates without registering anything new.
    let (status, dry) = perdure.register(&url, json!({ "force": true, "dry_run": true }));
    assert_eq!(status, 200, "{dry}");
    assert_ne!(dry["id"], first["id"], "dry runs answer a throw-away id");
}

#[test]
fn services_can_be_reconfigured_and_hidden_from_ingress() {
    let (perdure, _svc) = Perdure::start().serving(TsServices::start("h2", "v1"), json!({}));
    let a = &perdure.admin;
    let patch = |body: Value| {
        let r = crate::harness::http().patch(format!("{a}/services/Greeter")).json(&body).send().expect("PATCH");
        (r.status().as_u16(), r.json::<Value>().unwrap_or(Value::Null))
    };
    // What the CLI sends: every field, nulls for the untouched ones.
    let (status, v) = patch(json!({"public":null,"idempotency_retention":null,"workflow_completion_retention":null,
        "journal_retention":null,"inactivity_timeout":"2m","abort_timeout":null}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["inactivity_timeout"], "2m");
    assert_eq!(v["abort_timeout"], "10m");
    assert_eq!(get(&format!("{a}/services/Greeter")).json()["inactivity_timeout"], "2m");
    let (status, v) = patch(json!({ "idempotency_retention": "5 hours" }));
    assert_eq!((status, v["idempotency_retention"].clone()), (200, json!("5h")));
    let (status, v) = patch(json!({ "journal_retention": "banana" }));
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("journal_retention"), "{v}");
    assert_eq!(patch(json!({ "workflow_completion_retention": "1h" })).0, 400, "Greeter is no workflow");
    // Private: still callable from handlers, no longer from the ingress.
    assert_eq!(patch(json!({ "public": false })).1["public"], false);
    let r = post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"x\"");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "the invoked service is not public");
    assert_eq!(post_json(&format!("{}/Waiter/generic", perdure.ingress), "\"in\"").body, "\"Hello, in!\"");
    assert_eq!(patch(json!({ "public": true })).0, 200);
    assert_eq!(post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"x\"").body, "\"Hello, x!\"");
    let (status, _) = {
        let r = crate::harness::http().patch(format!("{a}/services/NoSuch")).json(&json!({})).send().unwrap();
        (r.status().as_u16(), ())
    };
    assert_eq!(status, 404);
}
