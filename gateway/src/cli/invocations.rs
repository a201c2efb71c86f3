//! `perdure invocations`: describe one, list those pinned to a deployment, and cancel, kill,
//! pause, resume or purge one.

use clap::Subcommand;
use serde_json::{Value, json};

use super::Output;
use super::admin::{Admin, Failure, segment};
use super::table::{table, text};

#[derive(Subcommand, Debug)]
pub enum InvocationsCommand {
    /// Where one invocation stands: status, pinned deployment and revision, attempts, last failure.
    #[command(alias = "get")]
    Describe { id: String },
    /// The not-completed invocations pinned to a deployment.
    #[command(alias = "ls")]
    List {
        /// Deployment id (dp_…).
        #[arg(long)]
        deployment: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Cancel: the handler sees a cancellation and may compensate.
    Cancel { id: String },
    /// Kill it and the invocations it called, without telling the handler.
    Kill { id: String },
    /// Stop retrying it until resumed.
    Pause { id: String },
    /// Start its next attempt now (--to latest|dp_…: on another deployment, replaying its journal there).
    Resume {
        id: String,
        #[arg(long)]
        to: Option<String>,
    },
    /// Forget a completed invocation (result and journal).
    Purge { id: String },
}

pub fn run(admin: &Admin, out: &Output, command: InvocationsCommand) -> Result<(), Failure> {
    let (action, id, done) = match &command {
        InvocationsCommand::Describe { id } => {
            let answer = admin.get(&format!("/invocations/{}", segment(id)))?;
            out.show(&answer, describe);
            return Ok(());
        }
        InvocationsCommand::List { deployment, limit } => {
            let answer = admin.get(&format!("/deployments/{}/invocations?limit={limit}", segment(deployment)))?;
            out.show(&answer, |a| {
                let rows = a["invocations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| {
                        vec![
                            text(&i["id"]),
                            text(&i["target"]),
                            text(&i["status"]),
                            text(&i["pinned_service_revision"]),
                            text(&i["pinned_lambda_version"]),
                            text(&i["created_at"]),
                        ]
                    })
                    .collect();
                table(&["ID", "TARGET", "STATUS", "REVISION", "LAMBDA VERSION", "CREATED"], rows)
            });
            return Ok(());
        }
        InvocationsCommand::Cancel { id } => ("cancel", id, "cancel requested"),
        InvocationsCommand::Kill { id } => ("kill", id, "killed"),
        InvocationsCommand::Pause { id } => ("pause", id, "paused"),
        InvocationsCommand::Resume { id, to: Some(to) } => {
            admin.patch(&format!("/invocations/{}/resume?deployment={}", segment(id), segment(to)), None)?;
            out.show(&json!({ "invocation_id": id, "action": "resume", "deployment": to }), |_| {
                format!("{id}: resumed on {to}")
            });
            return Ok(());
        }
        InvocationsCommand::Resume { id, to: None } => ("resume", id, "resumed"),
        InvocationsCommand::Purge { id } => ("purge", id, "purged"),
    };
    admin.patch(&format!("/invocations/{}/{action}", segment(id)), None)?;
    out.show(&json!({ "invocation_id": id, "action": action }), |_| format!("{id}: {done}"));
    Ok(())
}

fn describe(i: &Value) -> String {
    let failure = match &i["last_failure"] {
        Value::Null => "-".to_owned(),
        f => format!("{} {}", text(&f["code"]), text(&f["message"])),
    };
    let mut s = format!(
        "ID:           {}\nTarget:       {}\nStatus:       {}{}\nDeployment:   {} (revision {})\nAttempts:     {} (retries {})\nLast failure: {}\nCreated:      {}\nModified:     {}\n",
        text(&i["id"]),
        text(&i["target"]),
        text(&i["status"]),
        if i["held_by_paused_deployment"] == true { " (held: its deployment is paused)" } else { "" },
        text(&i["pinned_deployment_id"]),
        text(&i["pinned_service_revision"]),
        text(&i["attempts"]),
        text(&i["retry_count"]),
        failure,
        text(&i["created_at"]),
        text(&i["modified_at"]),
    );
    if let Some(version) = i["pinned_lambda_version"].as_str() {
        s.push_str(&format!("Lambda:       version {version} (every attempt invokes exactly it)\n"));
    }
    if let Some(result) = i.get("completion_result") {
        s.push_str(&format!("Result:       {}\n", text(result)));
    }
    s
}
