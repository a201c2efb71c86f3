//! Nothing acknowledged is lost on `kill -9`: invocations accepted before the crash finish
//! after a restart on the same data directory, and their results can be attached.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use crate::harness::*;

#[test]
fn a_sleeping_invocation_survives_kill_9() {
    let (mut perdure, _svc) = Perdure::start().serving(TsServices::start("h2", "v1"), json!({}));

    // Accepted (202) means durable: the send is in the log.
    let r = post_json(&format!("{}/Greeter/sleepy/send", perdure.ingress), "1500");
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["invocationId"].as_str().unwrap().to_owned();
    // Also a few completed ones, whose results must survive too.
    let done: Vec<String> = (0..5)
        .map(|n| {
            let r = post_json(&format!("{}/Greeter/greet", perdure.ingress), &format!("\"n{n}\""));
            assert_eq!(r.status, 200);
            r.header("x-restate-id").unwrap().to_owned()
        })
        .collect();
    // Once the sleep is journaled the SDK waits on its timer: crash then, mid-sleep.
    let wakes_up = journaled_sleep(&perdure, &id);
    perdure.kill9();
    let killed_at = now_ms();
    assert!(killed_at < wakes_up, "killed at {killed_at}, after the sleep ended at {wakes_up}: not mid-sleep");
    perdure.restart();

    let attached = get(&format!("{}/restate/invocation/{id}/attach", perdure.ingress));
    assert_eq!(attached.status, 200, "{}", attached.body);
    let v = attached.json();
    assert_eq!(v["finished_on"], "v1");
    assert!(v["slept_ms"].as_u64().unwrap() >= 1500, "{v}");
    for (n, id) in done.iter().enumerate() {
        let out = get(&format!("{}/restate/invocation/{id}/output", perdure.ingress));
        assert_eq!(out.body, format!("\"Hello, n{n}!\""));
    }
    // The registration survived as well.
    assert_eq!(post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"again\"").body, "\"Hello, again!\"");
}

#[test]
fn a_clean_restart_keeps_everything() {
    let (mut perdure, _svc) = Perdure::start().serving(TsServices::start("h2", "v1"), json!({}));
    assert_eq!(post_json(&format!("{}/Counter/c/add", perdure.ingress), "5").body, "5");
    let status = perdure.stop();
    assert!(status.success(), "SIGTERM shuts down cleanly: {status:?}");
    assert!(perdure.data_dir().join("CURRENT").exists());
    perdure.restart();
    assert_eq!(post_json(&format!("{}/Counter/c/add", perdure.ingress), "2").body, "7");
}

#[test]
fn invocations_outlive_a_crashed_deployment() {
    // The deployment dies in the middle of an invocation and comes back on the same address:
    // the invocation is retried (with backoff) until it completes.
    let (perdure, svc) = Perdure::start_with(&[("PERDURE_RETRY_POLICY__INITIAL_INTERVAL", "100ms")])
        .serving(TsServices::start("h2", "v1"), json!({}));
    let port = svc.port;
    let r = post_json(&format!("{}/Greeter/sleepy/send", perdure.ingress), "2000");
    let id = r.json()["invocationId"].as_str().unwrap().to_owned();
    let wakes_up = journaled_sleep(&perdure, &id);
    drop(svc); // SIGKILL of the Node process mid-sleep
    let killed_at = now_ms();
    assert!(killed_at < wakes_up, "killed at {killed_at}, after the sleep ended at {wakes_up}: not mid-sleep");
    // The sleep ends while the deployment is down, and the attempts after it fail.
    eventually(std::time::Duration::from_secs(30), "the sleep to end and an attempt after it to fail", || {
        let sleep = query_rows(
            &perdure,
            &format!("SELECT completed FROM sys_journal WHERE id = '{id}' AND entry_type = 'Command: Sleep'"),
        );
        let failed = query_rows(&perdure, &format!("SELECT retry_count FROM sys_invocation WHERE id = '{id}'"));
        (sleep.first()?["completed"] == true && failed.first()?["retry_count"].as_u64()? > 0).then_some(())
    });
    assert_eq!(get(&format!("{}/restate/invocation/{id}/output", perdure.ingress)).status, 470);
    let _svc = TsServices::start_on(port, "h2", "v1");
    let attached = get(&format!("{}/restate/invocation/{id}/attach", perdure.ingress));
    assert_eq!(attached.status, 200, "{}", attached.body);
    assert!(attached.json()["slept_ms"].as_u64().unwrap() >= 2000);
}

/// SIGTERM in the middle of work, many servers at once and again and again: every one stops
/// cleanly (exit 0, no signal: nothing crashes on the way out, RocksDB is closed by its owner),
/// and what was acknowledged is there after the restart.
#[test]
fn clean_shutdowns_under_load_never_crash() {
    let svc = crate::rust_sdk::RustServices::start();
    const ROUNDS: usize = 5;
    const AT_ONCE: usize = 4;
    for round in 0..ROUNDS {
        let servers: Vec<_> = (0..AT_ONCE)
            .map(|n| {
                let url = svc.url();
                std::thread::spawn(move || {
                    let mut perdure = Perdure::start();
                    perdure.deploy(&url, json!({}));
                    let key = format!("r{round}s{n}");
                    let ingress = perdure.ingress.clone();
                    // Requests still flowing while the signal arrives.
                    let sent_so_far = Arc::new(AtomicU64::new(0));
                    let load = std::thread::spawn({
                        let sent_so_far = sent_so_far.clone();
                        move || {
                            let client = http();
                            let mut acknowledged = 0;
                            for _ in 0..200 {
                                let sent = client
                                    .post(format!("{ingress}/RustCounter/{key}/add/send"))
                                    .header("content-type", "application/json")
                                    .body("1")
                                    .send();
                                match sent {
                                    Ok(r) if r.status().as_u16() == 202 => acknowledged += 1,
                                    _ => break,
                                }
                                sent_so_far.store(acknowledged, Ordering::Relaxed);
                            }
                            acknowledged
                        }
                    });
                    eventually(std::time::Duration::from_secs(20), "the load to be under way", || {
                        (sent_so_far.load(Ordering::Relaxed) > 0).then_some(())
                    });
                    let status = perdure.stop();
                    let acknowledged = load.join().unwrap();
                    assert!(status.success(), "round {round}, server {n}: {status:?}");
                    perdure.restart();
                    let key = format!("r{round}s{n}");
                    let count = eventually(std::time::Duration::from_secs(20), "the acknowledged sends to run", || {
                        let n: u64 = get(&format!("{}/RustCounter/{key}/get", perdure.ingress)).body.parse().ok()?;
                        (n >= acknowledged).then_some(n)
                    });
                    assert!(count >= acknowledged, "{count} < {acknowledged}");
                    assert!(perdure.stop().success());
                })
            })
            .collect();
        for s in servers {
            s.join().expect("a server thread failed");
        }
    }
}

/// `DELETE /invocations/{id}` answers 202 only once the kill is durable: a crash right after
/// the answer does not bring the invocation back.
#[test]
fn an_acknowledged_delete_survives_kill_9() {
    let (mut perdure, _svc) = Perdure::start().serving(TsServices::start("h1", "v1"), json!({ "use_http_11": true }));
    let r = post_json(&format!("{}/Greeter/sleepy/send", perdure.ingress), "3600000");
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["invocationId"].as_str().unwrap().to_owned();
    let deleted = request("DELETE", &format!("{}/invocations/{id}?mode=kill", perdure.admin));
    assert_eq!(deleted.status, 202, "{}", deleted.body);
    perdure.crash_and_restart();
    let attached = get(&format!("{}/restate/invocation/{id}/attach", perdure.ingress));
    assert_ne!(attached.status, 200, "killed, not resumed: {}", attached.body);
    let rows = query_rows(&perdure, &format!("SELECT status FROM sys_invocation WHERE id = '{id}'"));
    assert_eq!(rows.first().map(|r| r["status"].clone()), Some(json!("completed")), "{rows:?}");
    let bad = request("DELETE", &format!("{}/invocations/{id}?mode=explode", perdure.admin));
    assert_eq!(bad.status, 400, "{}", bad.body);
}
