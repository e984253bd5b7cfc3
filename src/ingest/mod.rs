//! Batch ingest: netlog JSONL and CSV files, CICFlowMeter CSV and Zeek conn.log (or generated
//! events) are parsed, validated and loaded into `raw.netlog_events` in committed batches; bad
//! rows go to `raw.netlog_rejects` with file, line, field and reason. A batch never stops on a bad
//! row, and re-ingesting adds nothing. Files are read line by line, never whole.

pub mod batch;
pub mod budget;
pub mod follow;
pub mod formats;
pub mod parse;
pub mod schema;
pub mod skew;
pub mod sources;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use chrono::{FixedOffset, Utc};
use indicatif::{ProgressBar, ProgressStyle};

use batch::{EventBatch, LoadError, LoadOutcome, Reject, StoredEvent};
pub use formats::InputFormat;
use formats::cicflowmeter::CicColumns;
use netsentinel_core::event::NetlogEvent;
use netsentinel_core::{EngineError, Warehouse};
use parse::{Rejection, WireEvent};
use skew::ClockGuard;

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
        "{path}: cannot tell the format from the first line or the extension: use .jsonl/.ndjson/.json, .csv or .log, or pass --format"
    )]
    UnknownFormat { path: String },
    #[error("{path}: {format} header lacks required column(s) {missing}")]
    Header {
        path: String,
        format: &'static str,
        missing: String,
    },
    #[error(
        "{path}: line {line} is a Zeek TSV record but no #fields header came before it; is this a Zeek log?"
    )]
    ZeekWithoutFields { path: String, line: u64 },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("stopped with {rows} row(s) read and not committed: {source}")]
    Uncommitted {
        rows: usize,
        source: Box<IngestError>,
    },
}

/// The netlog layouts `generate` writes (ingest reads these and more: [`InputFormat`]).
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

/// How to read input files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// None: detect each file's format from its first line, then its extension.
    pub format: Option<InputFormat>,
    /// UTC offset of timestamps written without a zone: CICFlowMeter's local capture time.
    pub utc_offset: FixedOffset,
    pub clock_guard: ClockGuard,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: None,
            utc_offset: FixedOffset::east_opt(0).expect("zero is a valid offset"),
            clock_guard: ClockGuard::default(),
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
    /// `None` for generated events: their times are the ones asked for (`--start`), not a
    /// sender's clock.
    clock_guard: Option<ClockGuard>,
    summary: IngestSummary,
}

impl<'w> BatchWriter<'w> {
    fn new(
        warehouse: &'w mut dyn Warehouse,
        batch_rows: usize,
        clock_guard: Option<ClockGuard>,
    ) -> Self {
        BatchWriter {
            warehouse,
            batch: EventBatch::default(),
            batch_rows: batch_rows.max(1),
            clock_guard,
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
        let admitted = match self.clock_guard {
            Some(guard) => parsed.and_then(|event| guard.admit(event, Utc::now())),
            None => parsed,
        };
        match admitted {
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
            self.summary.load += self.batch.store(self.warehouse)?;
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
    options: &ReadOptions,
    batch_rows: usize,
) -> Result<IngestSummary, IngestError> {
    schema::create_raw_tables(warehouse)?;
    let mut total = IngestSummary::default();
    for path in paths {
        total += ingest_one(warehouse, path, options, batch_rows)?;
    }
    Ok(total)
}

fn ingest_one(
    warehouse: &mut dyn Warehouse,
    path: &str,
    options: &ReadOptions,
    batch_rows: usize,
) -> Result<IngestSummary, IngestError> {
    let read_error = |source| IngestError::Read {
        path: path.to_string(),
        source,
    };
    let (reader, length): (Box<dyn Read>, u64) = if path == "-" {
        (Box::new(std::io::stdin().lock()), 0)
    } else {
        let file = File::open(path).map_err(read_error)?;
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(file), length)
    };
    let progress = progress_bar(path, length);
    let mut reader = BufReader::with_capacity(1 << 20, progress.wrap_read(reader));
    let format = match options.format {
        Some(format) => format,
        None => {
            // Peeks at the buffer: the first line is still there for the format's reader.
            let head = reader.fill_buf().map_err(read_error)?;
            let first_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
            InputFormat::detect(Path::new(path), &String::from_utf8_lossy(first_line)).ok_or_else(
                || IngestError::UnknownFormat {
                    path: path.to_string(),
                },
            )?
        }
    };
    let mut writer = BatchWriter::new(warehouse, batch_rows, Some(options.clock_guard));
    let source = if path == "-" { "<stdin>" } else { path };
    match format {
        InputFormat::Jsonl => read_jsonl(reader, source, &mut writer)?,
        InputFormat::Csv => read_csv::<NetlogColumns>(reader, source, options, &mut writer)?,
        InputFormat::Cicflowmeter => read_csv::<CicColumns>(reader, source, options, &mut writer)?,
        InputFormat::Zeek => formats::zeek::read(reader, source, &mut writer)?,
    }
    let summary = writer.finish()?;
    progress.finish_and_clear();
    Ok(summary)
}

fn read_jsonl(
    reader: impl BufRead,
    source: &str,
    writer: &mut BatchWriter<'_>,
) -> Result<(), IngestError> {
    for_each_line(reader, source, |line_number, line| {
        let parsed = line.text().and_then(parse::parse_json_line);
        writer.accept(source, line_number, parsed, || line.raw().to_string())
    })
}

/// One line of input without its line ending.
#[derive(Debug, Clone, Copy)]
enum Line<'a> {
    Text(&'a str),
    /// Its lossy decoding, kept as the reject's raw text.
    NotUtf8(&'a str),
}

impl<'a> Line<'a> {
    fn text(self) -> Result<&'a str, Rejection> {
        match self {
            Line::Text(text) => Ok(text),
            Line::NotUtf8(_) => Err(Rejection::row("line is not valid UTF-8")),
        }
    }

    fn raw(self) -> &'a str {
        match self {
            Line::Text(text) | Line::NotUtf8(text) => text,
        }
    }
}

/// Calls `each` with the 1-based number and the text of every non-blank line, streaming.
fn for_each_line(
    mut reader: impl BufRead,
    source: &str,
    mut each: impl FnMut(u64, Line<'_>) -> Result<(), IngestError>,
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
        let lossy;
        let line = match std::str::from_utf8(&buffer) {
            Ok(text) => Line::Text(text.trim_end_matches(['\n', '\r'])),
            Err(_) => {
                lossy = String::from_utf8_lossy(&buffer);
                Line::NotUtf8(lossy.trim_end_matches(['\n', '\r']))
            }
        };
        if !line.raw().trim().is_empty() {
            each(line_number, line)?;
        }
    }
}

/// A CSV layout: where its columns are in a file's header, and how one record maps onto an event.
pub(crate) trait CsvLayout: Sized {
    /// Names the layout in the error for a header without its columns.
    const NAME: &'static str;

    /// The layout of a file with these (trimmed) header names, or the required columns it lacks.
    fn from_headers(headers: &[String], utc_offset: FixedOffset)
    -> Result<Self, Vec<&'static str>>;

    /// Maps a record that has as many fields as the header.
    fn parse(&self, record: &csv::StringRecord) -> Result<NetlogEvent, Rejection>;
}

/// The netlog CSV: the seed's field names as headers, in any order.
struct NetlogColumns {
    headers: Vec<String>,
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

impl CsvLayout for NetlogColumns {
    const NAME: &'static str = "CSV";

    fn from_headers(headers: &[String], _: FixedOffset) -> Result<Self, Vec<&'static str>> {
        let missing: Vec<&str> = REQUIRED_CSV_COLUMNS
            .into_iter()
            .filter(|c| !headers.iter().any(|h| h == c))
            .collect();
        if missing.is_empty() {
            Ok(NetlogColumns {
                headers: headers.to_vec(),
            })
        } else {
            Err(missing)
        }
    }

    fn parse(&self, record: &csv::StringRecord) -> Result<NetlogEvent, Rejection> {
        let mut wire = WireEvent::default();
        for (header, value) in self.headers.iter().zip(record.iter()) {
            wire.set_text(header, value.trim());
        }
        parse::validate(wire)
    }
}

fn read_csv<L: CsvLayout>(
    reader: impl Read,
    source: &str,
    options: &ReadOptions,
    writer: &mut BatchWriter<'_>,
) -> Result<(), IngestError> {
    // Records end at '\n' only: with CRLF endings the csv crate counts each '\n' into the next
    // record, one line too few. The '\r' left on the last field is dropped by `strip_cr`.
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
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
    let layout =
        L::from_headers(&headers, options.utc_offset).map_err(|missing| IngestError::Header {
            path: source.to_string(),
            format: L::NAME,
            missing: missing.join(", "),
        })?;
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                strip_cr(&mut record);
                if record.len() == 1 && record[0].is_empty() {
                    // A blank CRLF line, as csv skips a blank LF line.
                    continue;
                }
                let parsed = if record.len() != headers.len() {
                    Err(Rejection::row(format!(
                        "has {} fields, the header has {}",
                        record.len(),
                        headers.len()
                    )))
                } else {
                    layout.parse(&record)
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

fn strip_cr(record: &mut csv::StringRecord) {
    let Some(last) = record.iter().next_back() else {
        return;
    };
    if let Some(kept) = last.strip_suffix('\r') {
        let kept = kept.to_string();
        record.truncate(record.len() - 1);
        record.push_field(&kept);
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
    schema::create_raw_tables(warehouse)?;
    let progress = progress_bar(source, 0);
    if let Some(n) = expected {
        progress.set_length(n);
    }
    let mut writer = BatchWriter::new(warehouse, batch_rows, None);
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
