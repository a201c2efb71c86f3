//! Every table SQL can read, named and shaped as Restate 1.7 names them (so the `restate` CLI
//! and the CDK construct work), plus perdure's own columns, documented as such. Each table is
//! one [`TableDef`]: its columns, how a scan fills its rows, and the row builder it uses; the
//! documentation page is generated from the same definitions.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

use super::columns::{self, Cell, Column, Kind::*, col};
use super::{BATCH_ROWS, Fill, Rows, count_invocations, counts_all, invocations, partitions};
use crate::engine::records::{DrainCounts, InvocationResult, InvocationStatus, Phase, ServiceKind, Source};
use crate::ids::{DeploymentId, InvocationId};
use crate::schema::{Endpoint, Schema};

/// A table SQL can read: what it is, and how a scan reads it.
pub struct TableDef {
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: Cow<'static, [Column]>,
    /// The columns a query's `WHERE` can narrow a scan by (`id = '…'`, `pinned_deployment_id =
    /// '…'`, `service_name = '…' AND service_key = '…'`), if the table has them.
    pub(super) scope_columns: &'static [&'static str],
    /// Whether a whole scan is read by several threads side by side, each over a slice of the
    /// partition key space (the big per-invocation tables).
    pub(super) sliced: bool,
    /// Reads the table's rows (in a scope) into a scan's output.
    pub(super) fill: Fill,
}

impl TableDef {
    pub fn schema(&self) -> SchemaRef {
        columns::schema(&self.columns)
    }

    /// One batch of `rows`, each with one cell per column in order.
    pub fn batch(&self, rows: &[Vec<Cell>]) -> Result<RecordBatch, ArrowError> {
        let all: Vec<usize> = (0..self.columns.len()).collect();
        self.batch_of(&all, rows)
    }

    /// One batch of the columns `wanted` (indices, in the order of the batch's schema) from
    /// `rows`, each with one cell per wanted column in that order.
    pub fn batch_of(&self, wanted: &[usize], rows: &[Vec<Cell>]) -> Result<RecordBatch, ArrowError> {
        columns::batch_of(&self.columns, wanted, rows)
    }
}

/// The columns a scan of invocation records narrows by: one invocation, or (with `status !=
/// 'completed'`) the not-completed ones pinned to a deployment, from its index.
const BY_INVOCATION: &[&str] = &["id", "pinned_deployment_id"];
/// The columns an object table's scan narrows by: one object's entries.
const BY_OBJECT: &[&str] = &["service_name", "service_key"];

/// Every table, in the order the documentation lists them.
pub static ALL: LazyLock<[&'static TableDef; 11]> = LazyLock::new(|| {
    [
        &SYS_DEPLOYMENT,
        &SYS_SERVICE,
        &*SYS_INVOCATION,
        &SYS_INVOCATION_STATUS,
        &SYS_INVOCATION_STATE,
        &SYS_INBOX,
        &SYS_KEYED_SERVICE_STATUS,
        &SYS_JOURNAL,
        &STATE,
        &SYS_PROMISE,
        &SYS_IDEMPOTENCY,
    ]
});

pub const SYS_DEPLOYMENT: TableDef = TableDef {
    name: "sys_deployment",
    doc: "Registered deployments, with perdure's drain status.",
    columns: Cow::Borrowed(&[
        col("id", Text, "Deployment id (dp_…)."),
        col("ty", Text, "http or lambda."),
        col("endpoint", Text, "The HTTP URI (normalised, e.g. with a trailing /) or the Lambda ARN as registered."),
        col("created_at", Time, "When it was registered."),
        col("min_service_protocol_version", U32, "Lowest service protocol version it speaks."),
        col("max_service_protocol_version", U32, "Highest service protocol version it speaks."),
        col("services", TextList, "The services it carries."),
        col("drain_status", Text, "perdure: active, draining, drained or inactive (see GET /deployments)."),
        col("latest_for", TextList, "perdure: services whose new invocations go to it (latest revision or a ramp)."),
        col("pinned_invocations", U64, "perdure: not-completed invocations pinned (or sent) to it."),
        col("paused", Bool, "perdure: an emergency stop is on: no attempt starts on it."),
    ]),
    scope_columns: &[],
    sliced: false,
    fill: |s, _, out| {
        for row in deployment_rows(&s.schema.snapshot(), &s.storage.drain_counts()?) {
            out.push(row);
        }
        Ok(())
    },
};

pub fn deployment_rows(schema: &Schema, counts: &BTreeMap<DeploymentId, DrainCounts>) -> Vec<Vec<Cell>> {
    schema
        .deployments
        .values()
        .map(|d| {
            let (ty, endpoint) = match &d.endpoint {
                Endpoint::Http { uri, .. } => ("http", uri.clone()),
                Endpoint::Lambda { arn, .. } => ("lambda", arn.clone()),
            };
            let c = counts.get(&d.id).cloned().unwrap_or_default();
            vec![
                d.id.to_string().into(),
                ty.into(),
                endpoint.into(),
                Cell::Time(Some(d.created_at)),
                d.min_protocol_version.into(),
                d.max_protocol_version.into(),
                Cell::TextList(d.services.iter().map(|s| s.name.clone()).collect()),
                crate::schema::DrainStatus::of(schema, &d.id, c.total()).as_str().into(),
                Cell::TextList(schema.routed_to(&d.id)),
                c.total().into(),
                d.paused.into(),
            ]
        })
        .collect()
}

pub const SYS_SERVICE: TableDef = TableDef {
    name: "sys_service",
    doc: "The latest revision of every service: where its new invocations go.",
    columns: Cow::Borrowed(&[
        col("name", Text, "Service name."),
        col("revision", U64, "Its latest revision."),
        col("public", Bool, "Whether the ingress accepts it."),
        col("ty", Text, "service, virtual_object or workflow."),
        col("deployment_id", Text, "The deployment serving the latest revision."),
    ]),
    scope_columns: &[],
    sliced: false,
    fill: |s, _, out| {
        for row in service_rows(&s.schema.snapshot()) {
            out.push(row);
        }
        Ok(())
    },
};

pub fn service_rows(schema: &Schema) -> Vec<Vec<Cell>> {
    schema
        .services
        .values()
        .map(|s| {
            let ty = match s.ty {
                crate::protocol::manifest::ServiceType::Service => "service",
                crate::protocol::manifest::ServiceType::VirtualObject => "virtual_object",
                crate::protocol::manifest::ServiceType::Workflow => "workflow",
            };
            vec![
                s.name.clone().into(),
                u64::from(s.revision).into(),
                s.public.into(),
                ty.into(),
                s.deployment_id.to_string().into(),
            ]
        })
        .collect()
}

/// Columns of `sys_invocation_status` and (but `partition_key` and the raw `status`)
/// `sys_invocation`.
const STATUS_COLUMNS: &[Column] = &[
    col("partition_key", U64, "The partition key of the invocation."),
    col("id", Text, "Invocation id (inv_…)."),
    col("vqueue_id", Text, "Restate's virtual queue (perdure has none: NULL)."),
    col("status", Text, "inboxed, scheduled, invoked, suspended, paused or completed."),
    col("completion_result", Text, "success or failure, once completed."),
    col("completion_failure", Text, "The failure, if it completed with one."),
    col("target", Text, "Service/handler or Service/key/handler."),
    col("target_service_name", Text, "The service invoked."),
    col("target_service_key", Text, "The key, for virtual objects and workflows."),
    col("target_handler_name", Text, "The handler invoked."),
    col("target_service_ty", Text, "service, virtual_object or workflow."),
    col("scope", Text, "Restate's scope (perdure has none: NULL)."),
    col("limit_key", Text, "Restate's concurrency limit key (perdure has none: NULL)."),
    col("idempotency_key", Text, "The idempotency key it was called with."),
    col("invoked_by", Text, "ingress or service."),
    col("invoked_by_id", Text, "The calling invocation, when invoked by a service."),
    col("invoked_by_subscription_id", Text, "The subscription that invoked it (perdure has no subscriptions: NULL)."),
    col("invoked_by_service_name", Text, "The calling service."),
    col("invoked_by_target", Text, "The calling target."),
    col("restarted_from", Text, "The invocation it was restarted from (not recorded: NULL)."),
    col("pinned_deployment_id", Text, "The deployment it is pinned to (set at its first attempt)."),
    col("pinned_service_protocol_version", U32, "The protocol version of that pin."),
    col("trace_id", Text, "Trace id (32 hex digits) when traces are exported (`[tracing] endpoint`), else NULL."),
    col("journal_size", U32, "Entries in its journal."),
    col("journal_commands_size", U32, "Commands in its journal."),
    col("created_at", Time, "When it was created."),
    col(
        "created_using_restate_version",
        Text,
        "The server version that created it (perdure: NULL, it is not Restate).",
    ),
    col("modified_at", Time, "When its status last changed."),
    col("inboxed_at", Time, "When it entered its key's inbox."),
    col("scheduled_at", Time, "When it was scheduled (delayed send)."),
    col("scheduled_start_at", Time, "When a delayed invocation starts."),
    col("running_at", Time, "When it first ran."),
    col("completed_at", Time, "When it completed."),
    col("completion_retention", Duration, "How long its result is kept after completion."),
    col("journal_retention", Duration, "How long its journal is kept after completion."),
    col("suspended_waiting_for_completions", U32List, "While suspended: the completion ids it waits for."),
    col("suspended_waiting_for_signals", U32List, "While suspended: the signal indexes it waits for."),
    col(
        "suspended_waiting_future_json",
        Text,
        "While suspended: what it waits for as JSON ({\"completions\":[…],\"signals\":[…],\"named_signals\":[…]}).",
    ),
    col("pinned_service_revision", U32, "perdure: the service revision it was started on."),
    col("pinned_lambda_version", Text, "perdure: the Lambda function version it is pinned to (alias deployments)."),
    col(
        "requested_deployment_id",
        Text,
        "perdure: the deployment x-perdure-deployment sent it to, before its first attempt.",
    ),
];

pub const SYS_INVOCATION_STATUS: TableDef = TableDef {
    name: "sys_invocation_status",
    doc: "Every invocation a partition keeps (not completed, or completed within its retention).",
    columns: Cow::Borrowed(STATUS_COLUMNS),
    scope_columns: BY_INVOCATION,
    sliced: true,
    fill: |s, scope, out| {
        if counts_all(scope, out) {
            return count_invocations(s, scope, out);
        }
        let (def, wanted) = (out.def, out.wanted.clone());
        invocations(s, scope, out, |id, st| Some(invocation_row(def, &wanted, id, st)))
    },
};

const STATE_COLUMNS: &[Column] = &[
    col("partition_key", U64, "The partition key of the invocation."),
    col("id", Text, "Invocation id (inv_…)."),
    col("in_flight", Bool, "Whether an attempt is running."),
    col("retry_count", U64, "Failed attempts since its journal last grew."),
    col("last_start_at", Time, "When its last attempt started."),
    col("last_attempt_deployment_id", Text, "The deployment of its last attempt."),
    col("last_attempt_server", Text, "The SDK of its last attempt (not recorded: NULL)."),
    col("next_retry_at", Time, "When it is retried next, while backing off."),
    col("last_failure", Text, "The last failed attempt's error message."),
    col("last_failure_error_code", Text, "The last failed attempt's error code."),
    col("last_failure_related_entry_index", U64, "The journal entry the failure was about."),
    col("last_failure_related_entry_name", Text, "Its name."),
    col("last_failure_related_entry_type", Text, "Its type."),
    col("last_failure_related_command_index", U64, "The command the failure was about."),
    col("last_failure_related_command_name", Text, "Its name."),
    col("last_failure_related_command_type", Text, "Its type."),
    col("last_awaiting_on_future_json", Text, "What its last attempt awaited (not recorded: NULL)."),
];

pub const SYS_INVOCATION_STATE: TableDef = TableDef {
    name: "sys_invocation_state",
    doc: "Attempt information of invocations that are not completed.",
    columns: Cow::Borrowed(STATE_COLUMNS),
    scope_columns: &["id"],
    sliced: true,
    fill: |s, scope, out| {
        let (def, wanted) = (out.def, out.wanted.clone());
        invocations(s, scope, out, |id, st| (!st.is_completed()).then(|| invocation_row(def, &wanted, id, st)))
    },
};

/// `sys_invocation`: every `sys_invocation_status` column but `partition_key` and the raw
/// status, the attempt columns of `sys_invocation_state` but `in_flight`, and the status users
/// see (pending, scheduled, ready, running, backing-off, suspended, paused, completed).
pub static SYS_INVOCATION: LazyLock<TableDef> = LazyLock::new(|| {
    let mut columns: Vec<Column> =
        STATUS_COLUMNS.iter().filter(|c| !matches!(c.name, "partition_key" | "status")).cloned().collect();
    columns.extend(STATE_COLUMNS.iter().filter(|c| !matches!(c.name, "partition_key" | "id" | "in_flight")).cloned());
    columns.push(col(
        "status",
        Text,
        "pending, scheduled, ready, running, backing-off, suspended, paused or completed.",
    ));
    TableDef {
        name: "sys_invocation",
        doc: "Every invocation, with the status users see (Restate's view over sys_invocation_status and sys_invocation_state).",
        columns: columns.into(),
        scope_columns: BY_INVOCATION,
        sliced: true,
        fill: SYS_INVOCATION_STATUS.fill,
    }
});

fn service_ty(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::Service => "service",
        ServiceKind::VirtualObject => "virtual_object",
        ServiceKind::Workflow => "workflow",
    }
}

/// One cell of an invocation table, by column name (every invocation table's columns are
/// among these; `status` is the raw phase here, `sys_invocation` derives its own).
fn status_cell(name: &str, id: &InvocationId, s: &InvocationStatus) -> Option<Cell> {
    let t = &s.target;
    let pin = s.deployment.as_ref();
    let last = s.attempt.last_failure.as_ref();
    let caller = || match &s.source {
        Source::Ingress => None,
        Source::Service { caller, caller_target } => Some((caller, caller_target)),
    };
    let command_index = || last.and_then(|f| f.related_command_index).map(u64::from);
    let command_name = || last.and_then(|f| f.related_command_name.clone());
    let command_type = || last.and_then(|f| f.related_command_type).map(|t| format!("{t:#06x}"));
    Some(match name {
        "partition_key" => Cell::U64(Some(id.partition_key)),
        "id" => id.to_string().into(),
        "status" => s.raw_status().into(),
        "completion_result" => match &s.phase {
            Phase::Completed { result: InvocationResult::Success(_) } => "success".into(),
            Phase::Completed { result: InvocationResult::Failure { .. } } => "failure".into(),
            _ => Cell::Text(None),
        },
        "completion_failure" => match &s.phase {
            Phase::Completed { result: InvocationResult::Failure { code, message } } => {
                format!("[{code}] {message}").into()
            }
            _ => Cell::Text(None),
        },
        "target" => t.display().into(),
        "target_service_name" => t.service.clone().into(),
        "target_service_key" => t.key.clone().into(),
        "target_handler_name" => t.handler.clone().into(),
        "target_service_ty" => service_ty(t.service_kind).into(),
        "idempotency_key" => s.idempotency_key.clone().into(),
        "invoked_by" => if caller().is_some() { "service" } else { "ingress" }.into(),
        "invoked_by_id" => caller().map(|(c, _)| c.to_string()).into(),
        "invoked_by_service_name" => caller().map(|(_, t)| t.split('/').next().unwrap_or_default().to_owned()).into(),
        "invoked_by_target" => caller().map(|(_, t)| t.clone()).into(),
        "pinned_deployment_id" | "last_attempt_deployment_id" => pin.map(|p| p.deployment.to_string()).into(),
        "pinned_service_protocol_version" => pin.map(|p| p.protocol_version).into(),
        "trace_id" => s.trace.map(|t| format!("{:032x}", t.trace_id)).into(),
        "last_attempt_server"
        | "vqueue_id"
        | "scope"
        | "limit_key"
        | "invoked_by_subscription_id"
        | "restarted_from"
        | "created_using_restate_version"
        | "last_awaiting_on_future_json" => Cell::Text(None),
        "suspended_waiting_for_completions" => Cell::U32List(match &s.phase {
            Phase::Suspended { waiting } => waiting.completions.clone(),
            _ => Vec::new(),
        }),
        "suspended_waiting_for_signals" => Cell::U32List(match &s.phase {
            Phase::Suspended { waiting } => waiting.signals.clone(),
            _ => Vec::new(),
        }),
        "suspended_waiting_future_json" => match &s.phase {
            Phase::Suspended { waiting } => serde_json::json!({
                "completions": waiting.completions,
                "signals": waiting.signals,
                "named_signals": waiting.named_signals,
            })
            .to_string()
            .into(),
            _ => Cell::Text(None),
        },
        "journal_size" => s.journal_len.into(),
        "journal_commands_size" => s.commands.into(),
        "created_at" => Cell::Time(Some(s.timestamps.created_at)),
        "modified_at" => Cell::Time(Some(s.timestamps.modified_at)),
        "inboxed_at" => Cell::Time(s.timestamps.inboxed_at),
        "scheduled_at" => Cell::Time(s.timestamps.scheduled_at),
        "scheduled_start_at" => Cell::Time(match s.phase {
            Phase::Scheduled { at_ms } => Some(at_ms),
            _ => None,
        }),
        "running_at" => Cell::Time(s.timestamps.running_at),
        "completed_at" => Cell::Time(s.timestamps.completed_at),
        "completion_retention" => Cell::Duration(Some(s.retention.completion_ms)),
        "journal_retention" => Cell::Duration(Some(s.retention.journal_ms)),
        "pinned_service_revision" => pin.map(|p| p.revision).into(),
        "pinned_lambda_version" => pin.and_then(|p| p.executed_version.clone()).into(),
        "requested_deployment_id" => s.requested_deployment.map(|d| d.to_string()).into(),
        "in_flight" => s.attempt.in_flight.into(),
        "retry_count" => u64::from(s.attempt.retry_count).into(),
        "last_start_at" => Cell::Time(s.attempt.last_start_at_ms),
        "next_retry_at" => Cell::Time(s.attempt.next_retry_at_ms),
        "last_failure" => last.map(|f| f.message.clone()).into(),
        "last_failure_error_code" => last.map(|f| f.code.to_string()).into(),
        "last_failure_related_entry_index" | "last_failure_related_command_index" => command_index().into(),
        "last_failure_related_entry_name" | "last_failure_related_command_name" => command_name().into(),
        "last_failure_related_entry_type" | "last_failure_related_command_type" => command_type().into(),
        _ => return None,
    })
}

/// The cells of `table`'s columns `wanted` (indices) for one invocation (the derived
/// `status` for `sys_invocation`). Only those cells are made.
pub fn invocation_row(table: &TableDef, wanted: &[usize], id: &InvocationId, s: &InvocationStatus) -> Vec<Cell> {
    let derived = table.name == SYS_INVOCATION.name;
    wanted
        .iter()
        .map(|&i| {
            let name = table.columns[i].name;
            if derived && name == "status" {
                return s.user_status().into();
            }
            status_cell(name, id, s).unwrap_or_else(|| panic!("column {name} of {} has no cell", table.name))
        })
        .collect()
}

pub const SYS_INBOX: TableDef = TableDef {
    name: "sys_inbox",
    doc: "Invocations of virtual objects and workflows waiting for their key's lock, in order.",
    columns: Cow::Borrowed(&[
        col("partition_key", U64, "The partition key of the object."),
        col("service_name", Text, "The object's service."),
        col("service_key", Text, "The object's key."),
        col("id", Text, "The waiting invocation."),
        col("sequence_number", U64, "Its place in the inbox."),
        col("created_at", Time, "When it entered the inbox."),
    ]),
    scope_columns: BY_OBJECT,
    sliced: false,
    fill: |s, scope, out| {
        for partition in partitions(s, scope) {
            let mut entries = Vec::new();
            s.storage.for_each_inbox_entry(partition, scope.object.as_ref(), |obj, seq, id| {
                entries.push((obj, seq, id));
                entries.len() < BATCH_ROWS
            })?;
            // Inboxes are short; one partition's at a time, each waiting call's record read once.
            for (obj, seq, id) in entries {
                let inboxed_at = s.storage.invocation(&id)?.and_then(|st| st.timestamps.inboxed_at);
                if !out.push(inbox_row(&obj, seq, &id, inboxed_at)) {
                    return Ok(());
                }
            }
        }
        Ok(())
    },
};

pub fn inbox_row(
    obj: &crate::engine::records::ObjectKey,
    seq: u64,
    id: &InvocationId,
    inboxed_at: Option<u64>,
) -> Vec<Cell> {
    vec![
        obj.partition_key().into(),
        obj.service.clone().into(),
        obj.key.clone().into(),
        id.to_string().into(),
        seq.into(),
        Cell::Time(inboxed_at),
    ]
}

pub const SYS_KEYED_SERVICE_STATUS: TableDef = TableDef {
    name: "sys_keyed_service_status",
    doc: "Objects whose lock is held, and by which invocation.",
    columns: Cow::Borrowed(&[
        col("partition_key", U64, "The partition key of the object."),
        col("service_name", Text, "The object's service."),
        col("service_key", Text, "The object's key."),
        col("invocation_id", Text, "The invocation holding the lock."),
    ]),
    scope_columns: BY_OBJECT,
    sliced: false,
    fill: |s, scope, out| {
        for partition in partitions(s, scope) {
            s.storage.for_each_lock_holder(partition, scope.object.as_ref(), |obj, holder| {
                out.push(lock_row(&obj, &holder))
            })?;
        }
        Ok(())
    },
};

pub fn lock_row(obj: &crate::engine::records::ObjectKey, holder: &InvocationId) -> Vec<Cell> {
    vec![obj.partition_key().into(), obj.service.clone().into(), obj.key.clone().into(), holder.to_string().into()]
}

pub const SYS_JOURNAL: TableDef = TableDef {
    name: "sys_journal",
    doc: "The journal of every invocation that keeps one: the commands its handler ran and the notifications it got.",
    columns: Cow::Borrowed(&[
        col("partition_key", U64, "The partition key of the invocation."),
        col("id", Text, "Invocation id (inv_…)."),
        col("index", U32, "The entry's place in the journal (0 is the input)."),
        col("entry_type", Text, "Command: <name> or Notification: <name> (e.g. Command: Sleep)."),
        col("name", Text, "The name the handler gave the step (e.g. of a ctx.run), if any."),
        col(
            "completed",
            Bool,
            "Commands: whether the result they wait for is in the journal (true for those that wait for none). Notifications: true.",
        ),
        col("invoked_id", Text, "For calls and sends: the invocation they started, once known."),
        col("invoked_target", Text, "For calls and sends: Service/[key/]handler."),
        col("sleep_wakeup_at", Time, "For sleeps: when it wakes up."),
        col("promise_name", Text, "For workflow promise commands: the promise."),
        col("raw", Bytes, "The entry as the SDK sent it (protobuf)."),
        col("raw_length", U64, "Its length in bytes."),
        col("version", U32, "2: service protocol V4+ journal entries."),
        col(
            "entry_json",
            Text,
            "The entry as JSON, in Restate's shape (e.g. {\"Command\":{\"Sleep\":{\"wake_up_time\":…,\"completion_id\":1,\"name\":\"\"}}}; byte strings as arrays of numbers); NULL if it does not decode.",
        ),
        col(
            "entry_lite_json",
            Text,
            "entry_json without payloads: values, parameters, headers and names left out, results by kind (\"Success\", \"Void\").",
        ),
        col("appended_at", Time, "When it was appended."),
    ]),
    scope_columns: &["id"],
    sliced: true,
    fill: |s, scope, out| {
        for partition in partitions(s, scope) {
            // One invocation's entries are adjacent (the key starts with its id): rows are
            // made an invocation at a time, once its entries are all read.
            let mut current: Vec<(InvocationId, u32, crate::engine::records::JournalEntry)> = Vec::new();
            let mut open = true;
            let emit = |journal: &mut Vec<_>, out: &mut Rows<'_>| {
                if out.wanted.is_empty() {
                    // Counting: no cells to make.
                    let n = journal.len();
                    journal.clear();
                    return (0..n).all(|_| out.push_wanted(Vec::new()));
                }
                let arrived = arrived(journal.iter().map(|(_, _, e)| e));
                for (id, index, e) in journal.drain(..) {
                    if !out.push(journal_row(&id, index, &e, &arrived)) {
                        return false;
                    }
                }
                true
            };
            s.storage.for_each_journal_entry(partition, scope.invocation.as_ref(), scope.slice, |id, index, e| {
                if current.last().is_some_and(|(last, _, _)| *last != id) {
                    open = emit(&mut current, out);
                }
                current.push((id, index, e));
                open
            })?;
            if !open || !emit(&mut current, out) {
                return Ok(());
            }
        }
        Ok(())
    },
};

/// What one invocation's notifications say about its commands: the completion ids that
/// arrived, with the invocation id a CallInvocationId notification carried.
pub type Arrived = std::collections::HashMap<u32, Option<String>>;

/// The notifications of one invocation's journal, for [`journal_row`].
pub fn arrived<'a>(entries: impl Iterator<Item = &'a crate::engine::records::JournalEntry>) -> Arrived {
    use crate::protocol::messages::{NotificationId, NotificationMessage, NotificationResult, is_notification};
    use prost::Message as _;
    let mut out = Arrived::new();
    for e in entries.filter(|e| is_notification(e.ty)) {
        if let Ok(NotificationMessage { id: Some(NotificationId::CompletionId(c)), result }) =
            NotificationMessage::decode(e.payload.clone())
        {
            let invocation = match result {
                Some(NotificationResult::InvocationId(i)) => Some(i),
                _ => None,
            };
            out.insert(c, invocation);
        }
    }
    out
}

/// The completion id a command waits for, and the one its invocation id arrives under.
fn awaited(c: &crate::protocol::messages::JournalCommand) -> (Option<u32>, Option<u32>) {
    use crate::protocol::messages::JournalCommand::*;
    match c {
        GetLazyState(m) => (Some(m.result_completion_id), None),
        GetLazyStateKeys(m) => (Some(m.result_completion_id), None),
        GetPromise(m) => (Some(m.result_completion_id), None),
        PeekPromise(m) => (Some(m.result_completion_id), None),
        CompletePromise(m) => (Some(m.result_completion_id), None),
        Sleep(m) => (Some(m.result_completion_id), None),
        Call(m) => (Some(m.result_completion_id), Some(m.invocation_id_notification_idx)),
        OneWayCall(m) => (None, Some(m.invocation_id_notification_idx)),
        Run(m) => (Some(m.result_completion_id), None),
        AttachInvocation(m) => (Some(m.result_completion_id), None),
        GetInvocationOutput(m) => (Some(m.result_completion_id), None),
        _ => (None, None),
    }
}

/// The row of `sys_journal` for one entry; `arrived` is what its invocation's notifications say.
pub fn journal_row(
    id: &InvocationId,
    index: u32,
    entry: &crate::engine::records::JournalEntry,
    arrived: &Arrived,
) -> Vec<Cell> {
    use crate::protocol::messages::{JournalCommand, is_notification, message_name};
    let name = message_name(entry.ty);
    let entry_type = if is_notification(entry.ty) {
        format!("Notification: {}", name.trim_end_matches("Notification").trim_end_matches("Completion"))
    } else if let Some(command) = name.strip_suffix("Command") {
        format!("Command: {command}")
    } else {
        name.to_owned()
    };
    let command = JournalCommand::decode(entry.ty, entry.payload.clone()).ok();
    let step_name = command.as_ref().map(|c| c.entry_name()).filter(|n| !n.is_empty()).map(str::to_owned);
    let target = |service: &str, key: &str, handler: &str| {
        if key.is_empty() { format!("{service}/{handler}") } else { format!("{service}/{key}/{handler}") }
    };
    let (invoked_target, wakeup, promise) = match &command {
        Some(JournalCommand::Call(c)) => (Some(target(&c.service_name, &c.key, &c.handler_name)), None, None),
        Some(JournalCommand::OneWayCall(c)) => (Some(target(&c.service_name, &c.key, &c.handler_name)), None, None),
        Some(JournalCommand::Sleep(s)) => (None, Some(s.wake_up_time), None),
        Some(JournalCommand::GetPromise(p)) => (None, None, Some(p.key.clone())),
        Some(JournalCommand::PeekPromise(p)) => (None, None, Some(p.key.clone())),
        Some(JournalCommand::CompletePromise(p)) => (None, None, Some(p.key.clone())),
        _ => (None, None, None),
    };
    let (result, invocation) = command.as_ref().map(awaited).unwrap_or((None, None));
    let completed = if is_notification(entry.ty) { true } else { result.is_none_or(|c| arrived.contains_key(&c)) };
    let invoked_id: Option<String> = invocation.and_then(|c| arrived.get(&c).cloned().flatten());
    let json = super::entry_json::entry_json(entry.ty, &entry.payload, invoked_id.as_deref());
    vec![
        id.partition_key.into(),
        id.to_string().into(),
        index.into(),
        entry_type.into(),
        step_name.into(),
        completed.into(),
        invoked_id.clone().into(),
        invoked_target.into(),
        Cell::Time(wakeup),
        promise.into(),
        Cell::Bytes(Some(entry.payload.to_vec())),
        (entry.payload.len() as u64).into(),
        2u32.into(),
        json.clone().map(|(full, _)| full).into(),
        json.map(|(_, lite)| lite).into(),
        Cell::Time(Some(entry.appended_at)),
    ]
}

pub const STATE: TableDef = TableDef {
    name: "state",
    doc: "The state of every virtual object and workflow.",
    columns: Cow::Borrowed(&[
        col("partition_key", U64, "The partition key of the object."),
        col("scope", Text, "Restate's scope (perdure has none: NULL)."),
        col("service_name", Text, "The object's service."),
        col("service_key", Text, "The object's key."),
        col("key", Text, "The state entry's name."),
        col("key_length", U64, "Its length in bytes."),
        col("value_utf8", Text, "The value as UTF-8, when it is valid UTF-8."),
        col("value", Bytes, "The value."),
        col("value_length", U64, "Its length in bytes."),
    ]),
    scope_columns: BY_OBJECT,
    sliced: false,
    fill: |s, scope, out| {
        for partition in partitions(s, scope) {
            s.storage.for_each_state_entry(partition, scope.object.as_ref(), |obj, name, value| {
                out.push(state_row(&obj, name, value))
            })?;
        }
        Ok(())
    },
};

pub fn state_row(obj: &crate::engine::records::ObjectKey, name: &[u8], value: &[u8]) -> Vec<Cell> {
    vec![
        obj.partition_key().into(),
        Cell::Text(None),
        obj.service.clone().into(),
        obj.key.clone().into(),
        String::from_utf8_lossy(name).into_owned().into(),
        (name.len() as u64).into(),
        Cell::Text(std::str::from_utf8(value).ok().map(str::to_owned)),
        Cell::Bytes(Some(value.to_vec())),
        (value.len() as u64).into(),
    ]
}

pub const SYS_PROMISE: TableDef = TableDef {
    name: "sys_promise",
    doc: "Durable promises of workflows.",
    columns: Cow::Borrowed(&[
        col("partition_key", U64, "The partition key of the workflow."),
        col("scope", Text, "Restate's scope (perdure has none: NULL)."),
        col("service_name", Text, "The workflow's service."),
        col("service_key", Text, "The workflow's key."),
        col("key", Text, "The promise's name."),
        col("completed", Bool, "Whether it was resolved or rejected."),
        col("completion_success_value", Bytes, "The value it was resolved with."),
        col("completion_success_value_utf8", Text, "That value as UTF-8, when it is valid UTF-8."),
        col("completion_failure", Text, "The failure it was rejected with."),
    ]),
    scope_columns: BY_OBJECT,
    sliced: false,
    fill: |s, scope, out| {
        for partition in partitions(s, scope) {
            s.storage.for_each_promise(partition, scope.object.as_ref(), |obj, name, p| {
                out.push(promise_row(&obj, name, &p))
            })?;
        }
        Ok(())
    },
};

pub fn promise_row(
    obj: &crate::engine::records::ObjectKey,
    name: String,
    promise: &crate::engine::records::Promise,
) -> Vec<Cell> {
    let (value, failure) = match &promise.result {
        Some(InvocationResult::Success(v)) => (Some(v.to_vec()), None),
        Some(InvocationResult::Failure { code, message }) => (None, Some(format!("[{code}] {message}"))),
        None => (None, None),
    };
    let utf8 = value.as_deref().and_then(|v| std::str::from_utf8(v).ok()).map(str::to_owned);
    vec![
        obj.partition_key().into(),
        Cell::Text(None),
        obj.service.clone().into(),
        obj.key.clone().into(),
        name.into(),
        promise.result.is_some().into(),
        Cell::Bytes(value),
        Cell::Text(utf8),
        failure.into(),
    ]
}

pub const SYS_IDEMPOTENCY: TableDef = TableDef {
    name: "sys_idempotency",
    doc: "perdure (Restate removed it in 1.7): the idempotency keys whose invocations are kept, and the invocation each one maps to.",
    columns: Cow::Borrowed(&[
        col("partition_key", U64, "The partition key of the invocation."),
        col("service_name", Text, "The service called."),
        col("service_key", Text, "The key, for virtual objects and workflows."),
        col("service_handler", Text, "The handler called."),
        col("idempotency_key", Text, "The key the caller sent."),
        col("invocation_id", Text, "The invocation it maps to: a call with the same key attaches to it."),
    ]),
    scope_columns: &[],
    sliced: true,
    fill: |s, scope, out| {
        let wanted = out.wanted.clone();
        invocations(s, scope, out, |id, st| {
            idempotency_row(id, st)
                .map(|mut row| wanted.iter().map(|&i| std::mem::replace(&mut row[i], Cell::U32(None))).collect())
        })
    },
};

/// The row of `sys_idempotency` for an invocation called with an idempotency key.
pub fn idempotency_row(id: &InvocationId, s: &InvocationStatus) -> Option<Vec<Cell>> {
    let key = s.idempotency_key.clone()?;
    Some(vec![
        id.partition_key.into(),
        s.target.service.clone().into(),
        s.target.key.clone().into(),
        s.target.handler.clone().into(),
        key.into(),
        id.to_string().into(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::records::{HandlerKind, Target};

    fn status(phase: Phase, in_flight: bool, retry_count: u32) -> InvocationStatus {
        let target = Target {
            service: "Counter".into(),
            handler: "add".into(),
            key: Some("k".into()),
            service_kind: ServiceKind::VirtualObject,
            handler_kind: HandlerKind::Exclusive,
        };
        let mut s = InvocationStatus::sample(target, phase);
        s.attempt.in_flight = in_flight;
        s.attempt.retry_count = retry_count;
        s
    }

    #[test]
    fn every_column_of_every_invocation_table_has_a_cell_and_the_batch_builds() {
        let id = InvocationId::generate(7);
        let s = status(Phase::Invoked, true, 0);
        for table in [&*SYS_INVOCATION, &SYS_INVOCATION_STATUS, &SYS_INVOCATION_STATE] {
            let all: Vec<usize> = (0..table.columns.len()).collect();
            let row = invocation_row(table, &all, &id, &s);
            assert_eq!(row.len(), table.columns.len());
            let batch = table.batch(&[row]).unwrap();
            assert_eq!(batch.num_rows(), 1);
        }
        assert!(SYS_DEPLOYMENT.batch(&deployment_rows(&Schema::default(), &Default::default())).is_ok());
        let obj = crate::engine::records::ObjectKey { service: "Counter".into(), key: "k".into() };
        SYS_INBOX.batch(&[inbox_row(&obj, 1, &id, Some(5))]).unwrap();
        SYS_KEYED_SERVICE_STATUS.batch(&[lock_row(&obj, &id)]).unwrap();
        STATE.batch(&[state_row(&obj, b"count", b"5"), state_row(&obj, b"raw", &[0xff])]).unwrap();
        let resolved = crate::engine::records::Promise {
            result: Some(InvocationResult::Success("\"yes\"".into())),
            waiters: vec![],
        };
        let rejected = crate::engine::records::Promise {
            result: Some(InvocationResult::Failure { code: 500, message: "no".into() }),
            waiters: vec![],
        };
        let open = crate::engine::records::Promise::default();
        let rows: Vec<_> = [resolved, rejected, open].iter().map(|p| promise_row(&obj, "decision".into(), p)).collect();
        SYS_PROMISE.batch(&rows).unwrap();
        let input = crate::engine::records::JournalEntry {
            ty: crate::protocol::messages::ty::INPUT_COMMAND,
            payload: Default::default(),
            appended_at: 1,
        };
        let garbage =
            crate::engine::records::JournalEntry { ty: 0x0999, payload: vec![0xff, 0x01].into(), appended_at: 2 };
        let arrived = arrived([&input, &garbage].into_iter());
        let rows = vec![journal_row(&id, 0, &input, &arrived), journal_row(&id, 1, &garbage, &arrived)];
        SYS_JOURNAL.batch(&rows).unwrap();
    }

    /// Every column Restate 1.7.12 has in these tables (as its `information_schema.columns`
    /// answered) is here under the same name.
    #[test]
    fn every_restate_column_is_here() {
        let restate: &[(&str, &[&str])] = &[
            (
                "sys_deployment",
                &[
                    "id",
                    "ty",
                    "endpoint",
                    "created_at",
                    "min_service_protocol_version",
                    "max_service_protocol_version",
                    "services",
                ],
            ),
            ("sys_service", &["name", "revision", "public", "ty", "deployment_id"]),
            (
                "sys_invocation",
                &[
                    "id",
                    "vqueue_id",
                    "target",
                    "target_service_name",
                    "target_service_key",
                    "target_handler_name",
                    "target_service_ty",
                    "scope",
                    "limit_key",
                    "idempotency_key",
                    "invoked_by",
                    "invoked_by_service_name",
                    "invoked_by_id",
                    "invoked_by_subscription_id",
                    "invoked_by_target",
                    "restarted_from",
                    "pinned_deployment_id",
                    "pinned_service_protocol_version",
                    "trace_id",
                    "journal_size",
                    "journal_commands_size",
                    "created_at",
                    "created_using_restate_version",
                    "modified_at",
                    "inboxed_at",
                    "scheduled_at",
                    "scheduled_start_at",
                    "running_at",
                    "completed_at",
                    "completion_retention",
                    "journal_retention",
                    "suspended_waiting_for_completions",
                    "suspended_waiting_for_signals",
                    "suspended_waiting_future_json",
                    "retry_count",
                    "last_start_at",
                    "next_retry_at",
                    "last_attempt_deployment_id",
                    "last_attempt_server",
                    "last_failure",
                    "last_failure_error_code",
                    "last_failure_related_entry_index",
                    "last_failure_related_entry_name",
                    "last_failure_related_entry_type",
                    "last_failure_related_command_index",
                    "last_failure_related_command_name",
                    "last_failure_related_command_type",
                    "last_awaiting_on_future_json",
                    "status",
                    "completion_result",
                    "completion_failure",
                ],
            ),
            (
                "sys_invocation_status",
                &[
                    "partition_key",
                    "id",
                    "vqueue_id",
                    "status",
                    "completion_result",
                    "completion_failure",
                    "target",
                    "target_service_name",
                    "target_service_key",
                    "target_handler_name",
                    "target_service_ty",
                    "scope",
                    "limit_key",
                    "idempotency_key",
                    "invoked_by",
                    "invoked_by_id",
                    "invoked_by_subscription_id",
                    "invoked_by_service_name",
                    "invoked_by_target",
                    "restarted_from",
                    "pinned_deployment_id",
                    "pinned_service_protocol_version",
                    "trace_id",
                    "journal_size",
                    "journal_commands_size",
                    "created_at",
                    "created_using_restate_version",
                    "modified_at",
                    "inboxed_at",
                    "scheduled_at",
                    "scheduled_start_at",
                    "running_at",
                    "completed_at",
                    "completion_retention",
                    "journal_retention",
                    "suspended_waiting_for_completions",
                    "suspended_waiting_for_signals",
                    "suspended_waiting_future_json",
                ],
            ),
            (
                "sys_invocation_state",
                &[
                    "partition_key",
                    "id",
                    "in_flight",
                    "retry_count",
                    "last_start_at",
                    "last_attempt_deployment_id",
                    "last_attempt_server",
                    "next_retry_at",
                    "last_failure",
                    "last_failure_error_code",
                    "last_failure_related_command_index",
                    "last_failure_related_command_name",
                    "last_failure_related_command_type",
                    "last_failure_related_entry_index",
                    "last_failure_related_entry_name",
                    "last_failure_related_entry_type",
                    "last_awaiting_on_future_json",
                ],
            ),
            ("sys_inbox", &["partition_key", "service_name", "service_key", "id", "sequence_number", "created_at"]),
            ("sys_keyed_service_status", &["partition_key", "service_name", "service_key", "invocation_id"]),
            (
                "sys_journal",
                &[
                    "partition_key",
                    "id",
                    "index",
                    "entry_type",
                    "name",
                    "completed",
                    "invoked_id",
                    "invoked_target",
                    "sleep_wakeup_at",
                    "promise_name",
                    "raw",
                    "raw_length",
                    "version",
                    "entry_json",
                    "entry_lite_json",
                    "appended_at",
                ],
            ),
            (
                "state",
                &[
                    "partition_key",
                    "scope",
                    "service_name",
                    "service_key",
                    "key",
                    "key_length",
                    "value_utf8",
                    "value",
                    "value_length",
                ],
            ),
            (
                "sys_promise",
                &[
                    "partition_key",
                    "scope",
                    "service_name",
                    "service_key",
                    "key",
                    "completed",
                    "completion_success_value",
                    "completion_success_value_utf8",
                    "completion_failure",
                ],
            ),
        ];
        for (table, columns) in restate {
            let def = ALL.iter().find(|d| d.name == *table).unwrap_or_else(|| panic!("no table {table}"));
            for c in *columns {
                assert!(def.columns.iter().any(|d| d.name == *c), "{table} lacks Restate's column {c}");
            }
        }
    }

    /// A scan narrows by what a query's `WHERE` says of these columns: a name that is not a
    /// column of its table would never match, and the scan would always read everything.
    #[test]
    fn every_table_narrows_its_scans_by_columns_it_has() {
        for def in ALL.iter() {
            for name in def.scope_columns {
                assert!(def.columns.iter().any(|c| c.name == *name), "{} has no column {name}", def.name);
            }
        }
    }

    #[test]
    fn the_status_users_see_is_derived_like_restates() {
        let cases = [
            (status(Phase::Inboxed { seq: 1 }, false, 0), "pending", "inboxed"),
            (status(Phase::Invoked, true, 0), "running", "invoked"),
            (status(Phase::Invoked, false, 2), "backing-off", "invoked"),
            (status(Phase::Invoked, false, 0), "ready", "invoked"),
            (status(Phase::Paused, false, 0), "paused", "paused"),
        ];
        for (s, user, raw) in cases {
            assert_eq!((s.user_status(), s.raw_status()), (user, raw));
        }
    }
}

/// The documentation page of every table and column (`docs/sql-introspection.md` is this
/// text; a test keeps the two equal).
pub fn docs_markdown() -> String {
    let mut out = String::from(
        "# SQL introspection: tables and columns\n\n\
         Generated from `gateway/src/query/catalog.rs` (the definitions the server uses); do not edit by hand.\n\
         Query them with `POST /query` on the admin API (see [Ask with SQL](sql.md)). Names and types\n\
         follow Restate 1.7; columns marked *perdure* are perdure's own.\n",
    );
    for table in ALL.iter() {
        out.push_str(&format!(
            "\n## `{}`\n\n{}\n\n| column | type | meaning |\n|---|---|---|\n",
            table.name, table.doc
        ));
        for c in table.columns.iter() {
            let ty = match c.kind {
                Text => "Utf8",
                U32 => "UInt32",
                U64 => "UInt64",
                Bool => "Boolean",
                Time => "Timestamp(ms, UTC)",
                Duration => "Duration(ms)",
                Bytes => "Binary",
                TextList => "List<Utf8>",
                U32List => "List<UInt32>",
            };
            let doc = match c.doc.strip_prefix("perdure: ") {
                Some(rest) => format!("*perdure*: {rest}"),
                None => c.doc.to_owned(),
            };
            out.push_str(&format!("| `{}` | {ty} | {} |\n", c.name, doc.replace('|', "\\|")));
        }
    }
    out
}

#[cfg(test)]
mod docs {
    /// `PERDURE_WRITE_DOCS=1 cargo nextest run -p perdure sql_docs` rewrites the page.
    #[test]
    fn the_sql_docs_page_matches_the_table_definitions() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/sql-introspection.md");
        let generated = super::docs_markdown();
        if std::env::var_os("PERDURE_WRITE_DOCS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/sql-introspection.md is out of date: run PERDURE_WRITE_DOCS=1 cargo nextest run -p perdure sql_docs"
        );
    }
}
