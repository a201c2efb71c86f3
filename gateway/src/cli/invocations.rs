//! `perdure invocations`: cancel, kill, pause, resume, purge one invocation.

use clap::Subcommand;
use serde_json::json;

use super::Output;
use super::admin::{Admin, Failure, segment};

#[derive(Subcommand, Debug)]
pub enum InvocationsCommand {
    /// Cancel: the handler sees a cancellation and may compensate.
    Cancel { id: String },
    /// Kill it and the invocations it called, without telling the handler.
    Kill { id: String },
    /// Stop retrying it until resumed.
    Pause { id: String },
    /// Start its next attempt now.
    Resume { id: String },
    /// Forget a completed invocation (result and journal).
    Purge { id: String },
}

pub fn run(admin: &Admin, out: &Output, command: InvocationsCommand) -> Result<(), Failure> {
    let (action, id, done) = match &command {
        InvocationsCommand::Cancel { id } => ("cancel", id, "cancel requested"),
        InvocationsCommand::Kill { id } => ("kill", id, "killed"),
        InvocationsCommand::Pause { id } => ("pause", id, "paused"),
        InvocationsCommand::Resume { id } => ("resume", id, "resumed"),
        InvocationsCommand::Purge { id } => ("purge", id, "purged"),
    };
    admin.patch(&format!("/invocations/{}/{action}", segment(id)), None)?;
    out.show(&json!({ "invocation_id": id, "action": action }), |_| format!("{id}: {done}"));
    Ok(())
}
