//! SQL introspection: read-only SQL (DataFusion, PostgreSQL dialect) over the tables Restate
//! 1.7 offers (`sys_deployment`, `sys_service`, `sys_invocation`, `sys_invocation_status`,
//! `sys_invocation_state`, `sys_inbox`, `sys_keyed_service_status`, `sys_journal`, `state`,
//! `sys_promise`, and perdure's `sys_idempotency`),
//! answered by `POST /query` as an Arrow IPC stream or JSON rows.
//!
//! A table's rows are read from the schema snapshot and the records when a query scans it,
//! so a query reads only the tables it names (a join reads each at its own moment). Owns: the
//! tables ([`catalog`]: each one's columns, scan and row builder), their columns and cells
//! ([`columns`]), the scan ([`scan`]), how results are encoded ([`encode`]). Does not own: HTTP
//! (`admin/`), the records (`engine/`, `storage/`).

pub mod catalog;
pub mod columns;
pub mod encode;
mod entry_json;

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::engine::records::ObjectKey;
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

/// What the tables read: the schema registry and the records, at the moment a scan starts.
#[derive(Clone)]
struct Source {
    schema: SchemaRegistry,
    storage: Storage,
}

/// What a scan may narrow to, from the query's `WHERE` (`id = '…'`, or `service_name = '…'
/// AND service_key = '…'`): a point read or a key-prefix scan instead of the whole table.
/// DataFusion still applies the filters to the rows, so a scope only ever saves work.
#[derive(Default, Debug, Clone)]
struct Scope {
    invocation: Option<crate::ids::InvocationId>,
    object: Option<ObjectKey>,
    /// `pinned_deployment_id = 'dp_…' AND status != 'completed'` (what the CDK asks before
    /// pruning): the not-completed invocations pinned to it, from its index.
    pinned_open: Option<crate::ids::DeploymentId>,
    /// The query wants no rows (`id = 'not-an-id'`).
    nothing: bool,
    /// The slice of the partition key space this scan reads, when a table is read by several
    /// threads side by side (one per DataFusion partition).
    slice: Option<crate::storage::KeySlice>,
}

impl Scope {
    /// The scan reads the whole table (no point reads, no index).
    fn is_whole(&self) -> bool {
        self.invocation.is_none() && self.pinned_open.is_none() && !self.nothing
    }
}

/// Rows per record batch: a scan holds at most a couple of batches at once.
const BATCH_ROWS: usize = 4096;

/// Where a scan's rows go: batches of [`BATCH_ROWS`], handed to the query as they fill. A
/// push answers false once the query has gone (finished early, cancelled, timed out), so the
/// scan stops.
struct Rows<'a> {
    def: &'static catalog::TableDef,
    /// The columns the query reads (indices into the table's), in the batches' order.
    wanted: Vec<usize>,
    rows: Vec<Vec<columns::Cell>>,
    tx: &'a tokio::sync::mpsc::Sender<datafusion::error::Result<RecordBatch>>,
    open: bool,
}

impl Rows<'_> {
    /// A whole row (a cell per column of the table): keeps the wanted cells.
    fn push(&mut self, mut row: Vec<columns::Cell>) -> bool {
        let cells = self.wanted.iter().map(|&i| std::mem::replace(&mut row[i], columns::Cell::U32(None))).collect();
        self.push_wanted(cells)
    }

    /// A row of only the wanted cells, in order.
    fn push_wanted(&mut self, row: Vec<columns::Cell>) -> bool {
        self.rows.push(row);
        if self.rows.len() >= BATCH_ROWS {
            self.flush();
        }
        self.open
    }

    fn flush(&mut self) {
        if self.rows.is_empty() || !self.open {
            self.rows.clear();
            return;
        }
        let rows = std::mem::take(&mut self.rows);
        let batch = self
            .def
            .batch_of(&self.wanted, &rows)
            .map_err(|e| DataFusionError::Execution(format!("{}: {e}", self.def.name)));
        self.open = self.tx.blocking_send(batch).is_ok();
    }
}

/// Fills a table's rows (in `scope`) into `out`.
type Fill = fn(&Source, &Scope, &mut Rows<'_>) -> Result<(), StorageError>;

/// A table whose rows are read from the live schema and records each time a query scans it
/// (only the tables a query names are read), streamed in batches from a blocking thread.
struct LiveTable {
    def: &'static catalog::TableDef,
    source: Source,
}

impl std::fmt::Debug for LiveTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTable").field("name", &self.def.name).finish()
    }
}

impl LiveTable {
    /// `column = 'text'` (either way round) on one of the scope columns.
    fn equality<'e>(&self, filter: &'e Expr) -> Option<(&'e str, &'e str)> {
        column_text(filter, datafusion::logical_expr::Operator::Eq)
            .filter(|(column, _)| self.def.scope_columns.contains(column))
    }

    /// `status != 'completed'` on a table with a row per invocation record.
    fn not_completed(&self, filter: &Expr) -> bool {
        self.def.scope_columns.contains(&"pinned_deployment_id")
            && column_text(filter, datafusion::logical_expr::Operator::NotEq) == Some(("status", "completed"))
    }

    fn scope(&self, filters: &[Expr]) -> Scope {
        let mut scope = Scope::default();
        let (mut service, mut key, mut pinned) = (None, None, None);
        for (column, value) in filters.iter().filter_map(|f| self.equality(f)) {
            match column {
                "id" => match value.parse::<crate::ids::InvocationId>() {
                    Ok(id) if scope.invocation.is_none_or(|known| known == id) => scope.invocation = Some(id),
                    _ => scope.nothing = true,
                },
                "pinned_deployment_id" => pinned = Some(value),
                "service_name" => service = Some(value.to_owned()),
                "service_key" => key = Some(value.to_owned()),
                _ => {}
            }
        }
        if let (Some(service), Some(key)) = (service, key) {
            scope.object = Some(ObjectKey { service, key });
        }
        if let Some(d) = pinned.filter(|_| filters.iter().any(|f| self.not_completed(f))) {
            match d.parse() {
                Ok(d) => scope.pinned_open = Some(d),
                Err(_) => scope.nothing = true,
            }
        }
        scope
    }
}

/// `column <op> 'text'`, either way round: the column's name and the text.
fn column_text<'e>(filter: &'e Expr, op: datafusion::logical_expr::Operator) -> Option<(&'e str, &'e str)> {
    use datafusion::logical_expr::BinaryExpr;
    use datafusion::scalar::ScalarValue;
    let Expr::BinaryExpr(BinaryExpr { left, op: found, right }) = filter else { return None };
    if *found != op {
        return None;
    }
    let text = |e: &'e Expr| match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)),
            _,
        ) => Some(s.as_str()),
        _ => None,
    };
    match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), other) | (other, Expr::Column(c)) => Some((c.name.as_str(), text(other)?)),
        _ => None,
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

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<datafusion::logical_expr::TableProviderFilterPushDown>> {
        use datafusion::logical_expr::TableProviderFilterPushDown::{Inexact, Unsupported};
        Ok(filters
            .iter()
            .map(|f| if self.equality(f).is_some() || self.not_completed(f) { Inexact } else { Unsupported })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let scope = self.scope(filters);
        // Whole scans of the big per-invocation tables run on several threads, each over a
        // slice of the partition key space.
        let slices =
            if scope.is_whole() && self.def.sliced { state.config().target_partitions().clamp(1, 4) } else { 1 };
        Ok(Arc::new(scan::LiveScan::new(self.def, self.source.clone(), scope, projection.cloned(), limit, slices)))
    }
}

mod scan;

/// The partitions a scan in `scope` reads: the one holding its invocation or object, or all.
fn partitions(s: &Source, scope: &Scope) -> std::ops::Range<u32> {
    let one = |p: u32| p..p + 1;
    if scope.nothing {
        return 0..0;
    }
    if let Some(id) = &scope.invocation {
        return one(s.storage.partition_of(id.partition_key));
    }
    if let Some(obj) = &scope.object {
        return one(s.storage.partition_of(obj.partition_key()));
    }
    0..s.storage.partitions()
}

/// The query reads no column of a table with a row per invocation record, over all of them
/// (`SELECT count(*) FROM sys_invocation`).
fn counts_all(scope: &Scope, out: &Rows<'_>) -> bool {
    out.wanted.is_empty() && scope.is_whole()
}

/// As many empty rows as there are invocation records, without decoding any.
fn count_invocations(s: &Source, scope: &Scope, out: &mut Rows<'_>) -> Result<(), StorageError> {
    for partition in 0..s.storage.partitions() {
        for _ in 0..s.storage.count_invocations(partition, scope.slice)? {
            if !out.push_wanted(Vec::new()) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One row per invocation record (in `scope`) that `row` keeps; `row` makes only the wanted
/// cells.
fn invocations(
    s: &Source,
    scope: &Scope,
    out: &mut Rows<'_>,
    row: impl Fn(&crate::ids::InvocationId, &crate::engine::records::InvocationStatus) -> Option<Vec<columns::Cell>>,
) -> Result<(), StorageError> {
    if scope.nothing {
        return Ok(());
    }
    let point_reads = match (&scope.invocation, &scope.pinned_open) {
        (Some(id), _) => Some(vec![*id]),
        (None, Some(d)) => Some(s.storage.pinned_to(d, usize::MAX)?),
        (None, None) => None,
    };
    if let Some(ids) = point_reads {
        for id in ids {
            if let Some(status) = s.storage.invocation(&id)?
                && let Some(r) = row(&id, &status)
                && !out.push_wanted(r)
            {
                break;
            }
        }
        return Ok(());
    }
    for partition in partitions(s, scope) {
        let mut open = true;
        s.storage.for_each_invocation(partition, scope.slice, |id, status| {
            if let Some(r) = row(&id, &status) {
                open = out.push_wanted(r);
            }
            open
        })?;
        if !open {
            break;
        }
    }
    Ok(())
}

/// Drops a session's tables (and the storage handles they hold), for a session whose catalog
/// outlives it (the PostgreSQL one: `pg_catalog` refers back to its catalog).
pub fn release(ctx: &SessionContext) {
    for def in catalog::ALL.iter() {
        let _ = ctx.deregister_table(def.name);
    }
}

/// When a statement started now, allowed `limit`, must stop. The configuration keeps `limit`
/// at most [`crate::config::MAX_QUERY_TIMEOUT`], so the sum is representable; were it not, the
/// statement would stop at once rather than the server panic.
pub fn deadline_after(limit: std::time::Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(limit).unwrap_or(now)
}

/// Runs read-only SQL over the live tables; cheap to clone.
#[derive(Clone)]
pub struct QueryEngine {
    /// Made on the first query (a DataFusion session registers hundreds of functions: not
    /// worth it for a server nobody queries).
    ctx: Arc<std::sync::OnceLock<SessionContext>>,
    source: Source,
    timeout: std::time::Duration,
}

/// A session over the live tables, in catalog `restate`, schema `public`.
fn session(source: &Source) -> SessionContext {
    let mut config =
        SessionConfig::new().with_information_schema(true).with_default_catalog_and_schema("restate", "public");
    config.options_mut().sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
    let ctx = SessionContext::new_with_config(config);
    for def in catalog::ALL.iter().copied() {
        let table = LiveTable { def, source: source.clone() };
        ctx.register_table(def.name, Arc::new(table)).expect("table names are distinct and valid");
    }
    ctx
}

impl QueryEngine {
    pub fn new(schema: SchemaRegistry, storage: Storage, timeout: std::time::Duration) -> Self {
        let source = Source { schema, storage };
        Self { ctx: Arc::default(), source, timeout }
    }

    /// A session for the PostgreSQL front end: the same tables, plus the `pg_catalog` schema
    /// and functions psql and drivers ask about (`\d`, `\dt`, `version()`, …).
    pub fn pg_session(&self) -> Result<SessionContext, QueryError> {
        use datafusion_postgres::datafusion_pg_catalog::pg_catalog::{context::EmptyContextProvider, setup_pg_catalog};
        let mut ctx = session(&self.source);
        setup_pg_catalog(&ctx, "restate", EmptyContextProvider).map_err(|e| QueryError::Invalid(e.to_string()))?;
        datafusion_postgres::datafusion_pg_functions::register_all(&mut ctx);
        // What version() says to tools that parse it ("PostgreSQL <major>.<minor> …").
        let version = format!(
            "PostgreSQL 16.6 (perdure {}, DataFusion {})",
            env!("CARGO_PKG_VERSION"),
            datafusion::DATAFUSION_VERSION
        );
        ctx.register_udf(datafusion::logical_expr::create_udf(
            "version",
            vec![],
            datafusion::arrow::datatypes::DataType::Utf8,
            datafusion::logical_expr::Volatility::Immutable,
            Arc::new(move |_| Ok(datafusion::logical_expr::ColumnarValue::Scalar(Some(version.clone()).into()))),
        ));
        Ok(ctx)
    }

    /// Plans one read-only statement and starts it: its schema and its batches as they come
    /// (the caller streams them, and stops at `deadline`; see [`QueryEngine::deadline`]).
    pub async fn start(
        &self,
        sql: &str,
        deadline: tokio::time::Instant,
    ) -> Result<(SchemaRef, datafusion::execution::SendableRecordBatchStream), QueryError> {
        let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let plan = async {
            let ctx = self.ctx.get_or_init(|| session(&self.source));
            let df = ctx.sql_with_options(sql, options).await.map_err(|e| QueryError::Invalid(e.to_string()))?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let stream = df.execute_stream().await.map_err(|e| QueryError::Execution(e.to_string()))?;
            Ok::<_, QueryError>((schema, stream))
        };
        tokio::time::timeout_at(deadline, plan).await.map_err(|_| QueryError::Timeout(self.timeout))?
    }

    /// When a statement started now must stop.
    pub fn deadline(&self) -> tokio::time::Instant {
        deadline_after(self.timeout)
    }

    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
    }
}
