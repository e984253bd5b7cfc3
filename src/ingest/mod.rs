//! Batch ingest: JSONL and CSV files (or generated events) are parsed, validated and loaded into
//! `raw.netlog_events` in committed batches; bad rows go to `raw.netlog_rejects` with file, line,
//! field and reason. A batch never stops on a bad row, and re-ingesting adds nothing.

pub mod batch;
pub mod follow;
pub mod parse;
pub mod schema;
pub mod sources;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::{EngineError, Warehouse};
use crate::event::NetlogEvent;
use batch::{EventBatch, LoadOutcome, Reject, StoredEvent};
use parse::{Rejection, WireEvent};

/// Rows per committed batch: large enough to amortize a transaction, small enough that a killed
/// ingest loses little work and memory stays bounded.
pub const DEFAULT_BATCH_ROWS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: cannot tell the format from the extension: use .jsonl/.ndjson/.json or .csv, or pass --format"
    )]
    UnknownFormat { path: String },
    #[error("{path}: CSV header lacks required column(s) {missing}")]
    CsvHeader { path: String, missing: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub rows_read: u64,
    pub rows_rejected: u64,
    pub load: LoadOutcome,
}

impl std::ops::AddAssign for IngestSummary {
    fn add_assign(&mut self, other: Self) {
        self.rows_read += other.rows_read;
        self.rows_rejected += other.rows_rejected;
        self.load += other.load;
    }
}

/// Accumulates rows and commits them in batches.
struct BatchWriter<'w> {
    warehouse: &'w mut dyn Warehouse,
    batch: EventBatch,
    batch_rows: usize,
    summary: IngestSummary,
}

impl<'w> BatchWriter<'w> {
    fn new(warehouse: &'w mut dyn Warehouse, batch_rows: usize) -> Self {
        BatchWriter {
            warehouse,
            batch: EventBatch::default(),
            batch_rows: batch_rows.max(1),
            summary: IngestSummary::default(),
        }
    }

    fn accept(
        &mut self,
        source: &str,
        line: u64,
        parsed: Result<NetlogEvent, Rejection>,
        raw: impl FnOnce() -> String,
    ) -> Result<(), IngestError> {
        self.summary.rows_read += 1;
        match parsed {
            Ok(event) => self.batch.events.push(StoredEvent {
                event_id: parse::event_id(&event),
                event,
                source: source.to_string(),
                line,
            }),
            Err(rejection) => {
                let raw = raw();
                self.summary.rows_rejected += 1;
                self.batch.rejects.push(Reject {
                    reject_id: parse::reject_id(source, line, &raw),
                    source: source.to_string(),
                    line,
                    field: rejection.field.map(str::to_string),
                    reason: rejection.reason,
                    raw,
                });
            }
        }
        if self.batch.len() >= self.batch_rows {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        if !self.batch.is_empty() {
            self.summary.load += self.warehouse.load_events(&self.batch)?;
            self.batch = EventBatch::default();
        }
        Ok(())
    }

    fn finish(mut self) -> Result<IngestSummary, IngestError> {
        self.flush()?;
        Ok(self.summary)
    }
}

/// Ingests files (or `-` for standard input) into the warehouse.
pub fn ingest_files(
    warehouse: &mut dyn Warehouse,
    paths: &[String],
    format: Option<Format>,
    batch_rows: usize,
) -> Result<IngestSummary, IngestError> {
    warehouse.ensure_datasets()?;
    let mut total = IngestSummary::default();
    for path in paths {
        total += ingest_one(warehouse, path, format, batch_rows)?;
    }
    Ok(total)
}

fn ingest_one(
    warehouse: &mut dyn Warehouse,
    path: &str,
    format: Option<Format>,
    batch_rows: usize,
) -> Result<IngestSummary, IngestError> {
    let read_error = |source| IngestError::Read {
        path: path.to_string(),
        source,
    };
    let format = format
        .or_else(|| Format::from_path(Path::new(path)))
        .ok_or_else(|| IngestError::UnknownFormat {
            path: path.to_string(),
        })?;
    let (reader, length): (Box<dyn Read>, u64) = if path == "-" {
        (Box::new(std::io::stdin().lock()), 0)
    } else {
        let file = File::open(path).map_err(read_error)?;
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(file), length)
    };
    let progress = progress_bar(path, length);
    let reader = progress.wrap_read(reader);
    let mut writer = BatchWriter::new(warehouse, batch_rows);
    let source = if path == "-" { "<stdin>" } else { path };
    match format {
        Format::Jsonl => read_jsonl(
            BufReader::with_capacity(1 << 20, reader),
            source,
            &mut writer,
        )?,
        Format::Csv => read_csv(reader, source, &mut writer)?,
    }
    let summary = writer.finish()?;
    progress.finish_and_clear();
    Ok(summary)
}

fn read_jsonl(
    mut reader: impl BufRead,
    source: &str,
    writer: &mut BatchWriter<'_>,
) -> Result<(), IngestError> {
    let mut buffer = Vec::with_capacity(4096);
    let mut line_number = 0u64;
    loop {
        buffer.clear();
        let read = reader
            .read_until(b'\n', &mut buffer)
            .map_err(|source_err| IngestError::Read {
                path: source.to_string(),
                source: source_err,
            })?;
        if read == 0 {
            return Ok(());
        }
        line_number += 1;
        let text = String::from_utf8_lossy(&buffer);
        let line = text.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let parsed = if std::str::from_utf8(&buffer).is_err() {
            Err(Rejection::row("line is not valid UTF-8"))
        } else {
            parse::parse_json_line(line)
        };
        writer.accept(source, line_number, parsed, || line.to_string())?;
    }
}

const REQUIRED_CSV_COLUMNS: [&str; 9] = [
    "subscriberId",
    "srcIP",
    "dstIP",
    "srcPort",
    "dstPort",
    "txBytes",
    "rxBytes",
    "startTime",
    "endTime",
];

fn read_csv(
    reader: impl Read,
    source: &str,
    writer: &mut BatchWriter<'_>,
) -> Result<(), IngestError> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(reader);
    let headers: Vec<String> = csv
        .headers()
        .map_err(|e| IngestError::Read {
            path: source.to_string(),
            source: std::io::Error::other(e),
        })?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let missing: Vec<&str> = REQUIRED_CSV_COLUMNS
        .into_iter()
        .filter(|c| !headers.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(IngestError::CsvHeader {
            path: source.to_string(),
            missing: missing.join(", "),
        });
    }
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                let parsed = if record.len() != headers.len() {
                    Err(Rejection::row(format!(
                        "has {} fields, the header has {}",
                        record.len(),
                        headers.len()
                    )))
                } else {
                    let mut wire = WireEvent::default();
                    for (header, value) in headers.iter().zip(record.iter()) {
                        wire.set_text(header, value.trim());
                    }
                    parse::validate(wire)
                };
                writer.accept(source, line, parsed, || csv_line(&record))?;
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                writer.accept(
                    source,
                    line,
                    Err(Rejection::row(format!("unreadable CSV record: {e}"))),
                    String::new,
                )?;
            }
        }
    }
}

fn csv_line(record: &csv::StringRecord) -> String {
    let mut out = csv::WriterBuilder::new().from_writer(Vec::new());
    let _ = out.write_record(record);
    let bytes = out.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

/// Loads events produced in-process (the generator) under a source name.
pub fn ingest_events(
    warehouse: &mut dyn Warehouse,
    events: impl Iterator<Item = NetlogEvent>,
    source: &str,
    expected: Option<u64>,
    batch_rows: usize,
) -> Result<IngestSummary, IngestError> {
    warehouse.ensure_datasets()?;
    let progress = progress_bar(source, 0);
    if let Some(n) = expected {
        progress.set_length(n);
    }
    let mut writer = BatchWriter::new(warehouse, batch_rows);
    for (index, event) in events.enumerate() {
        writer.accept(source, index as u64 + 1, Ok(event), String::new)?;
        progress.inc(1);
    }
    let summary = writer.finish()?;
    progress.finish_and_clear();
    Ok(summary)
}

/// A progress bar on standard error; indicatif draws nothing when stderr is not a terminal.
fn progress_bar(label: &str, length: u64) -> ProgressBar {
    let bar = ProgressBar::new(length);
    let template = if length > 0 {
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})"
    } else {
        "{msg} {pos} rows ({per_sec})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("ingesting {label}"));
    bar
}
