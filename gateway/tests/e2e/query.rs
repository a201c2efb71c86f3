//! SQL introspection over `POST /query`: the tables the `restate` CLI and the CDK construct
//! read, in both answer forms (Arrow IPC stream, JSON rows), and the CLI commands built on it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

fn query(perdure: &Perdure, sql: &str) -> Reply {
    post_with(
        &format!("{}/query", perdure.admin),
        &json!({ "query": sql }).to_string(),
        &[("content-type", "application/json"), ("accept", "application/json")],
    )
}

fn rows(perdure: &Perdure, sql: &str) -> Vec<Value> {
    let r = query(perdure, sql);
    assert_eq!(r.status, 200, "{sql}: {}", r.body);
    r.json()["rows"].as_array().unwrap().clone()
}

#[test]
fn the_restate_cli_sees_pinned_work_through_sql_and_removes_a_deployment_once_drained() {
    let perdure = Perdure::start();
    let v1 = TsServices::start("h2", "v1");
    let dp1 = perdure.deploy(&v1.url(), json!({}));
    let r = post_json(&format!("{}/Greeter/sleepy/send", perdure.ingress), "6000");
    let sleeper = r.json()["invocationId"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(10), "the sleeper to be pinned", || {
        (rows(&perdure, &format!("SELECT id FROM sys_invocation WHERE pinned_deployment_id = '{dp1}'")).len() == 1)
            .then_some(())
    });
    let v2 = TsServices::start("h2", "v2");
    perdure.deploy(&v2.url(), json!({}));

    // What the CDK construct asks before pruning, and how it finds a deployment by endpoint.
    let counted = rows(
        &perdure,
        &format!(
            "SELECT COUNT(*) as cnt FROM sys_invocation_status WHERE pinned_deployment_id='{dp1}' AND status != 'completed'"
        ),
    );
    assert_eq!(counted, vec![json!({ "cnt": 1 })]);
    // It reads the deployment's index of open invocations, not every invocation.
    let plan = rows(
        &perdure,
        &format!(
            "EXPLAIN SELECT COUNT(*) as cnt FROM sys_invocation_status WHERE pinned_deployment_id='{dp1}' AND status != 'completed'"
        ),
    );
    let text = plan.iter().map(|r| r["plan"].as_str().unwrap_or("")).collect::<String>();
    assert!(text.contains("pinned_open: Some("), "{text}");
    let found = rows(&perdure, &format!("SELECT id FROM sys_deployment WHERE endpoint = '{}/'", v1.url()));
    assert_eq!(found, vec![json!({ "id": dp1 })]);
    let one = rows(&perdure, &format!("SELECT * FROM sys_invocation WHERE id = '{sleeper}'"));
    assert_eq!(one[0]["target"], "Greeter/sleepy");
    assert_eq!(one[0]["pinned_service_revision"], 1);
    assert!(one[0]["created_at"].as_str().unwrap().ends_with('Z'), "{one:?}");
    assert_eq!(one[0]["completion_retention"], "PT86400S");
    let deployments =
        rows(&perdure, "SELECT id, drain_status, pinned_invocations FROM sys_deployment ORDER BY created_at");
    assert_eq!(deployments[0], json!({ "id": dp1, "drain_status": "draining", "pinned_invocations": 1 }));

    // The real CLI: describe shows the pinned invocation, remove refuses until it drained.
    let (ok, out) = restate_cli(&perdure, &["deployments", "describe", &dp1]);
    assert!(ok, "{out}");
    let (_, out) = restate_cli(&perdure, &["deployments", "remove", &dp1]);
    assert!(out.contains("still Draining") && out.contains("1 invocations"), "{out}");
    let (ok, out) = restate_cli(&perdure, &["sql", "SELECT status, COUNT(*) AS n FROM sys_invocation GROUP BY status"]);
    assert!(ok && out.contains("1 rows"), "{out}");
    assert_eq!(get(&format!("{}/restate/invocation/{sleeper}/attach", perdure.ingress)).json()["finished_on"], "v1");
    let (ok, out) = restate_cli(&perdure, &["-y", "deployments", "remove", &dp1]);
    assert!(ok, "{out}");
    assert_eq!(get(&format!("{}/deployments/{dp1}", perdure.admin)).status, 404);
    let completed = rows(&perdure, "SELECT completion_result, status FROM sys_invocation_status");
    assert_eq!(completed, vec![json!({ "completion_result": "success", "status": "completed" })]);
}

#[test]
fn query_errors_name_what_is_wrong_and_nothing_but_reads_runs() {
    let perdure = Perdure::start();
    let r = query(&perdure, "SELECT * FROM nope");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("nope"), "{}", r.body);
    for write in
        ["DELETE FROM sys_invocation", "CREATE TABLE t (a INT)", "INSERT INTO sys_service VALUES ('x')", "SET x = 1"]
    {
        let r = query(&perdure, write);
        assert_eq!(r.status, 400, "{write}: {}", r.body);
    }
    let r =
        post_with(&format!("{}/query", perdure.admin), r#"{"query":"SELECT 1"}"#, &[("content-type", "text/plain")]);
    assert_eq!(r.status, 415, "{}", r.body);
    let r = post_with(
        &format!("{}/query", perdure.admin),
        r#"{"sql":"SELECT 1"}"#,
        &[("content-type", "application/json")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // Without Accept: application/json, an Arrow IPC stream.
    let r = post_with(
        &format!("{}/query", perdure.admin),
        r#"{"query":"SELECT 1 AS one"}"#,
        &[("content-type", "application/json")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/vnd.apache.arrow.stream"));
    // Every documented table exists, empty or not, and information_schema lists it.
    let tables: Vec<String> = rows(
        &perdure,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    )
    .iter()
    .map(|r| r["table_name"].as_str().unwrap().to_owned())
    .collect();
    assert_eq!(
        tables,
        vec![
            "state",
            "sys_deployment",
            "sys_idempotency",
            "sys_inbox",
            "sys_invocation",
            "sys_invocation_state",
            "sys_invocation_status",
            "sys_journal",
            "sys_keyed_service_status",
            "sys_promise",
            "sys_service"
        ]
    );
}

#[test]
fn the_restate_cli_shows_service_status_and_lists_and_cancels_invocations() {
    let (perdure, _v1) = Perdure::start().serving(TsServices::start("h2", "v1"), json!({}));
    let send = |path: &str, body: &str| {
        let r = post_json(&format!("{}/{path}/send", perdure.ingress), body);
        r.json()["invocationId"].as_str().unwrap().to_owned()
    };
    let holder = send("Counter/hot/slowAdd", "20000");
    let queued = send("Counter/hot/add", "1");
    eventually(Duration::from_secs(10), "the lock and the inbox", || {
        let locked = rows(&perdure, "SELECT service_key, invocation_id FROM sys_keyed_service_status");
        let waiting = rows(&perdure, "SELECT id, sequence_number FROM sys_inbox");
        (locked == vec![json!({ "service_key": "hot", "invocation_id": holder })] && waiting.len() == 1)
            .then_some(waiting)
    });
    let (ok, out) = restate_cli(&perdure, &["services", "status", "Counter"]);
    assert!(ok && out.contains("hot") && out.contains(&holder) && out.contains("slowAdd"), "{out}");
    let (ok, out) = restate_cli(&perdure, &["invocations", "list"]);
    assert!(ok && out.contains(&holder) && out.contains(&queued) && out.contains("pending"), "{out}");
    let (ok, out) = restate_cli(&perdure, &["-y", "invocations", "cancel", &queued]);
    assert!(ok && out.contains("Cancelled 1 invocations"), "{out}");
    let r = get(&format!("{}/restate/invocation/{queued}/output", perdure.ingress));
    assert!(r.body.contains("canceled"), "{}", r.body);
}

#[test]
fn object_state_and_workflow_promises_are_tables_too() {
    let (perdure, _v1) = Perdure::start().serving(TsServices::start("h2", "v1"), json!({}));
    assert_eq!(post_json(&format!("{}/Counter/alice/add", perdure.ingress), "5").body, "5");
    let state = rows(&perdure, "SELECT service_name, service_key, key, value_utf8, value FROM state");
    assert_eq!(
        state,
        vec![
            json!({ "service_name": "Counter", "service_key": "alice", "key": "count", "value_utf8": "5", "value": "35" })
        ]
    );
    // One object's state is a key-prefix scan; another object's is empty.
    let plan = rows(&perdure, "EXPLAIN SELECT * FROM state WHERE service_name = 'Counter' AND service_key = 'alice'");
    let text = plan.iter().map(|r| r["plan"].as_str().unwrap_or("")).collect::<String>();
    assert!(text.contains("object: Some("), "{text}");
    assert_eq!(
        rows(&perdure, "SELECT key FROM state WHERE service_name = 'Counter' AND service_key = 'alice'").len(),
        1
    );
    assert!(rows(&perdure, "SELECT key FROM state WHERE service_name = 'Counter' AND service_key = 'bob'").is_empty());
    assert!(rows(&perdure, "SELECT id FROM sys_invocation WHERE id = 'not-an-id'").is_empty());
    let (ok, out) = restate_cli(&perdure, &["state", "get", "Counter", "alice"]);
    assert!(ok && out.contains("count") && out.contains('5'), "{out}");

    let r = post_json(&format!("{}/Approval/w1/run/send", perdure.ingress), "\"the budget\"");
    assert_eq!(r.status, 202, "{}", r.body);
    let r = post_json(&format!("{}/Approval/w1/decide", perdure.ingress), "\"yes\"");
    assert_eq!(r.status, 200, "{}", r.body);
    let promises = rows(&perdure, "SELECT service_key, key, completed, completion_success_value_utf8 FROM sys_promise");
    assert_eq!(
        promises,
        vec![
            json!({ "service_key": "w1", "key": "decision", "completed": true, "completion_success_value_utf8": "\"yes\"" })
        ]
    );
}

#[test]
fn journals_are_a_table_and_the_restate_cli_describes_an_invocation_with_its_journal() {
    let (perdure, _v1) = Perdure::start().serving(TsServices::start("h2", "v1"), json!({}));
    assert_eq!(
        post_json(&format!("{}/Greeter/greetAndCount", perdure.ingress), "\"bob\"").body,
        "\"Hello, bob! You are visitor #1 (v1)\""
    );
    let r = post_json(&format!("{}/Greeter/sleepy/send", perdure.ingress), "60000");
    let sleeper = r.json()["invocationId"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(10), "the sleep to be journaled", || {
        let entries = rows(
            &perdure,
            &format!("SELECT entry_type, sleep_wakeup_at FROM sys_journal WHERE id = '{sleeper}' ORDER BY index"),
        );
        entries.iter().any(|e| e["entry_type"] == "Command: Sleep" && e.get("sleep_wakeup_at").is_some()).then_some(())
    });
    let calls = rows(
        &perdure,
        "SELECT index, invoked_target, completed, invoked_id FROM sys_journal WHERE entry_type = 'Command: Call'",
    );
    let counter = rows(&perdure, "SELECT id FROM sys_invocation WHERE target = 'Counter/bob/add'");
    assert_eq!(
        calls,
        vec![
            json!({ "index": 1, "invoked_target": "Counter/bob/add", "completed": true, "invoked_id": counter[0]["id"] })
        ]
    );
    let sleeping = rows(
        &perdure,
        &format!("SELECT completed FROM sys_journal WHERE id = '{sleeper}' AND entry_type = 'Command: Sleep'"),
    );
    assert_eq!(sleeping, vec![json!({ "completed": false })], "the 60 s sleep has not woken up");
    let json_of = |sql: &str| -> Value {
        let r = rows(&perdure, sql);
        serde_json::from_str(r[0]["entry_json"].as_str().expect("entry_json")).unwrap()
    };
    let sleep = json_of(&format!(
        "SELECT entry_json FROM sys_journal WHERE id = '{sleeper}' AND entry_type = 'Command: Sleep'"
    ));
    assert!(sleep["Command"]["Sleep"]["wake_up_time"].as_u64().is_some(), "{sleep}");
    let call = json_of("SELECT entry_json FROM sys_journal WHERE entry_type = 'Command: Call'");
    assert_eq!(call["Command"]["Call"]["request"]["invocation_id"], counter[0]["id"], "{call}");
    // `WHERE id = …` reads one invocation's record and journal (a key-prefix scan), not the table.
    for table in ["sys_journal", "sys_invocation"] {
        let plan = rows(&perdure, &format!("EXPLAIN SELECT * FROM {table} WHERE id = '{sleeper}'"));
        let text = plan.iter().map(|r| r["plan"].as_str().unwrap_or("")).collect::<String>();
        assert!(text.contains(&format!("table={table}")) && text.contains("invocation: Some("), "{table}: {text}");
    }
    let (ok, out) = restate_cli(&perdure, &["invocations", "describe", &sleeper]);
    assert!(
        ok && out.contains("Greeter/sleepy") && out.contains("Command: Input") && out.contains("Command: Sleep"),
        "{out}"
    );
}

#[test]
fn idempotency_keys_are_listed_and_a_long_query_is_stopped_at_the_timeout() {
    let (perdure, _v1) = Perdure::start_with(&[("PERDURE_ADMIN__QUERY_TIMEOUT", "3s")])
        .serving(TsServices::start("h2", "v1"), json!({}));
    let r = post_with(
        &format!("{}/Greeter/greet", perdure.ingress),
        "\"ik\"",
        &[("content-type", "application/json"), ("idempotency-key", "order-1")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.header("x-restate-id").unwrap().to_owned();
    let keys =
        rows(&perdure, "SELECT service_name, service_handler, idempotency_key, invocation_id FROM sys_idempotency");
    assert_eq!(
        keys,
        vec![
            json!({ "service_name": "Greeter", "service_handler": "greet", "idempotency_key": "order-1", "invocation_id": id })
        ]
    );
    let slow = query(&perdure, "SELECT COUNT(*) FROM generate_series(1, 2000000000) a");
    assert_eq!(slow.status, 408, "{}", slow.body);
    assert!(slow.body.contains("admin.query-timeout (3s)"), "{}", slow.body);
}
