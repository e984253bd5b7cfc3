//! `netsentinel test`: the SQL unit tests and assertions, with an optional JUnit report.

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

pub fn test_command(global: &GlobalArgs, args: &TestArgs) -> anyhow::Result<()> {
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
