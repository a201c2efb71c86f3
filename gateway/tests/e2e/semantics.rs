//! Full durable-execution semantics with the TypeScript SDK: virtual objects, workflows and
//! promises, awakeables, calls, invocation control (cancel, kill, purge, restart), and
//! idempotency with retention.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

fn setup() -> (Perdure, SdkProcess) {
    Perdure::start().serving(TsServices::start("h2", "v1"), json!({}))
}

fn send(perdure: &Perdure, path: &str, body: &str) -> String {
    let r = post_json(&format!("{}/{path}/send", perdure.ingress), body);
    assert_eq!(r.status, 202, "{}", r.body);
    r.json()["invocationId"].as_str().unwrap().to_owned()
}

/// Waits until Mailbox/<box> holds a value.
fn mailbox(perdure: &Perdure, boxname: &str) -> Value {
    eventually(Duration::from_secs(20), &format!("Mailbox/{boxname}"), || {
        let v = get(&format!("{}/Mailbox/{boxname}/take", perdure.ingress)).json();
        (!v.is_null()).then_some(v)
    })
}

fn patch(perdure: &Perdure, path: &str) -> Reply {
    request("PATCH", &format!("{}/{path}", perdure.admin))
}

#[test]
fn exclusive_handlers_on_one_key_run_one_at_a_time() {
    let (perdure, _svc) = setup();
    let url = format!("{}/Counter/hot/add", perdure.ingress);
    let results: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20).map(|_| s.spawn(|| post_json(&url, "1").body.parse::<u64>().unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = results.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=20).collect::<Vec<_>>(), "each add saw the previous one: {results:?}");
    assert_eq!(get(&format!("{}/Counter/hot/get", perdure.ingress)).body, "20");

    // A shared handler does not wait behind a long exclusive one; another key is independent.
    let slow = send(&perdure, "Counter/hot/slowAdd", "1500");
    // slowAdd holds the key from here on: it adds its 1 after its sleep.
    let slow_wakes_up = journaled_sleep(&perdure, &slow);
    // 20, not 21: the get ran while slowAdd held the key, it did not wait for it to finish.
    assert_eq!(get(&format!("{}/Counter/hot/get", perdure.ingress)).body, "20");
    let cold = post_json(&format!("{}/Counter/cold/add", perdure.ingress), "3");
    assert_eq!(cold.body, "3");
    let cold_id = cold.header("x-restate-id").unwrap();
    let rows = query_rows(
        &perdure,
        &format!("SELECT CAST(completed_at AS BIGINT) AS completed_at FROM sys_invocation WHERE id = '{cold_id}'"),
    );
    let cold_done = rows[0]["completed_at"].as_u64().unwrap_or_else(|| panic!("{rows:?}"));
    assert!(cold_done < slow_wakes_up, "the other key's add finished before the hot key was free again");
    // An exclusive call on the hot key queues behind slowAdd and runs after it.
    assert_eq!(post_json(&format!("{}/Counter/hot/add", perdure.ingress), "1").body, "22");
    assert_eq!(get(&format!("{}/restate/invocation/{slow}/output", perdure.ingress)).body, "21");
}

#[test]
fn workflows_run_once_and_answer_shared_handlers_meanwhile() {
    let (perdure, _svc) = setup();
    let i = &perdure.ingress;
    let first = post_json(&format!("{i}/SleepWorkflow/wf1/run/send"), "2500");
    assert_eq!(first.json()["status"], "Accepted");
    let again = post_json(&format!("{i}/SleepWorkflow/wf1/run/send"), "2500");
    assert_eq!(again.json()["status"], "PreviouslyAccepted");
    assert_eq!(again.json()["invocationId"], first.json()["invocationId"]);
    eventually(Duration::from_secs(10), "status sleeping", || {
        (post_json(&format!("{i}/SleepWorkflow/wf1/status"), "").body == "\"sleeping\"").then_some(())
    });
    assert_eq!(get(&format!("{i}/restate/workflow/SleepWorkflow/wf1/output")).status, 470);
    let done = get(&format!("{i}/restate/workflow/SleepWorkflow/wf1/attach"));
    assert_eq!((done.status, done.body.as_str()), (200, "\"woke up (v1)\""));
    let out = get(&format!("{i}/restate/workflow/SleepWorkflow/wf1/output"));
    assert_eq!(out.body, "\"woke up (v1)\"");
    assert!(out.header("idempotency-expires").is_some());
    // A second run after completion is refused, as Restate does.
    let rerun = post_json(&format!("{i}/SleepWorkflow/wf1/run"), "1000");
    assert_eq!(rerun.status, 409);
    assert_eq!(rerun.json()["message"], "the workflow method was already invoked");
    assert_eq!(post_json(&format!("{i}/SleepWorkflow/wf1/status"), "").body, "\"done\"");
}

#[test]
fn durable_promises_connect_a_workflow_and_its_shared_handlers() {
    let (perdure, _svc) = setup();
    let i = &perdure.ingress;
    send(&perdure, "Approval/loan-7/run", "\"loan\"");
    eventually(Duration::from_secs(10), "status waiting", || {
        (post_json(&format!("{i}/Approval/loan-7/status"), "").body == "\"waiting\"").then_some(())
    });
    assert_eq!(post_json(&format!("{i}/Approval/loan-7/peek"), "").body, "null");
    assert_eq!(post_json(&format!("{i}/Approval/loan-7/decide"), "\"yes\"").body, "\"ok\"");
    assert_eq!(get(&format!("{i}/restate/workflow/Approval/loan-7/attach")).body, "\"loan: yes\"");
    assert_eq!(post_json(&format!("{i}/Approval/loan-7/peek"), "").body, "\"yes\"");
    // A promise completes once.
    let twice = post_json(&format!("{i}/Approval/loan-7/decide"), "\"no\"");
    assert_eq!(twice.status, 409, "{}", twice.body);
    assert!(twice.body.contains("already completed"), "{}", twice.body);
    // Resolved before anyone waits: the run finds it immediately.
    assert_eq!(post_json(&format!("{i}/Approval/loan-8/decide"), "\"early\"").body, "\"ok\"");
    assert_eq!(post_json(&format!("{i}/Approval/loan-8/run"), "\"loan\"").body, "\"loan: early\"");
}

#[test]
fn awakeables_are_completed_from_outside_and_from_handlers() {
    let (perdure, _svc) = setup();
    let i = &perdure.ingress;
    let waiting = send(&perdure, "Waiter/awaitAwakeable", "\"aw1\"");
    let id = mailbox(&perdure, "aw1");
    let id = id.as_str().unwrap();
    assert!(id.starts_with("sign_1"), "{id}");
    let r =
        post_with(&format!("{i}/restate/awakeables/{id}/resolve"), "\"hi\"", &[("content-type", "application/json")]);
    assert_eq!((r.status, r.body.as_str()), (202, ""));
    assert_eq!(get(&format!("{i}/restate/invocation/{waiting}/attach")).body, "\"got hi\"");

    // From another handler.
    let waiting = send(&perdure, "Waiter/awaitAwakeable", "\"aw2\"");
    let id = mailbox(&perdure, "aw2");
    let r =
        post_json(&format!("{i}/Waiter/resolveAwakeable"), &json!({ "id": id, "value": "from a handler" }).to_string());
    assert_eq!(r.body, "\"resolved\"");
    assert_eq!(get(&format!("{i}/restate/invocation/{waiting}/attach")).body, "\"got from a handler\"");

    // Rejected from outside (short alias path): the waiter fails with the reason.
    let waiting = send(&perdure, "Waiter/awaitAwakeable", "\"aw3\"");
    let id = mailbox(&perdure, "aw3");
    let id = id.as_str().unwrap();
    assert_eq!(
        post_with(&format!("{i}/restate/a/{id}/reject"), "no way", &[("content-type", "text/plain")]).status,
        202
    );
    let failed = get(&format!("{i}/restate/invocation/{waiting}/attach"));
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert!(failed.body.contains("no way"), "{}", failed.body);
    let bad = post_json(&format!("{i}/restate/awakeables/sign_1nope/resolve"), "1");
    assert_eq!(bad.status, 400);
}

#[test]
fn calls_generic_calls_delayed_sends_and_attach_from_handlers() {
    let (perdure, _svc) = setup();
    let i = &perdure.ingress;
    assert_eq!(post_json(&format!("{i}/Waiter/generic"), "\"gen\"").body, "\"Hello, gen!\"");

    let started = Instant::now();
    assert_eq!(
        post_json(&format!("{i}/Waiter/sendDelayed"), &json!({ "box": "d1", "ms": 1500 }).to_string()).body,
        "\"scheduled\""
    );
    assert_eq!(get(&format!("{i}/Mailbox/d1/take")).body, "null", "not before the delay");
    assert_eq!(mailbox(&perdure, "d1"), json!("delivered"));
    assert!(started.elapsed() >= Duration::from_millis(1500));

    assert_eq!(post_json(&format!("{i}/Waiter/callFail"), "\"x\"").body, "\"caught 409: boom: x\"");
    // Race and all over sleeps, an awakeable and a run: suspensions that wait on several ids.
    assert_eq!(post_json(&format!("{i}/Waiter/combinators"), "").body, "\"timeout; s100+s150+ran\"");

    // Named signals between invocations.
    let waiting = send(&perdure, "Waiter/awaitSignal", "\"sig1\"");
    let target_id = mailbox(&perdure, "sig1");
    assert_eq!(target_id.as_str(), Some(waiting.as_str()));
    let r = post_json(&format!("{i}/Waiter/sendSignal"), &json!({ "id": target_id, "value": "now" }).to_string());
    assert_eq!(r.body, "\"sent\"");
    assert_eq!(get(&format!("{i}/restate/invocation/{waiting}/attach")).body, "\"signalled now\"");

    let target = send(&perdure, "Greeter/sleepy", "400");
    let r = post_json(&format!("{i}/Waiter/attachTo"), &format!("\"{target}\""));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["finished_on"], "v1");
}

#[test]
fn cancel_lets_the_handler_compensate() {
    let (perdure, _svc) = setup();
    let i = &perdure.ingress;
    let id = send(&perdure, "Waiter/cancellable", "\"c1\"");
    journaled_sleep(&perdure, &id);
    let r = patch(&perdure, &format!("invocations/{id}/cancel"));
    assert_eq!(r.status, 202, "{}", r.body);
    let attached = get(&format!("{i}/restate/invocation/{id}/attach"));
    assert_eq!(attached.status, 409, "{}", attached.body);
    assert_eq!(attached.json()["source"], "invocation");
    assert_eq!(mailbox(&perdure, "c1"), json!("compensated"));
    // Completed now: cancelling again is a conflict; unknown ids are 404.
    assert_eq!(patch(&perdure, &format!("invocations/{id}/cancel")).status, 409);
    let unknown = patch(&perdure, "invocations/inv_1h6VL9iXJDkz0bdqyzuB2nLbvqPiMsfKWA/cancel");
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.json()["message"],
        "The requested invocation 'inv_1h6VL9iXJDkz0bdqyzuB2nLbvqPiMsfKWA' does not exist"
    );

    // An invocation still waiting in an inbox is cancelled without running.
    let blocker = send(&perdure, "Counter/busy/slowAdd", "3000");
    journaled_sleep(&perdure, &blocker);
    let queued = send(&perdure, "Counter/busy/add", "5");
    assert_eq!(invocation_status(&perdure, &queued).as_deref(), Some("pending"), "in the key's inbox");
    assert_eq!(patch(&perdure, &format!("invocations/{queued}/cancel")).status, 200);
    assert_eq!(get(&format!("{i}/restate/invocation/{queued}/attach")).status, 409);
    assert_eq!(get(&format!("{i}/restate/invocation/{blocker}/attach")).body, "1");
    assert_eq!(get(&format!("{i}/Counter/busy/get")).body, "1", "the cancelled add never ran");
}

#[test]
fn kill_stops_the_invocation_and_everything_it_called() {
    let (perdure, _svc) = setup();
    let i = &perdure.ingress;
    let parent = send(&perdure, "Waiter/parent", "\"k1\"");
    let child = mailbox(&perdure, "k1");
    let child = child.as_str().unwrap();
    assert_eq!(patch(&perdure, &format!("invocations/{parent}/kill")).status, 200);
    let p = get(&format!("{i}/restate/invocation/{parent}/attach"));
    assert_eq!((p.status, p.json()["message"].clone()), (409, json!("killed")));
    let c = get(&format!("{i}/restate/invocation/{child}/attach"));
    assert_eq!((c.status, c.json()["message"].clone()), (409, json!("killed")));
    // Killing does not run compensations.
    assert_eq!(get(&format!("{i}/Mailbox/k1-child/take")).body, "null");
    assert_eq!(patch(&perdure, &format!("invocations/{parent}/kill")).status, 409);
}

#[test]
fn purge_and_restart_as_new() {
    let (perdure, _svc) = setup();
    let i = &perdure.ingress;
    let r = post_json(&format!("{i}/Greeter/greet"), "\"again\"");
    let id = r.header("x-restate-id").unwrap().to_owned();

    let restarted = patch(&perdure, &format!("invocations/{id}/restart-as-new"));
    assert_eq!(restarted.status, 200, "{}", restarted.body);
    let new_id = restarted.json()["new_invocation_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    assert_eq!(get(&format!("{i}/restate/invocation/{new_id}/attach")).body, "\"Hello, again!\"");

    assert_eq!(patch(&perdure, &format!("invocations/{id}/purge-journal")).status, 200);
    assert_eq!(patch(&perdure, &format!("invocations/{id}/restart-as-new")).status, 410, "input gone with the journal");
    assert_eq!(get(&format!("{i}/restate/invocation/{id}/output")).body, "\"Hello, again!\"", "result kept");
    assert_eq!(patch(&perdure, &format!("invocations/{id}/purge")).status, 200);
    assert_eq!(get(&format!("{i}/restate/invocation/{id}/output")).status, 404);

    let running = send(&perdure, "Greeter/sleepy", "600000");
    assert_eq!(patch(&perdure, &format!("invocations/{running}/purge")).status, 409);
    let wf = send(&perdure, "SleepWorkflow/w9/run", "10");
    get(&format!("{i}/restate/invocation/{wf}/attach"));
    assert_eq!(patch(&perdure, &format!("invocations/{wf}/restart-as-new")).status, 422);
    // Purging a workflow run forgets it: it can run again, with fresh state.
    assert_eq!(patch(&perdure, &format!("invocations/{wf}/purge")).status, 200);
    assert_eq!(post_json(&format!("{i}/SleepWorkflow/w9/status"), "").body, "\"unknown\"");
    assert_eq!(post_json(&format!("{i}/SleepWorkflow/w9/run"), "10").body, "\"woke up (v1)\"");
}

#[test]
fn idempotency_works_for_objects_and_expires_with_retention() {
    let (perdure, _svc) = Perdure::start_with(&[
        ("PERDURE_DEFAULT_IDEMPOTENCY_RETENTION", "2s"),
        ("PERDURE_DEFAULT_JOURNAL_RETENTION", "2s"),
    ])
    .serving(TsServices::start("h2", "v1"), json!({}));
    let i = &perdure.ingress;
    let add = || {
        post_with(
            &format!("{i}/Counter/idem/add"),
            "10",
            &[("content-type", "application/json"), ("idempotency-key", "once")],
        )
    };
    assert_eq!(add().body, "10");
    assert_eq!(add().body, "10");
    assert_eq!(get(&format!("{i}/Counter/idem/get")).body, "10", "applied once");
    let output = || get(&format!("{i}/restate/invocation/Counter/idem/add/once/output"));
    assert_eq!(output().status, 200);
    // After the retention the result is gone, and the same key runs again.
    eventually(Duration::from_secs(15), "retention cleanup", || (output().status == 404).then_some(()));
    assert_eq!(add().body, "20");
}
