//! `perdure services`: list, describe, hide and show, promote, roll back, ramp.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::Output;
use super::admin::{Admin, Failure, segment};
use super::table::{changes, table, text};

/// The checks of every move of new invocations (promote, rollback, ramp), `services` or `dp`.
#[derive(Args, Debug)]
pub struct MoveChecks {
    /// Move them even though perdure reports the change as breaking.
    #[arg(long)]
    pub breaking: bool,
    /// Check and report, move nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl MoveChecks {
    /// The request body: these checks and `fields`.
    pub fn body(&self, mut fields: Value) -> Value {
        fields["breaking"] = json!(self.breaking);
        fields["dry_run"] = json!(self.dry_run);
        fields
    }
}

/// `--percent` of a ramp.
pub fn percent_arg() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(0..=100)
}

#[derive(Subcommand, Debug)]
pub enum ServicesCommand {
    /// Every service's latest revision: where its new invocations go.
    #[command(alias = "ls")]
    List,
    /// A service's latest revision, its handlers and any ramp.
    #[command(alias = "get")]
    Describe { name: String },
    /// Refuse the service at the ingress (calls from other services still work).
    Hide { name: String },
    /// Accept the service at the ingress again.
    Show { name: String },
    /// Send the service's new invocations to a registered deployment.
    Promote {
        name: String,
        /// Deployment id (dp_…), or the URL or Lambda ARN it was registered with.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        checks: MoveChecks,
    },
    /// Send the service's new invocations back to the deployment before (or --to one).
    Rollback {
        name: String,
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        checks: MoveChecks,
    },
    /// Send a percentage of the service's new invocations to a deployment (by key for objects).
    Ramp {
        name: String,
        #[arg(long)]
        to: String,
        /// 0 ends the ramp, 100 promotes.
        #[arg(long, value_parser = percent_arg())]
        percent: u32,
        #[command(flatten)]
        checks: MoveChecks,
    },
}

pub fn run(admin: &Admin, out: &Output, command: ServicesCommand) -> Result<(), Failure> {
    match command {
        ServicesCommand::List => {
            let answer = admin.get("/services")?;
            out.show(&answer, |a| {
                let rows = a["services"].as_array().into_iter().flatten().map(row).collect();
                table(&["NAME", "TYPE", "REVISION", "DEPLOYMENT", "PUBLIC", "RAMP"], rows)
            });
        }
        ServicesCommand::Describe { name } => {
            let answer = admin.get(&format!("/services/{}", segment(&name)))?;
            out.show(&answer, describe);
        }
        ServicesCommand::Hide { name } => visibility(admin, out, &name, false)?,
        ServicesCommand::Show { name } => visibility(admin, out, &name, true)?,
        ServicesCommand::Promote { name, to, checks } => {
            moved(admin, out, &name, "promote", checks.body(json!({ "deployment": to })))?;
        }
        ServicesCommand::Rollback { name, to, checks } => {
            moved(admin, out, &name, "rollback", checks.body(json!({ "deployment": to })))?;
        }
        ServicesCommand::Ramp { name, to, percent, checks } => {
            let body = checks.body(json!({ "deployment": to, "percent": percent }));
            moved(admin, out, &name, "ramp", body)?;
        }
    }
    Ok(())
}

fn ramp(s: &Value) -> String {
    match s.get("ramp") {
        Some(r) if !r.is_null() => format!("{}% -> {}", text(&r["percent"]), text(&r["deployment_id"])),
        _ => "-".into(),
    }
}

fn row(s: &Value) -> Vec<String> {
    vec![text(&s["name"]), text(&s["ty"]), text(&s["revision"]), text(&s["deployment_id"]), text(&s["public"]), ramp(s)]
}

fn describe(s: &Value) -> String {
    let mut out = format!(
        "Name:         {}\nType:         {}\nRevision:     {}\nDeployment:   {}\nPublic:       {}\nRamp:         {}\n\n",
        text(&s["name"]),
        text(&s["ty"]),
        text(&s["revision"]),
        text(&s["deployment_id"]),
        text(&s["public"]),
        ramp(s)
    );
    let rows = s["handlers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            vec![
                text(&h["name"]),
                text(&h["ty"]),
                text(&h["public"]),
                text(&h["input_description"]),
                text(&h["output_description"]),
            ]
        })
        .collect();
    out.push_str(&table(&["HANDLER", "KIND", "PUBLIC", "INPUT", "OUTPUT"], rows));
    out
}

fn visibility(admin: &Admin, out: &Output, name: &str, public: bool) -> Result<(), Failure> {
    let answer = admin.patch(&format!("/services/{}", segment(name)), Some(json!({ "public": public })))?;
    out.show(&answer, |s| {
        format!("{} is {} at the ingress", text(&s["name"]), if public { "public" } else { "hidden" })
    });
    Ok(())
}

fn moved(admin: &Admin, out: &Output, name: &str, action: &str, body: Value) -> Result<(), Failure> {
    let to = body["deployment"].as_str().map(|d| admin.deployment_id(d)).transpose()?;
    let mut body = body;
    if let Some(to) = to {
        body["deployment"] = json!(to);
    }
    let answer = admin.post(&format!("/services/{}/{action}", segment(name)), body)?;
    out.show(&answer, moved_line);
    Ok(())
}

/// One answer of promote, rollback or ramp: where the service's new invocations go now.
pub(super) fn moved_line(a: &Value) -> String {
    let s = &a["service"];
    let prefix = if a["dry_run"] == true { "Dry run: " } else { "" };
    let mut line = format!(
        "{prefix}{} revision {} on {}{}",
        text(&s["name"]),
        text(&s["revision"]),
        text(&s["deployment_id"]),
        match ramp(s).as_str() {
            "-" => String::new(),
            r => format!(", ramp {r}"),
        }
    );
    let c = changes(&a["changes"]);
    if !c.is_empty() {
        line.push_str("\n\nChanges:\n");
        line.push_str(&c);
    }
    line
}
