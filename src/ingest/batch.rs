//! What ingest hands to a warehouse: validated events with their ids and provenance, and the
//! rejected rows with their reasons; and how a batch is stored, as rows of the raw tables that
//! are added only when their id is new.

use chrono::{DateTime, Utc};
use netsentinel_core::event::NetlogEvent;
use netsentinel_core::{Cell, EngineError, Warehouse};

use super::parse::reject_id;
use super::schema::{EVENT_COLUMNS, batch_log_table, events_def, rejects_def};

/// An event ready to store. `event_id` is a hash of the flow's identifying fields, so the same
/// flow ingested twice, from the same file or another, is stored once.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub event_id: String,
    pub event: NetlogEvent,
    pub source: String,
    pub line: u64,
}

/// A row that could not be ingested, kept with everything needed to fix and replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub reject_id: String,
    pub source: String,
    pub line: u64,
    pub field: Option<String>,
    pub reason: String,
    pub raw: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventBatch {
    pub events: Vec<StoredEvent>,
    pub rejects: Vec<Reject>,
}

impl EventBatch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.rejects.is_empty()
    }

    pub fn len(&self) -> usize {
        self.events.len() + self.rejects.len()
    }

    /// The batch's row of `ops.ingest_batches`; none for a batch without events.
    fn log_row(&self, ingested_at: DateTime<Utc>) -> Option<Vec<Cell>> {
        let starts = self.events.iter().map(|e| e.event.start_time);
        let first = starts.clone().min()?;
        let last = starts.max()?;
        Some(vec![
            Cell::Text(uuid::Uuid::now_v7().simple().to_string()),
            Cell::Timestamp(ingested_at),
            Cell::Timestamp(first),
            Cell::Timestamp(last),
            Cell::Int(self.events.len() as i64),
        ])
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOutcome {
    pub events_inserted: u64,
    /// Events already stored (a re-ingest) or repeated within the batch.
    pub events_duplicate: u64,
    pub rejects_inserted: u64,
}

impl std::ops::AddAssign for LoadOutcome {
    fn add_assign(&mut self, other: Self) {
        self.events_inserted += other.events_inserted;
        self.events_duplicate += other.events_duplicate;
        self.rejects_inserted += other.rejects_inserted;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the warehouse refused {count} reject row(s), e.g. line {line} of {file}: {reason}")]
    RejectsRefused {
        count: usize,
        line: u64,
        file: String,
        reason: String,
    },
}

impl EventBatch {
    /// Stores the batch idempotently: events and rejects already present (same ids) are not
    /// added again. An event the engine refuses becomes a reject, like a row that failed
    /// validation. The batch is logged before its events are written, so a crash in between
    /// leaves a log row that points at nothing rather than events no step will find.
    pub fn store(&self, warehouse: &mut dyn Warehouse) -> Result<LoadOutcome, LoadError> {
        let now = Utc::now();
        let mut rejects = self.rejects.clone();
        let mut outcome = LoadOutcome::default();
        if let Some(logged) = self.log_row(now) {
            warehouse.append_rows(&batch_log_table(), &[logged])?;
            let rows: Vec<Vec<Cell>> = self.events.iter().map(|e| e.row(now)).collect();
            let inserted = warehouse.insert_new_rows(&events_def(), &rows)?;
            outcome.events_inserted = inserted.inserted;
            outcome.events_duplicate = inserted.already_stored(rows.len());
            for refused in &inserted.refused {
                if let (Some(stored), Some(row)) =
                    (self.events.get(refused.index), rows.get(refused.index))
                {
                    rejects.push(stored.refused(row, &refused.reason));
                }
            }
        }
        if !rejects.is_empty() {
            let rows: Vec<Vec<Cell>> = rejects.iter().map(|r| r.row(now)).collect();
            let inserted = warehouse.insert_new_rows(&rejects_def(), &rows)?;
            if let Some(first) = inserted.refused.first() {
                let reject = &rejects[first.index];
                return Err(LoadError::RejectsRefused {
                    count: inserted.refused.len(),
                    line: reject.line,
                    file: reject.source.clone(),
                    reason: first.reason.clone(),
                });
            }
            outcome.rejects_inserted = inserted.inserted;
        }
        Ok(outcome)
    }
}

fn optional_text(value: &Option<String>) -> Cell {
    value.clone().map_or(Cell::Null, Cell::Text)
}

impl StoredEvent {
    /// The event as a row of `raw.netlog_events`.
    fn row(&self, ingested_at: DateTime<Utc>) -> Vec<Cell> {
        let e = &self.event;
        vec![
            Cell::Text(self.event_id.clone()),
            Cell::Text(e.subscriber_id.clone()),
            Cell::Text(e.src_ip.to_string()),
            Cell::Text(e.dst_ip.to_string()),
            Cell::Int(e.src_port.into()),
            Cell::Int(e.dst_port.into()),
            Cell::Int(e.tx_bytes as i64),
            Cell::Int(e.rx_bytes as i64),
            e.tcp_flag.map_or(Cell::Null, |f| Cell::Int(f.into())),
            Cell::Timestamp(e.start_time),
            Cell::Timestamp(e.end_time),
            Cell::Timestamp(e.timestamp.unwrap_or(e.end_time)),
            optional_text(&e.protocol_name),
            e.protocol_number
                .map_or(Cell::Null, |n| Cell::Int(n.into())),
            optional_text(&e.geo_country),
            optional_text(&e.geo_city),
            e.latitude.map_or(Cell::Null, Cell::Float),
            e.longitude.map_or(Cell::Null, Cell::Float),
            optional_text(&e.label),
            Cell::Text(self.source.clone()),
            Cell::Int(self.line as i64),
            Cell::Timestamp(ingested_at),
        ]
    }

    /// The reject for this event when the engine refused its row.
    fn refused(&self, row: &[Cell], reason: &str) -> Reject {
        let columns = EVENT_COLUMNS.iter().map(|c| c.name.to_string());
        let raw = Cell::Struct(columns.zip(row.iter().cloned()).collect())
            .to_json()
            .to_string();
        Reject {
            reject_id: reject_id(&self.source, self.line, &raw),
            source: self.source.clone(),
            line: self.line,
            field: None,
            reason: reason.to_string(),
            raw,
        }
    }
}

/// The most of a rejected line's text kept with its reject. No netlog event is near this long;
/// a longer line is junk, and kept whole it could exceed what one insert request may carry
/// (BigQuery: 10 MB), which would fail its batch's commit on every retry.
pub const MAX_REJECT_RAW_BYTES: usize = 64 << 10;

impl Reject {
    /// The reject as a row of `raw.netlog_rejects`.
    fn row(&self, rejected_at: DateTime<Utc>) -> Vec<Cell> {
        vec![
            Cell::Text(self.reject_id.clone()),
            Cell::Text(self.source.clone()),
            Cell::Int(self.line as i64),
            optional_text(&self.field),
            Cell::Text(self.reason.clone()),
            Cell::Text(truncated(&self.raw, MAX_REJECT_RAW_BYTES).to_string()),
            Cell::Timestamp(rejected_at),
        ]
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejects_raw_text_is_cut_at_a_character_boundary() {
        assert_eq!(truncated("short", 64), "short");
        assert_eq!(truncated("ééé", 3), "é", "a 2-byte character is not split");
        let reject = Reject {
            reject_id: "r".into(),
            source: "s".into(),
            line: 1,
            field: None,
            reason: "junk".into(),
            raw: "x".repeat(MAX_REJECT_RAW_BYTES * 3),
        };
        let row = reject.row(Utc::now());
        assert_eq!(row[5], Cell::Text("x".repeat(MAX_REJECT_RAW_BYTES)));
    }
}
