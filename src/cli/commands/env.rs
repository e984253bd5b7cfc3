//! `netsentinel env`: the environment a target needs, checked or printed for deployment.

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

/// Checks the terraform outputs against what pipelines.yaml needs (on `--target`, else on every
/// target) before printing anything, so a partial environment is never exported.
pub fn env_command(global: &GlobalArgs, args: &EnvArgs) -> anyhow::Result<()> {
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
