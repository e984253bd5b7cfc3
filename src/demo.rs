//! `netsentinel demo`: the whole pipeline on the embedded engine. Generates labelled netlog with
//! injected anomalies (plus a few malformed lines, to show where bad input goes), ingests it,
//! runs `train`, `detect` and `drift`, and summarizes what was found. Every part is idempotent,
//! so a rerun adds nothing and scores nothing twice.

// Errors here carry the failing step's SQL error with its statement text; they are returned
// once per run, so their size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::eval::{self, EvalError, Evaluation, truth::Truth};
use crate::ingest::{self, IngestError, IngestSummary};
use crate::project::Project;
use crate::runner::{RunError, RunReport, Runner};
use crate::vars::Vars;
use netsentinel_core::relation::{Dataset, TableRef};
use netsentinel_core::{Cell, EngineError, ResultSet, Warehouse};
use netsentinel_generate::{self as generate, GenerateError, GeneratorConfig};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error("cannot write the demo data {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// Lines a real feed carries now and then; each is rejected with its reason.
const MALFORMED_LINES: [&str; 4] = [
    r#"{"subscriberId":"99999999999999999","srcIP":"10.0.0.1","dstIP":"203.0.113.9","srcPort":443,"dstPort":51000,"txBytes":-20,"rxBytes":10,"startTime":"2026-01-01T00:00:00Z","endTime":"2026-01-01T00:00:01Z"}"#,
    r#"{"subscriberId":"99999999999999999","srcIP":"10.0.0.300","dstIP":"203.0.113.9","srcPort":443,"dstPort":51000,"txBytes":20,"rxBytes":10,"startTime":"2026-01-01T00:00:00Z","endTime":"2026-01-01T00:00:01Z"}"#,
    r#"{"subscriberId":"99999999999999999","srcIP":"10.0.0.1","dstIP":"203.0.113.9","srcPort":443,"dstPort":51000,"txBytes":20,"rxBytes":10,"startTime":"2026-01-01T00:00:05Z","endTime":"2026-01-01T00:00:01Z"}"#,
    r#"{"subscriberId":"99999999999999999","srcIP":"10.0.0.1","dstIP":"203.0.1"#,
];

#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub data_file: PathBuf,
    pub events_generated: u64,
    pub ingest: IngestSummary,
    pub runs: Vec<RunReport>,
    pub windows_scored: i64,
    pub anomalies: i64,
    pub by_kind: ResultSet,
    pub top: ResultSet,
    pub warehouse: String,
}

pub fn run_demo(
    project: &Project,
    target: &str,
    warehouse: &mut dyn Warehouse,
    vars: &Vars,
    generator: &GeneratorConfig,
) -> Result<DemoSummary, DemoError> {
    let data_file = project
        .root
        .join(".netsentinel")
        .join("demo")
        .join("netlog.jsonl");
    let events_generated = write_demo_data(generator, &data_file)?;
    tracing::info!(events = events_generated, file = %data_file.display(), "generated demo data");
    let ingest = ingest::ingest_files(
        warehouse,
        &[data_file.display().to_string()],
        &ingest::ReadOptions {
            format: Some(ingest::InputFormat::Jsonl),
            clock_guard: ingest::skew::ClockGuard::from_vars(vars),
            ..ingest::ReadOptions::default()
        },
        ingest::DEFAULT_BATCH_ROWS,
    )?;
    let runner = Runner {
        project,
        vars,
        target,
        stop: None,
    };
    let runs = vec![
        runner.run_pipeline(warehouse, "train")?,
        runner.run_pipeline(warehouse, "detect")?,
        runner.run_pipeline(warehouse, "drift")?,
    ];
    let anomalies_table = warehouse.naming().qualify(&anomalies());
    let counts = warehouse.query(&format!(
        "SELECT COUNT(*), COUNTIF(is_anomaly) FROM {anomalies_table}"
    ))?;
    let count = |i: usize| {
        counts
            .rows
            .first()
            .and_then(|r| r.get(i))
            .and_then(Cell::as_i64)
            .unwrap_or(0)
    };
    let mut by_kind = warehouse.query(&format!(
        "SELECT COALESCE(labels, 'normal') AS injected_kind, COUNT(*) AS windows, COUNTIF(is_anomaly) AS flagged, \
         COUNTIF(is_alert) AS alerted FROM {anomalies_table} GROUP BY injected_kind ORDER BY injected_kind"
    ))?;
    match eval::evaluate(project, warehouse, vars, &Truth::default()) {
        Ok(quality) => add_incidents_found(&mut by_kind, &quality),
        Err(EvalError::NoLabels { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    let top = warehouse.query(&format!(
        "SELECT subscriberId, dst_subnet, window_start, ROUND(normalized_distance, 2) AS normalized_distance, centroid_id, \
         COALESCE(labels, 'normal') AS injected_kind \
         FROM {anomalies_table} WHERE is_anomaly ORDER BY normalized_distance DESC, subscriberId, window_start LIMIT 10"
    ))?;
    Ok(DemoSummary {
        data_file,
        events_generated,
        ingest,
        runs,
        windows_scored: count(0),
        anomalies: count(1),
        by_kind,
        top,
        warehouse: warehouse.describe(),
    })
}

/// Adds to each kind's row the pairs a detector found, of the pairs carrying it: the beacons,
/// slow scans and long connections no one-minute window shows.
fn add_incidents_found(by_kind: &mut ResultSet, quality: &Evaluation) {
    by_kind.columns.push("incidents_found".into());
    for row in &mut by_kind.rows {
        let kind = row.first().map(Cell::to_string).unwrap_or_default();
        let best = quality
            .detectors
            .iter()
            .filter_map(|d| Some((d, d.labelled_pairs.iter().find(|p| p.label == kind)?)))
            .filter(|(_, pairs)| pairs.found > 0)
            .max_by_key(|(_, pairs)| pairs.found);
        row.push(match best {
            Some((detector, pairs)) => Cell::Text(format!(
                "{} of {} pairs ({})",
                pairs.found, pairs.pairs, detector.detector
            )),
            None => Cell::Text("-".into()),
        });
    }
}

pub fn anomalies() -> TableRef {
    TableRef::new(Dataset::Inferenced, "netlog_anomalies").expect("valid name")
}

/// Writes the generated events and the malformed lines. Same options, same bytes, so the
/// ingest of a rerun finds everything already stored.
fn write_demo_data(config: &GeneratorConfig, path: &Path) -> Result<u64, DemoError> {
    let write_error = |source| DemoError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let mut out = BufWriter::new(File::create(path).map_err(write_error)?);
    let events =
        generate::write_jsonl(generate::generate(config)?, &mut out).map_err(write_error)?;
    for line in MALFORMED_LINES {
        writeln!(out, "{line}").map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    Ok(events)
}
