//! The BigQuery engine: the `Warehouse` trait over BigQuery's REST API, so the runner drives
//! BigQuery exactly as it drives DuckDB. It owns a tokio runtime and blocks on it inside each
//! call. `client` is the transport (endpoint, credentials, typed errors, retry policy), `jobs`
//! runs statements as labelled jobs with deterministic ids, `insert` streams ingested batches.

mod client;
mod insert;
mod jobs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

pub use client::{ApiError, Reason, RetryPolicy};
use client::{Endpoint, Method, RestClient};
use insert::TableSpec;
use jobs::{JobIds, JobSettings};

use super::{DryRun, EngineError, JobContext, ResultSet, ScriptOutcome, Warehouse};
use crate::bqml::statement;
use crate::config::BigQueryTarget;
use crate::ingest::batch::{EventBatch, LoadOutcome, Reject};
use crate::ingest::schema::{self, StorageLayout};
use crate::relation::{Dataset, TableRef};
use crate::render::Naming;

/// Points the engine at an emulator (`host:port`), with anonymous credentials.
pub const EMULATOR_HOST_VAR: &str = "BIGQUERY_EMULATOR_HOST";

#[derive(Debug, thiserror::Error)]
pub enum BigQueryError {
    #[error("BigQuery: {0}")]
    Setup(String),
    #[error("BigQuery {operation} failed: {source}")]
    Api {
        operation: String,
        #[source]
        source: ApiError,
    },
    #[error(
        "BigQuery job {job_id} failed: {source}{}",
        statement_suffix(statement)
    )]
    Job {
        job_id: String,
        statement: String,
        #[source]
        source: ApiError,
    },
    #[error(
        "BigQuery job {job_id} did not finish within {waited:?}; it may still be running (see it in the console)"
    )]
    Timeout { job_id: String, waited: Duration },
    #[error("BigQuery answered unexpectedly: {0}")]
    Protocol(String),
}

impl BigQueryError {
    fn job(job_id: &str, statement: &str, source: ApiError) -> Self {
        const SHOWN: usize = 400;
        let statement = statement.trim();
        let statement = match statement.char_indices().nth(SHOWN) {
            Some((cut, _)) => format!("{}…", &statement[..cut]),
            None => statement.to_string(),
        };
        BigQueryError::Job {
            job_id: job_id.to_string(),
            statement,
            source,
        }
    }

    /// BigQuery's reason for the failure, where it gave one.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            BigQueryError::Api { source, .. } | BigQueryError::Job { source, .. } => {
                Some(&source.reason)
            }
            _ => None,
        }
    }
}

fn statement_suffix(statement: &str) -> String {
    if statement.is_empty() {
        String::new()
    } else {
        format!("\n  in statement: {statement}")
    }
}

pub struct BigQueryWarehouse {
    runtime: tokio::runtime::Runtime,
    client: RestClient,
    project: String,
    location: String,
    datasets: BTreeMap<Dataset, String>,
    naming: Naming,
    target: String,
    maximum_bytes_billed: Option<u64>,
    ids: JobIds,
    /// What the jobs under the current job context added up to.
    context_outcome: ScriptOutcome,
    emulator: bool,
    datasets_ensured: bool,
    /// What it was opened with, for [`Warehouse::another_session`].
    opened_with: (PathBuf, BigQueryTarget),
}

impl BigQueryWarehouse {
    /// Connects to the target's project: an emulator when `BIGQUERY_EMULATOR_HOST` is set,
    /// else Google with the target's key file or Application Default Credentials.
    pub fn open(
        project_root: &Path,
        target_name: &str,
        target: &BigQueryTarget,
    ) -> Result<Self, EngineError> {
        let open_error = |message: String| EngineError::Open {
            location: format!("BigQuery target `{target_name}`"),
            message,
        };
        let project = target
            .project
            .resolve(target_name)
            .map_err(|e| open_error(e.to_string()))?;
        let endpoint = match std::env::var(EMULATOR_HOST_VAR) {
            Ok(host) if !host.trim().is_empty() => Endpoint::Emulator { host },
            _ => Endpoint::Google {
                key_file: match &target.key_file {
                    Some(file) => {
                        let file = file
                            .resolve(target_name)
                            .map_err(|e| open_error(e.to_string()))?;
                        Some(project_root.join(file).display().to_string())
                    }
                    None => None,
                },
            },
        };
        let emulator = matches!(endpoint, Endpoint::Emulator { .. });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| open_error(format!("cannot start the async runtime: {e}")))?;
        // Credentials look-ups (the metadata server) need the runtime's context.
        let client = {
            let _entered = runtime.enter();
            RestClient::new(&endpoint, RetryPolicy::default())
                .map_err(|e| open_error(e.to_string()))?
        };
        let naming = Naming::BigQuery {
            project: project.clone(),
            datasets: Dataset::ALL
                .into_iter()
                .map(|d| (d, target.dataset_name(d)))
                .collect(),
        };
        Ok(BigQueryWarehouse {
            runtime,
            client,
            datasets: Dataset::ALL
                .into_iter()
                .map(|d| (d, target.dataset_name(d)))
                .collect(),
            project,
            location: target.location.clone(),
            naming,
            target: target_name.to_string(),
            maximum_bytes_billed: target.maximum_bytes_billed,
            ids: JobIds::new(),
            context_outcome: ScriptOutcome::default(),
            emulator,
            datasets_ensured: false,
            opened_with: (project_root.to_path_buf(), target.clone()),
        })
    }

    fn dataset(&self, dataset: Dataset) -> &str {
        self.datasets
            .get(&dataset)
            .map(String::as_str)
            .unwrap_or(dataset.as_str())
    }

    fn settings(&self) -> JobSettings<'_> {
        let (labels, step_cap) = match self.ids.context() {
            Some(context) => (jobs::labels(context), context.maximum_bytes_billed),
            None => (
                BTreeMap::from([("target".to_string(), self.target.to_ascii_lowercase())]),
                None,
            ),
        };
        JobSettings {
            project: &self.project,
            location: &self.location,
            labels,
            maximum_bytes_billed: step_cap.or(self.maximum_bytes_billed),
        }
    }

    /// Runs a script as jobs: one per statement, so each gets its own row count and bytes,
    /// unless it uses scripting (variables, control flow), which only works as one script job.
    /// Returns the summed outcome and the last job's id.
    fn run_script(&mut self, sql: &str) -> Result<(ScriptOutcome, Option<String>), EngineError> {
        let statements = statement::split_statements(sql)?;
        let units: Vec<String> = if statements.len() > 1 && !uses_scripting(&statements) {
            statements.into_iter().map(|s| s.text).collect()
        } else if statements.is_empty() {
            Vec::new()
        } else {
            vec![sql.trim().to_string()]
        };
        let mut total = ScriptOutcome::default();
        let mut last_job = None;
        for unit in units {
            let slot = self.ids.next();
            let settings = self.settings();
            let done =
                self.runtime
                    .block_on(jobs::run_job(&self.client, &slot, &unit, &settings))?;
            total = add_outcomes(total, done.outcome);
            last_job = Some(done.job_id);
            self.context_outcome = add_outcomes(self.context_outcome, done.outcome);
        }
        Ok((total, last_job))
    }

    fn table_spec<'a>(
        &'a self,
        table: &'a str,
        columns: &'a [(&'a str, &'a str)],
        layout: StorageLayout,
    ) -> TableSpec<'a> {
        TableSpec {
            project: &self.project,
            dataset: self.dataset(Dataset::Raw),
            table,
            columns,
            partition_by_day: layout.partition_day,
            cluster_by: layout.cluster_by,
            staging: false,
        }
    }

    fn get_exists(&self, path: &str) -> Result<bool, EngineError> {
        let found = self.runtime.block_on(self.client.call_with_retry(
            Method::Get,
            path,
            &[],
            None,
            |_| false,
        ));
        match found {
            Ok(_) => Ok(true),
            Err(error) if error.reason == Reason::NotFound || error.status == Some(404) => {
                Ok(false)
            }
            Err(source) => Err(BigQueryError::Api {
                operation: format!("GET {path}"),
                source,
            }
            .into()),
        }
    }

    /// Moves the staged rows whose ids are new into a raw table; returns the rows added.
    fn move_new_rows(
        &mut self,
        stage: &str,
        table: &TableRef,
        columns: &[(&str, &str)],
        id_column: &str,
        order_by: &str,
    ) -> Result<u64, EngineError> {
        let target = self.naming.qualify(table);
        let stage = format!("`{}.{}.{stage}`", self.project, self.dataset(Dataset::Raw));
        let list: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let list = list.join(", ");
        let sql = format!(
            "INSERT INTO {target} ({list})\n\
             SELECT {list} FROM {stage} AS s\n\
             WHERE NOT EXISTS (SELECT 1 FROM {target} AS r WHERE r.{id_column} = s.{id_column})\n\
             QUALIFY ROW_NUMBER() OVER (PARTITION BY s.{id_column} ORDER BY {order_by}) = 1"
        );
        Ok(self.run_script(&sql)?.0.rows_affected)
    }

    fn drop_table(&self, dataset: &str, table: &str) {
        let path = format!(
            "projects/{}/datasets/{dataset}/tables/{table}",
            self.project
        );
        let dropped = self.runtime.block_on(self.client.call_with_retry(
            Method::Delete,
            &path,
            &[],
            None,
            |e| e.reason == Reason::NotFound,
        ));
        if let Err(error) = dropped {
            tracing::warn!(%error, table, "could not drop a staging table; it expires within a day");
        }
    }

    fn stage_rows(
        &self,
        stage: &str,
        columns: &[(&str, &str)],
        rows: &[(String, Value)],
    ) -> Result<Vec<insert::RowError>, EngineError> {
        let spec = TableSpec {
            staging: true,
            ..self.table_spec(stage, columns, StorageLayout::PLAIN)
        };
        self.runtime
            .block_on(insert::create_table(&self.client, &spec))
            .map_err(|source| BigQueryError::Api {
                operation: format!("creating the staging table {stage}"),
                source,
            })?;
        Ok(self.runtime.block_on(insert::insert_rows(
            &self.client,
            &self.project,
            self.dataset(Dataset::Raw),
            stage,
            rows,
        ))?)
    }

    fn load_staged(&mut self, batch: &EventBatch, tag: &str) -> Result<LoadOutcome, EngineError> {
        let now = Utc::now();
        let events_stage = format!("netlog_events__ns_stage_{tag}");
        let rejects_stage = format!("netlog_rejects__ns_stage_{tag}");
        let mut rejects: Vec<Reject> = batch.rejects.clone();
        let mut refused_events = 0u64;
        let mut inserted = 0;
        if !batch.events.is_empty() {
            let rows: Vec<(String, Value)> = batch
                .events
                .iter()
                .map(|e| (e.event_id.clone(), insert::event_row(e, &now)))
                .collect();
            let refused = self.stage_rows(&events_stage, &schema::EVENT_COLUMNS, &rows)?;
            for error in &refused {
                // With skipInvalidRows the listed rows are the invalid ones; the others landed.
                if let (Some(stored), Some((_, row))) =
                    (batch.events.get(error.index), rows.get(error.index))
                {
                    rejects.push(insert::refused_event_reject(stored, row, error));
                    refused_events += 1;
                }
            }
            inserted = self.move_new_rows(
                &events_stage,
                &schema::events_table(),
                &schema::EVENT_COLUMNS,
                "event_id",
                "s.source_line",
            )?;
        }
        let mut rejects_inserted = 0;
        if !rejects.is_empty() {
            let rows: Vec<(String, Value)> = rejects
                .iter()
                .map(|r| (r.reject_id.clone(), insert::reject_row(r, &now)))
                .collect();
            let refused = self.stage_rows(&rejects_stage, &schema::REJECT_COLUMNS, &rows)?;
            if let Some(first) = refused.first() {
                return Err(BigQueryError::Protocol(format!(
                    "BigQuery refused {} reject row(s), e.g. line {} of {}: {}",
                    refused.len(),
                    rejects[first.index].line,
                    rejects[first.index].source,
                    first.message
                ))
                .into());
            }
            rejects_inserted = self.move_new_rows(
                &rejects_stage,
                &schema::rejects_table(),
                &schema::REJECT_COLUMNS,
                "reject_id",
                "s.line",
            )?;
        }
        Ok(LoadOutcome {
            events_inserted: inserted,
            events_duplicate: (batch.events.len() as u64)
                .saturating_sub(inserted)
                .saturating_sub(refused_events),
            rejects_inserted,
        })
    }
}

/// BigQuery scripting statements, which need the whole script in one job.
fn uses_scripting(statements: &[statement::Statement]) -> bool {
    statements.iter().any(|s| {
        let first = s
            .text
            .split(|c: char| !c.is_ascii_alphabetic())
            .find(|w| !w.is_empty())
            .unwrap_or("")
            .to_ascii_uppercase();
        matches!(
            first.as_str(),
            "DECLARE"
                | "SET"
                | "BEGIN"
                | "IF"
                | "WHILE"
                | "LOOP"
                | "REPEAT"
                | "FOR"
                | "CALL"
                | "EXECUTE"
                | "RAISE"
                | "RETURN"
        )
    })
}

fn add_outcomes(a: ScriptOutcome, b: ScriptOutcome) -> ScriptOutcome {
    let sum = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0) + y.unwrap_or(0)),
    };
    ScriptOutcome {
        rows_affected: a.rows_affected + b.rows_affected,
        bytes_processed: sum(a.bytes_processed, b.bytes_processed),
        bytes_billed: sum(a.bytes_billed, b.bytes_billed),
    }
}

impl Warehouse for BigQueryWarehouse {
    fn another_session(&self) -> Result<Box<dyn Warehouse>, EngineError> {
        let (project_root, target) = &self.opened_with;
        Ok(Box::new(Self::open(project_root, &self.target, target)?))
    }

    fn describe(&self) -> String {
        if self.emulator {
            format!(
                "BigQuery emulator at {} (project {})",
                self.client.base_url(),
                self.project
            )
        } else {
            format!("BigQuery project {} ({})", self.project, self.location)
        }
    }

    fn naming(&self) -> &Naming {
        &self.naming
    }

    fn ensure_datasets(&mut self) -> Result<(), EngineError> {
        if self.datasets_ensured {
            return Ok(());
        }
        for dataset in Dataset::ALL {
            let name = self.dataset(dataset).to_string();
            // Terraform creates the datasets and the runner's service account may not create
            // them, so only a missing one is created.
            if self.get_exists(&format!("projects/{}/datasets/{name}", self.project))? {
                continue;
            }
            let body = serde_json::to_value(
                gcp_bigquery_client::model::dataset::Dataset::new(&self.project, &name)
                    .location(&self.location),
            )
            .unwrap_or(Value::Null);
            let path = format!("projects/{}/datasets", self.project);
            self.runtime
                .block_on(
                    self.client
                        .call_with_retry(Method::Post, &path, &[], Some(&body), |e| {
                            e.reason == Reason::Duplicate
                        }),
                )
                .map_err(|source| BigQueryError::Api {
                    operation: format!("creating dataset {name}"),
                    source,
                })?;
        }
        let events = schema::events_table();
        let rejects = schema::rejects_table();
        let specs = [
            self.table_spec(
                events.name.as_str(),
                &schema::EVENT_COLUMNS,
                schema::EVENTS_LAYOUT,
            ),
            self.table_spec(
                rejects.name.as_str(),
                &schema::REJECT_COLUMNS,
                schema::REJECTS_LAYOUT,
            ),
        ];
        for spec in &specs {
            self.runtime
                .block_on(insert::create_table(&self.client, spec))
                .map_err(|source| BigQueryError::Api {
                    operation: format!("creating table {}.{}", spec.dataset, spec.table),
                    source,
                })?;
        }
        self.datasets_ensured = true;
        Ok(())
    }

    fn execute_script(&mut self, sql: &str) -> Result<ScriptOutcome, EngineError> {
        Ok(self.run_script(sql)?.0)
    }

    fn query(&mut self, sql: &str) -> Result<ResultSet, EngineError> {
        let (_, last_job) = self.run_script(sql)?;
        match last_job {
            Some(job_id) => {
                let settings = self.settings();
                Ok(self
                    .runtime
                    .block_on(jobs::read_results(&self.client, &job_id, &settings))?)
            }
            None => Ok(ResultSet::default()),
        }
    }

    fn relation_exists(&mut self, relation: &TableRef) -> Result<bool, EngineError> {
        let base = format!(
            "projects/{}/datasets/{}",
            self.project,
            self.dataset(relation.dataset)
        );
        Ok(
            self.get_exists(&format!("{base}/tables/{}", relation.name))?
                || self.get_exists(&format!("{base}/models/{}", relation.name))?,
        )
    }

    fn context_outcome(&self) -> ScriptOutcome {
        self.context_outcome
    }

    fn dry_run(&mut self, sql: &str) -> Result<DryRun, EngineError> {
        let settings = self.settings();
        let bytes_processed =
            self.runtime
                .block_on(jobs::dry_run(&self.client, sql.trim(), &settings))?;
        Ok(DryRun {
            bytes_processed,
            maximum_bytes_billed: settings.maximum_bytes_billed,
        })
    }

    fn set_job_context(&mut self, context: Option<JobContext>) {
        self.ids.set_context(context);
        self.context_outcome = ScriptOutcome::default();
    }

    fn load_events(&mut self, batch: &EventBatch) -> Result<LoadOutcome, EngineError> {
        self.ensure_datasets()?;
        let tag = uuid::Uuid::now_v7().simple().to_string();
        let loaded = self.load_staged(batch, &tag);
        let raw = self.dataset(Dataset::Raw).to_string();
        for stage in ["netlog_events", "netlog_rejects"] {
            self.drop_table(&raw, &format!("{stage}__ns_stage_{tag}"));
        }
        loaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(sql: &str) -> Vec<statement::Statement> {
        statement::split_statements(sql).unwrap()
    }

    #[test]
    fn scripts_with_variables_or_control_flow_run_as_one_job() {
        assert!(!uses_scripting(&split(
            "CREATE TABLE a AS SELECT 1; DELETE FROM b WHERE TRUE; INSERT INTO b SELECT 'set'"
        )));
        assert!(uses_scripting(&split(
            "DECLARE x INT64 DEFAULT 1; SELECT x"
        )));
        assert!(uses_scripting(&split(
            "SELECT 1; IF TRUE THEN SELECT 2; END IF"
        )));
    }

    #[test]
    fn outcomes_add_up_and_bytes_stay_unknown_when_never_reported() {
        let a = ScriptOutcome {
            rows_affected: 2,
            bytes_processed: Some(10),
            bytes_billed: None,
        };
        let b = ScriptOutcome {
            rows_affected: 3,
            bytes_processed: Some(5),
            bytes_billed: None,
        };
        let sum = add_outcomes(a, b);
        assert_eq!(sum.rows_affected, 5);
        assert_eq!(sum.bytes_processed, Some(15));
        assert_eq!(sum.bytes_billed, None);
    }
}
