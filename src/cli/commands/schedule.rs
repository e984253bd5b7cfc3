//! `netsentinel schedule`: runs the pipelines on their cron schedules until stopped.

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

pub fn schedule_command(global: &GlobalArgs, args: &ScheduleArgs) -> anyhow::Result<()> {
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
