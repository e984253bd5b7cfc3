//! The `netsentinel` command line: argument parsing (clap) and the commands' output.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use chrono::{DateTime, FixedOffset, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use netsentinel::compile;
use netsentinel::config::TargetConfig;
use netsentinel::demo::{self, DemoSummary};
use netsentinel::deploy::{self, RequiredEnv};
use netsentinel::engine::{self, Warehouse};
use netsentinel::generate::{self, Drift, GeneratorConfig, StopAt};
use netsentinel::ingest::follow::{self, FollowConfig, WindowClock};
use netsentinel::ingest::sources;
use netsentinel::ingest::{self, Format, IngestSummary, InputFormat, ReadOptions};
use netsentinel::metrics::Metrics;
use netsentinel::output::{self, OutputFormat};
use netsentinel::plan::{self, Bytes, PlanReport};
use netsentinel::project::Project;
use netsentinel::registry;
use netsentinel::render::Naming;
use netsentinel::runner::{RunError, RunReport, Runner, StepOutcome};
use netsentinel::schedule::Scheduler;
use netsentinel::service::{EventsRoute, Service, ServiceOptions};
use netsentinel::sqltest;
use netsentinel::vars::Vars;

#[derive(Debug, Parser)]
#[command(
    name = "netsentinel",
    version,
    about = "SQL-first anomaly detection for network logs, on BigQuery ML or an embedded DuckDB",
    long_about = "netsentinel renders the Tera-templated GoogleSQL under sql/, runs it as a DAG of steps, trains k-means models with CREATE MODEL and scores new traffic with ML.DETECT_ANOMALIES. The default target runs everything locally in one DuckDB file."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Project directory: holds pipelines.yaml and sql/.
    #[arg(
        long,
        global = true,
        default_value = ".",
        env = "NETSENTINEL_PROJECT_DIR"
    )]
    pub project_dir: PathBuf,
    /// Target from pipelines.yaml (default: its default_target).
    #[arg(long, global = true)]
    pub target: Option<String>,
    /// Override a declared var, typed by its declaration; repeatable.
    #[arg(long = "var", global = true, value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less logging (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline locally: generate labelled netlog with injected anomalies, ingest
    /// it, train, detect, and summarize. Safe to rerun.
    Demo(DemoArgs),
    /// Generate realistic netlog with labelled injected anomalies (deterministic for a seed).
    Generate(GenerateArgs),
    /// Load netlog JSONL/CSV, CICFlowMeter CSV or Zeek conn.log files (or - for standard input)
    /// into raw.netlog_events; bad rows go to raw.netlog_rejects. Re-ingesting a file adds nothing.
    Ingest(IngestArgs),
    /// Render every step's SQL to target/compiled/<target>/ without connecting anywhere.
    Compile(CompileArgs),
    /// Run pipelines (all of them, in pipelines.yaml order, when none is named).
    Run(RunArgs),
    /// Render and dry-run every step of the pipelines (all steps when none is named): bytes each
    /// step would scan on BigQuery against its cap, SQL validated with EXPLAIN locally. Runs nothing.
    Plan(RunArgs),
    /// Run any statement, BigQuery ML ones included, and print the result.
    Query(QueryArgs),
    /// Run the SQL unit tests under tests/sql/ and their steps' assertions, offline in a
    /// throwaway in-memory database (never the target's warehouse).
    Test(TestArgs),
    /// Run the pipelines on their pipelines.yaml schedules until SIGINT/SIGTERM, serving
    /// /healthz and /metrics. One scheduler per warehouse.
    Schedule(ScheduleArgs),
    /// Print the environment variables pipelines.yaml needs (every ${VAR} it references) as shell
    /// exports, from `terraform output -json`: eval "$(netsentinel env --from-terraform FILE)".
    Env(EnvArgs),
    /// List the registered versions of the versioned model (champion, challengers, retired), or
    /// `models promote VERSION` to make one the champion by hand (rollback or roll forward).
    Models(ModelsArgs),
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub action: Option<ModelsAction>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Make VERSION (netlog_kmeans_v3, or 3) the champion; the current champion is retired.
    Promote { version: String },
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Pipelines to schedule (every pipeline with a `schedule:` when none is named).
    pub pipelines: Vec<String>,
    /// Where to serve /healthz and /metrics (default: `scheduler.listen`, 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The JSON of `terraform output -json` for terraform/ (- reads standard input).
    #[arg(long, value_name = "FILE")]
    pub from_terraform: PathBuf,
    /// Also print a `netsentinel_env` output that terraform marks sensitive.
    #[arg(long)]
    pub include_sensitive: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Only tests of this step (features/netlog_windows or netlog_windows), dataset, test name or file.
    pub selector: Option<String>,
    /// Also write the results as JUnit XML to this file, for CI.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GeneratorArgs {
    /// Random seed: the same seed and options give byte-identical data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of subscribers.
    #[arg(long, default_value_t = 100)]
    pub subscribers: u32,
    /// Stop after this many events (instead of --duration).
    #[arg(long, conflicts_with = "duration")]
    pub events: Option<u64>,
    /// Span of traffic to generate, e.g. 30m, 2h.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Mean time between one subscriber's flows, e.g. 1.8s.
    #[arg(long = "average-time-between-requests", value_parser = humantime::parse_duration, default_value = "1800ms")]
    pub average_gap: std::time::Duration,
    /// Probability that a subscriber-minute hosts an injected anomaly episode.
    #[arg(long, default_value_t = GeneratorConfig::default().anomaly_rate)]
    pub anomaly_rate: f64,
    /// Start of the generated traffic (RFC 3339).
    #[arg(long)]
    pub start: Option<DateTime<Utc>>,
    /// From this time (RFC 3339) on, traffic drifts as --drift-volume and --drift-destinations say.
    #[arg(long)]
    pub drift_at: Option<DateTime<Utc>>,
    /// After --drift-at, each subscriber sends this many times as many flows, each as large.
    #[arg(long, requires = "drift_at")]
    pub drift_volume: Option<f64>,
    /// After --drift-at, this share (0..1) of flows goes to destinations the subscriber never
    /// used before, in subnets of its usual pool it did not use.
    #[arg(long, requires = "drift_at")]
    pub drift_destinations: Option<f64>,
}

impl GeneratorArgs {
    fn config(&self) -> anyhow::Result<GeneratorConfig> {
        let defaults = GeneratorConfig::default();
        let stop = match (self.events, self.duration) {
            (Some(n), _) => StopAt::Events(n),
            (None, Some(d)) => {
                StopAt::Duration(chrono::Duration::from_std(d).context("--duration is too long")?)
            }
            (None, None) => defaults.stop,
        };
        let config = GeneratorConfig {
            seed: self.seed,
            subscribers: self.subscribers,
            stop,
            average_gap: self.average_gap,
            anomaly_rate: self.anomaly_rate,
            start: self.start.unwrap_or(defaults.start),
            drift: self.drift_at.map(|at| Drift {
                at,
                volume: self.drift_volume.unwrap_or(1.0),
                new_destinations: self.drift_destinations.unwrap_or(0.0),
            }),
        };
        config.validate()?;
        Ok(config)
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub generator: GeneratorArgs,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub generator: GeneratorArgs,
    /// Write to this file instead of standard output.
    #[arg(long, conflicts_with = "into_warehouse")]
    pub out: Option<PathBuf>,
    /// Output format (default: from --out's extension, else jsonl).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Load the events straight into the target's raw.netlog_events.
    #[arg(long)]
    pub into_warehouse: bool,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files to load; - reads standard input.
    #[arg(required_unless_present_any = ["http", "subscription"])]
    pub files: Vec<String>,
    /// Input format (default: from each file's first line, then its extension).
    #[arg(long, value_enum)]
    pub format: Option<InputFormat>,
    /// UTC offset of timestamps written without a zone (CICFlowMeter's local capture time),
    /// e.g. -03:00.
    #[arg(long, default_value = "+00:00", value_parser = parse_utc_offset, allow_hyphen_values = true)]
    pub utc_offset: FixedOffset,
    /// Rows per committed batch.
    #[arg(long, default_value_t = ingest::DEFAULT_BATCH_ROWS)]
    pub batch_rows: usize,
    #[command(flatten)]
    pub follow: FollowArgs,
}

#[derive(Debug, Args)]
pub struct FollowArgs {
    /// Keep ingesting NDJSON as it arrives, from - (standard input, until it ends), --http and
    /// --subscription, until SIGINT/SIGTERM; windows close by event time (vars window_seconds
    /// and allowed_lateness_seconds) and late events become rejects.
    #[arg(long)]
    pub follow: bool,
    /// Accept NDJSON at POST /v1/events on --listen, answered once committed. Off loopback a
    /// bearer token is required, read from NETSENTINEL_INGEST_TOKEN.
    #[arg(long, requires = "follow")]
    pub http: bool,
    /// Pull NDJSON messages from this Pub/Sub subscription (projects/P/subscriptions/S); each
    /// is acked once its rows are committed.
    #[arg(long, requires = "follow", value_name = "NAME")]
    pub subscription: Option<String>,
    /// Where /healthz and /metrics (and POST /v1/events) are served.
    #[arg(long, default_value = "127.0.0.1:9465", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Commit once this many rows wait…
    #[arg(long, default_value_t = 5000)]
    pub commit_rows: usize,
    /// …or this long after the first of them arrived.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub commit_interval: std::time::Duration,
    /// Also run the detect pipeline (and its alerts) this often, on the windows closed since.
    #[arg(long, requires = "follow", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub detect_every: Option<std::time::Duration>,
    /// The pipeline --detect-every runs.
    #[arg(long, default_value = "detect")]
    pub detect_pipeline: String,
    /// With --detect-every, run the drift pipeline this often too (0s: never). It measures
    /// the windows of the last `drift_batch_minutes`, so keep the two alike.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub drift_every: std::time::Duration,
    /// The pipeline --drift-every runs; a project without it measures no drift in-process.
    #[arg(long, default_value = "drift")]
    pub drift_pipeline: String,
    /// The largest POST /v1/events body accepted, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_body_bytes: usize,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Output directory (default: target/compiled/<target>).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Pipelines to run.
    pub pipelines: Vec<String>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL to run (GoogleSQL).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub sql: Option<String>,
    /// Read the SQL from a file.
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// A loaded project with the target and vars of this invocation.
struct Session {
    project: Project,
    target: String,
    target_config: TargetConfig,
    vars: Vars,
}

impl Session {
    fn load(global: &GlobalArgs) -> anyhow::Result<Self> {
        let project = Project::load(&global.project_dir)?;
        let (target, target_config) = project.config.target(global.target.as_deref())?;
        let (target, target_config) = (target.to_string(), target_config.clone());
        let vars = project
            .config
            .default_vars()
            .with_overrides(&project.config.var_types(), &global.vars)?;
        Ok(Session {
            project,
            target,
            target_config,
            vars,
        })
    }

    fn open_warehouse(&self) -> Result<Box<dyn Warehouse>, engine::EngineError> {
        engine::open(&self.project.root, &self.target, &self.target_config)
    }

    fn runner(&self) -> Runner<'_> {
        Runner {
            project: &self.project,
            vars: &self.vars,
            target: &self.target,
            stop: None,
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo_command(&cli.global, &args),
        Command::Generate(args) => generate_command(&cli.global, &args),
        Command::Ingest(args) => ingest_command(&cli.global, &args),
        Command::Compile(args) => compile_command(&cli.global, &args),
        Command::Run(args) => run_command(&cli.global, &args),
        Command::Plan(args) => plan_command(&cli.global, &args),
        Command::Query(args) => query_command(&cli.global, &args),
        Command::Test(args) => test_command(&cli.global, &args),
        Command::Schedule(args) => schedule_command(&cli.global, &args),
        Command::Env(args) => env_command(&cli.global, &args),
        Command::Models(args) => models_command(&cli.global, &args),
    }
}

fn schedule_command(global: &GlobalArgs, args: &ScheduleArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    let config = &session.project.config.scheduler;
    let metrics = Arc::new(Metrics::default());
    let stop = Arc::new(AtomicBool::new(false));
    let service = Service::start(ServiceOptions {
        listen: args.listen.unwrap_or(config.listen),
        metrics: metrics.clone(),
        stop: stop.clone(),
        events: None,
    })?;
    println!("scheduler serving http://{}/metrics", service.addr);
    let open = || session.open_warehouse();
    Scheduler {
        project: &session.project,
        vars: &session.vars,
        target: &session.target,
        config,
        open: &open,
        metrics: &metrics,
        stop: &stop,
    }
    .run(&args.pipelines)?;
    Ok(())
}

fn demo_command(global: &GlobalArgs, args: &DemoArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    let config = args.generator.config()?;
    let mut warehouse = session.open_warehouse()?;
    let summary = demo::run_demo(
        &session.project,
        &session.target,
        warehouse.as_mut(),
        &session.vars,
        &config,
    )?;
    print_demo_summary(&summary)?;
    Ok(())
}

fn print_demo_summary(summary: &DemoSummary) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "netsentinel demo")?;
    writeln!(
        out,
        "  generated   {} events -> {}",
        summary.events_generated,
        summary.data_file.display()
    )?;
    write_ingest_summary(&mut out, &summary.ingest, None)?;
    for run in &summary.runs {
        write_run_report(&mut out, run)?;
    }
    writeln!(
        out,
        "  scored      {} windows, {} anomalous",
        summary.windows_scored, summary.anomalies
    )?;
    writeln!(
        out,
        "\nAnomalies by injected kind (ground truth from the generator):"
    )?;
    writeln!(out, "{}", output::table(&summary.by_kind))?;
    writeln!(out, "\nTop anomalies:")?;
    writeln!(out, "{}", output::table(&summary.top))?;
    writeln!(out, "\nWarehouse: {}", summary.warehouse)?;
    writeln!(
        out,
        "Explore it: netsentinel query \"SELECT * FROM inferenced.netlog_anomalies WHERE is_anomaly ORDER BY normalized_distance DESC LIMIT 20\""
    )?;
    writeln!(
        out,
        "Alerts:     netsentinel query \"SELECT alert_id, status, severity, subscriber, window_start, reason FROM ops.alert_outbox ORDER BY window_start\""
    )?;
    Ok(())
}

/// `late`: how many of the rejects were late events, where the ingest checks lateness.
fn write_ingest_summary(
    out: &mut impl Write,
    summary: &IngestSummary,
    late: Option<u64>,
) -> std::io::Result<()> {
    let late = late.map(|n| format!("{n} late; ")).unwrap_or_default();
    writeln!(
        out,
        "  ingested    {} rows read: {} new events, {} already stored, {} rejected ({late}see raw.netlog_rejects)",
        summary.rows_read,
        summary.load.events_inserted,
        summary.load.events_duplicate,
        summary.rows_rejected
    )
}

fn write_run_report(out: &mut impl Write, report: &RunReport) -> std::io::Result<()> {
    let resumed = if report.resumed { " (resumed)" } else { "" };
    writeln!(
        out,
        "  run         {} {}{resumed}",
        report.pipeline, report.run_id
    )?;
    for step in &report.steps {
        match &step.outcome {
            StepOutcome::Ran {
                duration,
                rows_affected,
            } => writeln!(
                out,
                "                {:<36} {:>8.2}s  {rows_affected} rows",
                step.step,
                duration.as_secs_f64()
            )?,
            StepOutcome::Skipped => writeln!(
                out,
                "                {:<36} skipped (done before)",
                step.step
            )?,
        }
        for check in &step.assertions {
            let status = match (check.failed(), check.blocks()) {
                (false, _) => "ok",
                (true, false) => "WARN",
                (true, true) => "FAIL",
            };
            writeln!(out, "                  assert {:<45} {status}", check.name)?;
        }
        for note in &step.notes {
            writeln!(out, "                  {note}")?;
        }
    }
    if let Some(triggered) = &report.triggered {
        writeln!(out, "  drift policy fired: {} runs now", triggered.pipeline)?;
        write_run_report(out, triggered)?;
    }
    Ok(())
}

fn generate_command(global: &GlobalArgs, args: &GenerateArgs) -> anyhow::Result<()> {
    let config = args.generator.config()?;
    let events = generate::generate(&config)?;
    if args.into_warehouse {
        let session = Session::load(global)?;
        let mut warehouse = session.open_warehouse()?;
        let source = format!("generate:seed={}", config.seed);
        let summary = ingest::ingest_events(
            warehouse.as_mut(),
            events,
            &source,
            None,
            ingest::DEFAULT_BATCH_ROWS,
        )?;
        write_ingest_summary(&mut std::io::stdout().lock(), &summary, None)?;
        return Ok(());
    }
    let format = args
        .format
        .or_else(|| args.out.as_deref().and_then(Format::from_path))
        .unwrap_or(Format::Jsonl);
    let (writer, destination): (Box<dyn Write>, String) = match &args.out {
        Some(path) => (
            Box::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ),
            path.display().to_string(),
        ),
        None => (Box::new(std::io::stdout().lock()), "standard output".into()),
    };
    let mut writer = BufWriter::with_capacity(1 << 20, writer);
    let written = match format {
        Format::Jsonl => generate::write_jsonl(events, &mut writer),
        Format::Csv => generate::write_csv(events, &mut writer),
    }
    .with_context(|| format!("writing to {destination}"))?;
    writer.flush()?;
    tracing::info!(events = written, destination, "generated");
    Ok(())
}

fn ingest_command(global: &GlobalArgs, args: &IngestArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    if args.follow.follow {
        return follow_command(&session, args);
    }
    let mut warehouse = session.open_warehouse()?;
    let options = ReadOptions {
        format: args.format,
        utc_offset: args.utc_offset,
    };
    let summary = ingest::ingest_files(warehouse.as_mut(), &args.files, &options, args.batch_rows)?;
    write_ingest_summary(&mut std::io::stdout().lock(), &summary, None)?;
    Ok(())
}

const INGEST_TOKEN_VAR: &str = "NETSENTINEL_INGEST_TOKEN";

fn follow_command(session: &Session, args: &IngestArgs) -> anyhow::Result<()> {
    let follow_args = &args.follow;
    let stdin = match args.files.as_slice() {
        [] => false,
        [only] if only == "-" => true,
        _ => bail!(
            "--follow reads standard input (-), --http and --subscription; to load files, drop --follow"
        ),
    };
    let metrics = Arc::new(Metrics::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (receipts, received) = std::sync::mpsc::sync_channel(RECEIPT_QUEUE);
    let events = follow_args.http.then(|| EventsRoute {
        receipts: receipts.clone(),
        max_body_bytes: follow_args.max_body_bytes,
        token: std::env::var(INGEST_TOKEN_VAR)
            .ok()
            .filter(|t| !t.is_empty()),
        token_env: INGEST_TOKEN_VAR.to_string(),
    });
    let service = Service::start(ServiceOptions {
        listen: follow_args.listen,
        metrics: metrics.clone(),
        stop: stop.clone(),
        events,
    })?;
    if follow_args.http {
        println!("accepting POST http://{}/v1/events", service.addr);
    }
    println!("serving http://{}/metrics", service.addr);
    if stdin {
        sources::stdin(receipts.clone());
    }
    let puller = follow_args
        .subscription
        .clone()
        .map(|subscription| sources::pubsub(subscription, receipts.clone(), stop.clone()));
    // Input ends when every source has: the committer sees the channel close.
    drop(receipts);

    let clock = WindowClock::from_vars(&session.vars);
    if clock.is_none() {
        tracing::warn!("vars window_seconds is not declared: no event is treated as late");
    }
    let config = FollowConfig {
        commit_rows: follow_args.commit_rows,
        commit_interval: follow_args.commit_interval,
        clock,
    };
    let cadences = in_process_runs(session, follow_args)?;
    let mut warehouse = session.open_warehouse()?;
    // Before the second session exists: two sessions creating the same tables conflict.
    warehouse.ensure_datasets()?;
    let detection = if cadences.is_empty() {
        None
    } else {
        Some(warehouse.another_session()?)
    };
    let ingest_done = AtomicBool::new(false);
    let summary = std::thread::scope(|scope| {
        if let Some(mut detection_warehouse) = detection {
            let (cadences, ingest_done, stop, metrics) =
                (&cadences, &ingest_done, &*stop, &*metrics);
            scope.spawn(move || {
                let runner = Runner {
                    stop: Some(stop),
                    ..session.runner()
                };
                follow::repeat_until(cadences, ingest_done, |pipeline| {
                    run_in_process(&runner, detection_warehouse.as_mut(), pipeline, metrics)
                });
            });
        }
        let summary = follow::follow(warehouse.as_mut(), &received, &config, &stop, &metrics);
        // A detection run in progress finishes; no new one starts.
        ingest_done.store(true, std::sync::atomic::Ordering::SeqCst);
        summary
    })?;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    // Receipts still queued are dropped, which nacks their messages for redelivery.
    drop(received);
    if let Some(puller) = puller {
        match puller.join() {
            Ok(Err(error)) => bail!(error),
            Err(_) => bail!("the Pub/Sub puller panicked"),
            Ok(Ok(())) => {}
        }
    }
    drop(service);
    write_ingest_summary(
        &mut std::io::stdout().lock(),
        &summary.ingest(),
        Some(summary.late),
    )?;
    Ok(())
}

/// What `--detect-every` and `--drift-every` run beside the ingest.
fn in_process_runs<'a>(
    session: &Session,
    args: &'a FollowArgs,
) -> anyhow::Result<Vec<follow::Cadence<'a>>> {
    let Some(every) = args.detect_every else {
        return Ok(Vec::new());
    };
    session.project.pipeline(&args.detect_pipeline)?;
    let mut cadences = vec![follow::Cadence {
        pipeline: &args.detect_pipeline,
        every,
    }];
    if args.drift_every.is_zero() {
        return Ok(cadences);
    }
    if session.project.pipeline(&args.drift_pipeline).is_ok() {
        cadences.push(follow::Cadence {
            pipeline: &args.drift_pipeline,
            every: args.drift_every,
        });
    } else {
        tracing::warn!(
            pipeline = %args.drift_pipeline,
            "pipelines.yaml has no such pipeline: drift is not measured in-process"
        );
    }
    Ok(cadences)
}

/// One in-process run; a failed one is logged and counted, and the next tries again.
fn run_in_process(
    runner: &Runner<'_>,
    warehouse: &mut dyn Warehouse,
    pipeline: &str,
    metrics: &Metrics,
) {
    match runner.run_pipeline(warehouse, pipeline) {
        Ok(report) => metrics.run_succeeded(&report, Utc::now()),
        // Shutting down between steps is no failure: the run is recorded and resumes next time.
        Err(error @ RunError::Interrupted { .. }) => tracing::info!(pipeline, %error),
        Err(error) => {
            metrics.run_failed(pipeline);
            tracing::error!(pipeline, %error, "in-process run failed; trying again next time");
        }
    }
}

/// Receipts waiting for the committer; beyond this, sources wait (HTTP answers 503).
const RECEIPT_QUEUE: usize = 4096;

/// `+02:00`, `-0300`, or `UTC`/`Z`.
fn parse_utc_offset(text: &str) -> Result<FixedOffset, String> {
    if text.eq_ignore_ascii_case("utc") || text.eq_ignore_ascii_case("z") {
        return Ok(FixedOffset::east_opt(0).expect("zero is a valid offset"));
    }
    text.parse()
        .map_err(|_| format!("`{text}` is not a UTC offset such as +02:00 or -03:00"))
}

fn compile_command(global: &GlobalArgs, args: &CompileArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    let (name, target) = session.project.config.target(Some(&session.target))?;
    let naming = Naming::for_target(name, target)?;
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| compile::compiled_dir(&session.project.root, name));
    let written = compile::compile(&session.project, &naming, &session.vars, &out_dir)?;
    println!(
        "compiled {} file(s) for target `{name}` into {}",
        written.len(),
        display_relative(&out_dir, &session.project.root)
    );
    Ok(())
}

fn display_relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn run_command(global: &GlobalArgs, args: &RunArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    let pipelines = if args.pipelines.is_empty() {
        session.project.pipeline_names()
    } else {
        args.pipelines.clone()
    };
    if pipelines.is_empty() {
        bail!("pipelines.yaml defines no pipelines");
    }
    let mut warehouse = session.open_warehouse()?;
    let runner = session.runner();
    let mut out = std::io::stdout().lock();
    for pipeline in &pipelines {
        let report = runner.run_pipeline(warehouse.as_mut(), pipeline)?;
        write_run_report(&mut out, &report)?;
    }
    Ok(())
}

fn plan_command(global: &GlobalArgs, args: &RunArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    let mut warehouse = session.open_warehouse()?;
    let report = plan::plan(
        &session.project,
        &session.vars,
        &session.target,
        warehouse.as_mut(),
        &args.pipelines,
    )?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "plan for target `{}` ({})",
        session.target,
        warehouse.describe()
    )?;
    write_plan(&mut out, &report)?;
    if !report.ok() {
        bail!("the plan has invalid steps or steps over their byte cap (see above); nothing ran");
    }
    Ok(())
}

fn write_plan(out: &mut impl Write, report: &PlanReport) -> std::io::Result<()> {
    for step in &report.steps {
        match &step.dry_run {
            Ok(dry_run) => {
                let estimate = dry_run
                    .bytes_processed
                    .map_or("valid".to_string(), |b| Bytes(b).to_string());
                let cap = dry_run
                    .maximum_bytes_billed
                    .map(|c| format!("  cap {}", Bytes(c)))
                    .unwrap_or_default();
                let over = if dry_run.over_cap() { "  OVER CAP" } else { "" };
                writeln!(out, "  {:<40} {estimate:>12}{cap}{over}", step.step)?;
            }
            Err(message) => writeln!(out, "  {:<40} INVALID: {message}", step.step)?,
        }
    }
    if let Some(total) = report.total_bytes() {
        writeln!(out, "  {:<40} {:>12}", "total", Bytes(total).to_string())?;
    }
    Ok(())
}

fn test_command(global: &GlobalArgs, args: &TestArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    let report = sqltest::run_tests(&session.project, &session.vars, args.selector.as_deref())?;
    print!("{}", report.render());
    if let Some(path) = &args.junit {
        std::fs::write(path, sqltest::junit::to_junit(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if report.cases.is_empty() {
        bail!(
            "no SQL tests matched{} under {}",
            args.selector
                .as_deref()
                .map(|s| format!(" `{s}`"))
                .unwrap_or_default(),
            sqltest::assertions::TESTS_DIR
        );
    }
    if !report.success() {
        bail!("{} SQL test(s) failed", report.failures());
    }
    Ok(())
}

fn models_command(global: &GlobalArgs, args: &ModelsArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    let mut warehouse = session.open_warehouse()?;
    let mut out = std::io::stdout().lock();
    match &args.action {
        None => {
            let versions = registry::list(warehouse.as_mut())?;
            output::write(&versions, args.format, &mut out)?;
        }
        Some(ModelsAction::Promote { version }) => {
            let promoted = registry::promote(warehouse.as_mut(), &session.project, version)?;
            writeln!(
                out,
                "{}_v{} is the champion ({})",
                promoted.model.name, promoted.version, promoted.reason
            )?;
        }
    }
    Ok(())
}

fn query_command(global: &GlobalArgs, args: &QueryArgs) -> anyhow::Result<()> {
    let sql = match (&args.sql, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => bail!("give the SQL as an argument or with --file"),
    };
    let session = Session::load(global)?;
    let mut warehouse = session.open_warehouse()?;
    let result = warehouse.query(&sql)?;
    let mut out = std::io::stdout().lock();
    output::write(&result, args.format, &mut out)?;
    if args.format == OutputFormat::Table && std::io::stdout().is_terminal() {
        writeln!(out, "{} row(s)", result.rows.len())?;
    }
    Ok(())
}

/// Checks the terraform outputs against what pipelines.yaml needs (on `--target`, else on every
/// target) before printing anything, so a partial environment is never exported.
fn env_command(global: &GlobalArgs, args: &EnvArgs) -> anyhow::Result<()> {
    let project = Project::load(&global.project_dir)?;
    let required = RequiredEnv::of(&project.config, global.target.as_deref())?;
    let path = &args.from_terraform;
    let json = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let env = deploy::env_from_terraform_output(&json, args.include_sensitive)
        .with_context(|| format!("reading terraform outputs from {}", path.display()))?;
    required.check(&env)?;
    print!("{}", deploy::shell_exports(&env, &required));
    Ok(())
}
