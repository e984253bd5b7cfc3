//! `netsentinel demo`: the whole flow on generated traffic, and its summary table.

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
use netsentinel::ingest::follow::{self, FollowConfig, WindowClock};
use netsentinel::ingest::schema::create_raw_tables;
use netsentinel::ingest::sources;
use netsentinel::ingest::{self, Format, IngestSummary, InputFormat, ReadOptions};
use netsentinel::metrics::Metrics;
use netsentinel::output::{self, OutputFormat};
use netsentinel::plan::{self, Bytes, PlanReport};
use netsentinel::project::Project;
use netsentinel::registry;
use netsentinel::runner::{RunError, RunReport, Runner, StepOutcome};
use netsentinel::schedule::Scheduler;
use netsentinel::service::{EventsRoute, Service, ServiceOptions};
use netsentinel::sqltest;
use netsentinel::vars::Vars;
use netsentinel_core::Warehouse;
use netsentinel_generate::{self as generate, Drift, GeneratorConfig, StopAt};

use crate::cli::args::*;
use crate::cli::print::*;
use crate::cli::Session;

pub fn demo_command(global: &GlobalArgs, args: &DemoArgs) -> anyhow::Result<()> {
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
