//! Tables over the REST API: creating one from its columns and layout, and streaming rows into
//! a staging table through `tabledata.insertAll` (requests of at most 500 rows and 5 MiB, each
//! row with an insertId), reporting the rows BigQuery refused.

use std::ops::Range;

use chrono::{SecondsFormat, Utc};
use gcp_bigquery_client::model::clustering::Clustering;
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::table::Table;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_schema::TableSchema;
use gcp_bigquery_client::model::time_partitioning::TimePartitioning;
use serde_json::{Value, json};

use netsentinel_core::{Cell, ColumnType, RefusedRow, TableDef};

use crate::BigQueryError;
use crate::client::{ApiError, Method, Reason, RestClient};

/// BigQuery's recommended maximum rows per insertAll request.
pub const MAX_ROWS_PER_REQUEST: usize = 500;
/// The largest insertAll request body sent. BigQuery refuses requests over 10 MB, and a refused
/// request fails every row in it on every retry; half that leaves room for the HTTP envelope
/// and any proxy's additions.
pub const MAX_REQUEST_BYTES: usize = 5 << 20;
/// Staging tables expire by themselves if an insert dies before dropping them.
const STAGING_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// A staging row's position among the rows offered, so the first of rows sharing a key wins.
pub const OFFSET_COLUMN: &str = "__ns_offset";

/// A table to create: its columns in GoogleSQL types and its storage layout.
pub struct TableSpec<'a> {
    pub project: &'a str,
    pub dataset: &'a str,
    pub table: &'a str,
    pub columns: Vec<(&'a str, ColumnType)>,
    pub partition_by_day: Option<&'a str>,
    pub cluster_by: &'a [&'a str],
    pub staging: bool,
}

fn field_type(column_type: ColumnType) -> FieldType {
    match column_type {
        ColumnType::Int64 => FieldType::Int64,
        ColumnType::Float64 => FieldType::Float64,
        ColumnType::Bool => FieldType::Bool,
        ColumnType::Timestamp => FieldType::Timestamp,
        ColumnType::Date => FieldType::Date,
        ColumnType::String => FieldType::String,
    }
}

pub fn table_body(spec: &TableSpec<'_>) -> Value {
    let fields = spec
        .columns
        .iter()
        .map(|(name, ty)| TableFieldSchema::new(name, field_type(*ty)))
        .collect();
    let mut table = Table::new(
        spec.project,
        spec.dataset,
        spec.table,
        TableSchema::new(fields),
    );
    if let Some(column) = spec.partition_by_day {
        table.time_partitioning = Some(TimePartitioning::per_day().field(column));
    }
    if !spec.cluster_by.is_empty() {
        table.clustering = Some(Clustering {
            fields: Some(spec.cluster_by.iter().map(|c| c.to_string()).collect()),
        });
    }
    if spec.staging {
        table.expiration_time = Some((Utc::now().timestamp_millis() + STAGING_TTL_MS).to_string());
    }
    serde_json::to_value(table).unwrap_or(Value::Null)
}

/// Creates a table; one that exists already is left as it is.
pub async fn create_table(client: &RestClient, spec: &TableSpec<'_>) -> Result<(), ApiError> {
    let path = format!("projects/{}/datasets/{}/tables", spec.project, spec.dataset);
    client
        .call_with_retry(Method::Post, &path, &[], Some(&table_body(spec)), |e| {
            e.reason == Reason::Duplicate
        })
        .await
        .map(|_| ())
}

/// A staging table's columns: the table's, then the offset.
pub fn staging_columns(def: &TableDef) -> Vec<(&'static str, ColumnType)> {
    def.columns
        .iter()
        .map(|c| (c.name, c.ty))
        .chain([(OFFSET_COLUMN, ColumnType::Int64)])
        .collect()
}

fn json_cell(cell: &Cell) -> Value {
    match cell {
        Cell::Timestamp(t) => t.to_rfc3339_opts(SecondsFormat::Micros, true).into(),
        other => other.to_json(),
    }
}

/// The rows as insertAll JSON with their offsets, each with an insertId from its key (its
/// offset where the table has none), so a retried request is not stored twice.
pub fn staging_rows(def: &TableDef, rows: &[Vec<Cell>]) -> Vec<(String, Value)> {
    let key_positions: Vec<usize> = def
        .key
        .iter()
        .filter_map(|k| def.columns.iter().position(|c| c.name == *k))
        .collect();
    rows.iter()
        .enumerate()
        .map(|(offset, row)| {
            let mut json: serde_json::Map<String, Value> = def
                .column_names()
                .zip(row)
                .map(|(name, cell)| (name.to_string(), json_cell(cell)))
                .collect();
            json.insert(OFFSET_COLUMN.to_string(), offset.into());
            let insert_id = if key_positions.is_empty() {
                offset.to_string()
            } else {
                key_positions
                    .iter()
                    .map(|&p| row.get(p).map(ToString::to_string).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\u{1f}")
            };
            (insert_id, Value::Object(json))
        })
        .collect()
}

/// The `insertAll` request for some rows, each with its insertId. Invalid rows are skipped
/// (and reported) instead of failing the whole request.
pub fn insert_all_body(rows: &[(String, Value)]) -> Value {
    json!({
        "skipInvalidRows": true,
        "rows": rows.iter().map(request_row).collect::<Vec<_>>(),
    })
}

fn request_row((insert_id, row): &(String, Value)) -> Value {
    json!({ "insertId": insert_id, "json": row })
}

/// How rows are divided into insertAll requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    pub max_rows: usize,
    pub max_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_rows: MAX_ROWS_PER_REQUEST,
            max_bytes: MAX_REQUEST_BYTES,
        }
    }
}

/// The requests that carry some rows: consecutive runs within the limits, and the rows too
/// large for any request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RequestPlan {
    pub requests: Vec<Range<usize>>,
    /// Refused without sending: a request holding one would fail whole, on every retry.
    pub oversized: Vec<(usize, usize)>,
}

impl RequestPlan {
    pub fn new(rows: &[(String, Value)], limits: RequestLimits) -> Self {
        let envelope = insert_all_body(&[]).to_string().len();
        let mut plan = RequestPlan::default();
        let mut current = 0..0;
        let mut current_bytes = envelope;
        for (index, row) in rows.iter().enumerate() {
            let entry = request_row(row).to_string().len();
            if envelope + entry > limits.max_bytes {
                plan.oversized.push((index, entry));
                plan.close(&mut current, index + 1);
                current_bytes = envelope;
                continue;
            }
            let comma = usize::from(!current.is_empty());
            if current.len() == limits.max_rows || current_bytes + comma + entry > limits.max_bytes
            {
                plan.close(&mut current, index);
                current_bytes = envelope;
            }
            current_bytes += usize::from(!current.is_empty()) + entry;
            current.end = index + 1;
        }
        plan.close(&mut current, rows.len());
        plan
    }

    /// Ends the request being filled, if it holds rows; the next starts at `next`.
    fn close(&mut self, current: &mut Range<usize>, next: usize) {
        let closed = std::mem::replace(current, next..next);
        if !closed.is_empty() {
            self.requests.push(closed);
        }
    }

    fn oversized_refusals(&self, max_bytes: usize) -> Vec<RefusedRow> {
        self.oversized
            .iter()
            .map(|&(index, bytes)| RefusedRow {
                index,
                reason: format!(
                    "the row is {bytes} bytes as JSON, more than one insertAll request may carry ({max_bytes})"
                ),
            })
            .collect()
    }
}

/// The rows an `insertAll` answer refused, offset by the request's first row.
pub fn row_errors(response: &Value, offset: usize) -> Vec<RefusedRow> {
    response
        .get("insertErrors")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|entry| {
            let index = entry.get("index")?.as_u64()? as usize;
            let first = entry
                .get("errors")
                .and_then(|e| e.get(0))
                .cloned()
                .unwrap_or(Value::Null);
            let error = ApiError::from_error_proto(&first);
            Some(RefusedRow {
                index: offset + index,
                reason: format!(
                    "BigQuery refused the row ({}): {}",
                    error.reason, error.message
                ),
            })
        })
        .collect()
}

/// Streams rows into a table in requests within [`RequestLimits::default`]; transient failures
/// are retried with the same insertIds. Returns the rows BigQuery refused, and those too large
/// to send.
pub async fn insert_rows(
    client: &RestClient,
    table: &TableSpec<'_>,
    rows: &[(String, Value)],
) -> Result<Vec<RefusedRow>, BigQueryError> {
    let (project, dataset, table) = (table.project, table.dataset, table.table);
    let path = format!("projects/{project}/datasets/{dataset}/tables/{table}/insertAll");
    let limits = RequestLimits::default();
    let plan = RequestPlan::new(rows, limits);
    let mut refused = plan.oversized_refusals(limits.max_bytes);
    for request in plan.requests {
        let body = insert_all_body(&rows[request.clone()]);
        let response = client
            .call_with_retry(Method::Post, &path, &[], Some(&body), |_| false)
            .await
            .map_err(|source| BigQueryError::Api {
                operation: format!("insertAll into {dataset}.{table}"),
                source,
            })?;
        refused.extend(row_errors(&response, request.start));
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_requests_carry_insert_ids_and_skip_invalid_rows() {
        let rows = vec![
            ("id1".to_string(), json!({"a": 1})),
            ("id2".to_string(), json!({"a": 2})),
        ];
        let body = insert_all_body(&rows);
        assert_eq!(body["skipInvalidRows"], true);
        assert_eq!(body["rows"][1]["insertId"], "id2");
        assert_eq!(body["rows"][1]["json"]["a"], 2);
    }

    fn rows_of(sizes: &[usize]) -> Vec<(String, Value)> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| (i.to_string(), json!({ "payload": "x".repeat(size) })))
            .collect()
    }

    fn body_bytes(rows: &[(String, Value)]) -> usize {
        insert_all_body(rows).to_string().len()
    }

    #[test]
    fn requests_are_split_by_bytes_as_well_as_rows() {
        let limits = RequestLimits {
            max_rows: 4,
            max_bytes: 1000,
        };
        // Small rows fill requests of four; rows of ~300 bytes fill requests of three.
        let rows = rows_of(&[10, 10, 10, 10, 10, 300, 300, 300, 300, 10]);
        let plan = RequestPlan::new(&rows, limits);
        assert_eq!(plan.requests, [0..4, 4..7, 7..10]);
        assert!(plan.oversized.is_empty());
        for request in &plan.requests {
            let bytes = body_bytes(&rows[request.clone()]);
            assert!(bytes <= limits.max_bytes, "{request:?}: {bytes} bytes");
        }
        // Each request is as full as the limits allow: one row more would break one.
        assert!(body_bytes(&rows[4..8]) > limits.max_bytes);
    }

    #[test]
    fn the_byte_estimate_is_the_body_sent() {
        let rows = rows_of(&[5, 50, 500]);
        let plan = RequestPlan::new(
            &rows,
            RequestLimits {
                max_rows: 500,
                max_bytes: body_bytes(&rows),
            },
        );
        assert_eq!(plan.requests, vec![0..3], "exactly at the limit fits");
        let plan = RequestPlan::new(
            &rows,
            RequestLimits {
                max_rows: 500,
                max_bytes: body_bytes(&rows) - 1,
            },
        );
        assert_eq!(plan.requests, [0..2, 2..3], "one byte less does not");
    }

    #[test]
    fn a_row_too_large_for_any_request_is_refused_and_its_neighbours_are_sent() {
        let limits = RequestLimits {
            max_rows: 500,
            max_bytes: 1000,
        };
        let rows = rows_of(&[10, 10, 5000, 10]);
        let plan = RequestPlan::new(&rows, limits);
        assert_eq!(plan.requests, [0..2, 3..4]);
        assert_eq!(plan.oversized.len(), 1);
        let refused = plan.oversized_refusals(limits.max_bytes);
        assert_eq!(refused[0].index, 2);
        assert!(
            refused[0].reason.contains("(1000)"),
            "{}",
            refused[0].reason
        );
    }

    #[test]
    fn default_requests_stay_well_under_bigquerys_10_mb() {
        // 500 rows of 20 KB would be a 10 MB request.
        let rows = rows_of(&[20_000; 500]);
        let plan = RequestPlan::new(&rows, RequestLimits::default());
        assert!(plan.requests.len() > 1);
        assert_eq!(plan.requests.last().map(|r| r.end), Some(500));
        for request in &plan.requests {
            assert!(body_bytes(&rows[request.clone()]) <= MAX_REQUEST_BYTES);
        }
    }

    #[test]
    fn row_errors_point_at_the_batch_rows() {
        let response = json!({"insertErrors": [
            {"index": 3, "errors": [{"reason": "invalid", "message": "no such field: zz"}]},
            {"index": 7, "errors": [{"reason": "stopped", "message": ""}]}
        ]});
        let errors = row_errors(&response, 500);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].index, 503);
        assert_eq!(
            errors[0].reason,
            "BigQuery refused the row (invalid): no such field: zz"
        );
        assert!(row_errors(&json!({"kind": "x"}), 0).is_empty());
    }

    #[test]
    fn tables_get_partitioning_clustering_and_staging_expiry() {
        let spec = TableSpec {
            project: "p",
            dataset: "d",
            table: "t",
            columns: vec![
                ("startTime", ColumnType::Timestamp),
                ("subscriberId", ColumnType::String),
            ],
            partition_by_day: Some("startTime"),
            cluster_by: &["subscriberId"],
            staging: true,
        };
        let body = table_body(&spec);
        assert_eq!(body["tableReference"]["tableId"], "t");
        assert_eq!(body["schema"]["fields"][0]["type"], "TIMESTAMP");
        assert_eq!(body["timePartitioning"]["type"], "DAY");
        assert_eq!(body["timePartitioning"]["field"], "startTime");
        assert_eq!(body["clustering"]["fields"][0], "subscriberId");
        assert!(body["expirationTime"].is_string());
    }
}
