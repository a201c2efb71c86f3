//! The scan of a live table: a blocking thread reads the records (narrowed by the scope) and
//! sends record batches through a small channel as they fill, so a query over millions of
//! rows holds a couple of batches at a time, and stops reading when the query goes away.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, ReplaceChildrenOptions,
    SendableRecordBatchStream,
};

use super::{Rows, Scope, Source, catalog::TableDef};

/// Batches in flight between the reading thread and the query.
const CHANNEL_BATCHES: usize = 2;

pub(super) struct LiveScan {
    def: &'static TableDef,
    source: Source,
    scope: Arc<Scope>,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
    /// How many slices of the partition key space are read side by side (1: the whole).
    slices: usize,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl std::fmt::Debug for LiveScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveScan").field("table", &self.def.name).field("scope", &self.scope).finish()
    }
}

impl LiveScan {
    pub(super) fn new(
        def: &'static TableDef,
        source: Source,
        scope: Scope,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
        slices: usize,
    ) -> Self {
        let full = def.schema();
        let schema = match &projection {
            Some(p) => Arc::new(full.project(p).expect("DataFusion projects columns that exist")),
            None => full,
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(slices),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            def,
            source,
            scope: Arc::new(scope),
            projection,
            limit,
            slices,
            schema,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for LiveScan {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match t {
            DisplayFormatType::TreeRender => write!(f, "table={}", self.def.name),
            _ => write!(f, "LiveScan: table={}, slices={}, scope={:?}", self.def.name, self.slices, self.scope),
        }
    }
}

impl ExecutionPlan for LiveScan {
    fn name(&self) -> &'static str {
        "LiveScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(self: Arc<Self>, _: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(CHANNEL_BATCHES);
        let (def, source) = (self.def, self.source.clone());
        let scope = if self.slices > 1 {
            let mut sliced = (*self.scope).clone();
            sliced.slice = Some(crate::storage::KeySlice::nth(partition, self.slices));
            Arc::new(sliced)
        } else {
            self.scope.clone()
        };
        let wanted = self.projection.clone().unwrap_or_else(|| (0..def.columns.len()).collect());
        let reader = tokio::task::spawn_blocking(move || {
            let mut out = Rows { def, wanted, rows: Vec::new(), tx: &tx, open: true };
            let filled = (def.fill)(&source, &scope, &mut out);
            out.flush();
            if let Err(e) = filled {
                let _ = tx.blocking_send(Err(DataFusionError::Execution(format!("reading {}: {e}", def.name))));
            }
        });
        drop(reader); // it runs on by itself, until the rows are read or the query is gone
        let mut left = self.limit;
        // The reader makes only the projected columns.
        let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        // With a limit, stop reading once that many rows came.
        let stream = futures::StreamExt::take_while(stream, move |batch: &Result<RecordBatch>| {
            let go_on = left != Some(0);
            if let (Ok(b), Some(n)) = (batch, left.as_mut()) {
                *n = n.saturating_sub(b.num_rows());
            }
            futures::future::ready(go_on)
        });
        let schema = self.schema.clone();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}
