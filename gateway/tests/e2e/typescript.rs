//! The TypeScript SDK services: registration over HTTP/2 and HTTP/1.1, calls, sends,
//! sleeps, side effects, calls between services, retries.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

#[test]
fn register_then_greet_over_http2() {
    let perdure = Perdure::start();
    let svc = TsServices::start("h2", "v1");

    let (status, body) = perdure.register(&svc.url(), json!({}));
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("dp_1"), "{id}");
    assert_eq!(body["min_protocol_version"], 5);
    assert_eq!(body["max_protocol_version"], 7);
    assert_eq!(body["sdk_version"], "restate-sdk-typescript/1.17.2");
    let services: Vec<&str> =
        body["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    for s in ["Greeter", "Counter", "SleepWorkflow", "Mailbox", "Waiter", "Approval"] {
        assert!(services.contains(&s), "{s} in {services:?}");
    }
    let greeter = body["services"].as_array().unwrap().iter().find(|s| s["name"] == "Greeter").unwrap();
    assert_eq!(greeter["ty"], "Service");
    assert_eq!(greeter["revision"], 1);
    assert_eq!(greeter["deployment_id"], id.as_str());
    assert_eq!(greeter["inactivity_timeout"], "1m");
    assert_eq!(greeter["retry_policy"]["initial_interval"], "500ms");

    let r = post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"Alice\"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "\"Hello, Alice!\"");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("x-restate-id").unwrap().starts_with("inv_1"));
    assert!(r.header("idempotency-expires").is_none(), "a first completion carries no expiry");

    // The same endpoint with the same code again: 200, the same id (CDK redeploys rely on it).
    let (status, again) = perdure.register(&format!("{}/", svc.url()), json!({}));
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], id.as_str());

    // Listing and describing.
    let list = get(&format!("{}/deployments", perdure.admin)).json();
    assert_eq!(list["deployments"][0]["id"], id.as_str());
    assert_eq!(list["deployments"][0]["uri"], format!("{}/", svc.url()));
    assert_eq!(list["deployments"][0]["protocol_type"], "BidiStream");
    assert_eq!(list["deployments"][0]["http_version"], "HTTP/2.0");
    assert!(list["deployments"][0]["created_at"].as_str().unwrap().ends_with("000000Z"));
    let one = get(&format!("{}/deployments/{id}", perdure.admin)).json();
    assert_eq!(one["services"].as_array().unwrap().len(), 6);
    assert!(one["services"][0]["handlers"].is_array(), "detailed form has full service metadata");
}

#[test]
fn request_response_deployments_over_http1_suspend_and_resume() {
    let perdure = Perdure::start();
    let svc = TsServices::start("h1", "rr");

    // Without the flag, HTTP/2 to an HTTP/1.1 server fails discovery with Restate's hint.
    let (status, body) = perdure.register(&svc.url(), json!({}));
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["restate_code"], "META0014");
    assert!(body["message"].as_str().unwrap().contains("--use-http1.1"), "{body}");

    let (status, body) = perdure.register(&svc.url(), json!({ "use_http_11": true }));
    assert_eq!(status, 201, "{body}");
    let greeter = body["services"].as_array().unwrap().iter().find(|s| s["name"] == "Greeter").unwrap();
    assert_eq!(greeter["inactivity_timeout"], "0s", "request/response has no open stream to time out");
    let dp = get(&format!("{}/deployments", perdure.admin)).json();
    assert_eq!(dp["deployments"][0]["protocol_type"], "RequestResponse");
    assert_eq!(dp["deployments"][0]["http_version"], "HTTP/1.1");

    let r = post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"Bob\"");
    assert_eq!((r.status, r.body.as_str()), (200, "\"Hello, Bob!\""));
    // A sleep in request/response mode: the SDK suspends, the timer resumes a new attempt.
    let r = post_json(&format!("{}/Greeter/sleepy", perdure.ingress), "300");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert!(v["slept_ms"].as_u64().unwrap() >= 300, "{v}");
    assert_eq!(v["finished_on"], "rr");
    // Side effects survive the suspension: both run steps are in the result.
    let r = post_json(&format!("{}/Greeter/sideEffect", perdure.ingress), "\"z\"");
    assert_eq!(r.body, "\"a(z)+b(z)\"");
    // Suspensions waiting on several completions at once (race, all), resumed one by one.
    let r = post_json(&format!("{}/Waiter/combinators", perdure.ingress), "");
    assert_eq!(r.body, "\"timeout; s100+s150+ran\"");
}

#[test]
fn sleeps_side_effects_and_calls_between_services() {
    let (perdure, _svc) = Perdure::start().serving(TsServices::start("h2", "v1"), json!({}));
    let ingress = &perdure.ingress;

    let started = Instant::now();
    let r = post_json(&format!("{ingress}/Greeter/sleepy"), "500");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(r.json()["slept_ms"].as_u64().unwrap() >= 500);

    assert_eq!(post_json(&format!("{ingress}/Greeter/sideEffect"), "\"q\"").body, "\"a(q)+b(q)\"");
    // Request-response call to an object on (likely) another partition, and back.
    assert_eq!(
        post_json(&format!("{ingress}/Greeter/greetAndCount"), "\"carol\"").body,
        "\"Hello, carol! You are visitor #1 (v1)\""
    );
    assert_eq!(
        post_json(&format!("{ingress}/Greeter/greetAndCount"), "\"carol\"").body,
        "\"Hello, carol! You are visitor #2 (v1)\""
    );
    assert_eq!(get(&format!("{ingress}/Counter/carol/get")).body, "2");
    assert_eq!(post_json(&format!("{ingress}/Greeter/callGreet"), "\"dan\"").body, "\"Hello, dan!\"");
    assert_eq!(post_json(&format!("{ingress}/Greeter/sendGreet"), "\"eve\"").body, "\"sent\"");
}

#[test]
fn failed_attempts_are_retried_with_backoff() {
    let (perdure, _svc) = Perdure::start_with(&[("PERDURE_RETRY_POLICY__INITIAL_INTERVAL", "100ms")])
        .serving(TsServices::start("h2", "v1"), json!({}));
    let started = Instant::now();
    let r = post_json(&format!("{}/Greeter/flaky", perdure.ingress), "\"k1\"");
    assert_eq!(r.body, "\"ok after 3 attempts\"");
    // Two retries: 100 ms then 200 ms (configured initial interval, factor 2).
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
}

#[test]
fn terminal_errors_keep_the_users_code() {
    let (perdure, _svc) = Perdure::start().serving(TsServices::start("h2", "v1"), json!({}));
    let r = post_json(&format!("{}/Greeter/fail", perdure.ingress), "\"x\"");
    assert_eq!(r.status, 409);
    assert_eq!(r.json(), json!({ "code": 409, "message": "boom: x", "source": "invocation" }));
    assert_eq!(r.header("x-restate-error-source"), Some("invocation"));
    assert!(r.header("x-restate-id").is_some());
}

#[test]
fn send_then_output_and_attach() {
    let (perdure, _svc) = Perdure::start().serving(TsServices::start("h2", "v1"), json!({}));
    let ingress = &perdure.ingress;

    let r = post_json(&format!("{ingress}/Greeter/sleepy/send"), "800");
    assert_eq!(r.status, 202, "{}", r.body);
    let v = r.json();
    assert_eq!(v["status"], "Accepted");
    let id = v["invocationId"].as_str().unwrap().to_owned();
    assert_eq!(r.header("x-restate-id"), Some(id.as_str()));

    let out = get(&format!("{ingress}/restate/invocation/{id}/output"));
    assert_eq!(out.status, 470, "{}", out.body);
    assert_eq!(out.json()["message"], "the invocation exists but has not completed yet");

    let attached = get(&format!("{ingress}/restate/invocation/{id}/attach"));
    assert_eq!(attached.status, 200, "{}", attached.body);
    assert_eq!(attached.json()["finished_on"], "v1");
    assert!(attached.header("idempotency-expires").is_none());

    let out = get(&format!("{ingress}/restate/invocation/{id}/output"));
    assert_eq!(out.status, 200);
    assert_eq!(out.body, attached.body);
    assert!(out.header("idempotency-expires").unwrap().ends_with("+00:00"));
    assert_eq!(get(&format!("{ingress}/restate/attach/{id}")).body, attached.body);

    // Delayed send: executionTime in the answer, and it runs later.
    let r = post_json(&format!("{ingress}/Greeter/greet/send?delay=1s"), "\"later\"");
    assert_eq!(r.status, 202);
    let v = r.json();
    assert!(v["executionTime"].as_str().unwrap().ends_with("Z"));
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3);
    let id = v["invocationId"].as_str().unwrap();
    assert_eq!(get(&format!("{ingress}/restate/invocation/{id}/output")).status, 470);
    assert_eq!(get(&format!("{ingress}/restate/invocation/{id}/attach")).body, "\"Hello, later!\"");
}

#[test]
fn idempotency_keys_deduplicate_calls_and_sends() {
    let (perdure, _svc) = Perdure::start().serving(TsServices::start("h2", "v1"), json!({}));
    let ingress = &perdure.ingress;
    let call = |body: &str| {
        post_with(
            &format!("{ingress}/Greeter/greet"),
            body,
            &[("content-type", "application/json"), ("idempotency-key", "k-sync")],
        )
    };
    let first = call("\"Idem\"");
    assert_eq!((first.status, first.body.as_str()), (200, "\"Hello, Idem!\""));
    assert!(first.header("idempotency-expires").is_none());
    let second = call("\"Other\"");
    assert_eq!(second.body, "\"Hello, Idem!\"", "the stored result, not a new run");
    assert_eq!(second.header("x-restate-id"), first.header("x-restate-id"));
    assert!(second.header("idempotency-expires").is_some());

    let send = || {
        post_with(
            &format!("{ingress}/Greeter/greet/send"),
            "\"IdemSend\"",
            &[("content-type", "application/json"), ("idempotency-key", "k-send")],
        )
        .json()
    };
    let a = send();
    let b = send();
    assert_eq!(a["status"], "Accepted");
    assert_eq!(b["status"], "PreviouslyAccepted");
    assert_eq!(a["invocationId"], b["invocationId"]);
    let by_key = get(&format!("{ingress}/restate/invocation/Greeter/greet/k-send/attach"));
    assert_eq!(by_key.body, "\"Hello, IdemSend!\"");
    let out = get(&format!("{ingress}/restate/invocation/Greeter/greet/k-send/output"));
    assert_eq!(out.status, 200);
    assert!(out.header("idempotency-expires").is_some());
}

#[test]
fn a_bidi_manifest_over_http1_streams_in_full_duplex() {
    // The TS SDK's http1Handler({ bidirectional: true }) announces BIDI_STREAM over HTTP/1.1.
    let (perdure, _svc) = Perdure::start().serving(TsServices::start("h1bidi", "b"), json!({ "use_http_11": true }));
    let dp = get(&format!("{}/deployments", perdure.admin)).json();
    assert_eq!(dp["deployments"][0]["protocol_type"], "BidiStream");
    assert_eq!(dp["deployments"][0]["http_version"], "HTTP/1.1");
    assert_eq!(post_json(&format!("{}/Greeter/sideEffect", perdure.ingress), "\"s\"").body, "\"a(s)+b(s)\"");
    assert_eq!(post_json(&format!("{}/Greeter/sleepy", perdure.ingress), "200").json()["finished_on"], "b");
}

#[test]
fn paused_invocations_resume_on_request() {
    // With one attempt allowed, the flaky handler pauses after each failure until resumed.
    let (perdure, _svc) = Perdure::start_with(&[("PERDURE_RETRY_POLICY__MAX_ATTEMPTS", "1")])
        .serving(TsServices::start("h2", "v1"), json!({}));
    let r = post_json(&format!("{}/Greeter/flaky/send", perdure.ingress), "\"p1\"");
    let id = r.json()["invocationId"].as_str().unwrap().to_owned();
    let admin = &perdure.admin;
    let output = || get(&format!("{}/restate/invocation/{id}/output", perdure.ingress));
    let status = || invocation_status(&perdure, &id);
    eventually(Duration::from_secs(30), "the flaky handler to pause after its failed attempt", || {
        (status().as_deref() == Some("paused")).then_some(())
    });
    assert_eq!(output().status, 470, "paused, not failed");
    // Paused already (200), or paused now (202) if the first attempt was slow.
    let paused = request("PATCH", &format!("{admin}/invocations/{id}/pause")).status;
    assert!(paused == 200 || paused == 202, "{paused}");
    // Each resume grants one more attempt (which pauses again when it fails); the third succeeds.
    let done = eventually(Duration::from_secs(30), "the flaky handler to succeed", || {
        match status().as_deref() {
            Some("completed") => return Some(output().body),
            Some("paused") => {
                assert_eq!(request("PATCH", &format!("{admin}/invocations/{id}/resume")).status, 200);
            }
            _ => {}
        }
        None
    });
    assert!(done.starts_with("\"ok after"), "{done}");
    assert_eq!(request("PATCH", &format!("{admin}/invocations/{id}/resume")).status, 409);
}

#[test]
fn lazy_state_everywhere_and_a_small_invocation_limit() {
    // No eager state at all (the SDK reads state lazily), and at most 2 attempts at once.
    let (perdure, _svc) = Perdure::start_with(&[
        ("PERDURE_INVOKER__EAGER_STATE_SIZE_LIMIT", "0"),
        ("PERDURE_INVOKER__CONCURRENT_INVOCATIONS_LIMIT", "2"),
    ])
    .serving(TsServices::start("h2", "v1"), json!({}));
    let i = &perdure.ingress;
    assert_eq!(post_json(&format!("{i}/Counter/lazy/add"), "4").body, "4");
    assert_eq!(post_json(&format!("{i}/Counter/lazy/add"), "3").body, "7");
    assert_eq!(get(&format!("{i}/Counter/lazy/get")).body, "7");
    let bodies: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|n| {
                let url = format!("{i}/Greeter/greet");
                s.spawn(move || post_json(&url, &format!("\"n{n}\"")).body)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (n, body) in bodies.iter().enumerate() {
        assert_eq!(body, &format!("\"Hello, n{n}!\""));
    }
}

/// With every slot taken, new invocations wait (by id, read back when a slot frees) and then
/// run in order; one killed while it waits ends killed and never runs.
#[test]
fn invocations_wait_for_a_slot_in_order_and_can_be_killed_while_waiting() {
    let (perdure, _svc) = Perdure::start_with(&[("PERDURE_INVOKER__CONCURRENT_INVOCATIONS_LIMIT", "1")])
        .serving(TsServices::start("h2", "v1"), json!({}));
    let i = &perdure.ingress;
    let send = |path: &str, body: &str| {
        let r = post_json(&format!("{i}/{path}/send"), body);
        assert_eq!(r.status, 202, "{}", r.body);
        r.json()["invocationId"].as_str().unwrap().to_owned()
    };
    // The only slot: a 5 s durable sleep over a bidi stream, which keeps its stream (and slot).
    let blocker = send("Counter/block/slowAdd", "5000");
    eventually(Duration::from_secs(20), "the blocker to start", || {
        let rows = query_rows(&perdure, &format!("SELECT status FROM sys_invocation WHERE id = '{blocker}'"));
        rows.first().is_some_and(|r| r["status"] == "running" || r["status"] == "suspended").then_some(())
    });
    let waiting: Vec<String> = (0..20).map(|n| send("Greeter/greet", &format!("\"w{n}\""))).collect();
    let killed = &waiting[7];
    assert_eq!(request("PATCH", &format!("{}/invocations/{killed}/kill", perdure.admin)).status, 200);
    for (n, id) in waiting.iter().enumerate() {
        let r = get(&format!("{i}/restate/invocation/{id}/attach"));
        if id == killed {
            assert_ne!(r.status, 200, "the killed one never ran: {}", r.body);
        } else {
            assert_eq!((r.status, r.body.as_str()), (200, format!("\"Hello, w{n}!\"").as_str()));
        }
    }
    let r = get(&format!("{i}/restate/invocation/{blocker}/attach"));
    assert_eq!((r.status, r.body.as_str()), (200, "1"));
}

#[test]
fn invocations_finish_when_idle_streams_are_closed_early() {
    // A 150 ms inactivity timeout: during a 1 s sleep perdure ends the stream, the SDK
    // suspends, and the timer resumes it in a new attempt.
    let perdure = Perdure::start_with(&[("PERDURE_INVOKER__INACTIVITY_TIMEOUT", "150ms")]);
    let svc = TsServices::start("h2", "v1");
    let (_, body) = perdure.register(&svc.url(), json!({}));
    let greeter = body["services"].as_array().unwrap().iter().find(|s| s["name"] == "Greeter").unwrap().clone();
    assert_eq!(greeter["inactivity_timeout"], "150ms");
    let r = post_json(&format!("{}/Greeter/sleepy", perdure.ingress), "1000");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["slept_ms"].as_u64().unwrap() >= 1000);
    assert_eq!(post_json(&format!("{}/Waiter/combinators", perdure.ingress), "").body, "\"timeout; s100+s150+ran\"");
}

#[test]
fn attach_output_and_lookup_with_a_json_target() {
    // Restate 1.7's POST /restate/{attach,output,lookup} forms.
    let (perdure, _svc) = Perdure::start().serving(TsServices::start("h2", "v1"), json!({}));
    let i = &perdure.ingress;
    let post = |path: &str, body: serde_json::Value| post_json(&format!("{i}/restate/{path}"), &body.to_string());
    let r = post_with(
        &format!("{i}/Greeter/greet/send"),
        "\"json\"",
        &[("content-type", "application/json"), ("idempotency-key", "jk")],
    );
    let id = r.json()["invocationId"].as_str().unwrap().to_owned();
    let attached = post("attach", json!({ "target": "invocation", "invocationId": id }));
    assert_eq!((attached.status, attached.body.as_str()), (200, "\"Hello, json!\""));
    let by_key =
        json!({ "target": "idempotentInvocation", "service": "Greeter", "handler": "greet", "idempotencyKey": "jk" });
    assert_eq!(post("output", by_key.clone()).body, "\"Hello, json!\"");
    assert_eq!(post("lookup", by_key).json(), json!({ "invocationId": id }));
    let unknown =
        json!({ "target": "idempotentInvocation", "service": "Greeter", "handler": "greet", "idempotencyKey": "nope" });
    assert_eq!(post("lookup", unknown).status, 404);
    post_json(&format!("{i}/SleepWorkflow/jw/run/send"), "100");
    let wf = json!({ "target": "workflow", "workflowName": "SleepWorkflow", "workflowKey": "jw" });
    assert_eq!(post("attach", wf).body, "\"woke up (v1)\"");
    let bad = post("attach", json!({ "target": "somewhere" }));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("bad target"), "{}", bad.body);
    assert_eq!(get(&format!("{i}/restate/lookup")).status, 405);
}

/// Beyond `ingress.concurrency-limit` requests at once, the ingress sheds with 503 and
/// `Retry-After` instead of buffering; the admin API keeps answering, and once the calls in
/// flight end, new ones are served again.
#[test]
fn the_ingress_sheds_requests_beyond_its_concurrency_limit() {
    let (perdure, _svc) = Perdure::start_with(&[("PERDURE_INGRESS__CONCURRENCY_LIMIT", "2")])
        .serving(TsServices::start("h2", "v1"), json!({}));
    let i = perdure.ingress.clone();
    let calls: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|key| {
            let url = format!("{i}/Counter/{key}/slowAdd");
            std::thread::spawn(move || post_json(&url, "3000"))
        })
        .collect();
    eventually(Duration::from_secs(20), "both calls to run", || {
        let rows = query_rows(
            &perdure,
            "SELECT id FROM sys_invocation WHERE target_handler_name = 'slowAdd' AND status IN ('running', 'suspended')",
        );
        (rows.len() == 2).then_some(())
    });
    let shed = post_json(&format!("{i}/Greeter/greet"), "\"x\"");
    assert_eq!(shed.status, 503, "{}", shed.body);
    assert_eq!(shed.header("retry-after"), Some("1"));
    assert!(shed.body.contains("ingress.concurrency-limit"), "{}", shed.body);
    assert_eq!(get(&format!("{}/health", perdure.admin)).status, 200);
    for call in calls {
        let r = call.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = post_json(&format!("{i}/Greeter/greet"), "\"y\"");
    assert_eq!((r.status, r.body.as_str()), (200, "\"Hello, y!\""));
}

/// With a tiny ingress queue, a burst of sends gets either 202 (and then runs, once) or 503
/// with `Retry-After` (and never runs): nothing in between, nothing lost.
#[test]
fn a_full_partition_queue_sheds_sends_and_every_accepted_one_runs() {
    let (perdure, _svc) = Perdure::start_with(&[("PERDURE_INGRESS__QUEUE_PER_PARTITION", "16")])
        .serving(TsServices::start("h2", "v1"), json!({}));
    let i = perdure.ingress.clone();
    let senders: Vec<_> = (0..16)
        .map(|t| {
            let i = i.clone();
            std::thread::spawn(move || {
                let mut accepted = Vec::new();
                for n in 0..40 {
                    let name = format!("t{t}n{n}");
                    let r = post_json(&format!("{i}/Greeter/greet/send"), &format!("\"{name}\""));
                    match r.status {
                        202 => accepted.push((r.json()["invocationId"].as_str().unwrap().to_owned(), name)),
                        503 => {
                            assert_eq!(r.header("retry-after"), Some("1"));
                            assert!(r.body.contains("queue-per-partition"), "{}", r.body);
                        }
                        other => panic!("send answered {other}: {}", r.body),
                    }
                }
                accepted
            })
        })
        .collect();
    let accepted: Vec<_> = senders.into_iter().flat_map(|s| s.join().unwrap()).collect();
    for (id, name) in &accepted {
        let r = get(&format!("{i}/restate/invocation/{id}/attach"));
        assert_eq!((r.status, r.body.as_str()), (200, format!("\"Hello, {name}!\"").as_str()));
    }
    let rows = query_rows(&perdure, "SELECT count(*) AS n FROM sys_invocation WHERE target_handler_name = 'greet'");
    assert_eq!(rows[0]["n"].as_u64(), Some(accepted.len() as u64), "shed sends never ran");
}
