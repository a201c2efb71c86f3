//! Data directories survive upgrades. `fixtures/` keeps one data directory written by each
//! earlier storage format (with the script that made it); each must open with this build and
//! carry on: sleeping invocations finish, and state, results, idempotency keys, inboxes and
//! pending promises are all still there. Fixtures are never deleted.

use std::path::Path;

use serde_json::Value;

use crate::harness::*;

/// Unpacks a fixture into a fresh temporary directory; returns it and the data directory.
fn unpack(fixture: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let archive = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/fixtures").join(fixture);
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(tmp.path())
        .status()
        .expect("run tar");
    assert!(status.success(), "unpacking {}", archive.display());
    let data = tmp.path().join("data");
    (tmp, data)
}

fn format_of(data: &Path) -> String {
    std::fs::read_to_string(data.join("perdure-format")).unwrap_or_default()
}

/// Every fixture, oldest first: `datadir-vN.tar.gz` with its notes in `datadir-vN.json`.
fn fixtures() -> Vec<u32> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/fixtures");
    let mut formats: Vec<u32> = std::fs::read_dir(dir)
        .expect("fixtures")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("datadir-v")?.strip_suffix(".tar.gz")?.parse().ok()
        })
        .collect();
    formats.sort_unstable();
    formats
}

/// One test for all fixtures, one after the other: each registered its deployment on the
/// same fixed port.
#[test]
fn every_earlier_format_opens_and_everything_in_it_carries_on() {
    let formats = fixtures();
    assert!(formats.starts_with(&[1, 2]), "the fixtures of formats 1 and 2 are kept: {formats:?}");
    for format in formats {
        carries_on(format);
    }
}

fn carries_on(format: u32) {
    let notes = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/e2e/fixtures/datadir-v{format}.json")),
    )
    .expect("fixture notes");
    let made: Value = serde_json::from_str(&notes).expect("fixture notes are JSON");
    let id = |name: &str| made[name].as_str().expect("id in the fixture notes").to_owned();
    let (tmp, data) = unpack(&format!("datadir-v{format}.tar.gz"));
    if format == 1 {
        assert_eq!(format_of(&data), "", "format 1 had no format file");
    }
    // The deployment the fixture registered, on the address it was registered with.
    let _svc = TsServices::start_on(made["deployment_port"].as_u64().unwrap() as u16, "h2", "v1");
    let mut perdure = Perdure::start_on_data_dir(tmp, data.clone());
    let current = format!("format {}", perdure::storage::format::CURRENT);
    assert!(format_of(&data).contains(&current), "format {format} upgraded: {}", format_of(&data));
    let ingress = perdure.ingress.clone();
    let call = |path: &str, body: &str| post_json(&format!("{ingress}/{path}"), body);

    // Invocations that were suspended in a sleep (two of them only in the format 1 log,
    // replayed at the first start) finish on the deployment they were pinned to.
    let sleepy = get(&format!("{ingress}/restate/invocation/{}/attach", id("sleepy_id")));
    assert_eq!(sleepy.status, 200, "format {format}: {}", sleepy.body);
    assert_eq!(sleepy.json()["finished_on"], "v1");
    assert!(sleepy.json()["slept_ms"].as_u64().unwrap() >= 4000);
    let slept = get(&format!("{ingress}/restate/workflow/SleepWorkflow/wf-s/attach"));
    assert_eq!((slept.status, slept.body.as_str()), (200, "\"woke up (v1)\""));
    // The object that was locked by a sleeping slowAdd, with an add waiting in its inbox.
    let inboxed = get(&format!("{ingress}/restate/invocation/{}/attach", id("inboxed_add_id")));
    assert_eq!((inboxed.status, inboxed.body.as_str()), (200, "11"));
    assert_eq!(get(&format!("{ingress}/restate/invocation/{}/output", id("slow_add_id"))).body, "1");
    // Object state.
    assert_eq!(call("Counter/alice/get", "null").body, "5");
    assert_eq!(call("Counter/bob/get", "null").body, "7");
    assert_eq!(call("Counter/carol/get", "null").body, "11");
    // Completed results, by id and by idempotency key.
    assert_eq!(get(&format!("{ingress}/restate/invocation/{}/output", id("greet_plain_id"))).body, "\"Hello, plain!\"");
    let again = post_with(
        &format!("{ingress}/Greeter/greet"),
        "\"fixture\"",
        &[("content-type", "application/json"), ("idempotency-key", "fixture-greet")],
    );
    assert_eq!((again.status, again.body.as_str()), (200, "\"Hello, fixture!\""));
    assert!(again.header("idempotency-expires").is_some(), "the stored result, not a new run");
    let sent = get(&format!("{ingress}/restate/invocation/Greeter/greet/fixture-send/output"));
    assert_eq!((sent.status, sent.body.as_str()), (200, "\"Hello, later!\""));
    // A workflow waiting on its durable promise.
    assert_eq!(call("Approval/wf1/peek", "null").body, "null");
    assert_eq!(call("Approval/wf1/decide", "\"yes\"").body, "\"ok\"");
    let decided = get(&format!("{ingress}/restate/workflow/Approval/wf1/attach"));
    assert_eq!((decided.status, decided.body.as_str()), (200, "\"contract: yes\""));
    // The registration, and new work.
    assert_eq!(call("Greeter/greet", "\"new\"").body, "\"Hello, new!\"");
    let listed = get(&format!("{}/deployments", perdure.admin)).json();
    assert_eq!(listed["deployments"].as_array().map(Vec::len), Some(1), "{listed}");

    // The upgraded directory is an ordinary one from now on.
    assert!(perdure.stop().success());
    perdure.restart();
    assert_eq!(post_json(&format!("{}/Counter/carol/add", perdure.ingress), "1").body, "12");
    assert_eq!(post_json(&format!("{}/Counter/alice/get", perdure.ingress), "null").body, "5");
}

/// A data directory written by a newer perdure (a format this build does not know) is
/// refused with both versions named, and not a byte of it changes.
#[test]
fn a_data_directory_of_a_newer_format_is_refused_and_left_untouched() {
    let mut perdure = Perdure::start();
    assert!(perdure.stop().success());
    let data = perdure.data_dir().to_owned();
    let newer = "perdure data directory: do not edit\nformat 99\n";
    std::fs::write(data.join("perdure-format"), newer).unwrap();
    let snapshot = |dir: &Path| {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot(&data);
    let stderr = serve_refused(&data, &[]);
    let supported = format!("reads formats 1 to {}", perdure::storage::format::CURRENT);
    assert!(stderr.contains("storage format 99") && stderr.contains(&supported), "{stderr}");
    assert!(snapshot(&data) == before, "the directory is untouched");
}
