//! How an answer goes on the wire: an Arrow IPC stream, or `{"rows":[…]}` in the JSON form
//! Restate's `/query` uses (NULL columns left out, timestamps as RFC 3339 with `Z`, durations
//! ISO-8601, binary as lowercase hex, lists as arrays).

use bytes::Bytes;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, LargeBinaryArray, LargeStringArray, StringArray, StringViewArray,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::{
    DataType, DurationMillisecondType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    TimestampMillisecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::{Stream, StreamExt};
use serde_json::{Map, Value};

/// One row as `{column: value, …}` (NULL columns left out).
fn json_row(batch: &RecordBatch, row: usize) -> Result<Value, ArrowError> {
    let schema = batch.schema();
    let mut object = Map::new();
    for (i, field) in schema.fields().iter().enumerate() {
        let column = batch.column(i);
        if column.is_null(row) {
            continue;
        }
        object.insert(field.name().clone(), value(column, row)?);
    }
    Ok(Value::Object(object))
}

/// A stream of answer batches, failing with an I/O error (which cuts the response short).
pub type Batches = std::pin::Pin<Box<dyn Stream<Item = Result<RecordBatch, std::io::Error>> + Send>>;

/// `{"rows":[…]}`, written batch by batch as the batches come.
pub fn json_stream(batches: Batches) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let mut first = true;
    let rows = batches.map(move |batch| {
        let batch = batch?;
        let mut out = Vec::with_capacity(batch.num_rows() * 256);
        for row in 0..batch.num_rows() {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            let row = json_row(&batch, row).map_err(std::io::Error::other)?;
            serde_json::to_writer(&mut out, &row).map_err(std::io::Error::other)?;
        }
        Ok(Bytes::from(out))
    });
    futures::stream::once(async { Ok(Bytes::from_static(b"{\"rows\":[")) })
        .chain(rows)
        .chain(futures::stream::once(async { Ok(Bytes::from_static(b"]}")) }))
}

/// An Arrow IPC stream, written batch by batch as the batches come.
pub fn arrow_ipc_stream(
    schema: SchemaRef,
    batches: Batches,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send, ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &schema)?;
    let header = Bytes::from(std::mem::take(writer.get_mut()));
    let writer = std::sync::Arc::new(std::sync::Mutex::new(Some(writer)));
    let (w1, w2) = (writer.clone(), writer);
    let body = batches.map(move |batch| {
        let batch = batch?;
        let mut guard = w1.lock().map_err(|_| std::io::Error::other("IPC writer poisoned"))?;
        let w = guard.as_mut().ok_or_else(|| std::io::Error::other("IPC stream already finished"))?;
        w.write(&batch).map_err(std::io::Error::other)?;
        Ok(Bytes::from(std::mem::take(w.get_mut())))
    });
    let end = futures::stream::once(async move {
        let mut guard = w2.lock().map_err(|_| std::io::Error::other("IPC writer poisoned"))?;
        let mut w = guard.take().ok_or_else(|| std::io::Error::other("IPC stream already finished"))?;
        w.finish().map_err(std::io::Error::other)?;
        Ok(Bytes::from(std::mem::take(w.get_mut())))
    });
    Ok(futures::stream::once(async move { Ok(header) }).chain(body).chain(end))
}

fn iso_duration(ms: i64) -> String {
    if ms % 1000 == 0 { format!("PT{}S", ms / 1000) } else { format!("PT{}.{:03}S", ms / 1000, (ms % 1000).abs()) }
}

/// One non-null cell as JSON.
fn value(column: &ArrayRef, row: usize) -> Result<Value, ArrowError> {
    Ok(match column.data_type() {
        DataType::Utf8 => {
            column.as_any().downcast_ref::<StringArray>().map(|a| a.value(row).into()).unwrap_or_default()
        }
        DataType::LargeUtf8 => {
            column.as_any().downcast_ref::<LargeStringArray>().map(|a| a.value(row).into()).unwrap_or_default()
        }
        DataType::Utf8View => {
            column.as_any().downcast_ref::<StringViewArray>().map(|a| a.value(row).into()).unwrap_or_default()
        }
        DataType::Boolean => {
            column.as_any().downcast_ref::<BooleanArray>().map(|a| a.value(row).into()).unwrap_or_default()
        }
        DataType::UInt8 => column.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => column.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => column.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => column.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Int8 => column.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => column.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => column.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => column.as_primitive::<Int64Type>().value(row).into(),
        DataType::Float32 => f64::from(column.as_primitive::<Float32Type>().value(row)).into(),
        DataType::Float64 => column.as_primitive::<Float64Type>().value(row).into(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let ms = column.as_primitive::<TimestampMillisecondType>().value(row);
            crate::durations::rfc3339_millis(ms.max(0) as u64).into()
        }
        DataType::Duration(TimeUnit::Millisecond) => {
            iso_duration(column.as_primitive::<DurationMillisecondType>().value(row)).into()
        }
        DataType::LargeBinary => column
            .as_any()
            .downcast_ref::<LargeBinaryArray>()
            .map(|a| a.value(row).iter().map(|b| format!("{b:02x}")).collect::<String>().into())
            .unwrap_or_default(),
        DataType::List(_) => {
            let list = column.as_list::<i32>().value(row);
            let mut items = Vec::with_capacity(list.len());
            for i in 0..list.len() {
                items.push(if list.is_null(i) { Value::Null } else { value(&list, i)? });
            }
            Value::Array(items)
        }
        _ => {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default())?;
            formatter.value(row).to_string().into()
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_are_iso() {
        assert_eq!(super::iso_duration(86_400_000), "PT86400S");
        assert_eq!(super::iso_duration(1_500), "PT1.500S");
    }
}
