//! The tables ingest owns, declared once: `raw.netlog_events` (the event fields plus
//! provenance), `raw.netlog_rejects`, and `ops.ingest_batches`, the log incremental steps find
//! new events with. Every engine creates them from these definitions.

use netsentinel_core::{Column, Dataset, EngineError, TableDef, TableRef, Warehouse};

/// Event columns in `EVENT_FIELDS` order, then provenance columns.
pub const EVENT_COLUMNS: [Column; 22] = [
    Column::string("event_id"),
    Column::string("subscriberId"),
    Column::string("srcIP"),
    Column::string("dstIP"),
    Column::int64("srcPort"),
    Column::int64("dstPort"),
    Column::int64("txBytes"),
    Column::int64("rxBytes"),
    Column::int64("tcpFlag"),
    Column::timestamp("startTime"),
    Column::timestamp("endTime"),
    Column::timestamp("timestamp"),
    Column::string("protocolName"),
    Column::int64("protocolNumber"),
    Column::string("geoCountry"),
    Column::string("geoCity"),
    Column::float64("latitude"),
    Column::float64("longitude"),
    Column::string("label"),
    Column::string("source"),
    Column::int64("source_line"),
    Column::timestamp("ingested_at"),
];

pub const REJECT_COLUMNS: [Column; 7] = [
    Column::string("reject_id"),
    Column::string("source"),
    Column::int64("line"),
    Column::string("field"),
    Column::string("reason"),
    Column::string("raw"),
    Column::timestamp("rejected_at"),
];

/// One row per stored batch: when it was stamped and the flow starts it spans. Steps read this
/// small log to learn which event times gained rows since they last ran, instead of scanning
/// every event's `ingested_at`.
pub const BATCH_LOG_COLUMNS: [Column; 5] = [
    Column::string("batch_id"),
    Column::timestamp("ingested_at"),
    Column::timestamp("first_start"),
    Column::timestamp("last_start"),
    Column::int64("events"),
];

pub fn events_table() -> TableRef {
    TableRef::new(Dataset::Raw, "netlog_events").expect("valid name")
}

pub fn rejects_table() -> TableRef {
    TableRef::new(Dataset::Raw, "netlog_rejects").expect("valid name")
}

pub fn batch_log_table() -> TableRef {
    TableRef::new(Dataset::Ops, "ingest_batches").expect("valid name")
}

/// Events are read by flow start (feature windows) and per subscriber, so those prune scans.
/// terraform/ declares the table the same way (tests/it/terraform.rs checks both agree).
pub fn events_def() -> TableDef {
    TableDef {
        table: events_table(),
        columns: &EVENT_COLUMNS,
        key: &["event_id"],
        partition_day: Some("startTime"),
        cluster_by: &["subscriberId"],
    }
}

/// Rejects are few and read whole.
pub fn rejects_def() -> TableDef {
    TableDef::plain(rejects_table(), &REJECT_COLUMNS, &["reject_id"])
}

/// Read by ingestion time, and small: one row per commit.
pub fn batch_log_def() -> TableDef {
    TableDef::plain(batch_log_table(), &BATCH_LOG_COLUMNS, &["batch_id"])
}

/// Creates the datasets and ingest's tables if missing: what every command that reads or
/// writes the project's tables needs first.
pub fn create_raw_tables(warehouse: &mut dyn Warehouse) -> Result<(), EngineError> {
    warehouse.ensure_datasets()?;
    warehouse.create_tables(&[events_def(), rejects_def(), batch_log_def()])
}

#[cfg(test)]
mod tests {
    use netsentinel_core::event::EVENT_FIELDS;

    use super::*;

    #[test]
    fn event_columns_hold_the_event_fields_in_their_order_after_the_id() {
        let names: Vec<&str> = EVENT_COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(names[0], "event_id");
        assert_eq!(names[1..=EVENT_FIELDS.len()], EVENT_FIELDS);
    }
}
