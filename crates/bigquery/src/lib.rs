//! The BigQuery engine: the `Warehouse` trait over BigQuery's REST API, so the runner drives
//! BigQuery exactly as it drives DuckDB. It owns a tokio runtime and blocks on it inside each
//! call. `client` is the transport (endpoint, credentials, typed errors, retry policy), `jobs`
//! runs statements as labelled jobs with deterministic ids, `insert` creates tables and streams
//! rows into them.

mod client;
mod insert;
mod jobs;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

pub use client::{ApiError, Reason, RetryPolicy};
use client::{Endpoint, Method, RestClient};
use insert::TableSpec;
use jobs::{JobIds, JobSettings};

use netsentinel_bqml::statement;
use netsentinel_core::{
    Cell, Dataset, DryRun, EngineError, InsertOutcome, JobContext, Naming, RefusedRow, ResultSet,
    ScriptOutcome, TableDef, TableRef, Warehouse,
};

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

impl From<BigQueryError> for EngineError {
    fn from(error: BigQueryError) -> Self {
        EngineError::engine(error)
    }
}

fn statement_suffix(statement: &str) -> String {
    if statement.is_empty() {
        String::new()
    } else {
        format!("\n  in statement: {statement}")
    }
}

/// What the engine connects to, with every `${VAR}` already resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct BigQuerySettings {
    /// The target's name in pipelines.yaml, for messages and job labels.
    pub target: String,
    pub project: String,
    pub location: String,
    /// The BigQuery dataset of each logical dataset; an unmapped one keeps its own name.
    pub datasets: BTreeMap<Dataset, String>,
    pub maximum_bytes_billed: Option<u64>,
    /// A service-account key file; without it, Application Default Credentials are used.
    pub key_file: Option<PathBuf>,
}

pub struct BigQueryWarehouse {
    runtime: tokio::runtime::Runtime,
    client: RestClient,
    datasets: BTreeMap<Dataset, String>,
    naming: Naming,
    ids: JobIds,
    /// What the jobs under the current job context added up to.
    context_outcome: ScriptOutcome,
    emulator: bool,
    datasets_ensured: bool,
    /// What it was opened with, also for [`Warehouse::another_session`].
    settings: BigQuerySettings,
}

impl BigQueryWarehouse {
    /// Connects to the settings' project: an emulator when `BIGQUERY_EMULATOR_HOST` is set,
    /// else Google with the key file or Application Default Credentials.
    pub fn open(settings: &BigQuerySettings) -> Result<Self, EngineError> {
        let open_error = |message: String| EngineError::Open {
            location: format!("BigQuery target `{}`", settings.target),
            message,
        };
        let endpoint = match std::env::var(EMULATOR_HOST_VAR) {
            Ok(host) if !host.trim().is_empty() => Endpoint::Emulator { host },
            _ => Endpoint::Google {
                key_file: settings
                    .key_file
                    .as_ref()
                    .map(|file| file.display().to_string()),
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
        let datasets: BTreeMap<Dataset, String> = Dataset::ALL
            .into_iter()
            .map(|d| {
                let name = settings.datasets.get(&d).cloned();
                (d, name.unwrap_or_else(|| d.as_str().to_string()))
            })
            .collect();
        Ok(BigQueryWarehouse {
            runtime,
            client,
            naming: Naming::BigQuery {
                project: settings.project.clone(),
                datasets: datasets.clone(),
            },
            datasets,
            ids: JobIds::new(),
            context_outcome: ScriptOutcome::default(),
            emulator,
            datasets_ensured: false,
            settings: settings.clone(),
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
                BTreeMap::from([(
                    "target".to_string(),
                    self.settings.target.to_ascii_lowercase(),
                )]),
                None,
            ),
        };
        JobSettings {
            project: &self.settings.project,
            location: &self.settings.location,
            labels,
            maximum_bytes_billed: step_cap.or(self.settings.maximum_bytes_billed),
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

    /// Moves the staged rows whose key is new into the table (of rows sharing a key, the one
    /// offered first); returns the rows added.
    fn move_new_rows(
        &mut self,
        stage: &TableRef,
        def: &TableDef,
        rows: &[Vec<Cell>],
    ) -> Result<u64, EngineError> {
        let sql = move_new_rows_sql(
            &self.naming.qualify(&def.table),
            &self.naming.qualify(stage),
            def,
            partition_range(def, rows),
        );
        Ok(self.run_script(&sql)?.0.rows_affected)
    }

    fn drop_table(&self, dataset: &str, table: &str) {
        let path = format!(
            "projects/{}/datasets/{dataset}/tables/{table}",
            self.settings.project
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

    /// Creates a staging table beside `def`'s table (expiring by itself) and streams the rows
    /// into it, each with its offset; returns the rows BigQuery refused.
    fn stage_rows(
        &self,
        stage: &TableRef,
        def: &TableDef,
        rows: &[Vec<Cell>],
    ) -> Result<Vec<RefusedRow>, EngineError> {
        let spec = TableSpec {
            project: &self.settings.project,
            dataset: self.dataset(stage.dataset),
            table: stage.name.as_str(),
            columns: insert::staging_columns(def),
            partition_by_day: None,
            cluster_by: &[],
            staging: true,
        };
        self.runtime
            .block_on(insert::create_table(&self.client, &spec))
            .map_err(|source| BigQueryError::Api {
                operation: format!("creating the staging table {stage}"),
                source,
            })?;
        Ok(self.runtime.block_on(insert::insert_rows(
            &self.client,
            &spec,
            &insert::staging_rows(def, rows),
        ))?)
    }

    fn insert_staged(
        &mut self,
        stage: &TableRef,
        def: &TableDef,
        rows: &[Vec<Cell>],
    ) -> Result<InsertOutcome, EngineError> {
        let refused = self.stage_rows(stage, def, rows)?;
        let inserted = self.move_new_rows(stage, def, rows)?;
        Ok(InsertOutcome { inserted, refused })
    }
}

/// The insert of the staged rows whose key is not stored yet. With `range` (the smallest and
/// largest partition value of the rows), stored keys are looked for only in the partitions the
/// rows fall in: the table's definition makes the partition value a function of the key, so a
/// stored row with the same key lies there too, and a constant filter on the partitioning
/// column lets BigQuery skip every other partition instead of scanning the whole table.
fn move_new_rows_sql(
    target: &str,
    stage: &str,
    def: &TableDef,
    range: Option<(Cell, Cell)>,
) -> String {
    let mut matches: Vec<String> = def.key.iter().map(|k| format!("r.{k} = s.{k}")).collect();
    if let (Some(column), Some((first, last))) = (def.partition_day, range) {
        matches.insert(
            0,
            format!(
                "r.{column} BETWEEN {} AND {}",
                first.to_sql_literal(),
                last.to_sql_literal()
            ),
        );
    }
    let list = def.column_names().collect::<Vec<_>>().join(", ");
    let key: Vec<String> = def.key.iter().map(|k| format!("s.{k}")).collect();
    format!(
        "INSERT INTO {target} ({list})\n\
         SELECT {list} FROM {stage} AS s\n\
         WHERE NOT EXISTS (SELECT 1 FROM {target} AS r WHERE {})\n\
         QUALIFY ROW_NUMBER() OVER (PARTITION BY {} ORDER BY s.{}) = 1",
        matches.join(" AND "),
        key.join(", "),
        insert::OFFSET_COLUMN
    )
}

/// The earliest and latest timestamp of the rows in the table's partitioning column; `None`
/// when the table is not partitioned or a row has no timestamp there (then nothing is pruned).
fn partition_range(def: &TableDef, rows: &[Vec<Cell>]) -> Option<(Cell, Cell)> {
    let column = def.partition_day?;
    let index = def.column_names().position(|name| name == column)?;
    let times = rows
        .iter()
        .map(|row| match row.get(index) {
            Some(Cell::Timestamp(t)) => Some(*t),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let first = *times.iter().min()?;
    let last = *times.iter().max()?;
    Some((Cell::Timestamp(first), Cell::Timestamp(last)))
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
        Ok(Box::new(Self::open(&self.settings)?))
    }

    fn describe(&self) -> String {
        if self.emulator {
            format!(
                "BigQuery emulator at {} (project {})",
                self.client.base_url(),
                self.settings.project
            )
        } else {
            format!(
                "BigQuery project {} ({})",
                self.settings.project, self.settings.location
            )
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
            if self.get_exists(&format!(
                "projects/{}/datasets/{name}",
                self.settings.project
            ))? {
                continue;
            }
            let body = serde_json::to_value(
                gcp_bigquery_client::model::dataset::Dataset::new(&self.settings.project, &name)
                    .location(&self.settings.location),
            )
            .unwrap_or(Value::Null);
            let path = format!("projects/{}/datasets", self.settings.project);
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
            self.settings.project,
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

    fn create_table(&mut self, def: &TableDef) -> Result<(), EngineError> {
        let spec = TableSpec {
            project: &self.settings.project,
            dataset: self.dataset(def.table.dataset),
            table: def.table.name.as_str(),
            columns: def.columns.iter().map(|c| (c.name, c.ty)).collect(),
            partition_by_day: def.partition_day,
            cluster_by: def.cluster_by,
            staging: false,
        };
        self.runtime
            .block_on(insert::create_table(&self.client, &spec))
            .map_err(|source| BigQueryError::Api {
                operation: format!("creating table {}.{}", spec.dataset, spec.table),
                source,
            })?;
        Ok(())
    }

    /// Streams the rows into a staging table of their own, then moves those whose key is new
    /// with one query. Streaming into the table directly would rely on insertId
    /// de-duplication, which BigQuery keeps for about a minute only.
    fn insert_new_rows(
        &mut self,
        def: &TableDef,
        rows: &[Vec<Cell>],
    ) -> Result<InsertOutcome, EngineError> {
        if rows.is_empty() {
            return Ok(InsertOutcome::default());
        }
        let tag = uuid::Uuid::now_v7().simple().to_string();
        let stage = def
            .table
            .with_suffix(&format!("__ns_stage_{tag}"))
            .map_err(|e| EngineError::engine(BigQueryError::Setup(e.to_string())))?;
        let inserted = self.insert_staged(&stage, def, rows);
        self.drop_table(self.dataset(stage.dataset), stage.name.as_str());
        inserted
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

    const EVENT_COLUMNS: &[netsentinel_core::Column] = &[
        netsentinel_core::Column::string("id"),
        netsentinel_core::Column::timestamp("start"),
    ];

    fn events(partition_day: Option<&'static str>) -> TableDef {
        TableDef {
            table: TableRef::new(netsentinel_core::Dataset::Raw, "events").unwrap(),
            columns: EVENT_COLUMNS,
            key: &["id"],
            partition_day,
            cluster_by: &[],
        }
    }

    fn at(text: &str) -> Cell {
        Cell::Timestamp(text.parse().unwrap())
    }

    #[test]
    fn the_new_rows_insert_looks_for_stored_keys_only_in_the_rows_partitions() {
        let rows = vec![
            vec![Cell::Text("b".into()), at("2026-12-07T10:05:00Z")],
            vec![Cell::Text("a".into()), at("2026-12-05T23:59:00Z")],
        ];
        let def = events(Some("start"));
        let range = partition_range(&def, &rows);
        assert_eq!(
            range,
            Some((at("2026-12-05T23:59:00Z"), at("2026-12-07T10:05:00Z")))
        );
        let sql = move_new_rows_sql("t", "s", &def, range);
        assert!(
            sql.contains(
                "FROM t AS r WHERE r.start BETWEEN TIMESTAMP '2026-12-05 23:59:00.000000+00' \
                 AND TIMESTAMP '2026-12-07 10:05:00.000000+00' AND r.id = s.id)"
            ),
            "{sql}"
        );
    }

    #[test]
    fn without_a_partition_or_with_a_row_missing_its_time_the_whole_table_is_searched() {
        let timed = vec![Cell::Text("a".into()), at("2026-12-07T10:05:00Z")];
        let untimed = vec![Cell::Text("b".into()), Cell::Null];
        assert_eq!(
            partition_range(&events(None), std::slice::from_ref(&timed)),
            None
        );
        assert_eq!(
            partition_range(&events(Some("start")), &[timed, untimed]),
            None
        );
        let sql = move_new_rows_sql("t", "s", &events(Some("start")), None);
        assert!(sql.contains("FROM t AS r WHERE r.id = s.id)"), "{sql}");
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
