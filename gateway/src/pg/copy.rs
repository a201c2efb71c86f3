//! `COPY … TO STDOUT` on the PostgreSQL port: a query's rows as COPY data (text or CSV).

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{CopyOption, CopySource};
use datafusion_postgres::pgwire;
use pgwire::api::results::Response;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};

fn unsupported(what: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), "0A000".into(), what)))
}

/// `COPY (SELECT …) TO STDOUT` / `COPY table TO STDOUT` (what psql's `\copy … to 'file'` sends),
/// in text or CSV format (`WITH (FORMAT csv, HEADER)`), streamed batch by batch.
pub(super) async fn copy_out(
    ctx: &SessionContext,
    source: &CopySource,
    options: &[CopyOption],
) -> PgWireResult<Response> {
    use datafusion::arrow::record_batch::RecordBatch;
    use futures::StreamExt;
    use pgwire::api::results::{CopyCsvOptions, CopyEncoder, CopyResponse, CopyTextOptions};
    use pgwire::messages::copy::CopyData;

    let sql = match source {
        CopySource::Query(query) => query.to_string(),
        CopySource::Table { table_name, columns } if columns.is_empty() => format!("SELECT * FROM {table_name}"),
        CopySource::Table { table_name, columns } => {
            let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
            format!("SELECT {} FROM {table_name}", names.join(", "))
        }
    };
    let (mut csv, mut header, mut delimiter, mut null) = (false, false, None, None);
    for option in options {
        match option {
            CopyOption::Format(f) if f.value.eq_ignore_ascii_case("csv") => csv = true,
            CopyOption::Format(f) if f.value.eq_ignore_ascii_case("text") => csv = false,
            CopyOption::Header(h) => header = *h,
            CopyOption::Delimiter(d) => delimiter = Some(d.to_string()),
            CopyOption::Null(n) => null = Some(n.clone()),
            other => {
                return Err(unsupported(format!(
                    "COPY option {other} is not supported (FORMAT text|csv, HEADER, DELIMITER and NULL are)"
                )));
            }
        }
    }
    let options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx.sql_with_options(&sql, options).await.map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
    let fields = std::sync::Arc::new(datafusion_postgres::arrow_pg::datatypes::arrow_schema_to_pg_fields(
        &schema,
        &pgwire::api::portal::Format::UnifiedText,
        None,
    )?);
    let columns = fields.len();
    let mut encoder = if csv {
        let defaults = CopyCsvOptions::default();
        let o = CopyCsvOptions {
            delimiter: delimiter.as_deref().map_or(defaults.delimiter.clone(), Into::into),
            null_string: null.as_deref().map_or(defaults.null_string.clone(), Into::into),
            ..defaults
        };
        CopyEncoder::new_csv(fields.clone(), o)
    } else {
        let defaults = CopyTextOptions::default();
        let o = CopyTextOptions {
            delimiter: delimiter.as_deref().map_or(defaults.delimiter.clone(), Into::into),
            null_string: null.as_deref().map_or(defaults.null_string, Into::into),
        };
        CopyEncoder::new_text(fields.clone(), o)
    };
    let batches = df.execute_stream().await.map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    let head = (csv && header).then(|| {
        let sep = delimiter.clone().unwrap_or_else(|| ",".into());
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        Ok(CopyData::new(format!("{}\n", names.join(&sep)).into()))
    });
    let rows = batches.flat_map(move |batch: datafusion::error::Result<RecordBatch>| {
        let rows: Vec<PgWireResult<CopyData>> = match batch {
            Err(e) => vec![Err(PgWireError::ApiError(Box::new(e)))],
            Ok(batch) => (0..batch.num_rows())
                .map(|row| {
                    for (c, field) in fields.iter().enumerate() {
                        datafusion_postgres::arrow_pg::encoder::encode_value(
                            &mut encoder,
                            batch.column(c),
                            row,
                            batch.schema_ref().field(c),
                            field,
                        )?;
                    }
                    Ok(encoder.take_copy())
                })
                .collect(),
        };
        futures::stream::iter(rows)
    });
    Ok(Response::CopyOut(CopyResponse::new(0, columns, futures::stream::iter(head).chain(rows))))
}
