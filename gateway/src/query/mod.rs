//! SQL introspection: read-only SQL (DataFusion, PostgreSQL dialect) over the tables Restate
//! 1.7 offers (`sys_deployment`, `sys_service`, `sys_invocation`, `sys_invocation_status`,
//! `sys_invocation_state`, `sys_inbox`, `sys_keyed_service_status`, `sys_journal`, `state`,
//! `sys_promise`, and perdure's `sys_idempotency`),
//! answered by `POST /query` as an Arrow IPC stream or JSON rows.
//!
//! A table's rows are read from the schema snapshot and the records when a query scans it,
//! so a query reads only the tables it names (a join reads each at its own moment). Owns: table definitions ([`tables`]), how rows
//! are built and encoded. Does not own: HTTP (`admin/`), the records (`engine/`, `storage/`).

pub mod encode;
pub mod table;
pub mod tables;

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::schema::SchemaRegistry;
use crate::storage::{Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL does not parse, names what does not exist, or is not a read.
    #[error("Datafusion error: {0}")]
    Invalid(String),
    #[error("Datafusion error: {0}")]
    Execution(String),
    #[error("the query ran longer than admin.query-timeout ({}) and was stopped", humantime::format_duration(*.0))]
    Timeout(std::time::Duration),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A query's answer: its schema and batches.
pub struct Answer {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// What the tables read: the schema registry and the records, at the moment a scan starts.
#[derive(Clone)]
struct Source {
    schema: SchemaRegistry,
    storage: Storage,
}

/// The rows of one table, read when a query scans it.
type Rows = fn(&Source) -> Result<Vec<Vec<table::Cell>>, StorageError>;

/// A table whose rows are read from the live schema and records each time a query scans it
/// (only the tables a query names are read).
struct LiveTable {
    def: &'static table::TableDef,
    rows: Rows,
    source: Source,
}

impl std::fmt::Debug for LiveTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTable").field("name", &self.def.name).finish()
    }
}

#[async_trait::async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        self.def.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let (def, rows, source) = (self.def, self.rows, self.source.clone());
        let batch = tokio::task::spawn_blocking(move || -> Result<RecordBatch, String> {
            let rows = rows(&source).map_err(|e| e.to_string())?;
            def.batch(&rows).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| DataFusionError::Execution(format!("reading {} failed: {e}", def.name)))?
        .map_err(|e| DataFusionError::Execution(format!("reading {}: {e}", def.name)))?;
        MemTable::try_new(batch.schema(), vec![vec![batch]])?.scan(state, projection, filters, limit).await
    }
}

/// The rows builder of each table.
fn rows_of(name: &str) -> Rows {
    match name {
        "sys_deployment" => |s| Ok(tables::deployment_rows(&s.schema.snapshot(), &s.storage.drain_counts()?)),
        "sys_service" => |s| Ok(tables::service_rows(&s.schema.snapshot())),
        "sys_invocation" => |s| invocations(s, |id, st| Some(tables::invocation_row(&tables::SYS_INVOCATION, id, st))),
        "sys_invocation_status" => {
            |s| invocations(s, |id, st| Some(tables::invocation_row(&tables::SYS_INVOCATION_STATUS, id, st)))
        }
        "sys_invocation_state" => |s| {
            invocations(s, |id, st| (!st.is_completed()).then(|| tables::invocation_row(&tables::SYS_INVOCATION_STATE, id, st)))
        },
        "sys_idempotency" => |s| invocations(s, tables::idempotency_row),
        "sys_inbox" => |s| {
            use crate::engine::store::Store as _;
            let mut entries = Vec::new();
            for partition in 0..s.storage.partitions() {
                s.storage.for_each_inbox_entry(partition, |obj, seq, id| entries.push((obj, seq, id)))?;
            }
            let mut out = Vec::with_capacity(entries.len());
            for (obj, seq, id) in entries {
                let inboxed_at = s.storage.invocation(&id).map_err(|e| StorageError::Log(e.0))?.and_then(|st| st.timestamps.inboxed_at);
                out.push(tables::inbox_row(&obj, seq, &id, inboxed_at));
            }
            Ok(out)
        },
        "sys_keyed_service_status" => |s| {
            let mut out = Vec::new();
            for partition in 0..s.storage.partitions() {
                s.storage.for_each_lock_holder(partition, |obj, holder| out.push(tables::lock_row(&obj, &holder)))?;
            }
            Ok(out)
        },
        "sys_journal" => |s| {
            let mut entries = Vec::new();
            for partition in 0..s.storage.partitions() {
                s.storage.for_each_journal_entry(partition, |id, index, e| entries.push((id, index, e)))?;
            }
            // One invocation's entries are adjacent (the key starts with its id).
            let mut out = Vec::with_capacity(entries.len());
            for journal in entries.chunk_by(|a, b| a.0 == b.0) {
                let arrived = tables::arrived(journal.iter().map(|(_, _, e)| e));
                out.extend(journal.iter().map(|(id, index, e)| tables::journal_row(id, *index, e, &arrived)));
            }
            Ok(out)
        },
        "state" => |s| {
            let mut out = Vec::new();
            for partition in 0..s.storage.partitions() {
                s.storage.for_each_state_entry(partition, |obj, name, value| out.push(tables::state_row(&obj, name, value)))?;
            }
            Ok(out)
        },
        "sys_promise" => |s| {
            let mut out = Vec::new();
            for partition in 0..s.storage.partitions() {
                s.storage.for_each_promise(partition, |obj, name, p| out.push(tables::promise_row(&obj, name, &p)))?;
            }
            Ok(out)
        },
        other => unreachable!("no rows builder for table {other}: every table in tables::ALL has one"),
    }
}

/// One row per invocation record that `row` keeps.
fn invocations(
    s: &Source,
    row: impl Fn(&crate::ids::InvocationId, &crate::engine::records::InvocationStatus) -> Option<Vec<table::Cell>>,
) -> Result<Vec<Vec<table::Cell>>, StorageError> {
    let mut out = Vec::new();
    for partition in 0..s.storage.partitions() {
        s.storage.for_each_invocation(partition, |id, status| out.extend(row(&id, &status)))?;
    }
    Ok(out)
}

/// Runs read-only SQL over the live tables; cheap to clone.
#[derive(Clone)]
pub struct QueryEngine {
    ctx: SessionContext,
    timeout: std::time::Duration,
}

impl QueryEngine {
    pub fn new(schema: SchemaRegistry, storage: Storage, timeout: std::time::Duration) -> Self {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("restate", "public");
        config.options_mut().sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
        let ctx = SessionContext::new_with_config(config);
        let source = Source { schema, storage };
        for def in tables::ALL.iter().copied() {
            let table = LiveTable { def, rows: rows_of(def.name), source: source.clone() };
            ctx.register_table(def.name, Arc::new(table)).expect("table names are distinct and valid");
        }
        Self { ctx, timeout }
    }

    /// Runs one read-only statement, stopped after the timeout.
    pub async fn run(&self, sql: &str) -> Result<Answer, QueryError> {
        tokio::time::timeout(self.timeout, self.run_to_end(sql)).await.map_err(|_| QueryError::Timeout(self.timeout))?
    }

    async fn run_to_end(&self, sql: &str) -> Result<Answer, QueryError> {
        let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let df = self.ctx.sql_with_options(sql, options).await.map_err(|e| QueryError::Invalid(e.to_string()))?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(|e| QueryError::Execution(e.to_string()))?;
        Ok(Answer { schema, batches })
    }
}
