//! The raw tables ingest owns, declared once: `raw.netlog_events` (the event fields plus
//! provenance) and `raw.netlog_rejects`. Every engine creates them from these definitions.

use netsentinel_core::table::{Column, ColumnType::*};
use netsentinel_core::{Dataset, EngineError, TableDef, TableRef, Warehouse};

/// Event columns in `EVENT_FIELDS` order, then provenance columns.
pub const EVENT_COLUMNS: [Column; 22] = [
    Column::new("event_id", String),
    Column::new("subscriberId", String),
    Column::new("srcIP", String),
    Column::new("dstIP", String),
    Column::new("srcPort", Int64),
    Column::new("dstPort", Int64),
    Column::new("txBytes", Int64),
    Column::new("rxBytes", Int64),
    Column::new("tcpFlag", Int64),
    Column::new("startTime", Timestamp),
    Column::new("endTime", Timestamp),
    Column::new("timestamp", Timestamp),
    Column::new("protocolName", String),
    Column::new("protocolNumber", Int64),
    Column::new("geoCountry", String),
    Column::new("geoCity", String),
    Column::new("latitude", Float64),
    Column::new("longitude", Float64),
    Column::new("label", String),
    Column::new("source", String),
    Column::new("source_line", Int64),
    Column::new("ingested_at", Timestamp),
];

pub const REJECT_COLUMNS: [Column; 7] = [
    Column::new("reject_id", String),
    Column::new("source", String),
    Column::new("line", Int64),
    Column::new("field", String),
    Column::new("reason", String),
    Column::new("raw", String),
    Column::new("rejected_at", Timestamp),
];

pub fn events_table() -> TableRef {
    TableRef::new(Dataset::Raw, "netlog_events").expect("valid name")
}

pub fn rejects_table() -> TableRef {
    TableRef::new(Dataset::Raw, "netlog_rejects").expect("valid name")
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
    TableDef {
        table: rejects_table(),
        columns: &REJECT_COLUMNS,
        key: &["reject_id"],
        partition_day: None,
        cluster_by: &[],
    }
}

/// Creates the datasets and the raw tables if missing: what every command that reads or
/// writes the project's tables needs first.
pub fn create_raw_tables(warehouse: &mut dyn Warehouse) -> Result<(), EngineError> {
    warehouse.ensure_datasets()?;
    warehouse.create_table(&events_def())?;
    warehouse.create_table(&rejects_def())
}
