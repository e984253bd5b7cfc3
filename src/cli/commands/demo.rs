//! `netsentinel demo`: the whole flow on generated traffic, and its summary table.

use std::io::Write;

use netsentinel::demo::{self, DemoSummary};
use netsentinel::output::{self};

use crate::cli::Session;
use crate::cli::args::{DemoArgs, GlobalArgs};
use crate::cli::print::{write_ingest_summary, write_run_report};

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
        "\nWindows and incidents by injected kind (ground truth from the generator):"
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
