//! `perdure dp`: register, list, describe, remove and prune deployments.

use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::{Value, json};

use super::Output;
use super::admin::{Admin, Failure, segment};
use super::services::{MoveChecks, percent_arg};
use super::table::{address, changes, list, pinned, table, text};

#[derive(Subcommand, Debug)]
pub enum DpCommand {
    /// Register a deployment: discover its services and check them against the latest revisions.
    #[command(alias = "register")]
    Add {
        /// http:// URL of the SDK endpoint, or a Lambda function ARN qualified by a version or alias.
        uri: String,
        /// Lambda: the IAM role perdure assumes to invoke the function.
        #[arg(long)]
        assume_role_arn: Option<String>,
        /// Overwrite a deployment registered at the same address (refused while invocations are pinned to it, unless --breaking).
        #[arg(long)]
        force: bool,
        /// Accept breaking changes (removed handlers with pending work, kind or type changes).
        #[arg(long)]
        breaking: bool,
        /// Check and report what would change, store nothing.
        #[arg(long)]
        dry_run: bool,
        /// Register and check it, but keep new invocations where they go (promote it later).
        #[arg(long)]
        no_promote: bool,
        /// A header sent with every request to the deployment, as `Name: value` (repeatable).
        #[arg(long = "header", short = 'H', value_name = "K:V")]
        headers: Vec<String>,
        /// Talk HTTP/1.1 to it (request/response) instead of HTTP/2.
        #[arg(long)]
        http1: bool,
    },
    /// List deployments with their drain status.
    #[command(alias = "ls")]
    List,
    /// A deployment's services, revisions, drain status and pinned invocations.
    #[command(alias = "get")]
    Describe {
        /// Its id (dp_…) or the URL or Lambda ARN it was registered with (as everywhere below).
        id: String,
    },
    /// Remove a deployment: only when drained unless --force.
    #[command(alias = "remove")]
    Rm {
        id: String,
        /// Remove it even though invocations are pinned to it: they end with an error.
        #[arg(long, conflicts_with = "wait")]
        force: bool,
        /// Print the drain progress until it is drained, then remove it.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits at most (e.g. 10m); default: until drained.
        #[arg(long, value_parser = humantime::parse_duration, requires = "wait")]
        timeout: Option<Duration>,
        /// How often --wait checks.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
        interval: Duration,
    },
    /// Send new invocations of every service of the deployment to it.
    Promote {
        id: String,
        #[command(flatten)]
        checks: MoveChecks,
    },
    /// Send a percentage of new invocations of every service of the deployment to it (a canary).
    Ramp {
        id: String,
        /// 0 ends the ramp, 100 promotes.
        #[arg(long, value_parser = percent_arg())]
        percent: u32,
        #[command(flatten)]
        checks: MoveChecks,
    },
    /// Retire a superseded deployment: wait until it drains, then remove it. One that is still
    /// routed to (active) is left registered, and one already gone is fine (both exit 0): what a
    /// pipeline runs for the previous version after promoting the new one.
    Retire {
        id: String,
        /// Retire every other deployment of the same Lambda function instead (the versions the
        /// given one superseded), each as above.
        #[arg(long)]
        superseded: bool,
        /// How long to wait for the drain at most (e.g. 30m); default: until drained.
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
        /// How often to check.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
        interval: Duration,
    },
    /// An emergency stop: no new attempt starts on it; its invocations wait as paused.
    Pause { id: String },
    /// Attempts start on it again; the invocations its pause held go on.
    Resume { id: String },
    /// Remove drained deployments that no service routes to, keeping the newest N of them.
    Prune {
        /// Drained deployments to keep (newest first).
        #[arg(long, default_value_t = 0)]
        keep: usize,
        /// List what would go, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(admin: &Admin, out: &Output, command: DpCommand) -> Result<(), Failure> {
    match command {
        DpCommand::Add { uri, assume_role_arn, force, breaking, dry_run, no_promote, headers, http1 } => {
            let mut additional = serde_json::Map::new();
            for h in &headers {
                let (k, v) = h
                    .split_once(':')
                    .ok_or_else(|| Failure::Other(format!("--header '{h}' is not of the form Name: value")))?;
                additional.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
            }
            let mut body = json!({
                "force": force, "breaking": breaking, "dry_run": dry_run,
                "promote": !no_promote, "additional_headers": additional,
            });
            if uri.starts_with("arn:") {
                if http1 {
                    return Err(Failure::Other(
                        "--http1 is for HTTP deployments; a Lambda function is always request/response".into(),
                    ));
                }
                body["arn"] = json!(uri);
                body["assume_role_arn"] = json!(assume_role_arn);
            } else {
                if assume_role_arn.is_some() {
                    return Err(Failure::Other(
                        "--assume-role-arn is for Lambda deployments (an arn:aws:lambda:… address)".into(),
                    ));
                }
                body["uri"] = json!(uri);
                body["use_http_11"] = json!(http1);
            }
            let answer = admin.post("/deployments", body)?;
            out.show(&answer, |a| {
                let verb = match (dry_run, no_promote) {
                    (true, _) => "Would register",
                    (false, true) => "Registered (not promoted)",
                    (false, false) => "Registered",
                };
                let mut s = format!("{verb} deployment {}\n", text(&a["id"]));
                let rows = a["services"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|svc| vec![text(&svc["name"]), text(&svc["revision"]), text(&svc["ty"])])
                    .collect();
                s.push_str(&table(&["SERVICE", "REVISION", "TYPE"], rows));
                let c = changes(&a["changes"]);
                if !c.is_empty() {
                    s.push_str("\n\nChanges:\n");
                    s.push_str(&c);
                }
                s
            });
            Ok(())
        }
        DpCommand::List => {
            let answer = admin.get("/deployments")?;
            out.show(&answer, |a| {
                let rows = a["deployments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| {
                        vec![
                            text(&d["id"]),
                            address(d),
                            format!(
                                "{}{}",
                                text(&d["drain_status"]),
                                if d["paused"] == true { ", paused" } else { "" }
                            ),
                            list(&d["latest_for"]),
                            pinned(&d["pinned_invocations"]),
                            text(&d["created_at"]),
                        ]
                    })
                    .collect();
                table(&["ID", "ADDRESS", "STATUS", "LATEST FOR", "PINNED", "CREATED"], rows)
            });
            Ok(())
        }
        DpCommand::Describe { id } => {
            let id = admin.deployment_id(&id)?;
            let answer = admin.get(&format!("/deployments/{}", segment(&id)))?;
            out.show(&answer, describe);
            Ok(())
        }
        DpCommand::Rm { id, force, wait, timeout, interval } => {
            let id = admin.deployment_id(&id)?;
            let path = format!("/deployments/{}", segment(&id));
            if wait && let Drain::Active(services) = wait_for_drain(admin, out, &path, &id, timeout, interval)? {
                return Err(Failure::Other(format!(
                    "{id} is active: new invocations of {services} go to it. Promote another deployment first \
                     (perdure services promote NAME --to ID), then wait for it to drain"
                )));
            }
            admin.delete(&format!("{path}{}", if force { "?force=true" } else { "" }))?;
            out.show(&json!({ "removed": id }), |_| {
                if force { format!("Removed deployment {id} (forced)") } else { format!("Removed deployment {id}") }
            });
            Ok(())
        }
        DpCommand::Promote { id, checks } => each_service(admin, out, &id, "promote", checks.body(json!({}))),
        DpCommand::Ramp { id, percent, checks } => {
            each_service(admin, out, &id, "ramp", checks.body(json!({ "percent": percent })))
        }
        DpCommand::Retire { id, superseded: false, timeout, interval } => retire(admin, out, &id, timeout, interval),
        DpCommand::Retire { id, superseded: true, timeout, interval } => {
            let started = Instant::now();
            for other in superseded(admin, &id)? {
                let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
                retire(admin, out, &other, left, interval)?;
            }
            Ok(())
        }
        DpCommand::Pause { id } => {
            let id = admin.deployment_id(&id)?;
            let answer = admin.post(&format!("/deployments/{}/pause", segment(&id)), json!({}))?;
            out.show(&answer, |d| format!("Paused deployment {}: no new attempt starts on it", text(&d["id"])));
            Ok(())
        }
        DpCommand::Resume { id } => {
            let id = admin.deployment_id(&id)?;
            let answer = admin.post(&format!("/deployments/{}/resume", segment(&id)), json!({}))?;
            out.show(&answer, |d| format!("Resumed deployment {}", text(&d["id"])));
            Ok(())
        }
        DpCommand::Prune { keep, dry_run } => {
            let report = admin.post("/deployments/prune", json!({ "keep": keep, "dry_run": dry_run }))?;
            out.show(&report, |r| {
                let rows: Vec<Vec<String>> = r["removed"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| vec![text(&d["id"]), text(&d["address"])])
                    .collect();
                if rows.is_empty() {
                    return "Nothing to prune".into();
                }
                let verb = if dry_run { "Would remove" } else { "Removed" };
                format!("{verb} {} drained deployments:\n{}", rows.len(), table(&["ID", "ADDRESS"], rows))
            });
            Ok(())
        }
    }
}

fn describe(d: &Value) -> String {
    let mut s = format!(
        "ID:           {}\nAddress:      {}\nStatus:       {}{}\nLatest for:   {}\nPinned:       {}\nCreated:      {}\nSDK:          {}\n",
        text(&d["id"]),
        address(d),
        text(&d["drain_status"]),
        if d["paused"] == true { " (paused)" } else { "" },
        list(&d["latest_for"]),
        pinned(&d["pinned_invocations"]),
        text(&d["created_at"]),
        text(&d["sdk_version"]),
    );
    let latest: Vec<&str> = d["latest_for"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let rows = d["services"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|svc| {
            let name = text(&svc["name"]);
            let handlers =
                svc["handlers"].as_array().into_iter().flatten().map(|h| text(&h["name"])).collect::<Vec<_>>();
            vec![
                name.clone(),
                text(&svc["revision"]),
                text(&svc["ty"]),
                handlers.join(", "),
                if latest.contains(&name.as_str()) { "yes".into() } else { "no".into() },
            ]
        })
        .collect();
    s.push('\n');
    s.push_str(&table(&["SERVICE", "REVISION", "TYPE", "HANDLERS", "ROUTED HERE"], rows));
    if let Some(versions) = d["lambda_versions"].as_array().filter(|v| !v.is_empty()) {
        let rows = versions
            .iter()
            .map(|v| {
                let check = if v["compatible"] == true { "passed" } else { "FAILED" };
                let changes = v["changes"].as_array().into_iter().flatten().map(text).collect::<Vec<_>>().join("; ");
                vec![text(&v["version"]), check.to_owned(), text(&v["pinned_invocations"]), changes]
            })
            .collect();
        s.push_str("\n\nLambda versions:\n");
        s.push_str(&table(&["VERSION", "CHECK", "PINNED", "CHANGES"], rows));
        if let Some(held) = d["held_at_version"].as_str() {
            s.push_str(&format!(
                "\n\nNew invocations are held at version {held}: the alias points at a version that failed its check. \
                 Register the alias again with --force --breaking to accept it."
            ));
        }
    }
    s
}

/// What a wait for the drain ended with.
enum Drain {
    Drained,
    /// New invocations of these services go to it: it will not drain.
    Active(String),
}

/// Polls the deployment until it is drained (or found active), printing each change of its counts.
fn wait_for_drain(
    admin: &Admin,
    out: &Output,
    path: &str,
    id: &str,
    timeout: Option<Duration>,
    interval: Duration,
) -> Result<Drain, Failure> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let d = admin.get(path)?;
        let status = text(&d["drain_status"]);
        if status == "drained" || status == "inactive" {
            if !out.json {
                println!("{id}: {status}");
            }
            return Ok(Drain::Drained);
        }
        if status == "active" {
            return Ok(Drain::Active(list(&d["latest_for"])));
        }
        let line = format!("{id}: draining, {} pinned", pinned(&d["pinned_invocations"]));
        if line != last && !out.json {
            println!("{line}");
        }
        last = line;
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            return Err(Failure::Other(format!(
                "{id} did not drain within {}: {}",
                humantime::format_duration(timeout.unwrap_or_default()),
                last
            )));
        }
        std::thread::sleep(interval);
    }
}

/// `dp retire`: wait, remove (guarded, so work pinned meanwhile makes it wait again).
fn retire(
    admin: &Admin,
    out: &Output,
    reference: &str,
    timeout: Option<Duration>,
    interval: Duration,
) -> Result<(), Failure> {
    let gone = |id: &str| {
        out.show(&json!({ "retired": id, "already_gone": true }), |_| {
            format!("{id}: not registered (already removed)")
        });
        Ok(())
    };
    let id = match admin.deployment_id(reference) {
        Err(Failure::Refused { status: 404, .. }) => return gone(reference),
        other => other?,
    };
    let path = format!("/deployments/{}", segment(&id));
    let started = Instant::now();
    loop {
        let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
        match wait_for_drain(admin, out, &path, &id, left, interval) {
            Err(Failure::Refused { status: 404, .. }) => return gone(&id),
            Err(e) => return Err(e),
            Ok(Drain::Active(services)) => {
                out.show(&json!({ "retired": null, "active": id }), |_| {
                    format!("{id} is active (new invocations of {services} go to it): left registered")
                });
                return Ok(());
            }
            Ok(Drain::Drained) => {}
        }
        match admin.delete(&path) {
            Ok(_) => {
                out.show(&json!({ "retired": id }), |_| format!("Retired deployment {id}"));
                return Ok(());
            }
            Err(Failure::Refused { status: 404, .. }) => return gone(&id),
            // Work got pinned to it after it drained: wait for that too.
            Err(Failure::Refused { status: 409, .. }) => std::thread::sleep(interval),
            Err(e) => return Err(e),
        }
    }
}

/// The other deployments of the Lambda function `reference` names (its other versions and
/// aliases), oldest first.
fn superseded(admin: &Admin, reference: &str) -> Result<Vec<String>, Failure> {
    let id = admin.deployment_id(reference)?;
    let d = admin.get(&format!("/deployments/{}", segment(&id)))?;
    let function = |arn: &str| arn.split(':').take(7).collect::<Vec<_>>().join(":");
    let Some(mine) = d["arn"].as_str().map(function) else {
        return Err(Failure::Other(format!("--superseded is for Lambda deployments; {id} is at {}", text(&d["uri"]))));
    };
    let all = admin.get("/deployments")?;
    let mut others: Vec<(String, String)> = all["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["arn"].as_str().is_some_and(|a| function(a) == mine))
        .filter_map(|o| o["id"].as_str().filter(|o| *o != id).map(|i| (text(&o["created_at"]), i.to_owned())))
        .collect();
    others.sort();
    Ok(others.into_iter().map(|(_, i)| i).collect())
}

/// `dp promote|ramp`: the same move for every service the deployment serves.
fn each_service(admin: &Admin, out: &Output, reference: &str, action: &str, mut body: Value) -> Result<(), Failure> {
    let id = admin.deployment_id(reference)?;
    let d = admin.get(&format!("/deployments/{}", segment(&id)))?;
    body["deployment"] = json!(id);
    let mut answers = Vec::new();
    for name in d["services"].as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()) {
        answers.push(admin.post(&format!("/services/{}/{action}", segment(name)), body.clone())?);
    }
    out.show(&Value::Array(answers), |all| {
        all.as_array().into_iter().flatten().map(super::services::moved_line).collect::<Vec<_>>().join("\n")
    });
    Ok(())
}
