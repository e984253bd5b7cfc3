//! terraform/ against the project it deploys: dataset and topic names, the runner's environment,
//! every pipeline's schedule, and the partitioning, clustering and columns of the tables terraform
//! declares must agree with pipelines.yaml, the SQL steps' config() and the tables netsentinel
//! itself creates. Offline: terraform/ is parsed with hcl-rs, never planned.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hcl::Body;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::common::TestProject;
use netsentinel::alerts::config::SinkKind;
use netsentinel::config::TargetConfig;
use netsentinel::deploy::RequiredEnv;
use netsentinel::ingest::schema;
use netsentinel::project::{Materialization, Project};
use netsentinel_core::{Dataset, TableDef};

/// The terraform files: the locals (literals as JSON, references as "${…}" strings), the
/// resources by (type, name) and the variables by name.
struct Terraform {
    locals: BTreeMap<String, Value>,
    resources: BTreeMap<(String, String), Body>,
    variables: BTreeMap<String, Body>,
}

impl Terraform {
    fn shipped() -> Self {
        Self::parse(&shipped_sources())
    }

    fn parse(sources: &[(String, String)]) -> Self {
        let mut terraform = Terraform {
            locals: BTreeMap::new(),
            resources: BTreeMap::new(),
            variables: BTreeMap::new(),
        };
        for (file, text) in sources {
            let body = hcl::parse(text).unwrap_or_else(|e| panic!("terraform/{file}: {e}"));
            for block in body.blocks() {
                let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
                match (block.identifier(), labels.as_slice()) {
                    ("locals", []) => {
                        for attribute in block.body().attributes() {
                            terraform
                                .locals
                                .insert(attribute.key().to_string(), to_json(attribute.expr()));
                        }
                    }
                    ("resource", [kind, name]) => {
                        terraform
                            .resources
                            .insert((kind.to_string(), name.to_string()), block.body().clone());
                    }
                    ("variable", [name]) => {
                        terraform
                            .variables
                            .insert(name.to_string(), block.body().clone());
                    }
                    _ => {}
                }
            }
        }
        terraform
    }

    fn local<T: DeserializeOwned>(&self, name: &str) -> T {
        let value = self
            .locals
            .get(name)
            .unwrap_or_else(|| panic!("terraform/ has no local.{name}"));
        serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("local.{name} does not have the expected shape: {e}"))
    }

    fn resource(&self, kind: &str, name: &str) -> &Body {
        self.resources
            .get(&(kind.to_string(), name.to_string()))
            .unwrap_or_else(|| panic!("terraform/ has no {kind}.{name}"))
    }
}

fn shipped_sources() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform");
    let mut sources: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("terraform/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "tf"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    sources.sort();
    sources
}

fn to_json(expr: &hcl::Expression) -> Value {
    serde_json::to_value(hcl::Value::from(expr.clone())).expect("HCL values are JSON")
}

/// An attribute of a block as JSON (a reference reads "${local.x}").
fn attr(body: &Body, key: &str) -> Value {
    body.attributes()
        .find(|a| a.key() == key)
        .map_or(Value::Null, |a| to_json(a.expr()))
}

/// A nested block by identifier (and label, for `dynamic "x"`).
fn block<'a>(body: &'a Body, identifier: &str, label: Option<&str>) -> &'a Body {
    body.blocks()
        .find(|b| {
            b.identifier() == identifier
                && label.is_none_or(|l| b.labels().first().is_some_and(|x| x.as_str() == l))
        })
        .map(|b| b.body())
        .unwrap_or_else(|| panic!("no `{identifier}` block"))
}

#[derive(Debug, Deserialize)]
struct ScheduledPipeline {
    schedule: String,
}

#[derive(Debug, Deserialize)]
struct Table {
    dataset: String,
    name: String,
    partition_field: Option<String>,
    clustering: Vec<String>,
    columns: Vec<(String, String)>,
}

/// Everything on which terraform/ and the project disagree, one sentence each.
fn disagreements(tf: &Terraform, project: &Project) -> Vec<String> {
    let mut problems = Vec::new();
    let config = &project.config;
    let target_name: String = tf.local("netsentinel_target");
    let bq = match config.target(Some(&target_name)) {
        Ok((_, TargetConfig::Bigquery(bq))) => bq,
        other => {
            return vec![format!(
                "local.netsentinel_target `{target_name}` is not a bigquery target of pipelines.yaml: {other:?}"
            )];
        }
    };

    // Datasets.
    let datasets: BTreeMap<String, String> = tf.local("datasets");
    for dataset in Dataset::ALL {
        let expected = bq.dataset_name(dataset);
        match datasets.get(dataset.as_str()) {
            Some(name) if *name == expected => {}
            found => problems.push(format!(
                "dataset `{dataset}`: pipelines.yaml names it `{expected}`, terraform local.datasets has {found:?}"
            )),
        }
    }
    let dataset = tf.resource("google_bigquery_dataset", "netsentinel");
    if attr(dataset, "for_each") != "${local.datasets}"
        || attr(dataset, "dataset_id") != "${each.value}"
    {
        problems
            .push("google_bigquery_dataset.netsentinel must create exactly local.datasets".into());
    }
    let location = attr(&tf.variables["bigquery_location"], "default");
    if location != Value::String(bq.location.clone()) {
        problems.push(format!(
            "BigQuery location: pipelines.yaml runs jobs in `{}`, terraform's var.bigquery_location defaults to {location}",
            bq.location
        ));
    }

    // Schedules: every scheduled pipeline has a Cloud Scheduler job with the same cron.
    let scheduled: BTreeMap<String, ScheduledPipeline> = tf.local("pipelines");
    for (name, pipeline) in &config.pipelines {
        let name = name.to_string();
        match (&pipeline.schedule, scheduled.get(&name)) {
            (Some(cron), Some(tf)) if cron.expression == tf.schedule => {
                if cron.expression.split_whitespace().count() != 5 {
                    problems.push(format!(
                        "pipeline `{name}`: Cloud Scheduler takes 5-field cron, pipelines.yaml has `{cron}`"
                    ));
                }
            }
            (Some(cron), Some(tf)) => problems.push(format!(
                "pipeline `{name}`: pipelines.yaml schedules `{cron}`, terraform local.pipelines `{}`",
                tf.schedule
            )),
            (Some(cron), None) => problems.push(format!(
                "pipeline `{name}` is scheduled `{cron}` in pipelines.yaml but has no Cloud Scheduler job (local.pipelines)"
            )),
            (None, Some(tf)) => problems.push(format!(
                "pipeline `{name}` has no schedule in pipelines.yaml, terraform schedules it `{}`",
                tf.schedule
            )),
            (None, None) => {}
        }
    }
    for name in scheduled.keys() {
        if !config.pipelines.keys().any(|p| p.as_str() == name) {
            problems.push(format!(
                "terraform schedules pipeline `{name}`, which pipelines.yaml does not define"
            ));
        }
    }
    let scheduler = tf.resource("google_cloud_scheduler_job", "pipeline");
    if attr(scheduler, "for_each") != "${local.pipelines}"
        || attr(scheduler, "schedule") != "${each.value.schedule}"
        || attr(scheduler, "time_zone") != "Etc/UTC"
    {
        problems.push(
            "google_cloud_scheduler_job.pipeline must fire each of local.pipelines on its schedule, in UTC".into(),
        );
    }
    let job = tf.resource("google_cloud_run_v2_job", "pipeline");
    let container = block(
        block(block(job, "template", None), "template", None),
        "containers",
        None,
    );
    let args = attr(container, "args");
    let wanted_args = [
        "run",
        "${each.key}",
        "--target",
        "${local.netsentinel_target}",
    ];
    if attr(job, "for_each") != "${local.pipelines}"
        || !wanted_args.iter().all(|a| {
            args.as_array()
                .is_some_and(|v| v.contains(&Value::from(*a)))
        })
    {
        problems.push(format!(
            "google_cloud_run_v2_job.pipeline must run `netsentinel run <pipeline> --target <target>` for each of local.pipelines; its args are {args}"
        ));
    }

    // The runner's environment: every ${VAR} the target reads, and no secret in an output.
    let env: BTreeMap<String, String> = tf.local("netsentinel_env");
    let required = RequiredEnv::of(config, Some(&target_name)).expect("target exists");
    for var in &required.values {
        if !env.contains_key(var) {
            problems.push(format!(
                "pipelines.yaml reads ${{{var}}} on `{target_name}`; terraform local.netsentinel_env does not set it"
            ));
        }
    }
    for secret in &required.secrets {
        if env.contains_key(secret) {
            problems.push(format!(
                "{secret} is a secret (secret_env): it must not be a terraform output"
            ));
        }
    }
    if let [var] = bq.project.variables().collect::<Vec<_>>()[..]
        && bq.project.unresolved() == format!("${{{var}}}")
        && env.get(var).map(String::as_str) != Some("${var.project_id}")
    {
        problems.push(format!(
            "the bigquery target's project is ${{{var}}}; local.netsentinel_env must set it to var.project_id"
        ));
    }
    let env_block = block(container, "dynamic", Some("env"));
    if attr(env_block, "for_each") != "${local.netsentinel_env}" {
        problems.push("the Cloud Run job's environment must be local.netsentinel_env".into());
    }

    // The alerts topic: the pubsub sinks of the target publish to terraform's topic.
    let pubsub: BTreeMap<String, String> = tf.local("pubsub");
    let topic = &pubsub["alerts_topic"];
    let expected_topic = format!("projects/{}/topics/{topic}", bq.project.unresolved());
    let mut published = false;
    for sink in config.alerts.iter().flat_map(|a| a.sinks_for(&target_name)) {
        if let SinkKind::Pubsub(sink) = &sink.kind {
            published = true;
            if sink.topic.unresolved() != expected_topic {
                problems.push(format!(
                    "alerts topic: pipelines.yaml publishes to `{}`, terraform creates `{expected_topic}`",
                    sink.topic.unresolved()
                ));
            }
            let ordered = attr(
                tf.resource("google_pubsub_subscription", "alerts"),
                "enable_message_ordering",
            );
            if sink.ordering_key && ordered != Value::Bool(true) {
                problems.push(
                    "the pubsub sink sets ordering_key: the alerts subscription needs enable_message_ordering = true".into(),
                );
            }
        }
    }
    if !published {
        problems.push(format!(
            "terraform creates alerts topic `{topic}` but no pubsub sink publishes to it on `{target_name}`"
        ));
    }
    if attr(tf.resource("google_pubsub_topic", "alerts"), "name") != "${local.pubsub.alerts_topic}"
    {
        problems.push("google_pubsub_topic.alerts must be named local.pubsub.alerts_topic".into());
    }

    // Tables: layout from the raw schema, the steps' config(), or none (ops).
    let tables: BTreeMap<String, Table> = tf.local("tables");
    for (key, table) in &tables {
        problems.extend(table_disagreements(key, table, project));
    }
    for step in project.steps.values() {
        let declared = tables.contains_key(&step.relation.to_string());
        if step.relation.dataset == Dataset::Inferenced && !declared {
            problems.push(format!(
                "{} is not declared in terraform local.tables (inferenced tables are, for their partitioning and retention)",
                step.relation
            ));
        }
    }
    if attr(
        tf.resource("google_bigquery_table", "netsentinel"),
        "for_each",
    ) != "${local.tables}"
    {
        problems.push("google_bigquery_table.netsentinel must create exactly local.tables".into());
    }
    problems
}

fn table_disagreements(key: &str, table: &Table, project: &Project) -> Vec<String> {
    let mut problems = Vec::new();
    if key != format!("{}.{}", table.dataset, table.name) {
        problems.push(format!("local.tables key `{key}` must be `dataset.name`"));
    }
    let step = project
        .steps
        .values()
        .find(|s| s.relation.to_string() == key);
    let (partition, clustering): (Option<String>, Vec<String>) = match (
        table.dataset.as_str(),
        step,
    ) {
        ("raw", _) => {
            let def = match table.name.as_str() {
                "netlog_events" => schema::events_def(),
                "netlog_rejects" => schema::rejects_def(),
                other => return vec![format!("raw.{other}: ingest creates no such table")],
            };
            problems.extend(raw_column_disagreements(key, table, &def, project));
            layout_of(&def)
        }
        (_, Some(step)) => {
            if step.config.materialized != Materialization::Incremental {
                problems.push(format!(
                    "{key}: its step is materialized {:?}, so every run replaces the table terraform made",
                    step.config.materialized
                ));
            }
            let partition = step.config.partition_by.as_deref().map(|p| {
                day_partition_column(p).unwrap_or_else(|| format!("<{p}: not a day partition>"))
            });
            (
                partition,
                step.config
                    .cluster_by
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
            )
        }
        ("ops", None) => (None, Vec::new()),
        (_, None) => {
            return vec![format!(
                "{key}: no step builds it and it is not a raw or ops table"
            )];
        }
    };
    if table.partition_field != partition {
        problems.push(format!(
            "{key}: netsentinel partitions it by day on {partition:?}, terraform on {:?}",
            table.partition_field
        ));
    }
    if table.clustering != clustering {
        problems.push(format!(
            "{key}: netsentinel clusters it by {clustering:?}, terraform by {:?}",
            table.clustering
        ));
    }
    problems
}

fn layout_of(def: &TableDef) -> (Option<String>, Vec<String>) {
    (
        def.partition_day.map(str::to_string),
        def.cluster_by.iter().map(|c| c.to_string()).collect(),
    )
}

/// Raw columns as ingest creates them (in order) and as pipelines.yaml's `sources:` lists them.
fn raw_column_disagreements(
    key: &str,
    table: &Table,
    def: &TableDef,
    project: &Project,
) -> Vec<String> {
    let mut problems = Vec::new();
    let ingest: Vec<(String, String)> = def
        .columns
        .iter()
        .map(|c| (c.name.to_string(), c.ty.as_sql().to_string()))
        .collect();
    if table.columns != ingest {
        problems.push(format!(
            "{key}: ingest creates columns {ingest:?}, terraform declares {:?}",
            table.columns
        ));
    }
    let declared: Option<BTreeSet<(String, String)>> = project
        .config
        .sources
        .get(&Dataset::Raw)
        .and_then(|tables| tables.iter().find(|(name, _)| name.as_str() == table.name))
        .map(|(_, source)| {
            source
                .columns
                .iter()
                .map(|(n, t)| (n.to_string(), t.clone()))
                .collect()
        });
    let terraform: BTreeSet<(String, String)> = table.columns.iter().cloned().collect();
    if declared.as_ref().is_some_and(|d| *d != terraform) {
        problems.push(format!(
            "{key}: pipelines.yaml sources list columns {declared:?}, terraform declares {terraform:?}"
        ));
    }
    problems
}

/// The column a `partition_by` expression partitions by day on: `DATE(c)`,
/// `TIMESTAMP_TRUNC(c, DAY)`, `DATE_TRUNC(c, DAY)`. Terraform declares day partitions only.
fn day_partition_column(expression: &str) -> Option<String> {
    let compact: String = expression.split_whitespace().collect();
    let (function, rest) = compact.split_once('(')?;
    let arguments = rest.strip_suffix(')')?;
    match (
        function.to_ascii_uppercase().as_str(),
        arguments.split_once(','),
    ) {
        ("DATE", None) => Some(arguments.to_string()),
        ("TIMESTAMP_TRUNC" | "DATE_TRUNC", Some((column, unit)))
            if unit.eq_ignore_ascii_case("DAY") =>
        {
            Some(column.to_string())
        }
        _ => None,
    }
}

fn load(project: &TestProject) -> Project {
    Project::load(project.path()).expect("project loads")
}

fn edit(project: &TestProject, file: &str, from: &str, to: &str) {
    let path = project.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} no longer contains {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

fn assert_reported(problems: &[String], needles: &[&str]) {
    assert!(
        problems
            .iter()
            .any(|p| needles.iter().all(|n| p.contains(n))),
        "expected a disagreement mentioning {needles:?}, got {problems:#?}"
    );
}

#[test]
fn terraform_agrees_with_the_shipped_project() {
    let project = Project::load(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("shipped project");
    let problems = disagreements(&Terraform::shipped(), &project);
    assert!(
        problems.is_empty(),
        "terraform/ disagrees with the project:\n{problems:#?}"
    );
}

#[test]
fn a_changed_schedule_is_caught_on_either_side() {
    let project = TestProject::shipped();
    edit(
        &project,
        "pipelines.yaml",
        "\"*/5 * * * *\"",
        "\"*/10 * * * *\"",
    );
    let problems = disagreements(&Terraform::shipped(), &load(&project));
    assert_reported(&problems, &["`detect`", "*/10 * * * *", "*/5 * * * *"]);

    let sources: Vec<(String, String)> = shipped_sources()
        .into_iter()
        .map(|(file, text)| (file, text.replace("\"0 3 * * *\"", "\"0 4 * * *\"")))
        .collect();
    let shipped = Project::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let problems = disagreements(&Terraform::parse(&sources), &shipped);
    assert_reported(&problems, &["`train`", "0 4 * * *"]);
}

#[test]
fn a_renamed_dataset_is_caught() {
    let project = TestProject::shipped();
    edit(
        &project,
        "pipelines.yaml",
        "ops: netlog_ops",
        "ops: netlog_state",
    );
    let problems = disagreements(&Terraform::shipped(), &load(&project));
    assert_reported(&problems, &["dataset `ops`", "netlog_state", "netlog_ops"]);
}

#[test]
fn a_renamed_alerts_topic_is_caught() {
    let project = TestProject::shipped();
    edit(
        &project,
        "pipelines.yaml",
        "topics/netlog-alerts",
        "topics/netlog-anomalies",
    );
    let problems = disagreements(&Terraform::shipped(), &load(&project));
    assert_reported(&problems, &["alerts topic", "netlog-anomalies"]);
}

#[test]
fn changed_partitioning_or_clustering_in_a_step_is_caught() {
    let project = TestProject::shipped();
    let file = "sql/inferenced/netlog_anomalies.sql";
    edit(
        &project,
        file,
        "cluster_by=['subscriberId', 'dst_subnet']",
        "cluster_by=['dst_subnet']",
    );
    edit(
        &project,
        file,
        "partition_by='DATE(window_start)'",
        "partition_by='DATE(scored_at)'",
    );
    let problems = disagreements(&Terraform::shipped(), &load(&project));
    assert_reported(
        &problems,
        &[
            "inferenced.netlog_anomalies",
            "clusters",
            "[\"dst_subnet\"]",
        ],
    );
    assert_reported(
        &problems,
        &["inferenced.netlog_anomalies", "scored_at", "window_start"],
    );
}

#[test]
fn an_env_var_terraform_does_not_provide_is_caught() {
    let project = TestProject::shipped();
    edit(
        &project,
        "pipelines.yaml",
        "project: ${GCP_PROJECT}",
        "project: ${BQ_PROJECT}",
    );
    let problems = disagreements(&Terraform::shipped(), &load(&project));
    assert_reported(&problems, &["${BQ_PROJECT}", "local.netsentinel_env"]);
}

#[test]
fn day_partitions_are_recognized_in_their_spellings() {
    assert_eq!(
        day_partition_column("DATE(window_start)").as_deref(),
        Some("window_start")
    );
    assert_eq!(
        day_partition_column("timestamp_trunc(ts, DAY)").as_deref(),
        Some("ts")
    );
    assert_eq!(day_partition_column("TIMESTAMP_TRUNC(ts, HOUR)"), None);
    assert_eq!(day_partition_column("window_start"), None);
}

/// BigQuery's name for what the local engine reports: the GoogleSQL types netsentinel writes
/// become these DuckDB types (src/googlesql/types.rs).
fn bigquery_type(duckdb: &str) -> String {
    match duckdb {
        "VARCHAR" => "STRING",
        "BIGINT" | "INTEGER" | "HUGEINT" => "INT64",
        "DOUBLE" | "FLOAT" => "FLOAT64",
        "BOOLEAN" => "BOOL",
        "TIMESTAMP" | "TIMESTAMP WITH TIME ZONE" => "TIMESTAMP",
        other => other,
    }
    .to_string()
}

/// Terraform's tables exist before netsentinel's first run, so netsentinel must find the columns
/// it writes, in its order (an incremental step inserts `SELECT *`), and every raw, inferenced and
/// ops table it makes must be one terraform declares.
#[test]
fn terraform_tables_have_the_columns_netsentinel_writes() {
    let project = TestProject::shipped();
    project.run_ok(&[
        "generate",
        "--into-warehouse",
        "--subscribers",
        "30",
        "--duration",
        "15m",
        "--anomaly-rate",
        "0.05",
    ]);
    project.run_ok(&["run", "train"]);
    project.run_ok(&["run", "detect", "drift"]);
    let rows = project.query_csv(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns \
         WHERE table_schema IN ('raw', 'inferenced', 'ops') ORDER BY table_schema, table_name, ordinal_position",
    );
    let mut created: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for row in rows {
        let fields: Vec<&str> = row.splitn(4, ',').collect();
        let [dataset, table, column, ty] = fields[..] else {
            panic!("unexpected row {row}")
        };
        created
            .entry(format!("{dataset}.{table}"))
            .or_default()
            .push((column.to_string(), bigquery_type(ty.trim_matches('"'))));
    }
    let tables: BTreeMap<String, Table> = Terraform::shipped().local("tables");
    let declared: BTreeMap<String, Vec<(String, String)>> = tables
        .into_iter()
        .map(|(key, t)| (key, t.columns))
        .collect();
    assert_eq!(
        declared.keys().collect::<Vec<_>>(),
        created.keys().collect::<Vec<_>>(),
        "terraform declares other raw/inferenced/ops tables than netsentinel creates"
    );
    for (key, columns) in &created {
        assert_eq!(
            &declared[key], columns,
            "{key}: terraform's columns (left) differ from netsentinel's"
        );
    }
}

#[test]
fn env_from_terraform_prints_exports_a_shell_can_eval() {
    let project = TestProject::shipped();
    project.write(
        "outputs.json",
        r#"{
  "netsentinel_env": {"sensitive": false, "type": ["object", {"GCP_PROJECT": "string"}], "value": {"GCP_PROJECT": "acme-'prod'"}},
  "runner_service_account": {"sensitive": false, "type": "string", "value": "runner@acme.iam.gserviceaccount.com"}
}"#,
    );
    let outputs = project.path().join("outputs.json");
    let out = project.run_ok(&["env", "--from-terraform", outputs.to_str().unwrap()]);
    assert_eq!(out, "export GCP_PROJECT='acme-'\\''prod'\\'''\n");
    let shell = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{out}printf %s \"$GCP_PROJECT\""))
        .output()
        .expect("sh runs");
    assert_eq!(String::from_utf8_lossy(&shell.stdout), "acme-'prod'");

    project.write(
        "partial.json",
        r#"{"netsentinel_env": {"sensitive": false, "type": "map", "value": {"OTHER": "x"}}}"#,
    );
    let partial = project.path().join("partial.json");
    let failed = project
        .command(&["env", "--from-terraform", partial.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(
        failed.stdout.is_empty(),
        "nothing is exported from a partial environment"
    );
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("GCP_PROJECT"), "{stderr}");
}
