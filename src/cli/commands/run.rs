//! `netsentinel run` and `netsentinel plan`: a pipeline run, or what it would do and scan.

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

pub fn run_command(global: &GlobalArgs, args: &RunArgs) -> anyhow::Result<()> {
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

pub fn plan_command(global: &GlobalArgs, args: &RunArgs) -> anyhow::Result<()> {
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
