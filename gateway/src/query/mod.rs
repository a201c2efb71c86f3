//! SQL introspection: read-only SQL (DataFusion, PostgreSQL dialect) over the tables Restate
//! 1.7 offers (`sys_deployment`, `sys_service`, `sys_invocation`, `sys_invocation_status`,
//! `sys_invocation_state`, `sys_inbox`, `sys_keyed_service_status`, `sys_journal`, `state`,
//! `sys_promise`, and perdure's `sys_idempotency`),
//! answered by `POST /query` as an Arrow IPC stream or JSON rows.
//!
//! Each query sees one consistent moment: the schema snapshot and the invocation records
//! read when it starts, as in-memory tables. Owns: table definitions ([`tables`]), how rows
//! are built and encoded. Does not own: HTTP (`admin/`), the records (`engine/`, `storage/`).

pub mod encode;
pub mod table;
pub mod tables;

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};

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

#[derive(Clone)]
pub struct QueryEngine {
    schema: SchemaRegistry,
    storage: Storage,
    timeout: std::time::Duration,
}

impl QueryEngine {
    pub fn new(schema: SchemaRegistry, storage: Storage, timeout: std::time::Duration) -> Self {
        Self { schema, storage, timeout }
    }

    /// Runs one read-only statement, stopped after the timeout.
    pub async fn run(&self, sql: &str) -> Result<Answer, QueryError> {
        tokio::time::timeout(self.timeout, self.run_to_end(sql)).await.map_err(|_| QueryError::Timeout(self.timeout))?
    }

    async fn run_to_end(&self, sql: &str) -> Result<Answer, QueryError> {
        let ctx = self.context().await?;
        let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let df = ctx.sql_with_options(sql, options).await.map_err(|e| QueryError::Invalid(e.to_string()))?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(|e| QueryError::Execution(e.to_string()))?;
        Ok(Answer { schema, batches })
    }

    /// A session holding this moment's tables.
    async fn context(&self) -> Result<SessionContext, QueryError> {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("restate", "public");
        config.options_mut().sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
        let ctx = SessionContext::new_with_config(config);
        let (storage, schema) = (self.storage.clone(), self.schema.snapshot());
        let built = tokio::task::spawn_blocking(move || -> Result<Vec<(&'static str, RecordBatch)>, QueryError> {
            let counts = storage.drain_counts()?;
            let (mut invocations, mut inbox, mut locks) = (Vec::new(), Vec::new(), Vec::new());
            let (mut state, mut promises, mut journal) = (Vec::new(), Vec::new(), Vec::new());
            for partition in 0..storage.partitions() {
                storage.for_each_invocation(partition, |id, status| invocations.push((id, status)))?;
                storage.for_each_inbox_entry(partition, |obj, seq, id| inbox.push((obj, seq, id)))?;
                storage.for_each_lock_holder(partition, |obj, holder| locks.push(tables::lock_row(&obj, &holder)))?;
                storage.for_each_state_entry(partition, |obj, name, value| state.push(tables::state_row(&obj, name, value)))?;
                storage.for_each_promise(partition, |obj, name, p| promises.push(tables::promise_row(&obj, name, &p)))?;
                storage.for_each_journal_entry(partition, |id, index, e| journal.push(tables::journal_row(&id, index, &e)))?;
            }
            let inboxed_at: std::collections::HashMap<_, _> =
                invocations.iter().map(|(id, s)| (*id, s.timestamps.inboxed_at)).collect();
            let inbox: Vec<_> = inbox
                .iter()
                .map(|(obj, seq, id)| tables::inbox_row(obj, *seq, id, inboxed_at.get(id).copied().flatten()))
                .collect();
            let arrow = |e: datafusion::arrow::error::ArrowError| QueryError::Execution(e.to_string());
            let mut out = vec![
                (tables::SYS_DEPLOYMENT.name, tables::SYS_DEPLOYMENT.batch(&tables::deployment_rows(&schema, &counts)).map_err(arrow)?),
                (tables::SYS_SERVICE.name, tables::SYS_SERVICE.batch(&tables::service_rows(&schema)).map_err(arrow)?),
            ];
            for table in [&*tables::SYS_INVOCATION, &tables::SYS_INVOCATION_STATUS] {
                let rows: Vec<_> = invocations.iter().map(|(id, s)| tables::invocation_row(table, id, s)).collect();
                out.push((table.name, table.batch(&rows).map_err(arrow)?));
            }
            let running: Vec<_> = invocations
                .iter()
                .filter(|(_, s)| !s.is_completed())
                .map(|(id, s)| tables::invocation_row(&tables::SYS_INVOCATION_STATE, id, s))
                .collect();
            out.push((tables::SYS_INVOCATION_STATE.name, tables::SYS_INVOCATION_STATE.batch(&running).map_err(arrow)?));
            out.push((tables::SYS_INBOX.name, tables::SYS_INBOX.batch(&inbox).map_err(arrow)?));
            out.push((tables::SYS_KEYED_SERVICE_STATUS.name, tables::SYS_KEYED_SERVICE_STATUS.batch(&locks).map_err(arrow)?));
            out.push((tables::STATE.name, tables::STATE.batch(&state).map_err(arrow)?));
            let keys: Vec<_> = invocations.iter().filter_map(|(id, s)| tables::idempotency_row(id, s)).collect();
            out.push((tables::SYS_IDEMPOTENCY.name, tables::SYS_IDEMPOTENCY.batch(&keys).map_err(arrow)?));
            out.push((tables::SYS_JOURNAL.name, tables::SYS_JOURNAL.batch(&journal).map_err(arrow)?));
            out.push((tables::SYS_PROMISE.name, tables::SYS_PROMISE.batch(&promises).map_err(arrow)?));
            Ok(out)
        })
        .await
        .map_err(|e| QueryError::Execution(format!("building the tables failed: {e}")))??;
        for (name, batch) in built {
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(|e| QueryError::Execution(e.to_string()))?;
            ctx.register_table(name, Arc::new(table)).map_err(|e| QueryError::Execution(e.to_string()))?;
        }
        Ok(ctx)
    }
}
