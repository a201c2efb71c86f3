//! The real `restate` CLI (1.7.12, from npm) works against perdure for what perdure serves:
//! the handshake, registering deployments, listing and describing them and their services
//! (describe reads pinned invocations through SQL).

use crate::harness::*;

#[test]
fn restate_cli_registers_and_lists_deployments() {
    let perdure = Perdure::start();
    let svc = TsServices::start("h2", "v1");

    let (ok, out) = restate_cli(&perdure, &["whoami"]);
    assert!(ok, "{out}");
    assert!(out.contains("is healthy"), "{out}");
    assert!(out.contains(&perdure.ingress), "{out}");

    let (ok, out) = restate_cli(&perdure, &["-y", "deployments", "register", &svc.url()]);
    assert!(ok, "{out}");
    assert!(out.contains("Deployment ID:") && out.contains("Greeter"), "{out}");
    let id = out.split_whitespace().find(|w| w.starts_with("dp_")).expect("a deployment id").to_owned();

    // Again: the CLI's dry run sees the same deployment and stops.
    let (ok, out) = restate_cli(&perdure, &["-y", "deployments", "register", &svc.url()]);
    assert!(ok, "{out}");
    assert!(out.contains("already exists"), "{out}");

    let (ok, out) = restate_cli(&perdure, &["deployments", "list"]);
    assert!(ok, "{out}");
    assert!(out.contains(&id), "{out}");
    let (ok, out) = restate_cli(&perdure, &["services", "list"]);
    assert!(ok, "{out}");
    assert!(out.contains("Counter") && out.contains("virtual object"), "{out}");
    let (ok, out) = restate_cli(&perdure, &["services", "describe", "Greeter"]);
    assert!(ok, "{out}");
    assert!(out.contains("greetAndCount"), "{out}");
    let (ok, out) = restate_cli(&perdure, &["services", "config", "view", "Greeter"]);
    assert!(ok, "{out}");
    assert!(out.contains("1d"), "retention shown: {out}");
    let (ok, out) = restate_cli(&perdure, &["deployments", "describe", &id]);
    // Describing also asks SQL (POST /query) for the invocations pinned to it.
    assert!(ok && out.contains(&id), "{out}");
}
