//! The command line as clap parses it: global flags, the subcommands and their arguments.

use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, FixedOffset, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use netsentinel::ingest::{self, Format, InputFormat};
use netsentinel::output::OutputFormat;
use netsentinel::service::{ConnectionLimits, EventLimits};
use netsentinel_generate::{Drift, GeneratorConfig, StopAt};

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
    /// Detection quality on labelled data: per-kind recall, alert precision, precision@k,
    /// alerts per hour, the hosts with false alerts, and each detector's findings.
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Labels beside the events' own: a CSV with subscriberId and label, and dst_subnet /
    /// window_start (windows), destination (a pair), from / to (a time range), as set.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Host classes (a CSV of subscriberId,host_class, as `generate --hosts-out` writes): false
    /// alerts are also counted per class.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
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
    /// Instead, check that the tests catch a broken step: run each step's unit tests on
    /// mutants of its SQL (a comparison flipped, an aggregate swapped…) and list the mutants
    /// no test kills. The selector then picks steps (name, relation or dataset).
    #[arg(long, conflicts_with = "junit")]
    pub mutants: bool,
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
    /// Subscribers that are busy servers: hundreds of inbound flows a minute and large
    /// transfers, all day. Normal traffic, heavy for its host.
    #[arg(long, default_value_t = 0)]
    pub busy_servers: u32,
    /// Subscribers that upload a bulk backup at the same minute of every hour. Normal traffic.
    #[arg(long, default_value_t = 0)]
    pub backup_hosts: u32,
    /// Subscribers with a command-and-control beacon: one small connection every 30–120 s,
    /// jittered, to a destination nobody else uses, for the whole span (label `beaconing`).
    #[arg(long, default_value_t = 0)]
    pub beacons: u32,
    /// Subscribers running a slow port scan: one SYN to a new port every few tens of seconds
    /// for about an hour (label `slow_scan`).
    #[arg(long, default_value_t = 0)]
    pub slow_scans: u32,
    /// Subscribers holding one connection to a server of their own open for the whole span,
    /// exported as a record per 30 minutes (label `long_connection`).
    #[arg(long, default_value_t = 0)]
    pub long_connections: u32,
    /// A network's mix of hosts: 3 % busy servers, 5 % backup hosts, 2 % beacons, 1 % slow
    /// scans, 1 % long-lived connections (at least one each); the counts above override it.
    #[arg(long)]
    pub realistic: bool,
}

impl GeneratorArgs {
    pub fn config(&self) -> anyhow::Result<GeneratorConfig> {
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
            ..defaults
        };
        let mut config = if self.realistic {
            config.with_realistic_mix()
        } else {
            config
        };
        for (count, field) in [
            (self.busy_servers, &mut config.busy_servers),
            (self.backup_hosts, &mut config.backup_hosts),
            (self.beacons, &mut config.beacons),
            (self.slow_scans, &mut config.slow_scans),
            (self.long_connections, &mut config.long_connections),
        ] {
            if count > 0 {
                *field = count;
            }
        }
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
    /// Also write every subscriber's host class (client, busy_server, backup_host) to this CSV,
    /// for `eval --hosts`.
    #[arg(long, value_name = "FILE")]
    pub hosts_out: Option<PathBuf>,
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
    /// The largest POST /v1/events body accepted, in bytes (413 beyond).
    #[arg(long, default_value_t = EventLimits::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// The most NDJSON lines one POST /v1/events may carry (413 beyond).
    #[arg(long, default_value_t = EventLimits::default().max_lines)]
    pub max_request_lines: usize,
    /// A POST /v1/events body must arrive whole within this (408 beyond).
    #[arg(long, default_value_t = EventLimits::default().body_timeout.into(), value_name = "DURATION")]
    pub body_timeout: humantime::Duration,
    /// A request's headers must arrive within this; an idle connection is closed after it.
    #[arg(long, default_value_t = ConnectionLimits::default().header_timeout.into(), value_name = "DURATION")]
    pub header_timeout: humantime::Duration,
    /// Open connections to --listen at most; more are closed at once.
    #[arg(long, default_value_t = ConnectionLimits::default().max_connections)]
    pub max_connections: usize,
    /// Input read and not yet committed, in bytes, from all sources: past it standard input
    /// and Pub/Sub wait and POST /v1/events answers 503.
    #[arg(long, default_value_t = 64 << 20)]
    pub queue_bytes: usize,
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

/// `+02:00`, `-0300`, or `UTC`/`Z`.
fn parse_utc_offset(text: &str) -> Result<FixedOffset, String> {
    if text.eq_ignore_ascii_case("utc") || text.eq_ignore_ascii_case("z") {
        return Ok(FixedOffset::east_opt(0).expect("zero is a valid offset"));
    }
    text.parse()
        .map_err(|_| format!("`{text}` is not a UTC offset such as +02:00 or -03:00"))
}
