//! What the commands print: run reports, plans and ingest summaries, written to any writer so
//! that the formats are tested without a terminal.

use std::io::Write;
use std::path::Path;

use netsentinel::ingest::IngestSummary;
use netsentinel::plan::{Bytes, PlanReport};
use netsentinel::runner::{RunReport, StepOutcome};

/// `late`: how many of the rejects were late events, where the ingest checks lateness.
pub fn write_ingest_summary(
    out: &mut impl Write,
    summary: &IngestSummary,
    late: Option<u64>,
) -> std::io::Result<()> {
    let late = late.map(|n| format!("{n} late; ")).unwrap_or_default();
    writeln!(
        out,
        "  ingested    {} rows read: {} new events, {} already stored, {} rejected ({late}see raw.netlog_rejects)",
        summary.rows_read,
        summary.load.events_inserted,
        summary.load.events_duplicate,
        summary.rows_rejected
    )
}

pub fn write_run_report(out: &mut impl Write, report: &RunReport) -> std::io::Result<()> {
    let resumed = if report.resumed { " (resumed)" } else { "" };
    writeln!(
        out,
        "  run         {} {}{resumed}",
        report.pipeline, report.run_id
    )?;
    for step in &report.steps {
        match &step.outcome {
            StepOutcome::Ran {
                duration,
                rows_affected,
            } => writeln!(
                out,
                "                {:<36} {:>8.2}s  {rows_affected} rows",
                step.step,
                duration.as_secs_f64()
            )?,
            StepOutcome::Skipped => writeln!(
                out,
                "                {:<36} skipped (done before)",
                step.step
            )?,
        }
        for check in &step.assertions {
            let status = match (check.failed(), check.blocks()) {
                (false, _) => "ok",
                (true, false) => "WARN",
                (true, true) => "FAIL",
            };
            writeln!(out, "                  assert {:<45} {status}", check.name)?;
        }
        for note in &step.notes {
            writeln!(out, "                  {note}")?;
        }
    }
    if let Some(triggered) = &report.triggered {
        writeln!(out, "  drift policy fired: {} runs now", triggered.pipeline)?;
        write_run_report(out, triggered)?;
    }
    Ok(())
}

pub fn write_plan(out: &mut impl Write, report: &PlanReport) -> std::io::Result<()> {
    for step in &report.steps {
        match &step.dry_run {
            Ok(dry_run) => {
                let estimate = dry_run
                    .bytes_processed
                    .map_or("valid".to_string(), |b| Bytes(b).to_string());
                let cap = dry_run
                    .maximum_bytes_billed
                    .map(|c| format!("  cap {}", Bytes(c)))
                    .unwrap_or_default();
                let over = if dry_run.over_cap() { "  OVER CAP" } else { "" };
                writeln!(out, "  {:<40} {estimate:>12}{cap}{over}", step.step)?;
            }
            Err(message) => writeln!(out, "  {:<40} INVALID: {message}", step.step)?,
        }
    }
    if let Some(total) = report.total_bytes() {
        writeln!(out, "  {:<40} {:>12}", "total", Bytes(total).to_string())?;
    }
    Ok(())
}

pub fn display_relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}
