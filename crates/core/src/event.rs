//! The netlog event: one flow record in the seed's field names, as generated, ingested and stored
//! in `raw.netlog_events`.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One network flow. Field names on the wire (JSONL keys, CSV headers, table columns) are the
/// seed's camelCase names; `label` carries ground truth where the source has it (the generator's
/// injected anomaly kind, a labelled data set's class) and is never a model feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetlogEvent {
    pub subscriber_id: String,
    #[serde(rename = "srcIP")]
    pub src_ip: IpAddr,
    #[serde(rename = "dstIP")]
    pub dst_ip: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tcp_flag: Option<u16>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    /// When the collector saw the flow; defaults to `end_time` when a source omits it.
    pub timestamp: Option<DateTime<Utc>>,
    pub protocol_name: Option<String>,
    pub protocol_number: Option<u8>,
    pub geo_country: Option<String>,
    pub geo_city: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub label: Option<String>,
}

/// Column order of the CSV layout and of the raw table's event columns.
pub const EVENT_FIELDS: [&str; 18] = [
    "subscriberId",
    "srcIP",
    "dstIP",
    "srcPort",
    "dstPort",
    "txBytes",
    "rxBytes",
    "tcpFlag",
    "startTime",
    "endTime",
    "timestamp",
    "protocolName",
    "protocolNumber",
    "geoCountry",
    "geoCity",
    "latitude",
    "longitude",
    "label",
];
