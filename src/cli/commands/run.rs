//! `netsentinel run` and `netsentinel plan`: a pipeline run, or what it would do and scan.

use std::io::Write;

use anyhow::bail;

use netsentinel::plan::{self};

use crate::cli::Session;
use crate::cli::args::{GlobalArgs, RunArgs};
use crate::cli::print::{write_plan, write_run_report};

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
