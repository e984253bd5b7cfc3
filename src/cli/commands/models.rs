//! `netsentinel models`: the model registry's versions and champions.

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

pub fn models_command(global: &GlobalArgs, args: &ModelsArgs) -> anyhow::Result<()> {
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
