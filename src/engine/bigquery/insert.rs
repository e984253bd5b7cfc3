//! Ingest into BigQuery: a batch streams through `tabledata.insertAll` (at most 500 rows a
//! request, each with an insertId) into staging tables, and one query per raw table then moves
//! the rows whose ids are new. Streaming into the raw tables directly would rely on insertId
//! deduplication, which BigQuery keeps for about a minute only; the staging step makes a
//! re-ingest add nothing, whenever it happens. Rows BigQuery refuses become rejects.

use chrono::{DateTime, SecondsFormat, Utc};
use gcp_bigquery_client::model::clustering::Clustering;
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::table::Table;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_schema::TableSchema;
use gcp_bigquery_client::model::time_partitioning::TimePartitioning;
use serde_json::{Value, json};

use super::BigQueryError;
use super::client::{ApiError, Method, Reason, RestClient};
use crate::ingest::batch::{Reject, StoredEvent};

/// BigQuery's recommended maximum rows per insertAll request.
pub const MAX_ROWS_PER_REQUEST: usize = 500;
/// Staging tables expire by themselves if an ingest dies before dropping them.
const STAGING_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// A table to create: its columns in GoogleSQL types and its storage layout.
pub struct TableSpec<'a> {
    pub project: &'a str,
    pub dataset: &'a str,
    pub table: &'a str,
    pub columns: &'a [(&'a str, &'a str)],
    pub partition_by_day: Option<&'a str>,
    pub cluster_by: &'a [&'a str],
    pub staging: bool,
}

fn field_type(sql_type: &str) -> FieldType {
    match sql_type {
        "INT64" => FieldType::Int64,
        "FLOAT64" => FieldType::Float64,
        "BOOL" => FieldType::Bool,
        "TIMESTAMP" => FieldType::Timestamp,
        "DATE" => FieldType::Date,
        _ => FieldType::String,
    }
}

pub fn table_body(spec: &TableSpec<'_>) -> Value {
    let fields = spec
        .columns
        .iter()
        .map(|(name, ty)| TableFieldSchema::new(name, field_type(ty)))
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

fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn event_row(stored: &StoredEvent, ingested_at: &DateTime<Utc>) -> Value {
    let e = &stored.event;
    json!({
        "event_id": stored.event_id,
        "subscriberId": e.subscriber_id,
        "srcIP": e.src_ip.to_string(),
        "dstIP": e.dst_ip.to_string(),
        "srcPort": e.src_port,
        "dstPort": e.dst_port,
        "txBytes": e.tx_bytes,
        "rxBytes": e.rx_bytes,
        "tcpFlag": e.tcp_flag,
        "startTime": timestamp(&e.start_time),
        "endTime": timestamp(&e.end_time),
        "timestamp": timestamp(&e.timestamp.unwrap_or(e.end_time)),
        "protocolName": e.protocol_name,
        "protocolNumber": e.protocol_number,
        "geoCountry": e.geo_country,
        "geoCity": e.geo_city,
        "latitude": e.latitude,
        "longitude": e.longitude,
        "label": e.label,
        "source": stored.source,
        "source_line": stored.line,
        "ingested_at": timestamp(ingested_at),
    })
}

pub fn reject_row(reject: &Reject, rejected_at: &DateTime<Utc>) -> Value {
    json!({
        "reject_id": reject.reject_id,
        "source": reject.source,
        "line": reject.line,
        "field": reject.field,
        "reason": reject.reason,
        "raw": reject.raw,
        "rejected_at": timestamp(rejected_at),
    })
}

/// A row of a request that BigQuery refused, with its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    /// Index into the rows handed to `insert_rows`.
    pub index: usize,
    pub reason: String,
    pub message: String,
}

/// The `insertAll` request for some rows, each with its insertId. Invalid rows are skipped
/// (and reported) instead of failing the whole request.
pub fn insert_all_body(rows: &[(String, Value)]) -> Value {
    json!({
        "skipInvalidRows": true,
        "rows": rows
            .iter()
            .map(|(id, row)| json!({ "insertId": id, "json": row }))
            .collect::<Vec<_>>(),
    })
}

/// The rows an `insertAll` answer refused, offset by the request's first row.
pub fn row_errors(response: &Value, offset: usize) -> Vec<RowError> {
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
            Some(RowError {
                index: offset + index,
                reason: error.reason.to_string(),
                message: error.message,
            })
        })
        .collect()
}

/// Streams rows into a table in requests of at most 500 rows; transient failures are retried
/// with the same insertIds. Returns the rows BigQuery refused.
pub async fn insert_rows(
    client: &RestClient,
    project: &str,
    dataset: &str,
    table: &str,
    rows: &[(String, Value)],
) -> Result<Vec<RowError>, BigQueryError> {
    let path = format!("projects/{project}/datasets/{dataset}/tables/{table}/insertAll");
    let mut refused = Vec::new();
    for (chunk_index, chunk) in rows.chunks(MAX_ROWS_PER_REQUEST).enumerate() {
        let body = insert_all_body(chunk);
        let response = client
            .call_with_retry(Method::Post, &path, &[], Some(&body), |_| false)
            .await
            .map_err(|source| BigQueryError::Api {
                operation: format!("insertAll into {dataset}.{table}"),
                source,
            })?;
        refused.extend(row_errors(&response, chunk_index * MAX_ROWS_PER_REQUEST));
    }
    Ok(refused)
}

/// A refused event becomes a reject, like a row that failed validation.
pub fn refused_event_reject(stored: &StoredEvent, row: &Value, error: &RowError) -> Reject {
    let raw = row.to_string();
    Reject {
        reject_id: crate::ingest::parse::reject_id(&stored.source, stored.line, &raw),
        source: stored.source.clone(),
        line: stored.line,
        field: None,
        reason: format!(
            "BigQuery refused the row ({}): {}",
            error.reason, error.message
        ),
        raw,
    }
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

    #[test]
    fn row_errors_point_at_the_batch_rows() {
        let response = json!({"insertErrors": [
            {"index": 3, "errors": [{"reason": "invalid", "message": "no such field: zz"}]},
            {"index": 7, "errors": [{"reason": "stopped", "message": ""}]}
        ]});
        let errors = row_errors(&response, 500);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].index, 503);
        assert_eq!(errors[0].reason, "invalid");
        assert_eq!(errors[0].message, "no such field: zz");
        assert!(row_errors(&json!({"kind": "x"}), 0).is_empty());
    }

    #[test]
    fn tables_get_partitioning_clustering_and_staging_expiry() {
        let columns = [("startTime", "TIMESTAMP"), ("subscriberId", "STRING")];
        let spec = TableSpec {
            project: "p",
            dataset: "d",
            table: "t",
            columns: &columns,
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
