//! The seed's versioning and removal walkthroughs, step by step, with the `perdure` CLI and
//! the real `restate` CLI against one server: deploy v1, start sleeping invocations, register
//! v2, see the revisions, new calls on v2 while the sleepers finish on v1 across a restart,
//! hide a service, wait for v1 to drain and remove it; then prune what has drained.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

/// Runs the perdure CLI and expects it to succeed; its stdout.
fn ok(perdure: &Perdure, args: &[&str]) -> String {
    let (code, out, err) = perdure_cli(perdure, args);
    assert_eq!(code, 0, "perdure {args:?}: {out}{err}");
    out
}

fn json_of(perdure: &Perdure, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(perdure, &all)).expect("--json prints JSON")
}

fn new_id(out: &str) -> String {
    out.split_whitespace().find(|w| w.starts_with("dp_")).expect("a deployment id").to_owned()
}

#[test]
fn the_versioning_walkthrough_with_both_clis() {
    let mut perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    let out = ok(&perdure, &["dp", "add", &v1.url()]);
    assert!(out.contains("Registered deployment dp_") && out.contains("Greeter"), "{out}");
    let dp1 = new_id(&out);

    let sleeping: Vec<String> = (0..3)
        .map(|_| {
            let r = post_json(&format!("{}/Greeter/sleepy/send", perdure.ingress), "8000");
            r.json()["invocationId"].as_str().unwrap().to_owned()
        })
        .collect();
    eventually(Duration::from_secs(10), "the sleepers to be pinned", || {
        (json_of(&perdure, &["dp", "describe", &dp1])["pinned_invocations"]["total"] == 3).then_some(())
    });

    // Where each one is pinned.
    let out = ok(&perdure, &["invocations", "list", "--deployment", &dp1]);
    assert!(sleeping.iter().all(|id| out.contains(id.as_str())), "{out}");
    let one = json_of(&perdure, &["invocations", "describe", &sleeping[0]]);
    assert_eq!(
        (one["pinned_deployment_id"].as_str(), one["pinned_service_revision"].as_u64()),
        (Some(dp1.as_str()), Some(1))
    );
    assert_eq!(one["target"], "Greeter/sleepy");
    let (code, _, err) = perdure_cli(&perdure, &["invocations", "describe", "inv_1eQpfttTKbrh082u08pGYlH3ECEDMLrk3v"]);
    assert_eq!(code, 1, "{err}");

    // v2: a dry run first, then for real; revision 2 everywhere.
    let v2 = TsServices::start("h2", "v2");
    let out = ok(&perdure, &["dp", "add", "--dry-run", &v2.url()]);
    assert!(out.contains("Would register") && out.contains("revision 1 -> 2"), "{out}");
    let dp2 = new_id(&ok(&perdure, &["dp", "add", &v2.url()]));
    let greeter = json_of(&perdure, &["services", "describe", "Greeter"]);
    assert_eq!((greeter["revision"].as_u64(), greeter["deployment_id"].as_str()), (Some(2), Some(dp2.as_str())));
    assert_eq!(greeter["endpoint_id"], greeter["deployment_id"]);
    let described = json_of(&perdure, &["dp", "describe", &dp2]);
    assert!(described["services"].as_array().unwrap().iter().all(|s| s["revision"] == 2), "{described}");
    // The real restate CLI sees the same.
    let (cli_ok, out) = restate_cli(&perdure, &["services", "list"]);
    assert!(cli_ok && out.contains(&dp2), "{out}");
    let (cli_ok, out) = restate_cli(&perdure, &["deployments", "list"]);
    assert!(cli_ok && out.contains(&dp1) && out.contains(&dp2), "{out}");

    // New calls on v2, v1 is draining and refuses to go.
    assert_eq!(post_json(&format!("{}/Greeter/sleepy", perdure.ingress), "1").json()["finished_on"], "v2");
    let out = ok(&perdure, &["dp", "list"]);
    let line = out.lines().find(|l| l.contains(&dp1)).unwrap();
    assert!(line.contains("draining") && line.contains(" 3 ("), "{out}");
    let (code, _, err) = perdure_cli(&perdure, &["dp", "rm", &dp1]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("3 invocations are pinned"), "{err}");

    // A restart in the middle changes nothing.
    assert!(perdure.stop().success());
    perdure.restart();
    assert_eq!(json_of(&perdure, &["services", "describe", "Greeter"])["revision"], 2);

    // Hide Counter: the ingress refuses it, a call from another service still reaches it.
    let out = ok(&perdure, &["services", "hide", "Counter"]);
    assert!(out.contains("Counter is hidden"), "{out}");
    assert_eq!(post_json(&format!("{}/Counter/alice/add", perdure.ingress), "1").status, 400);
    let greeted = post_json(&format!("{}/Greeter/greetAndCount", perdure.ingress), "\"alice\"");
    assert_eq!(greeted.body, "\"Hello, alice! You are visitor #1 (v2)\"", "{}", greeted.body);
    ok(&perdure, &["services", "show", "Counter"]);
    assert_eq!(post_json(&format!("{}/Counter/alice/get", perdure.ingress), "null").body, "1");

    // Wait for v1 to drain (the sleepers finish on v1), then it goes.
    let out = ok(&perdure, &["dp", "rm", &dp1, "--wait", "--interval", "200ms", "--timeout", "60s"]);
    assert!(
        out.contains("draining") && out.contains("drained") && out.contains(&format!("Removed deployment {dp1}")),
        "{out}"
    );
    for id in &sleeping {
        let done = get(&format!("{}/restate/invocation/{id}/output", perdure.ingress));
        assert_eq!(done.json()["finished_on"], "v1", "{}", done.body);
    }
    let listed = json_of(&perdure, &["dp", "list"]);
    let ids: Vec<&str> = listed["deployments"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![dp2.as_str()]);

    // --wait on the active one says why it would wait forever.
    let (code, _, err) = perdure_cli(&perdure, &["dp", "rm", &dp2, "--wait"]);
    assert_eq!(code, 1);
    assert!(err.contains("is active") && err.contains("Greeter"), "{err}");

    // Prune: v3 takes everything, v4 is registered without promotion; only v2 goes.
    let v3 = TsServices::start("h2", "v3");
    let dp3 = new_id(&ok(&perdure, &["dp", "add", &v3.url()]));
    let v4 = TsServices::start("h2", "v4");
    let out = ok(&perdure, &["dp", "add", "--no-promote", &v4.url()]);
    assert!(out.contains("not promoted"), "{out}");
    let dp4 = new_id(&out);
    assert_eq!(json_of(&perdure, &["dp", "describe", &dp4])["drain_status"], "inactive");
    let out = ok(&perdure, &["dp", "prune", "--dry-run"]);
    assert!(out.contains("Would remove 1") && out.contains(&dp2) && !out.contains(&dp4), "{out}");
    let report = json_of(&perdure, &["dp", "prune"]);
    assert_eq!(report["removed"], json!([{ "id": dp2, "address": format!("{}/", v2.url()) }]));
    let left: Vec<String> = json_of(&perdure, &["dp", "list"])["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(left.contains(&dp3) && left.contains(&dp4) && left.len() == 2, "{left:?}");
}

#[test]
fn promote_rollback_and_ramp_from_the_perdure_cli() {
    let perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    let dp1 = new_id(&ok(&perdure, &["dp", "add", &v1.url()]));
    let v2 = TsServices::start("h2", "v2");
    let dp2 = new_id(&ok(&perdure, &["dp", "add", "--no-promote", &v2.url()]));
    let tag = || post_json(&format!("{}/Greeter/sleepy", perdure.ingress), "1").json()["finished_on"].clone();
    assert_eq!(tag(), "v1");

    let out = ok(&perdure, &["services", "ramp", "Greeter", "--to", &dp2, "--percent", "50"]);
    assert!(out.contains(&format!("ramp 50% -> {dp2}")), "{out}");
    let out = ok(&perdure, &["services", "list"]);
    assert!(out.lines().any(|l| l.contains("Greeter") && l.contains("50%")), "{out}");
    let on_v2 = (0..100).filter(|_| tag() == "v2").count();
    assert!((25..=75).contains(&on_v2), "{on_v2} of 100");

    let out = ok(&perdure, &["services", "promote", "Greeter", "--to", &dp2]);
    assert!(out.contains(&format!("Greeter revision 3 on {dp2}")), "{out}");
    assert!((0..10).all(|_| tag() == "v2"));
    let out = ok(&perdure, &["services", "rollback", "Greeter"]);
    assert!(out.contains(&format!("Greeter revision 4 on {dp1}")), "{out}");
    assert!((0..10).all(|_| tag() == "v1"));

    // Refusals name what is wrong and exit 1; bad arguments exit 2; no server exits 3.
    let (code, _, err) = perdure_cli(&perdure, &["services", "promote", "Nope", "--to", &dp2]);
    assert_eq!(code, 1);
    assert!(err.contains("Nope"), "{err}");
    let (code, _, err) = perdure_cli(&perdure, &["services", "ramp", "Greeter", "--to", &dp2, "--percent", "101"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = perdure_cli(&perdure, &["dp", "describe", "dp_notthere"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = perdure_cli(&perdure, &["--admin-url", "http://127.0.0.1:9", "dp", "list"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("cannot reach the admin API at http://127.0.0.1:9"), "{err}");
    let (code, _, err) = perdure_cli(&perdure, &["dp", "add", "--header", "nocolon", &v1.url()]);
    assert_eq!(code, 1);
    assert!(err.contains("--header 'nocolon'"), "{err}");
}
