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

/// How a raw table is stored on BigQuery. netsentinel's ingest creates the raw tables with this
/// layout, and terraform/ declares them the same way (tests/terraform.rs checks both agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageLayout {
    /// Column whose day partitions the table, if any.
    pub partition_day: Option<&'static str>,
    pub cluster_by: &'static [&'static str],
}

impl StorageLayout {
    /// Neither partitioned nor clustered.
    pub const PLAIN: StorageLayout = StorageLayout {
        partition_day: None,
        cluster_by: &[],
    };
}

/// Events are read by flow start (feature windows) and per subscriber, so those prune scans.
pub const EVENTS_LAYOUT: StorageLayout = StorageLayout {
    partition_day: Some("startTime"),
    cluster_by: &["subscriberId"],
};

/// Rejects are few and read whole.
pub const REJECTS_LAYOUT: StorageLayout = StorageLayout::PLAIN;

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
