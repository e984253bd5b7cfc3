//! What ingest hands to a warehouse: validated events with their ids and provenance, and the
//! rejected rows with their reasons.

use crate::event::NetlogEvent;

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
