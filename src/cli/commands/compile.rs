//! `netsentinel compile`: writes the SQL each step would run under target/compiled/.

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

pub fn compile_command(global: &GlobalArgs, args: &CompileArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    let (name, target) = session.project.config.target(Some(&session.target))?;
    let naming = target.naming(name)?;
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
