//! The `perdure` CLI beside `serve`: `dp`, `services` and `invocations`, talking to a
//! server's admin API (`--admin-url`, env `PERDURE_ADMIN_URL`, default
//! `http://127.0.0.1:9070`; `--auth-token` / `PERDURE_AUTH_TOKEN` when the server has
//! `admin.auth-tokens`). Tables for people, `--json` (the server's own answers) for
//! scripts.
//!
//! Owns: argument parsing, the HTTP calls and how answers are printed. Does not own any
//! rule: every check (compatibility, drain, removal) is the server's, so the CLI, the
//! `restate` CLI and a pipeline calling the API see the same answers.
//!
//! Exit codes: 0 done; 1 the server refused (its message is printed); 2 bad arguments;
//! 3 the admin API cannot be reached.

mod admin;
mod deployments;
mod invocations;
mod services;
mod table;

use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use admin::{Admin, Failure};

/// Where the admin API is and how to print.
#[derive(Args, Clone, Debug)]
pub struct Global {
    /// Admin API of the perdure server.
    #[arg(long, global = true, env = "PERDURE_ADMIN_URL", default_value = "http://127.0.0.1:9070")]
    pub admin_url: String,
    /// One of the server's admin.auth-tokens, sent as `Authorization: Bearer`.
    #[arg(long, global = true, env = "PERDURE_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Print the server's JSON answers instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A command that talks to a server's admin API.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Deployments: register, list, describe, remove (guarded by drain status), prune.
    #[command(alias = "deployments", alias = "deployment")]
    Dp {
        #[command(subcommand)]
        command: deployments::DpCommand,
    },
    /// Services: list, describe, hide and show, promote, roll back, ramp.
    #[command(alias = "svc", alias = "service")]
    Services {
        #[command(subcommand)]
        command: services::ServicesCommand,
    },
    /// Invocations: describe, list those pinned to a deployment, cancel, kill, pause, resume, purge.
    #[command(alias = "inv", alias = "invocation")]
    Invocations {
        #[command(subcommand)]
        command: invocations::InvocationsCommand,
    },
}

/// Runs one CLI command to completion.
pub fn run(global: Global, command: AdminCommand) -> ExitCode {
    let admin = Admin::new(&global.admin_url, global.auth_token.clone());
    let out = Output { json: global.json };
    let result = match command {
        AdminCommand::Dp { command } => deployments::run(&admin, &out, command),
        AdminCommand::Services { command } => services::run(&admin, &out, command),
        AdminCommand::Invocations { command } => invocations::run(&admin, &out, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("perdure: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// How answers are printed.
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON when asked to, else what `human` renders.
    fn show(&self, value: &serde_json::Value, human: impl FnOnce(&serde_json::Value) -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
        } else {
            let text = human(value);
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }
}
