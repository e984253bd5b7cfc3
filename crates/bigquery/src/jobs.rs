//! Query jobs: deterministic job ids and labels from the step being run, the job
//! configuration (byte cap, location, dry run), polling to completion, job-level retries of
//! transient failures, and reading a finished job's rows back as a `ResultSet`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gcp_bigquery_client::model::job::Job;
use gcp_bigquery_client::model::job_configuration::JobConfiguration;
use gcp_bigquery_client::model::job_configuration_query::JobConfigurationQuery;
use gcp_bigquery_client::model::job_reference::JobReference;
use serde_json::Value;

use crate::BigQueryError;
use crate::client::{ApiError, Method, Reason, RestClient};
use netsentinel_core::{Cell, JobContext, ResultSet, ScriptOutcome};

/// How long one job may take before the step gives up waiting (the job keeps running).
const JOB_DEADLINE: Duration = Duration::from_secs(6 * 60 * 60);
/// `getQueryResults` long-polls this long per request.
const POLL_MS: u64 = 10_000;
/// Rows per result page, and pages read at most (a runaway result stops, not the machine).
const PAGE_ROWS: u64 = 10_000;
const MAX_PAGES: usize = 10_000;

/// The id of a job: the run, the step, the job's position in the step and the attempt.
/// The same run, step, position and attempt always give the same id, so an insert retried
/// after a lost answer finds its own job (`duplicate`) instead of starting a second one.
pub fn job_id(run_id: &str, step: &str, sequence: u32, attempt: u32) -> String {
    format!(
        "ns_{}_{}_{sequence}_a{attempt}",
        job_id_part(run_id),
        job_id_part(step)
    )
}

/// Job ids allow letters, digits, `_` and `-` (1024 characters at most).
fn job_id_part(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Label values allow lowercase letters, digits, `_` and `-`, 63 characters at most.
fn label_value(text: &str) -> String {
    text.chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect()
}

pub fn labels(context: &JobContext) -> BTreeMap<String, String> {
    [
        ("pipeline", &context.pipeline),
        ("step", &context.step),
        ("run_id", &context.run_id),
        ("target", &context.target),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), label_value(v)))
    .collect()
}

/// Hands out job ids: from the step's context while one is set, else from a per-process id.
/// Positions count within a step (so a rerun of the step reuses its ids) and, outside steps,
/// through the whole process (so no two jobs of it share an id).
pub struct JobIds {
    context: Option<JobContext>,
    session: String,
    step_sequence: u32,
    session_sequence: u32,
}

impl JobIds {
    pub fn new() -> Self {
        JobIds {
            context: None,
            session: format!("adhoc_{}", uuid::Uuid::now_v7().simple()),
            step_sequence: 0,
            session_sequence: 0,
        }
    }

    pub fn set_context(&mut self, context: Option<JobContext>) {
        self.context = context;
        self.step_sequence = 0;
    }

    pub fn context(&self) -> Option<&JobContext> {
        self.context.as_ref()
    }

    /// The next job's slot; its attempts get ids from `JobSlot::id`.
    pub fn next(&mut self) -> JobSlot {
        match &self.context {
            Some(c) => {
                self.step_sequence += 1;
                JobSlot {
                    run: c.run_id.clone(),
                    step: c.step.clone(),
                    sequence: self.step_sequence,
                }
            }
            None => {
                self.session_sequence += 1;
                JobSlot {
                    run: self.session.clone(),
                    step: "query".to_string(),
                    sequence: self.session_sequence,
                }
            }
        }
    }
}

pub struct JobSlot {
    run: String,
    step: String,
    sequence: u32,
}

impl JobSlot {
    pub fn id(&self, attempt: u32) -> String {
        job_id(&self.run, &self.step, self.sequence, attempt)
    }
}

/// Everything a job needs besides its SQL.
pub struct JobSettings<'a> {
    pub project: &'a str,
    pub location: &'a str,
    pub labels: BTreeMap<String, String>,
    pub maximum_bytes_billed: Option<u64>,
}

/// A finished job.
#[derive(Debug, Clone, Default)]
pub struct JobOutcome {
    pub job_id: String,
    pub outcome: ScriptOutcome,
}

fn job_body(sql: &str, id: Option<&str>, settings: &JobSettings<'_>, dry_run: bool) -> Value {
    let job = Job {
        job_reference: id.map(|id| JobReference {
            job_id: Some(id.to_string()),
            location: Some(settings.location.to_string()),
            project_id: Some(settings.project.to_string()),
        }),
        configuration: Some(JobConfiguration {
            dry_run: dry_run.then_some(true),
            labels: (!settings.labels.is_empty()).then(|| {
                settings
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<HashMap<_, _>>()
            }),
            query: Some(JobConfigurationQuery {
                query: sql.to_string(),
                use_legacy_sql: Some(false),
                maximum_bytes_billed: settings.maximum_bytes_billed.map(|b| b.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    serde_json::to_value(job).unwrap_or(Value::Null)
}

fn u64_field(value: &Value, path: &[&str]) -> Option<u64> {
    let mut current = value;
    for key in path {
        current = current.get(key)?;
    }
    match current {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// A job's `errorResult` if it failed.
fn job_error(job: &Value) -> Option<ApiError> {
    job.get("status")
        .and_then(|s| s.get("errorResult"))
        .map(ApiError::from_error_proto)
}

fn job_done(job: &Value) -> bool {
    job.get("status")
        .and_then(|s| s.get("state"))
        .and_then(Value::as_str)
        == Some("DONE")
}

fn outcome_of(job: &Value) -> ScriptOutcome {
    let query = |field: &str| u64_field(job, &["statistics", "query", field]);
    ScriptOutcome {
        rows_affected: query("numDmlAffectedRows").unwrap_or(0),
        bytes_processed: query("totalBytesProcessed"),
        bytes_billed: query("totalBytesBilled"),
    }
}

/// Runs one query job to completion: the insert is retried with the same id on transient
/// HTTP errors, a job that fails for a transient reason is run again under the next attempt's
/// id, and any other failure is returned with BigQuery's message.
pub async fn run_job(
    client: &RestClient,
    slot: &JobSlot,
    sql: &str,
    settings: &JobSettings<'_>,
) -> Result<JobOutcome, BigQueryError> {
    let mut attempt = 1;
    loop {
        let id = slot.id(attempt);
        let body = job_body(sql, Some(&id), settings, false);
        let path = format!("projects/{}/jobs", settings.project);
        let inserted = client
            .call_with_retry(Method::Post, &path, &[], Some(&body), |e| {
                e.reason == Reason::Duplicate
            })
            .await
            .map_err(|source| BigQueryError::job(&id, sql, source))?;
        tracing::debug!(job_id = %id, "job inserted");
        let job = if job_done(&inserted) {
            inserted
        } else {
            wait_for_job(client, &id, settings).await?
        };
        match job_error(&job) {
            None => {
                return Ok(JobOutcome {
                    job_id: id,
                    outcome: outcome_of(&job),
                });
            }
            Some(error) if error.is_retryable() && attempt < client.retry.max_attempts => {
                let delay = client.retry.delay(attempt);
                tracing::warn!(job_id = %id, %error, ?delay, "job failed transiently; running it again");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Some(error) => return Err(BigQueryError::job(&id, sql, error)),
        }
    }
}

/// Waits for a job to finish: `getQueryResults` long-polls, then the job itself tells how it
/// ended.
async fn wait_for_job(
    client: &RestClient,
    id: &str,
    settings: &JobSettings<'_>,
) -> Result<Value, BigQueryError> {
    let started = Instant::now();
    let job_path = format!("projects/{}/jobs/{id}", settings.project);
    let results_path = format!("projects/{}/queries/{id}", settings.project);
    let location = ("location", settings.location.to_string());
    while started.elapsed() < JOB_DEADLINE {
        let job = client
            .call_with_retry(
                Method::Get,
                &job_path,
                std::slice::from_ref(&location),
                None,
                |_| false,
            )
            .await
            .map_err(|source| BigQueryError::job(id, "", source))?;
        if job_done(&job) {
            return Ok(job);
        }
        let poll = [
            location.clone(),
            ("timeoutMs", POLL_MS.to_string()),
            ("maxResults", "0".to_string()),
        ];
        match client
            .call_with_retry(Method::Get, &results_path, &poll, None, |_| false)
            .await
        {
            Ok(_) => {}
            // A failed job answers getQueryResults with its error; the job says it next round.
            Err(error) if !error.is_retryable() => {}
            Err(error) => return Err(BigQueryError::job(id, "", error)),
        }
    }
    Err(BigQueryError::Timeout {
        job_id: id.to_string(),
        waited: JOB_DEADLINE,
    })
}

/// Estimates a script's bytes without running it; an invalid script fails with BigQuery's
/// message.
pub async fn dry_run(
    client: &RestClient,
    sql: &str,
    settings: &JobSettings<'_>,
) -> Result<Option<u64>, BigQueryError> {
    let body = job_body(sql, None, settings, true);
    let path = format!("projects/{}/jobs", settings.project);
    let job = client
        .call_with_retry(Method::Post, &path, &[], Some(&body), |_| false)
        .await
        .map_err(|source| BigQueryError::job("dry run", sql, source))?;
    if let Some(error) = job_error(&job) {
        return Err(BigQueryError::job("dry run", sql, error));
    }
    Ok(
        u64_field(&job, &["statistics", "query", "totalBytesProcessed"])
            .or_else(|| u64_field(&job, &["statistics", "totalBytesProcessed"])),
    )
}

/// The rows of a finished job, page by page.
pub async fn read_results(
    client: &RestClient,
    job_id: &str,
    settings: &JobSettings<'_>,
) -> Result<ResultSet, BigQueryError> {
    let path = format!("projects/{}/queries/{job_id}", settings.project);
    let mut result = ResultSet::default();
    let mut fields: Vec<Value> = Vec::new();
    let mut page_token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![
            ("location", settings.location.to_string()),
            ("maxResults", PAGE_ROWS.to_string()),
            ("formatOptions.useInt64Timestamp", "true".to_string()),
        ];
        if let Some(token) = &page_token {
            query.push(("pageToken", token.clone()));
        }
        let page = client
            .call_with_retry(Method::Get, &path, &query, None, |_| false)
            .await
            .map_err(|source| BigQueryError::job(job_id, "", source))?;
        if fields.is_empty() {
            fields = page
                .get("schema")
                .and_then(|s| s.get("fields"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            result.columns = fields
                .iter()
                .map(|f| {
                    f.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                })
                .collect();
        }
        for row in page
            .get("rows")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            result.rows.push(row_cells(&fields, row));
        }
        page_token = page
            .get("pageToken")
            .and_then(Value::as_str)
            .map(str::to_string);
        if page_token.is_none() {
            return Ok(result);
        }
    }
    Err(BigQueryError::Protocol(format!(
        "job {job_id} has more than {MAX_PAGES} pages of results; add a LIMIT"
    )))
}

/// `{"f": [{"v": …}, …]}` in schema order.
fn row_cells(fields: &[Value], row: &Value) -> Vec<Cell> {
    let values = row
        .get("f")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    fields
        .iter()
        .zip(values)
        .map(|(field, value)| field_cell(field, value.get("v").unwrap_or(&Value::Null)))
        .collect()
}

fn field_cell(field: &Value, value: &Value) -> Cell {
    if value.is_null() {
        return Cell::Null;
    }
    let repeated = field.get("mode").and_then(Value::as_str) == Some("REPEATED");
    if repeated {
        let scalar = {
            let mut f = field.clone();
            if let Some(object) = f.as_object_mut() {
                object.remove("mode");
            }
            f
        };
        return Cell::List(
            value
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|item| field_cell(&scalar, item.get("v").unwrap_or(&Value::Null)))
                .collect(),
        );
    }
    let kind = field
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("STRING");
    match kind {
        "RECORD" | "STRUCT" => {
            let subfields = field
                .get("fields")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let names = subfields.iter().map(|f| {
                f.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            });
            Cell::Struct(names.zip(row_cells(subfields, value)).collect())
        }
        _ => scalar_cell(kind, value.as_str().unwrap_or_default()),
    }
}

fn scalar_cell(kind: &str, text: &str) -> Cell {
    let parsed = match kind {
        "INTEGER" | "INT64" => text.parse().ok().map(Cell::Int),
        "FLOAT" | "FLOAT64" | "NUMERIC" | "BIGNUMERIC" | "DECIMAL" | "BIGDECIMAL" => {
            text.parse().ok().map(Cell::Float)
        }
        "BOOLEAN" | "BOOL" => match text {
            "true" | "TRUE" => Some(Cell::Bool(true)),
            "false" | "FALSE" => Some(Cell::Bool(false)),
            _ => None,
        },
        "TIMESTAMP" => timestamp(text).map(Cell::Timestamp),
        _ => None,
    };
    parsed.unwrap_or_else(|| Cell::Text(text.to_string()))
}

/// TIMESTAMP cells are int64 microseconds with `useInt64Timestamp`; float seconds without.
fn timestamp(text: &str) -> Option<DateTime<Utc>> {
    match text.parse::<i64>() {
        Ok(micros) => DateTime::from_timestamp_micros(micros),
        Err(_) => {
            let seconds: f64 = text.parse().ok()?;
            DateTime::from_timestamp_micros((seconds * 1e6).round() as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> JobContext {
        JobContext {
            pipeline: "detect".into(),
            step: "features/netlog_windows".into(),
            run_id: "run_0190abc".into(),
            target: "bigquery".into(),
            maximum_bytes_billed: None,
        }
    }

    #[test]
    fn job_ids_are_deterministic_per_run_step_position_and_attempt() {
        let id = job_id("run_0190abc", "features/netlog_windows", 2, 1);
        assert_eq!(id, "ns_run_0190abc_features_netlog_windows_2_a1");
        assert_eq!(id, job_id("run_0190abc", "features/netlog_windows", 2, 1));
        assert_ne!(id, job_id("run_0190abc", "features/netlog_windows", 2, 2));
        assert_ne!(id, job_id("run_0190abc", "features/netlog_windows", 3, 1));
        assert_ne!(id, job_id("run_0190abd", "features/netlog_windows", 2, 1));

        let ids = |ids: &mut JobIds| -> Vec<String> {
            ids.set_context(Some(context()));
            (0..3).map(|_| ids.next().id(1)).collect()
        };
        let (mut first, mut second) = (JobIds::new(), JobIds::new());
        assert_eq!(ids(&mut first), ids(&mut second));
        assert!(
            first.next().id(1).ends_with("_4_a1"),
            "positions count on within a step"
        );
    }

    #[test]
    fn job_ids_outside_a_step_are_unique_per_process() {
        let (mut a, mut b) = (JobIds::new(), JobIds::new());
        assert_ne!(a.next().id(1), b.next().id(1));
        // Between steps the process keeps counting: no id comes back after a step.
        let before = a.next().id(1);
        a.set_context(Some(context()));
        a.next();
        a.set_context(None);
        let after = a.next().id(1);
        assert_ne!(before, after);
        assert!(after.ends_with("_query_3_a1"), "{after}");
    }

    #[test]
    fn job_ids_and_labels_use_only_allowed_characters() {
        let id = job_id("run x", "features/a.b", 1, 1);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{id}"
        );
        let labels = labels(&JobContext {
            pipeline: "Detect Pipeline".into(),
            ..context()
        });
        assert_eq!(labels["pipeline"], "detect_pipeline");
        assert_eq!(labels["step"], "features_netlog_windows");
        assert_eq!(labels["run_id"], "run_0190abc");
        assert_eq!(labels["target"], "bigquery");
    }

    #[test]
    fn job_body_carries_id_location_labels_and_byte_cap() {
        let settings = JobSettings {
            project: "p",
            location: "EU",
            labels: labels(&context()),
            maximum_bytes_billed: Some(1000),
        };
        let body = job_body("SELECT 1", Some("ns_x_1_a1"), &settings, false);
        assert_eq!(body["jobReference"]["jobId"], "ns_x_1_a1");
        assert_eq!(body["jobReference"]["location"], "EU");
        assert_eq!(body["configuration"]["labels"]["pipeline"], "detect");
        assert_eq!(body["configuration"]["query"]["maximumBytesBilled"], "1000");
        assert_eq!(body["configuration"]["query"]["useLegacySql"], false);
        assert!(body["configuration"].get("dryRun").is_none());
        let dry = job_body("SELECT 1", None, &settings, true);
        assert_eq!(dry["configuration"]["dryRun"], true);
    }

    #[test]
    fn result_cells_follow_the_schema() {
        let fields: Vec<Value> = serde_json::from_str(
            r#"[{"name":"s","type":"STRING"},{"name":"i","type":"INTEGER"},{"name":"f","type":"FLOAT"},
                {"name":"b","type":"BOOLEAN"},{"name":"t","type":"TIMESTAMP"},{"name":"n","type":"INT64"},
                {"name":"r","type":"INT64","mode":"REPEATED"},
                {"name":"st","type":"RECORD","fields":[{"name":"x","type":"INT64"}]}]"#,
        )
        .unwrap();
        let row: Value = serde_json::from_str(
            r#"{"f":[{"v":"a"},{"v":"3"},{"v":"1.5"},{"v":"true"},{"v":"1767225600000000"},{"v":null},
                {"v":[{"v":"1"},{"v":"2"}]},{"v":{"f":[{"v":"7"}]}}]}"#,
        )
        .unwrap();
        let cells = row_cells(&fields, &row);
        assert_eq!(cells[0], Cell::Text("a".into()));
        assert_eq!(cells[1], Cell::Int(3));
        assert_eq!(cells[2], Cell::Float(1.5));
        assert_eq!(cells[3], Cell::Bool(true));
        assert_eq!(
            cells[4],
            Cell::Timestamp("2026-01-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(cells[5], Cell::Null);
        assert_eq!(cells[6], Cell::List(vec![Cell::Int(1), Cell::Int(2)]));
        assert_eq!(cells[7], Cell::Struct(vec![("x".into(), Cell::Int(7))]));
        assert_eq!(
            timestamp("1.7672256E9"),
            "2026-01-01T00:00:00Z".parse().ok()
        );
    }
}
