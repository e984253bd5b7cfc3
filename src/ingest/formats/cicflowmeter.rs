//! CICFlowMeter CSV (the CIC IDS data sets) onto the netlog schema. CIC releases spell headers
//! differently ("Flow ID", " Source IP", "Src IP", "Src_IP"), so header names are normalized
//! (trimmed, lowercased, spaces to underscores) and matched against the known aliases. Only the
//! mapped columns are read: the rate columns' "Infinity"/"NaN" never reject a row. The mapping is
//! documented in README.md ("CICFlowMeter CSV").

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeDelta, Utc};

use super::{TCP, protocol_name, tcp_flags};
use crate::ingest::CsvLayout;
use crate::ingest::parse::{self, Rejection, Scalar, WireEvent};
use netsentinel_core::event::NetlogEvent;
use netsentinel_core::parse_event_time;

/// A column the mapping reads: its name as the CICDDoS/CSE-CIC-IDS2018 underscore headers spell
/// it (used in errors and rejects), and its normalized spellings across CIC releases.
struct Column {
    name: &'static str,
    aliases: &'static [&'static str],
}

const SRC_IP: Column = Column {
    name: "Src_IP",
    aliases: &["src_ip", "source_ip"],
};
const SRC_PORT: Column = Column {
    name: "Src_Port",
    aliases: &["src_port", "source_port"],
};
const DST_IP: Column = Column {
    name: "Dst_IP",
    aliases: &["dst_ip", "destination_ip"],
};
const DST_PORT: Column = Column {
    name: "Dst_Port",
    aliases: &["dst_port", "destination_port"],
};
const PROTOCOL: Column = Column {
    name: "Protocol",
    aliases: &["protocol"],
};
const TIMESTAMP: Column = Column {
    name: "Timestamp",
    aliases: &["timestamp"],
};
const FLOW_DURATION: Column = Column {
    name: "Flow_Duration",
    aliases: &["flow_duration"],
};
const TOTLEN_FWD: Column = Column {
    name: "TotLen_Fwd_Pkts",
    aliases: &[
        "totlen_fwd_pkts",
        "total_length_of_fwd_packets",
        "total_length_of_fwd_packet",
        "fwd_packets_length_total",
    ],
};
const TOTLEN_BWD: Column = Column {
    name: "TotLen_Bwd_Pkts",
    aliases: &[
        "totlen_bwd_pkts",
        "total_length_of_bwd_packets",
        "total_length_of_bwd_packet",
        "bwd_packets_length_total",
    ],
};
const LABEL: Column = Column {
    name: "Label",
    aliases: &["label"],
};

/// Flag-count columns and the TCP flag bit each stands for. CICFlowMeter calls CWR "CWE".
const FLAG_COUNTS: [(Column, u16); 8] = [
    (
        Column {
            name: "FIN_Flag_Cnt",
            aliases: &["fin_flag_cnt", "fin_flag_count"],
        },
        tcp_flags::FIN,
    ),
    (
        Column {
            name: "SYN_Flag_Cnt",
            aliases: &["syn_flag_cnt", "syn_flag_count"],
        },
        tcp_flags::SYN,
    ),
    (
        Column {
            name: "RST_Flag_Cnt",
            aliases: &["rst_flag_cnt", "rst_flag_count"],
        },
        tcp_flags::RST,
    ),
    (
        Column {
            name: "PSH_Flag_Cnt",
            aliases: &["psh_flag_cnt", "psh_flag_count"],
        },
        tcp_flags::PSH,
    ),
    (
        Column {
            name: "ACK_Flag_Cnt",
            aliases: &["ack_flag_cnt", "ack_flag_count"],
        },
        tcp_flags::ACK,
    ),
    (
        Column {
            name: "URG_Flag_Cnt",
            aliases: &["urg_flag_cnt", "urg_flag_count"],
        },
        tcp_flags::URG,
    ),
    (
        Column {
            name: "ECE_Flag_Cnt",
            aliases: &["ece_flag_cnt", "ece_flag_count"],
        },
        tcp_flags::ECE,
    ),
    (
        Column {
            name: "CWE_Flag_Count",
            aliases: &[
                "cwe_flag_count",
                "cwe_flag_cnt",
                "cwr_flag_count",
                "cwr_flag_cnt",
            ],
        },
        tcp_flags::CWR,
    ),
];

/// `Src IP` / ` Source IP` / `Src_IP` all become `src_ip`.
fn normalize(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .trim()
        .to_ascii_lowercase()
        .replace(' ', "_")
}

/// Whether a CSV header line is CICFlowMeter's: it has flow columns no netlog CSV has.
pub fn is_header(line: &str) -> bool {
    line.split(',')
        .map(normalize)
        .any(|h| h == "flow_id" || h == "flow_duration")
}

/// Where the mapped columns are in one file's header.
#[derive(Debug)]
pub(crate) struct CicColumns {
    src_ip: usize,
    src_port: usize,
    dst_ip: usize,
    dst_port: usize,
    protocol: usize,
    timestamp: usize,
    flow_duration: usize,
    totlen_fwd: usize,
    totlen_bwd: usize,
    label: Option<usize>,
    /// Empty when the file has no flag counts: tcpFlag is then NULL.
    flags: Vec<(usize, &'static str, u16)>,
    /// Offset of the capture's local time, which the Timestamp column is written in.
    utc_offset: FixedOffset,
}

impl CsvLayout for CicColumns {
    const NAME: &'static str = "CICFlowMeter CSV";

    fn from_headers(
        headers: &[String],
        utc_offset: FixedOffset,
    ) -> Result<Self, Vec<&'static str>> {
        let normalized: Vec<String> = headers.iter().map(|h| normalize(h)).collect();
        let find = |column: &Column| {
            normalized
                .iter()
                .position(|h| column.aliases.contains(&h.as_str()))
        };
        let mut missing = Vec::new();
        let mut require = |column: &Column| {
            find(column).unwrap_or_else(|| {
                missing.push(column.name);
                0
            })
        };
        let columns = CicColumns {
            src_ip: require(&SRC_IP),
            src_port: require(&SRC_PORT),
            dst_ip: require(&DST_IP),
            dst_port: require(&DST_PORT),
            protocol: require(&PROTOCOL),
            timestamp: require(&TIMESTAMP),
            flow_duration: require(&FLOW_DURATION),
            totlen_fwd: require(&TOTLEN_FWD),
            totlen_bwd: require(&TOTLEN_BWD),
            label: find(&LABEL),
            flags: FLAG_COUNTS
                .iter()
                .filter_map(|(column, bit)| find(column).map(|i| (i, column.name, *bit)))
                .collect(),
            utc_offset,
        };
        if missing.is_empty() {
            Ok(columns)
        } else {
            Err(missing)
        }
    }

    fn parse(&self, record: &csv::StringRecord) -> Result<NetlogEvent, Rejection> {
        let cell = |index: usize| record.get(index).unwrap_or("").trim();
        let present = |index: usize| {
            let value = cell(index);
            (!value.is_empty()).then(|| Scalar::Text(value.to_string()))
        };
        let protocol = whole_number(PROTOCOL.name, cell(self.protocol))?;
        let protocol = u8::try_from(protocol).map_err(|_| {
            Rejection::field(PROTOCOL.name, format!("{protocol} is outside 0..=255"))
        })?;
        let start = self.start_time(cell(self.timestamp))?;
        let end = start
            .checked_add_signed(flow_duration(cell(self.flow_duration))?)
            .ok_or_else(|| Rejection::field(FLOW_DURATION.name, "ends out of range"))?;
        let tcp_flag = if protocol == TCP && !self.flags.is_empty() {
            let mut flag = 0;
            for &(index, name, bit) in &self.flags {
                if whole_number(name, cell(index))? > 0 {
                    flag |= bit;
                }
            }
            Some(Scalar::UInt(u64::from(flag)))
        } else {
            None
        };
        let wire = WireEvent {
            // CIC flows have no subscriber: the originating host stands in for one.
            subscriber_id: present(self.src_ip),
            src_ip: present(self.src_ip),
            dst_ip: present(self.dst_ip),
            src_port: present(self.src_port),
            dst_port: present(self.dst_port),
            tx_bytes: Some(Scalar::UInt(whole_number(
                TOTLEN_FWD.name,
                cell(self.totlen_fwd),
            )?)),
            rx_bytes: Some(Scalar::UInt(whole_number(
                TOTLEN_BWD.name,
                cell(self.totlen_bwd),
            )?)),
            tcp_flag,
            start_time: Some(rfc3339(start)),
            end_time: Some(rfc3339(end)),
            // CICFlowMeter writes 0 for a flow it could not decode as TCP or UDP: not HOPOPT.
            protocol_name: Some(Scalar::Text(
                protocol_name(protocol).unwrap_or("other").to_string(),
            )),
            protocol_number: Some(Scalar::UInt(u64::from(protocol))),
            label: self.label.and_then(present),
            ..WireEvent::default()
        };
        parse::validate(wire)
    }
}

impl CicColumns {
    /// CICFlowMeter's `dd/MM/yyyy hh:mm:ss a`, CSE-CIC-IDS2018's 24-hour form, CIC-IDS2017's
    /// minute-resolution cells and exports ending in ` UTC`; a zone-less time is in
    /// `--utc-offset`.
    fn start_time(&self, text: &str) -> Result<DateTime<Utc>, Rejection> {
        parse_event_time(text, self.utc_offset)
            .map_err(|e| Rejection::field(TIMESTAMP.name, e.to_string()))
    }
}

fn rfc3339(t: DateTime<Utc>) -> Scalar {
    Scalar::Text(t.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// A count: CIC files write some as floats (`1234.0`).
fn whole_number(column: &'static str, text: &str) -> Result<u64, Rejection> {
    if text.is_empty() {
        return Err(Rejection::field(column, "missing"));
    }
    if let Ok(n) = text.parse::<u64>() {
        return Ok(n);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 9.0e15 => Ok(v as u64),
        _ => Err(Rejection::field(
            column,
            format!("`{text}` is not a non-negative whole number"),
        )),
    }
}

/// Flow_Duration in microseconds. Some CIC releases hold negative durations (a CICFlowMeter
/// defect); such a flow has no usable end, so it is rejected rather than guessed.
fn flow_duration(text: &str) -> Result<TimeDelta, Rejection> {
    if let Some(rest) = text.strip_prefix('-')
        && rest.parse::<f64>().is_ok_and(|v| v > 0.0)
    {
        return Err(Rejection::field(
            FLOW_DURATION.name,
            format!("{text} is negative"),
        ));
    }
    let micros = whole_number(FLOW_DURATION.name, text)?;
    i64::try_from(micros)
        .ok()
        .map(TimeDelta::microseconds)
        .ok_or_else(|| Rejection::field(FLOW_DURATION.name, format!("{text} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE_HEADER: &str = "field0,Flow_ID,Src_IP,Src_Port,Dst_IP,Dst_Port,Protocol,Timestamp,Flow_Duration,Tot_Fwd_Pkts,Tot_Bwd_Pkts,TotLen_Fwd_Pkts,TotLen_Bwd_Pkts,Flow_Byts_s,Flow_Pkts_s,FIN_Flag_Cnt,SYN_Flag_Cnt,RST_Flag_Cnt,PSH_Flag_Cnt,ACK_Flag_Cnt,URG_Flag_Cnt,CWE_Flag_Count,ECE_Flag_Cnt,Label";
    const IDS2017_HEADER: &str = "Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, Timestamp, Flow Duration, Total Fwd Packets, Total Backward Packets,Total Length of Fwd Packets, Total Length of Bwd Packets,Flow Bytes/s, Flow Packets/s,FIN Flag Count, SYN Flag Count, RST Flag Count, PSH Flag Count, ACK Flag Count, URG Flag Count, CWE Flag Count, ECE Flag Count, Label";

    fn columns(header: &str) -> CicColumns {
        let headers: Vec<String> = header.split(',').map(str::to_string).collect();
        CicColumns::from_headers(&headers, FixedOffset::east_opt(0).unwrap()).unwrap()
    }

    fn parse_row(columns: &CicColumns, row: &str) -> Result<NetlogEvent, Rejection> {
        columns.parse(&csv::StringRecord::from(row.split(',').collect::<Vec<_>>()))
    }

    const SYN_ROW: &str = "7,10.0.0.9-10.0.0.1-4444-80-6,10.0.0.9,4444,10.0.0.1,80,6,20/02/2018 08:28:14,1500000,3,1,120.0,60.0,Infinity,NaN,0,3,0,0,0,0,0,0,ddos";

    #[test]
    fn a_sample_style_row_maps_onto_the_netlog_fields() {
        let event = parse_row(&columns(SAMPLE_HEADER), SYN_ROW).unwrap();
        assert_eq!(event.subscriber_id, "10.0.0.9");
        assert_eq!(event.src_ip.to_string(), "10.0.0.9");
        assert_eq!(event.dst_ip.to_string(), "10.0.0.1");
        assert_eq!((event.src_port, event.dst_port), (4444, 80));
        assert_eq!((event.tx_bytes, event.rx_bytes), (120, 60));
        assert_eq!(event.tcp_flag, Some(tcp_flags::SYN), "SYN only");
        assert_eq!(event.start_time.to_rfc3339(), "2018-02-20T08:28:14+00:00");
        assert_eq!(event.end_time.to_rfc3339(), "2018-02-20T08:28:15.500+00:00");
        assert_eq!(event.protocol_name.as_deref(), Some("tcp"));
        assert_eq!(event.protocol_number, Some(6));
        assert_eq!(event.label.as_deref(), Some("ddos"));
        assert_eq!(event.timestamp, None);
    }

    #[test]
    fn the_cic_ids2017_header_spelling_is_accepted() {
        let columns = columns(IDS2017_HEADER);
        let row = "x, 192.168.10.5, 51000, 8.8.8.8, 53, 17, 03/07/2017 09:54:36 PM, 2000, 1, 1, 40, 80, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, BENIGN";
        let event = parse_row(&columns, row).unwrap();
        assert_eq!(event.start_time.to_rfc3339(), "2017-07-03T21:54:36+00:00");
        assert_eq!(event.protocol_name.as_deref(), Some("udp"));
        assert_eq!(event.tcp_flag, None, "no TCP header on UDP");
        assert_eq!(event.label.as_deref(), Some("BENIGN"));
    }

    #[test]
    fn cic_time_formats_and_the_capture_offset() {
        let columns = columns(SAMPLE_HEADER);
        for (text, expected) in [
            ("20/02/2018 08:28:14", "2018-02-20T08:28:14+00:00"),
            ("03/07/2017 05:47:53 PM", "2017-07-03T17:47:53+00:00"),
            ("03/07/2017 12:05:00 AM", "2017-07-03T00:05:00+00:00"),
            ("3/7/2017 8:55", "2017-07-03T08:55:00+00:00"),
            ("2018-02-20 08:28:14.250", "2018-02-20T08:28:14.250+00:00"),
            ("2018-02-20 08:28:14", "2018-02-20T08:28:14+00:00"),
            // CICFlowMeter-V4 exports as distributed with some data sets.
            (
                "2018-12-01 13:32:12.000744 UTC",
                "2018-12-01T13:32:12.000744+00:00",
            ),
        ] {
            assert_eq!(columns.start_time(text).unwrap().to_rfc3339(), expected);
        }
        let reason = columns.start_time("yesterday").unwrap_err().reason;
        assert!(
            reason.starts_with("Timestamp: `yesterday` is not"),
            "{reason}"
        );

        let mut ids2017 = columns;
        ids2017.utc_offset = "-03:00".parse().unwrap();
        assert_eq!(
            ids2017
                .start_time("03/07/2017 05:47:53 PM")
                .unwrap()
                .to_rfc3339(),
            "2017-07-03T20:47:53+00:00",
            "local capture time (ADT) to UTC"
        );
        assert_eq!(
            ids2017
                .start_time("2018-12-01 13:32:12.000744 UTC")
                .unwrap()
                .to_rfc3339(),
            "2018-12-01T13:32:12.000744+00:00",
            "a time that names its zone ignores --utc-offset"
        );
    }

    #[test]
    fn flags_become_the_cumulative_tcp_flag_byte() {
        let columns = columns(SAMPLE_HEADER);
        // FIN ACK PSH SYN set over the flow: 1 | 16 | 8 | 2.
        let row = SYN_ROW.replace(",0,3,0,0,0,0,0,0,", ",1,3,0,2,5,0,0,0,");
        assert_eq!(parse_row(&columns, &row).unwrap().tcp_flag, Some(27));
        let other = SYN_ROW.replace(",80,6,", ",80,0,");
        let event = parse_row(&columns, &other).unwrap();
        assert_eq!(event.protocol_name.as_deref(), Some("other"));
        assert_eq!(event.protocol_number, Some(0));
        assert_eq!(event.tcp_flag, None);
    }

    #[test]
    fn bad_cells_are_rejected_under_their_column() {
        let columns = columns(SAMPLE_HEADER);
        let cases = [
            (
                SYN_ROW.replace(",1500000,", ",-12,"),
                "Flow_Duration",
                "Flow_Duration: -12 is negative",
            ),
            (
                SYN_ROW.replace(",120.0,", ",12.5,"),
                "TotLen_Fwd_Pkts",
                "TotLen_Fwd_Pkts: `12.5` is not",
            ),
            (
                SYN_ROW.replace(",60.0,", ",,"),
                "TotLen_Bwd_Pkts",
                "TotLen_Bwd_Pkts: missing",
            ),
            (
                SYN_ROW.replace("20/02/2018", "31/02/2018"),
                "Timestamp",
                "Timestamp: `31/02/2018",
            ),
            (
                SYN_ROW.replace(",80,6,", ",80,300,"),
                "Protocol",
                "Protocol: 300 is outside",
            ),
            (
                SYN_ROW.replace(",4444,", ",70000,"),
                "srcPort",
                "srcPort: 70000 is outside",
            ),
            (
                SYN_ROW.replace(",10.0.0.1,", ",10.0.0,"),
                "dstIP",
                "dstIP: `10.0.0` is not",
            ),
            (
                SYN_ROW.replace(",0,3,0,", ",0,x,0,"),
                "SYN_Flag_Cnt",
                "SYN_Flag_Cnt: `x` is not",
            ),
        ];
        for (row, field, reason) in cases {
            let rejection = parse_row(&columns, &row).unwrap_err();
            assert_eq!(rejection.field, Some(field), "{row}");
            assert!(
                rejection.reason.starts_with(reason),
                "{} !~ {reason}",
                rejection.reason
            );
        }
    }

    #[test]
    fn a_header_without_the_mapped_columns_names_what_is_missing() {
        // CIC-IDS2017's MachineLearningCSV files drop the addresses and the timestamp.
        let headers: Vec<String> = ["Destination Port", "Flow Duration", "Label"]
            .map(str::to_string)
            .to_vec();
        let missing =
            CicColumns::from_headers(&headers, FixedOffset::east_opt(0).unwrap()).unwrap_err();
        assert_eq!(
            missing,
            [
                "Src_IP",
                "Src_Port",
                "Dst_IP",
                "Protocol",
                "Timestamp",
                "TotLen_Fwd_Pkts",
                "TotLen_Bwd_Pkts"
            ]
        );
    }
}
