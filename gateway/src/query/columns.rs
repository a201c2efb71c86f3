//! What a table's rows are made of: named, documented columns of a few kinds, cells filled row
//! by row, and the Arrow schema and record batches they become. The tables themselves are in
//! `catalog`.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, DurationMillisecondBuilder, LargeBinaryBuilder, LargeStringBuilder, ListBuilder,
    TimestampMillisecondBuilder, UInt32Builder, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    U32,
    U64,
    Bool,
    /// ms since the Unix epoch, shown as a UTC timestamp.
    Time,
    /// ms, shown as an ISO-8601 duration.
    Duration,
    Bytes,
    TextList,
    U32List,
}

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Text => DataType::LargeUtf8,
            Kind::U32 => DataType::UInt32,
            Kind::U64 => DataType::UInt64,
            Kind::Bool => DataType::Boolean,
            Kind::Time => DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
            Kind::Duration => DataType::Duration(TimeUnit::Millisecond),
            Kind::Bytes => DataType::LargeBinary,
            Kind::TextList => DataType::List(Arc::new(Field::new("item", DataType::LargeUtf8, true))),
            Kind::U32List => DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
        }
    }
}

/// One column: its name, kind and what it means.
#[derive(Clone)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
}

pub const fn col(name: &'static str, kind: Kind, doc: &'static str) -> Column {
    Column { name, kind, doc }
}

/// One cell; `None` is SQL NULL.
#[derive(Clone, Debug)]
pub enum Cell {
    Text(Option<String>),
    U32(Option<u32>),
    U64(Option<u64>),
    Bool(Option<bool>),
    Time(Option<u64>),
    Duration(Option<u64>),
    Bytes(Option<Vec<u8>>),
    TextList(Vec<String>),
    U32List(Vec<u32>),
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(Some(v))
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(Some(v.to_owned()))
    }
}

impl From<Option<String>> for Cell {
    fn from(v: Option<String>) -> Self {
        Cell::Text(v)
    }
}

impl From<u32> for Cell {
    fn from(v: u32) -> Self {
        Cell::U32(Some(v))
    }
}

impl From<Option<u32>> for Cell {
    fn from(v: Option<u32>) -> Self {
        Cell::U32(v)
    }
}

impl From<u64> for Cell {
    fn from(v: u64) -> Self {
        Cell::U64(Some(v))
    }
}

impl From<Option<u64>> for Cell {
    fn from(v: Option<u64>) -> Self {
        Cell::U64(v)
    }
}

impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Bool(Some(v))
    }
}

/// The Arrow schema of a table with these columns (every column nullable).
pub fn schema(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(columns.iter().map(|c| Field::new(c.name, c.kind.data_type(), true)).collect::<Vec<_>>()))
}

/// One batch of the `columns` `wanted` (indices, in the order of the batch's schema) from
/// `rows`, each with one cell per wanted column in that order. No columns at all still
/// counts the rows (what `count(*)` reads).
pub fn batch_of(columns: &[Column], wanted: &[usize], rows: &[Vec<Cell>]) -> Result<RecordBatch, ArrowError> {
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(wanted.len());
    for (at, &i) in wanted.iter().enumerate() {
        let cells = rows.iter().map(|r| &r[at]);
        arrays.push(build(&columns[i], cells)?);
    }
    let schema = Arc::new(schema(columns).project(wanted)?);
    let options = datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(schema, arrays, &options)
}

fn mismatch(column: &Column, cell: &Cell) -> ArrowError {
    ArrowError::InvalidArgumentError(format!("column {} ({:?}) got {cell:?}", column.name, column.kind))
}

fn build<'a>(column: &Column, cells: impl Iterator<Item = &'a Cell>) -> Result<ArrayRef, ArrowError> {
    macro_rules! scalar {
        ($builder:expr, $variant:ident) => {{
            let mut b = $builder;
            for cell in cells {
                match cell {
                    Cell::$variant(v) => b.append_option(v.clone()),
                    other => return Err(mismatch(column, other)),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match column.kind {
        Kind::Text => scalar!(LargeStringBuilder::new(), Text),
        Kind::U32 => scalar!(UInt32Builder::new(), U32),
        Kind::U64 => scalar!(UInt64Builder::new(), U64),
        Kind::Bool => scalar!(BooleanBuilder::new(), Bool),
        Kind::Bytes => scalar!(LargeBinaryBuilder::new(), Bytes),
        Kind::Time => {
            let mut b = TimestampMillisecondBuilder::new().with_timezone("+00:00");
            for cell in cells {
                match cell {
                    Cell::Time(v) => b.append_option(v.map(|ms| ms.min(i64::MAX as u64) as i64)),
                    other => return Err(mismatch(column, other)),
                }
            }
            Arc::new(b.finish())
        }
        Kind::Duration => {
            let mut b = DurationMillisecondBuilder::new();
            for cell in cells {
                match cell {
                    Cell::Duration(v) => b.append_option(v.map(|ms| ms.min(i64::MAX as u64) as i64)),
                    other => return Err(mismatch(column, other)),
                }
            }
            Arc::new(b.finish())
        }
        Kind::TextList => {
            let mut b = ListBuilder::new(LargeStringBuilder::new());
            for cell in cells {
                match cell {
                    Cell::TextList(items) => {
                        for item in items {
                            b.values().append_value(item);
                        }
                        b.append(true);
                    }
                    other => return Err(mismatch(column, other)),
                }
            }
            Arc::new(b.finish())
        }
        Kind::U32List => {
            let mut b = ListBuilder::new(UInt32Builder::new());
            for cell in cells {
                match cell {
                    Cell::U32List(items) => {
                        for item in items {
                            b.values().append_value(*item);
                        }
                        b.append(true);
                    }
                    other => return Err(mismatch(column, other)),
                }
            }
            Arc::new(b.finish())
        }
    })
}
