//! `netsentinel eval`: the detection quality of what the pipelines stored, on labelled data.

use std::io::Write;

use anyhow::Context;

use netsentinel::eval;

use crate::cli::Session;
use crate::cli::args::{EvalArgs, GlobalArgs};

pub fn eval_command(global: &GlobalArgs, args: &EvalArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    let mut warehouse = session.open_warehouse()?;
    let truth = eval::truth::Truth::read(args.labels.as_deref(), args.hosts.as_deref())?;
    let evaluation = eval::evaluate(&session.project, warehouse.as_mut(), &session.vars, &truth)?;
    let mut out = std::io::stdout().lock();
    for line in evaluation.lines() {
        writeln!(out, "{line}")?;
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&evaluation)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
