//! Versioning and the deployment lifecycle (ARCHITECTURE.md, "Deployments, revisions,
//! pinning"): a new deployment of a service takes new invocations while running ones finish
//! on the deployment they started on; a deployment shows whether it is active, draining or
//! drained, and goes only once drained unless forced; work that had not started runs on the
//! revision that is latest when it starts, re-validated then.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

fn deployment(perdure: &Perdure, id: &str) -> Reply {
    get(&format!("{}/deployments/{id}", perdure.admin))
}

fn delete(perdure: &Perdure, id: &str, force: bool) -> Reply {
    request("DELETE", &format!("{}/deployments/{id}{}", perdure.admin, if force { "?force=true" } else { "" }))
}

fn send(perdure: &Perdure, path: &str, body: &str) -> String {
    let r = post_json(&format!("{}/{path}/send", perdure.ingress), body);
    assert_eq!(r.status, 202, "{path}: {}", r.body);
    r.json()["invocationId"].as_str().unwrap().to_owned()
}

fn attach(perdure: &Perdure, id: &str) -> Reply {
    get(&format!("{}/restate/invocation/{id}/attach", perdure.ingress))
}

fn register(perdure: &Perdure, svc: &SdkProcess, extra: Value) -> String {
    let (status, body) = perdure.register(&svc.url(), extra);
    assert!(status == 201 || status == 200, "{status}: {body}");
    body["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_new_revision_takes_new_calls_while_running_ones_finish_on_theirs_and_the_old_one_drains() {
    let mut perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    let dp1 = register(&perdure, &v1, json!({}));
    let sleeping: Vec<String> = (0..3).map(|_| send(&perdure, "Greeter/sleepy", "3000")).collect();
    eventually(Duration::from_secs(10), "the sleepers to be pinned", || {
        (deployment(&perdure, &dp1).json()["pinned_invocations"]["total"] == 3).then_some(())
    });
    let d1 = deployment(&perdure, &dp1).json();
    assert_eq!(d1["drain_status"], "active");
    assert!(d1["latest_for"].as_array().unwrap().contains(&json!("Greeter")), "{d1}");

    // v2: revision 2 of every service, new calls go there.
    let v2 = TsServices::start("h2", "v2");
    let dp2 = register(&perdure, &v2, json!({}));
    let greeter = get(&format!("{}/services/Greeter", perdure.admin)).json();
    assert_eq!((greeter["revision"].as_u64(), greeter["deployment_id"].as_str()), (Some(2), Some(dp2.as_str())));
    assert_eq!(greeter["endpoint_id"], greeter["deployment_id"], "the seed's older field name");
    let listed = deployment(&perdure, &dp2).json();
    assert!(listed["services"].as_array().unwrap().iter().all(|s| s["revision"] == 2), "{listed}");
    let d1 = deployment(&perdure, &dp1).json();
    assert_eq!((d1["drain_status"].as_str(), d1["pinned_invocations"]["total"].as_u64()), (Some("draining"), Some(3)));
    assert_eq!(post_json(&format!("{}/Greeter/sleepy", perdure.ingress), "10").json()["finished_on"], "v2");

    // Still in use: not removed, and the answer says by whom.
    let refused = delete(&perdure, &dp1, false);
    assert_eq!(refused.status, 409, "{}", refused.body);
    let why = refused.json();
    assert_eq!(why["pinned_invocations"]["total"], 3);
    let ids: Vec<&str> = why["invocations"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for id in &sleeping {
        assert!(ids.contains(&id.as_str()), "{id} listed in {why}");
    }
    assert!(why["message"].as_str().unwrap().contains("3 invocations are pinned"), "{why}");
    // The active one refuses too: it serves the latest revisions.
    assert_eq!(delete(&perdure, &dp2, false).status, 409);

    // A restart in the middle changes nothing.
    assert!(perdure.stop().success());
    perdure.restart();
    for id in &sleeping {
        let done = attach(&perdure, id);
        assert_eq!(done.status, 200, "{}", done.body);
        assert_eq!(done.json()["finished_on"], "v1", "pinned to the deployment it started on");
    }
    let d1 = deployment(&perdure, &dp1).json();
    assert_eq!((d1["drain_status"].as_str(), d1["pinned_invocations"]["total"].as_u64()), (Some("drained"), Some(0)));
    assert_eq!(delete(&perdure, &dp1, false).status, 202);
    assert_eq!(deployment(&perdure, &dp1).status, 404);
    assert_eq!(post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"again\"").body, "\"Hello, again!\"");
}

#[test]
fn a_forced_removal_ends_the_invocations_pinned_to_it_with_an_error_naming_it() {
    let perdure = Perdure::start_with(&[("PERDURE_RETRY_POLICY__INITIAL_INTERVAL", "100ms")]);
    let v1 = TsServices::start("h2", "v1");
    let dp1 = register(&perdure, &v1, json!({}));
    let sleeping = send(&perdure, "Greeter/sleepy", "60000");
    eventually(Duration::from_secs(10), "the sleeper to be pinned", || {
        (deployment(&perdure, &dp1).json()["pinned_invocations"]["total"] == 1).then_some(())
    });
    let v2 = TsServices::start("h2", "v2");
    register(&perdure, &v2, json!({}));
    assert_eq!(delete(&perdure, &dp1, true).status, 202);
    let ended = attach(&perdure, &sleeping);
    assert_eq!(ended.status, 410, "{}", ended.body);
    assert!(ended.body.contains(&dp1) && ended.body.contains("removed"), "{}", ended.body);
    assert_eq!(post_json(&format!("{}/Greeter/sleepy", perdure.ingress), "10").json()["finished_on"], "v2");
}

#[test]
fn work_that_had_not_started_starts_on_the_latest_revision_and_fails_at_once_if_its_handler_went() {
    let perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    register(&perdure, &v1, json!({}));
    // Delayed: not started when v2 arrives.
    let gone = {
        let r = post_json(&format!("{}/Greeter/sleepy/send?delay=1500ms", perdure.ingress), "10");
        r.json()["invocationId"].as_str().unwrap().to_owned()
    };
    let flipped = {
        let r = post_json(&format!("{}/Counter/k1/get/send?delay=1500ms", perdure.ingress), "null");
        r.json()["invocationId"].as_str().unwrap().to_owned()
    };
    let moved = {
        let r = post_json(&format!("{}/Greeter/greet/send?delay=1500ms", perdure.ingress), "\"later\"");
        r.json()["invocationId"].as_str().unwrap().to_owned()
    };
    // v2 drops Greeter.sleepy and makes Counter.get exclusive (a breaking change).
    let v2 = TsServices::start_variant(0, "h2", "v2", "drop:Greeter.sleepy,flip:Counter.get");
    let dp2 = register(&perdure, &v2, json!({ "breaking": true }));

    let r = attach(&perdure, &gone);
    assert_eq!(r.status, 404, "no retry loop, an error at once: {}", r.body);
    assert!(r.body.contains("sleepy") && r.body.contains(&dp2), "{}", r.body);
    let r = attach(&perdure, &flipped);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("Counter/get") && r.body.contains(&dp2), "{}", r.body);
    // What still exists runs on the revision that was latest when it started.
    assert_eq!(attach(&perdure, &moved).body, "\"Hello, later!\"");
}

#[test]
fn a_breaking_revision_is_refused_with_409_naming_each_change_unless_breaking() {
    let perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    let dp1 = register(&perdure, &v1, json!({}));
    // Pending work for the handler v2 drops.
    send(&perdure, "Greeter/sleepy", "60000");
    let v2 = TsServices::start_variant(0, "h2", "v2", "drop:Greeter.sleepy,flip:Counter.get");

    for dry_run in [true, false] {
        let (status, body) = perdure.register(&v2.url(), json!({ "dry_run": dry_run }));
        assert_eq!(status, 409, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("Greeter/sleepy: removed, while 1 invocations of it are not completed"), "{message}");
        assert!(message.contains("Counter/get: turns from SHARED into EXCLUSIVE"), "{message}");
        let changes = body["changes"].as_array().unwrap();
        assert!(
            changes.iter().any(|c| c["service"] == "Greeter" && c["handler"] == "sleepy" && c["breaking"] == true),
            "{body}"
        );
        assert!(changes.iter().any(|c| c["change"] == "revision 1 -> 2" && c["breaking"] == false), "{body}");
    }
    let greeter = || get(&format!("{}/services/Greeter", perdure.admin)).json();
    assert_eq!(greeter()["revision"], 1, "nothing was stored");
    assert_eq!(greeter()["deployment_id"], dp1.as_str());

    // A dry run with breaking reports what it would do, and still stores nothing.
    let (status, body) = perdure.register(&v2.url(), json!({ "dry_run": true, "breaking": true }));
    assert_eq!(status, 201, "{body}");
    assert!(body["changes"].as_array().unwrap().iter().any(|c| c["handler"] == "get"), "{body}");
    assert_eq!(greeter()["revision"], 1);

    // The real restate CLI stops at the 409 of its dry run, and registers with --breaking.
    let (ok, out) = restate_cli(&perdure, &["-y", "deployments", "register", &v2.url()]);
    assert!(!ok && out.contains("Counter/get: turns from SHARED into EXCLUSIVE"), "{out}");
    assert_eq!(greeter()["revision"], 1);
    let (ok, out) = restate_cli(&perdure, &["-y", "deployments", "register", "--breaking", &v2.url()]);
    assert!(ok, "{out}");
    let dp2 =
        out.split("Deployment ID:").nth(1).and_then(|r| r.split_whitespace().next()).expect("the new id").to_owned();
    assert_eq!(greeter()["revision"], 2);
    assert_eq!(greeter()["deployment_id"], dp2.as_str());
    // The same endpoint with the same manifest is the same deployment.
    let (status, body) = perdure.register(&v2.url(), json!({}));
    assert_eq!((status, body["id"].as_str().unwrap()), (200, dp2.as_str()));
}

#[test]
fn force_does_not_overwrite_a_deployment_invocations_are_pinned_to_unless_breaking_too() {
    let perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    let port = v1.port;
    let dp1 = register(&perdure, &v1, json!({}));
    let sleeping = send(&perdure, "Greeter/sleepy", "3000");
    eventually(Duration::from_secs(10), "the invocation runs", || {
        (deployment(&perdure, &dp1).json()["pinned_invocations"]["total"] == 1).then_some(())
    });
    drop(v1);
    // New code at the same address: force alone is refused, listing what is pinned.
    let v1b = TsServices::start_variant(port, "h2", "v1b", "drop:Mailbox");
    let (status, body) = perdure.register(&v1b.url(), json!({ "force": true }));
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with(&format!("1 invocations are pinned to deployment {dp1}")),
        "{body}"
    );
    assert_eq!(body["invocations"], json!([sleeping]));
    // force + breaking overwrites it in place; the service it no longer has is gone.
    let (status, body) = perdure.register(&v1b.url(), json!({ "force": true, "breaking": true }));
    assert_eq!((status, body["id"].as_str().unwrap()), (200, dp1.as_str()), "{body}");
    assert!(
        body["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["service"] == "Mailbox" && c["change"] == "removed by the overwrite"),
        "{body}"
    );
    assert_eq!(get(&format!("{}/services/Mailbox", perdure.admin)).status, 404);
}

fn greet_tag(perdure: &Perdure, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    post_with(&format!("{}/Greeter/sleepy", perdure.ingress), "1", &all)
}

fn finished_on(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["finished_on"].as_str().unwrap().to_owned()
}

fn move_service(perdure: &Perdure, service: &str, action: &str, body: Value) -> Reply {
    post_json(&format!("{}/services/{service}/{action}", perdure.admin), &body.to_string())
}

#[test]
fn an_unpromoted_deployment_takes_only_header_calls_until_promoted_and_a_rollback_goes_back() {
    let mut perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    let dp1 = register(&perdure, &v1, json!({}));
    let v2 = TsServices::start("h2", "v2");
    let dp2 = register(&perdure, &v2, json!({ "promote": false }));
    let admin = perdure.admin.clone();
    let greeter = || get(&format!("{admin}/services/Greeter")).json();
    assert_eq!((greeter()["deployment_id"].as_str(), greeter()["revision"].as_u64()), (Some(dp1.as_str()), Some(1)));
    assert_eq!(finished_on(&greet_tag(&perdure, &[])), "v1", "new calls stay on the promoted one");

    // The smoke test: one call with the header runs on v2, and stays pinned there.
    assert_eq!(finished_on(&greet_tag(&perdure, &[("x-perdure-deployment", &dp2)])), "v2");
    let bad = greet_tag(&perdure, &[("x-perdure-deployment", "dp_nope!")]);
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("x-perdure-deployment"), "{}", bad.body);
    let unknown = greet_tag(&perdure, &[("x-perdure-deployment", "dp_10GKVmXu6PJuXYCGpQrMA6J")]);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(deployment(&perdure, &dp2).json()["drain_status"], "inactive", "not promoted, nothing pinned");

    // Promote: new calls go to v2, as a new revision.
    let promoted = move_service(&perdure, "Greeter", "promote", json!({ "deployment": dp2 }));
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    assert_eq!(promoted.json()["service"]["deployment_id"], dp2.as_str());
    assert_eq!((greeter()["deployment_id"].as_str(), greeter()["revision"].as_u64()), (Some(dp2.as_str()), Some(3)));
    assert_eq!(finished_on(&greet_tag(&perdure, &[])), "v2");
    assert_eq!(get(&format!("{}/services/Counter", perdure.admin)).json()["deployment_id"], dp1.as_str());
    assert_eq!(deployment(&perdure, &dp2).json()["drain_status"], "active");

    // Roll back: the previous one, as revision 4; the answer survives a restart.
    let back = move_service(&perdure, "Greeter", "rollback", json!({}));
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(greeter()["deployment_id"], dp1.as_str());
    assert_eq!(greeter()["revision"], 4);
    assert_eq!(finished_on(&greet_tag(&perdure, &[])), "v1");
    assert!(perdure.stop().success());
    perdure.restart();
    let greeter = get(&format!("{}/services/Greeter", perdure.admin)).json();
    assert_eq!((greeter["deployment_id"].as_str(), greeter["revision"].as_u64()), (Some(dp1.as_str()), Some(4)));

    // Bad moves are refused, naming what is wrong.
    let r = move_service(&perdure, "Greeter", "promote", json!({ "deployment": "nope" }));
    assert_eq!(r.status, 400, "{}", r.body);
    let r = move_service(&perdure, "Nope", "rollback", json!({}));
    assert_eq!(r.status, 404, "{}", r.body);
    let r = move_service(&perdure, "Greeter", "ramp", json!({ "deployment": dp2, "percent": 250 }));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("percent"), "{}", r.body);
    let r = move_service(&perdure, "Greeter", "ramp", json!({ "deployment": dp1, "percent": 10 }));
    assert_eq!(r.status, 409, "ramping the current one: {}", r.body);
}

#[test]
fn a_ramp_sends_its_share_of_new_calls_to_the_canary_and_a_key_never_moves() {
    let perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    let dp1 = register(&perdure, &v1, json!({}));
    let v2 = TsServices::start("h2", "v2");
    let dp2 = register(&perdure, &v2, json!({ "promote": false }));
    for service in ["Greeter", "Counter"] {
        let r = move_service(&perdure, service, "ramp", json!({ "deployment": dp2, "percent": 20 }));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["service"]["ramp"], json!({ "deployment_id": dp2, "percent": 20 }));
    }
    let d2 = deployment(&perdure, &dp2).json();
    assert_eq!(d2["drain_status"], "active", "a canary is in use: {d2}");
    assert_eq!(delete(&perdure, &dp2, false).status, 409);

    // 1000 calls: about 20% on v2 (binomial: 3 sigma is 38).
    let on_v2 = (0..1000)
        .filter(|_| post_json(&format!("{}/Greeter/greetAndCount", perdure.ingress), "\"ramp\"").body.contains("(v2)"))
        .count();
    assert!((140..=260).contains(&on_v2), "{on_v2} of 1000 went to v2");

    // Objects split by key: each key stays on one deployment.
    let whoami = |key: &str| post_json(&format!("{}/Counter/{key}/whoami", perdure.ingress), "null").json();
    let mut on_canary = 0;
    for k in 0..200 {
        let key = format!("k{k}");
        let first = whoami(&key);
        for _ in 0..3 {
            assert_eq!(whoami(&key), first, "key {key} moved");
        }
        on_canary += usize::from(first == "v2");
    }
    assert!((15..=70).contains(&on_canary), "{on_canary} of 200 keys on v2");

    // 0 ends it; 100 promotes.
    assert_eq!(move_service(&perdure, "Counter", "ramp", json!({ "deployment": dp2, "percent": 0 })).status, 200);
    assert!((0..20).all(|k| whoami(&format!("k{k}")) == "v1"));
    assert_eq!(move_service(&perdure, "Counter", "ramp", json!({ "deployment": dp2, "percent": 100 })).status, 200);
    assert!((0..20).all(|k| whoami(&format!("k{k}")) == "v2"));
    let counter = get(&format!("{}/services/Counter", perdure.admin)).json();
    assert_eq!(counter["deployment_id"], dp2.as_str());
    assert!(counter.get("ramp").is_none(), "{counter}");
    assert!(deployment(&perdure, &dp1).json()["latest_for"].as_array().unwrap().contains(&json!("Greeter")));
}

#[test]
fn a_paused_deployment_starts_nothing_and_its_invocations_go_on_when_it_is_resumed() {
    let mut perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    let dp1 = register(&perdure, &v1, json!({}));
    let (code, out, err) = perdure_cli(&perdure, &["dp", "pause", &dp1]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Paused deployment"), "{out}");
    assert_eq!(deployment(&perdure, &dp1).json()["paused"], true);

    // New work routed to it waits as paused, pinned to it; across a restart too.
    let waiting: Vec<String> = (0..3).map(|i| send(&perdure, "Greeter/greet", &format!("\"p{i}\""))).collect();
    eventually(Duration::from_secs(10), "the calls to wait as paused", || {
        (deployment(&perdure, &dp1).json()["pinned_invocations"]["paused"] == 3).then_some(())
    });
    assert!(perdure.stop().success());
    perdure.restart();
    // Nothing to wait for: what must not happen is an attempt starting. Watch for a while.
    holds_for(Duration::from_millis(300), "the calls to wait as paused after the restart", || {
        let d1 = deployment(&perdure, &dp1).json();
        d1["paused"] == true && d1["pinned_invocations"]["paused"] == 3
    });
    let d1 = deployment(&perdure, &dp1).json();
    assert_eq!((d1["paused"].as_bool(), d1["pinned_invocations"]["paused"].as_u64()), (Some(true), Some(3)), "{d1}");

    let (code, out, err) = perdure_cli(&perdure, &["dp", "resume", &dp1]);
    assert_eq!(code, 0, "{out}{err}");
    for (i, id) in waiting.iter().enumerate() {
        assert_eq!(attach(&perdure, id).body, format!("\"Hello, p{i}!\""));
    }
    assert_eq!(deployment(&perdure, &dp1).json()["paused"], false);
    assert_eq!(post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"now\"").body, "\"Hello, now!\"");
    let (code, _, err) = perdure_cli(&perdure, &["dp", "pause", "dp_10GKVmXu6PJuXYCGpQrMA6J"]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn a_held_invocation_can_be_moved_to_the_latest_deployment_on_resume() {
    let perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    let dp1 = register(&perdure, &v1, json!({}));
    let (code, out, err) = perdure_cli(&perdure, &["dp", "pause", &dp1]);
    assert_eq!(code, 0, "{out}{err}");
    let held = send(&perdure, "Greeter/sleepy", "10");
    eventually(Duration::from_secs(10), "the call to be held", || {
        (deployment(&perdure, &dp1).json()["pinned_invocations"]["paused"] == 1).then_some(())
    });
    let v2 = TsServices::start("h2", "v2");
    let dp2 = register(&perdure, &v2, json!({}));

    // Bad targets are refused with 400 naming the problem.
    let r = request("PATCH", &format!("{}/invocations/{held}/resume?deployment=nope", perdure.admin));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("not keep, latest or a deployment id"), "{}", r.body);
    let r =
        request("PATCH", &format!("{}/invocations/{held}/resume?deployment=dp_10GKVmXu6PJuXYCGpQrMA6J", perdure.admin));
    assert_eq!(r.status, 400, "{}", r.body);

    let (code, out, err) = perdure_cli(&perdure, &["invocations", "resume", &held, "--to", "latest"]);
    assert_eq!(code, 0, "{out}{err}");
    let done = attach(&perdure, &held);
    assert_eq!(done.json()["finished_on"], "v2", "{}", done.body);
    let (_, out, _) = perdure_cli(&perdure, &["--json", "invocations", "describe", &held]);
    let described: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (described["status"].as_str(), described["pinned_deployment_id"].as_str()),
        (Some("completed"), Some(dp2.as_str()))
    );
    assert_eq!(deployment(&perdure, &dp1).json()["pinned_invocations"]["total"], 0);
}

#[test]
fn rust_sdk_deployments_pin_running_invocations_and_ramp_by_key() {
    use crate::rust_sdk::RustServices;
    let perdure = Perdure::start();
    let v1 = RustServices::start_tagged("rust-v1");
    let dp1 = perdure.deploy(&v1.url(), json!({}));
    let sleeping: Vec<String> = (0..3).map(|_| send(&perdure, "RustTagged/sleepy", "1500")).collect();
    eventually(Duration::from_secs(10), "the sleepers to be pinned", || {
        (deployment(&perdure, &dp1).json()["pinned_invocations"]["total"] == 3).then_some(())
    });

    let v2 = RustServices::start_tagged("rust-v2");
    let dp2 = perdure.deploy(&v2.url(), json!({}));
    assert_eq!(post_json(&format!("{}/RustTagged/sleepy", perdure.ingress), "1").body, "\"rust-v2\"");
    for id in &sleeping {
        assert_eq!(attach(&perdure, id).body, "\"rust-v1\"", "finished on the deployment it started on");
    }
    assert_eq!(deployment(&perdure, &dp1).json()["drain_status"], "drained");

    // Back to v1 for the object, then a 50% ramp to v2 by key: each key stays where it is.
    let r = move_service(&perdure, "RustTaggedObject", "rollback", json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = move_service(&perdure, "RustTaggedObject", "ramp", json!({ "deployment": dp2, "percent": 50 }));
    assert_eq!(r.status, 200, "{}", r.body);
    let whoami = |k: usize| post_with(&format!("{}/RustTaggedObject/k{k}/whoami", perdure.ingress), "", &[]).body;
    let first: Vec<String> = (0..60).map(whoami).collect();
    assert!(first.iter().all(|t| t == "\"rust-v1\"" || t == "\"rust-v2\""), "{first:?}");
    let on_v2 = first.iter().filter(|t| t.contains("rust-v2")).count();
    assert!((10..=50).contains(&on_v2), "{on_v2} of 60 keys on v2");
    for (k, tag) in first.iter().enumerate() {
        assert_eq!(&whoami(k), tag, "key k{k} moved");
    }
}

#[test]
fn delayed_work_sent_to_a_deployment_holds_it_until_it_runs_or_the_deployment_is_forced_out() {
    let perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    register(&perdure, &v1, json!({}));
    let v2 = TsServices::start("h2", "v2");
    let dp2 = register(&perdure, &v2, json!({ "promote": false }));
    let sent = |delay: &str| {
        let r = post_with(
            &format!("{}/Greeter/sleepy/send?delay={delay}", perdure.ingress),
            "1",
            &[("content-type", "application/json"), ("x-perdure-deployment", &dp2)],
        );
        assert_eq!(r.status, 202, "{}", r.body);
        r.json()["invocationId"].as_str().unwrap().to_owned()
    };
    let soon = sent("3s");
    let later = sent("1h");
    let d2 = deployment(&perdure, &dp2).json();
    assert_eq!(
        (d2["drain_status"].as_str(), d2["pinned_invocations"]["scheduled"].as_u64()),
        (Some("draining"), Some(2)),
        "{d2}"
    );
    let refused = delete(&perdure, &dp2, false);
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("2 scheduled"), "{}", refused.body);
    assert_eq!(attach(&perdure, &soon).json()["finished_on"], "v2", "it ran where it was sent");
    assert_eq!(deployment(&perdure, &dp2).json()["pinned_invocations"]["scheduled"], 1);
    assert_eq!(delete(&perdure, &dp2, true).status, 202);
    let ended = attach(&perdure, &later);
    assert_eq!(ended.status, 410, "{}", ended.body);
    assert!(ended.body.contains(&dp2) && ended.body.contains("before it started"), "{}", ended.body);
}

#[test]
fn auto_prune_removes_drained_deployments_once_nothing_is_pinned_and_leaves_inactive_ones() {
    let perdure = Perdure::start_with(&[
        ("PERDURE_DEPLOYMENTS__AUTO_PRUNE", "true"),
        ("PERDURE_DEPLOYMENTS__KEEP_DRAINED", "0"),
        ("PERDURE_DEPLOYMENTS__PRUNE_INTERVAL", "200ms"),
    ]);
    // Started up front, so that everything below happens well within the sleeper's 5 s.
    let [v1, v2, v3, v2b] = ["v1", "v2", "v3", "v2b"].map(|tag| TsServices::start("h2", tag));
    let dp1 = register(&perdure, &v1, json!({}));
    let sleeper = send(&perdure, "Greeter/sleepy", "5000");
    eventually(Duration::from_secs(10), "the sleeper to be pinned", || {
        (deployment(&perdure, &dp1).json()["pinned_invocations"]["total"] == 1).then_some(())
    });
    let dp2 = register(&perdure, &v2, json!({}));
    let dp3 = register(&perdure, &v3, json!({ "promote": false }));
    // v2 replaced by v2b with nothing pinned: drained, so the pruner removes it. Once it has,
    // the pruner has looked at v1 (draining) too.
    register(&perdure, &v2b, json!({}));
    eventually(Duration::from_secs(10), "the drained v2 to be pruned", || {
        (deployment(&perdure, &dp2).status == 404).then_some(())
    });
    assert_eq!(deployment(&perdure, &dp1).json()["drain_status"], "draining", "kept while the sleeper runs");
    assert_eq!(attach(&perdure, &sleeper).json()["finished_on"], "v1");
    eventually(Duration::from_secs(10), "v1 to be pruned", || (deployment(&perdure, &dp1).status == 404).then_some(()));
    assert_eq!(deployment(&perdure, &dp3).json()["drain_status"], "inactive", "never routed to: it stays");
}
