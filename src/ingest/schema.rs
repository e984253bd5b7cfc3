//! The raw tables' schema, in GoogleSQL types: `raw.netlog_events` (the event fields plus
//! provenance) and `raw.netlog_rejects`.

use crate::relation::{Dataset, TableRef};
use crate::render::Naming;

/// Event columns in `EVENT_FIELDS` order, then provenance columns.
pub const EVENT_COLUMNS: [(&str, &str); 22] = [
    ("event_id", "STRING"),
    ("subscriberId", "STRING"),
    ("srcIP", "STRING"),
    ("dstIP", "STRING"),
    ("srcPort", "INT64"),
    ("dstPort", "INT64"),
    ("txBytes", "INT64"),
    ("rxBytes", "INT64"),
    ("tcpFlag", "INT64"),
    ("startTime", "TIMESTAMP"),
    ("endTime", "TIMESTAMP"),
    ("timestamp", "TIMESTAMP"),
    ("protocolName", "STRING"),
    ("protocolNumber", "INT64"),
    ("geoCountry", "STRING"),
    ("geoCity", "STRING"),
    ("latitude", "FLOAT64"),
    ("longitude", "FLOAT64"),
    ("label", "STRING"),
    ("source", "STRING"),
    ("source_line", "INT64"),
    ("ingested_at", "TIMESTAMP"),
];

pub const REJECT_COLUMNS: [(&str, &str); 7] = [
    ("reject_id", "STRING"),
    ("source", "STRING"),
    ("line", "INT64"),
    ("field", "STRING"),
    ("reason", "STRING"),
    ("raw", "STRING"),
    ("rejected_at", "TIMESTAMP"),
];

pub fn events_table() -> TableRef {
    TableRef::new(Dataset::Raw, "netlog_events").expect("valid name")
}

pub fn rejects_table() -> TableRef {
    TableRef::new(Dataset::Raw, "netlog_rejects").expect("valid name")
}

pub fn create_table_sql(naming: &Naming, table: &TableRef, columns: &[(&str, &str)]) -> String {
    let columns: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        naming.qualify(table),
        columns.join(", ")
    )
}
