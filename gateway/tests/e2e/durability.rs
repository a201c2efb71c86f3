//! Nothing acknowledged is lost on `kill -9`: invocations accepted before the crash finish
//! after a restart on the same data directory, and their results can be attached.

use serde_json::json;

use crate::harness::*;

#[test]
fn a_sleeping_invocation_survives_kill_9() {
    let mut perdure = Perdure::start();
    let svc = TsServices::start("h2", "v1");
    assert_eq!(perdure.register(&svc.url(), json!({})).0, 201);

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
    // Let the sleep start (the SDK is now waiting on its timer), then crash mid-sleep.
    eventually(std::time::Duration::from_secs(10), "the attempt to start", || {
        (get(&format!("{}/restate/invocation/{id}/output", perdure.ingress)).status == 470).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    perdure.crash_and_restart();

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
    let mut perdure = Perdure::start();
    let svc = TsServices::start("h2", "v1");
    assert_eq!(perdure.register(&svc.url(), json!({})).0, 201);
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
    let perdure = Perdure::start_with(&[("PERDURE_RETRY_POLICY__INITIAL_INTERVAL", "100ms")]);
    let svc = TsServices::start("h2", "v1");
    let port = svc.port;
    assert_eq!(perdure.register(&svc.url(), json!({})).0, 201);
    let r = post_json(&format!("{}/Greeter/sleepy/send", perdure.ingress), "800");
    let id = r.json()["invocationId"].as_str().unwrap().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(svc); // SIGKILL of the Node process mid-sleep
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(get(&format!("{}/restate/invocation/{id}/output", perdure.ingress)).status, 470);
    let _svc = TsServices::start_on(port, "h2", "v1");
    let attached = get(&format!("{}/restate/invocation/{id}/attach", perdure.ingress));
    assert_eq!(attached.status, 200, "{}", attached.body);
    assert!(attached.json()["slept_ms"].as_u64().unwrap() >= 800);
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
                    assert_eq!(perdure.register(&url, json!({})).0, 201);
                    let key = format!("r{round}s{n}");
                    let ingress = perdure.ingress.clone();
                    // Requests still flowing while the signal arrives.
                    let load = std::thread::spawn(move || {
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
                        }
                        acknowledged
                    });
                    std::thread::sleep(std::time::Duration::from_millis(30));
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
    let mut perdure = Perdure::start();
    let svc = TsServices::start("h1", "v1");
    assert_eq!(perdure.register(&svc.url(), json!({ "use_http_11": true })).0, 201);
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
