//! `netsentinel query`: one GoogleSQL statement, its rows printed as a table, CSV or JSON.

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

pub fn query_command(global: &GlobalArgs, args: &QueryArgs) -> anyhow::Result<()> {
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
