//! Zeek `conn.log` onto the netlog schema, in both of Zeek's writers: TSV (`#separator`,
//! `#fields`, `-` for unset, `(empty)` for an empty set) and JSON (one object per line, unset
//! fields omitted, `ts` as epoch seconds, epoch milliseconds or ISO 8601 as
//! `LogAscii::json_timestamps` says). IoT-23's `conn.log.labeled` `label`/`detailed-label`
//! columns are kept. The mapping is documented in README.md ("Zeek conn.log").

use std::io::BufRead;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Deserialize;

use super::{ICMP, ICMPV6, TCP, UDP, decimal_micros, tcp_flags};
use crate::ingest::parse::{self, Rejection, Scalar, WireEvent};
use crate::ingest::{BatchWriter, IngestError, for_each_line};
use netsentinel_core::event::NetlogEvent;

/// The `#fields` a TSV conn.log needs for the mapping.
const REQUIRED_FIELDS: [&str; 6] = [
    "ts",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
];

/// The mapped fields of one conn.log record as they arrived: TSV cells are text, JSON keeps its
/// types. Absent means unset.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ConnRecord {
    ts: Option<Scalar>,
    #[serde(rename = "id.orig_h")]
    orig_h: Option<Scalar>,
    #[serde(rename = "id.orig_p")]
    orig_p: Option<Scalar>,
    #[serde(rename = "id.resp_h")]
    resp_h: Option<Scalar>,
    #[serde(rename = "id.resp_p")]
    resp_p: Option<Scalar>,
    proto: Option<Scalar>,
    duration: Option<Scalar>,
    orig_bytes: Option<Scalar>,
    resp_bytes: Option<Scalar>,
    orig_ip_bytes: Option<Scalar>,
    resp_ip_bytes: Option<Scalar>,
    conn_state: Option<Scalar>,
    history: Option<Scalar>,
    label: Option<Scalar>,
    #[serde(rename = "detailed-label")]
    detailed_label: Option<Scalar>,
}

impl ConnRecord {
    pub(crate) fn from_json(line: &str) -> Result<Self, Rejection> {
        serde_json::from_str(line).map_err(|e| Rejection::row(format!("malformed JSON: {e}")))
    }

    /// Sets a field from a TSV cell by its `#fields` name; other fields are ignored.
    fn set_text(&mut self, field: &str, value: &str) {
        let slot = match field {
            "ts" => &mut self.ts,
            "id.orig_h" => &mut self.orig_h,
            "id.orig_p" => &mut self.orig_p,
            "id.resp_h" => &mut self.resp_h,
            "id.resp_p" => &mut self.resp_p,
            "proto" => &mut self.proto,
            "duration" => &mut self.duration,
            "orig_bytes" => &mut self.orig_bytes,
            "resp_bytes" => &mut self.resp_bytes,
            "orig_ip_bytes" => &mut self.orig_ip_bytes,
            "resp_ip_bytes" => &mut self.resp_ip_bytes,
            "conn_state" => &mut self.conn_state,
            "history" => &mut self.history,
            "label" => &mut self.label,
            "detailed-label" => &mut self.detailed_label,
            _ => return,
        };
        *slot = Some(Scalar::Text(value.to_string()));
    }

    pub(crate) fn into_event(self) -> Result<NetlogEvent, Rejection> {
        let start = time(self.ts.ok_or_else(|| Rejection::field("ts", "missing"))?)?;
        // Zeek logs no duration for a connection whose packets share one instant.
        let duration = self.duration.map(seconds).transpose()?.unwrap_or_default();
        let end = start
            .checked_add_signed(duration)
            .ok_or_else(|| Rejection::field("duration", "ends out of range"))?;
        let proto = self.proto.map(|p| parse::text(p).to_ascii_lowercase());
        let orig_h = self.orig_h.map(parse::text);
        let ipv6 = orig_h.as_deref().is_some_and(|h| h.contains(':'));
        let protocol_number = match proto.as_deref() {
            Some("tcp") => Some(TCP),
            Some("udp") => Some(UDP),
            // Zeek names ICMPv6 "icmp" too; the address family tells them apart.
            Some("icmp") if ipv6 => Some(ICMPV6),
            Some("icmp") => Some(ICMP),
            _ => None,
        };
        let tcp_flag = if protocol_number == Some(TCP) {
            flags_from(
                self.history.map(parse::text).as_deref(),
                self.conn_state.map(parse::text).as_deref(),
            )
        } else {
            None
        };
        // Payload bytes, as CICFlowMeter's; Zeek logs them only for connections with a duration,
        // so the IP-level count stands in for the others.
        let tx_bytes = self
            .orig_bytes
            .or(self.orig_ip_bytes)
            .ok_or_else(|| Rejection::field("orig_bytes", "unset, and so is orig_ip_bytes"))?;
        let rx_bytes = self
            .resp_bytes
            .or(self.resp_ip_bytes)
            .ok_or_else(|| Rejection::field("resp_bytes", "unset, and so is resp_ip_bytes"))?;
        let label = match (
            self.label.map(parse::text),
            self.detailed_label.map(parse::text),
        ) {
            (Some(label), Some(detail)) => Some(format!("{label} ({detail})")),
            (label, detail) => label.or(detail),
        };
        parse::validate(WireEvent {
            // conn.log has no subscriber: the originating host stands in for one.
            subscriber_id: orig_h.clone().map(Scalar::Text),
            src_ip: orig_h.map(Scalar::Text),
            dst_ip: self.resp_h,
            src_port: self.orig_p,
            dst_port: self.resp_p,
            tx_bytes: Some(tx_bytes),
            rx_bytes: Some(rx_bytes),
            tcp_flag: tcp_flag.map(|f| Scalar::UInt(u64::from(f))),
            start_time: Some(rfc3339(start)),
            end_time: Some(rfc3339(end)),
            protocol_name: proto.map(Scalar::Text),
            protocol_number: protocol_number.map(|n| Scalar::UInt(u64::from(n))),
            label: label.map(Scalar::Text),
            ..WireEvent::default()
        })
    }
}

fn rfc3339(t: DateTime<Utc>) -> Scalar {
    Scalar::Text(t.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// `ts`: TSV's `1331901000.123456` (read exactly), JSON's epoch number or ISO 8601 text.
fn time(value: Scalar) -> Result<DateTime<Utc>, Rejection> {
    parse::timestamp("ts", value)
}

/// `duration` in seconds: TSV text exactly, a JSON number to the microsecond.
fn seconds(value: Scalar) -> Result<TimeDelta, Rejection> {
    let micros = match &value {
        Scalar::Text(text) => decimal_micros(text),
        Scalar::Float(v) if v.is_finite() && *v >= 0.0 && *v < 9.0e9 => {
            Some((v * 1e6).round() as i64)
        }
        Scalar::Int(v) if *v >= 0 => v.checked_mul(1_000_000),
        Scalar::UInt(v) => i64::try_from(*v)
            .ok()
            .and_then(|v| v.checked_mul(1_000_000)),
        _ => None,
    };
    micros.map(TimeDelta::microseconds).ok_or_else(|| {
        Rejection::field(
            "duration",
            format!(
                "`{}` is not a non-negative number of seconds",
                parse::text(value)
            ),
        )
    })
}

/// The cumulative TCP flags of a connection, from its `history` (uppercase: originator,
/// lowercase: responder), else from `conn_state` where that alone implies them. Zeek does not log
/// PSH: a payload packet (`d`) counts as PSH|ACK, as most stacks send it.
fn flags_from(history: Option<&str>, conn_state: Option<&str>) -> Option<u16> {
    use tcp_flags::{ACK, FIN, PSH, RST, SYN};
    let from_history = history.map_or(0, |history| {
        history.chars().fold(0, |flags, c| {
            flags
                | match c.to_ascii_lowercase() {
                    's' => SYN,
                    'h' => SYN | ACK,
                    'a' => ACK,
                    'd' => PSH | ACK,
                    'f' => FIN,
                    'r' => RST,
                    _ => 0,
                }
        })
    });
    if from_history != 0 {
        return Some(from_history);
    }
    match conn_state {
        // A SYN with no reply; a SYN answered by a RST.
        Some("S0") => Some(SYN),
        Some("REJ") => Some(SYN | RST),
        _ => None,
    }
}

/// The TSV writer's header state: directives seen so far.
struct TsvHeader {
    separator: String,
    unset: String,
    empty: String,
    fields: Option<Vec<String>>,
}

impl Default for TsvHeader {
    fn default() -> Self {
        TsvHeader {
            separator: "\t".to_string(),
            unset: "-".to_string(),
            empty: "(empty)".to_string(),
            fields: None,
        }
    }
}

impl TsvHeader {
    /// Applies a `#…` line. Returns the required fields a `#fields` line lacks.
    fn directive(&mut self, line: &str) -> Result<(), Vec<&'static str>> {
        // `#separator` is written with a space, as its value is the separator itself.
        if let Some(value) = line.strip_prefix("#separator ") {
            self.separator = unescape(value.trim_end_matches(['\r', '\n']));
            return Ok(());
        }
        let (name, value) = line
            .split_once(self.separator.as_str())
            .unwrap_or((line, ""));
        match name {
            "#unset_field" => self.unset = value.to_string(),
            "#empty_field" => self.empty = value.to_string(),
            "#fields" => {
                // IoT-23's labelled logs separate their last columns with spaces, not tabs.
                let fields: Vec<String> = value
                    .split(self.separator.as_str())
                    .flat_map(str::split_whitespace)
                    .map(str::to_string)
                    .collect();
                let missing: Vec<&str> = REQUIRED_FIELDS
                    .into_iter()
                    .filter(|r| !fields.iter().any(|f| f == r))
                    .collect();
                if !missing.is_empty() {
                    return Err(missing);
                }
                self.fields = Some(fields);
            }
            _ => {}
        }
        Ok(())
    }

    /// One record from a data line, given the `#fields` it follows.
    fn record(&self, fields: &[String], line: &str) -> Result<ConnRecord, Rejection> {
        let mut cells: Vec<&str> = line.split(self.separator.as_str()).collect();
        // IoT-23: `(empty)   Benign   -` arrives as one cell.
        if cells.len() < fields.len()
            && let Some(last) = cells.pop()
        {
            cells.extend(last.split_whitespace());
        }
        if cells.len() != fields.len() {
            return Err(Rejection::row(format!(
                "has {} fields, #fields has {}",
                cells.len(),
                fields.len()
            )));
        }
        let mut record = ConnRecord::default();
        for (field, cell) in fields.iter().zip(cells) {
            if cell != self.unset && cell != self.empty && !cell.is_empty() {
                record.set_text(field, cell);
            }
        }
        Ok(record)
    }
}

/// `\x09` → tab: how `#separator` spells its value.
fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("\\x") {
        out.push_str(&rest[..i]);
        let hex = rest.get(i + 2..i + 4);
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[i + 4..];
            }
            None => {
                out.push_str("\\x");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Reads a conn.log, TSV or JSON line by line: `#` lines are TSV directives, `{` lines JSON
/// records, other lines TSV records of the last `#fields`.
pub(in crate::ingest) fn read(
    reader: impl BufRead,
    source: &str,
    writer: &mut BatchWriter<'_>,
) -> Result<(), IngestError> {
    let mut header = TsvHeader::default();
    for_each_line(reader, source, |line_number, line| {
        let parsed = match line.text() {
            Err(rejection) => Err(rejection),
            Ok(text) if text.starts_with('#') => {
                return header
                    .directive(text)
                    .map_err(|missing| IngestError::Header {
                        path: source.to_string(),
                        format: "Zeek conn.log #fields",
                        missing: missing.join(", "),
                    });
            }
            Ok(text) if text.trim_start().starts_with('{') => ConnRecord::from_json(text),
            Ok(text) => match &header.fields {
                Some(fields) => header.record(fields, text),
                None => {
                    return Err(IngestError::ZeekWithoutFields {
                        path: source.to_string(),
                        line: line_number,
                    });
                }
            },
        };
        writer.accept(
            source,
            line_number,
            parsed.and_then(ConnRecord::into_event),
            || line.raw().to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &str = "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents";

    fn header() -> (TsvHeader, Vec<String>) {
        let mut header = TsvHeader::default();
        header.directive("#separator \\x09").unwrap();
        header.directive("#unset_field\t-").unwrap();
        header.directive(FIELDS).unwrap();
        let fields = header.fields.clone().unwrap();
        (header, fields)
    }

    fn tsv(line: &str) -> Result<NetlogEvent, Rejection> {
        let (header, fields) = header();
        header.record(&fields, line)?.into_event()
    }

    #[test]
    fn a_tsv_record_maps_onto_the_netlog_fields() {
        let event = tsv("1331901000.123456\tCx1\t192.168.1.5\t51000\t10.0.0.1\t443\ttcp\tssl\t2.5\t1200\t5400\tSF\t-\t-\t0\tShADadFf\t10\t1720\t9\t5870\t(empty)").unwrap();
        assert_eq!(event.subscriber_id, "192.168.1.5");
        assert_eq!(event.src_ip.to_string(), "192.168.1.5");
        assert_eq!((event.src_port, event.dst_port), (51000, 443));
        assert_eq!(event.dst_ip.to_string(), "10.0.0.1");
        assert_eq!((event.tx_bytes, event.rx_bytes), (1200, 5400));
        assert_eq!(event.start_time.timestamp_micros(), 1_331_901_000_123_456);
        assert_eq!(event.end_time.timestamp_micros(), 1_331_901_002_623_456);
        assert_eq!(event.protocol_name.as_deref(), Some("tcp"));
        assert_eq!(event.protocol_number, Some(6));
        // S h A D a d F f: SYN, SYN|ACK, ACK, PSH|ACK, FIN.
        assert_eq!(event.tcp_flag, Some(2 | 16 | 8 | 1));
        assert_eq!(event.label, None);
    }

    #[test]
    fn a_lone_syn_is_syn_only_and_unset_fields_fall_back() {
        // One SYN, no reply: no duration, no payload counts.
        let event = tsv("1331901000.000000\tCx2\t192.168.1.5\t51001\t10.0.0.2\t22\ttcp\t-\t-\t-\t-\tS0\t-\t-\t0\tS\t1\t60\t0\t0\t(empty)").unwrap();
        assert_eq!(event.tcp_flag, Some(tcp_flags::SYN));
        assert_eq!(event.end_time, event.start_time);
        assert_eq!((event.tx_bytes, event.rx_bytes), (60, 0), "IP-level bytes");
        assert_eq!(flags_from(None, Some("S0")), Some(tcp_flags::SYN));
        assert_eq!(flags_from(Some(""), Some("REJ")), Some(6));
        assert_eq!(flags_from(None, Some("SF")), None);
    }

    #[test]
    fn udp_and_icmp_have_no_tcp_flag() {
        let udp = tsv("1331901000.5\tCx3\t192.168.1.5\t53000\t8.8.8.8\t53\tudp\tdns\t0.01\t40\t120\tSF\t-\t-\t0\tDd\t1\t68\t1\t148\t(empty)").unwrap();
        assert_eq!(
            (udp.protocol_name.as_deref(), udp.protocol_number),
            (Some("udp"), Some(17))
        );
        assert_eq!(udp.tcp_flag, None);
        let icmp6 = tsv("1331901000.5\tCx4\tfe80::1\t128\tfe80::2\t129\ticmp\t-\t0.001\t8\t8\tOTH\t-\t-\t0\t-\t1\t56\t1\t56\t(empty)").unwrap();
        assert_eq!(icmp6.protocol_number, Some(58));
    }

    #[test]
    fn json_records_with_epoch_or_iso8601_ts() {
        let epoch = ConnRecord::from_json(r#"{"ts":1331901000.25,"uid":"C1","id.orig_h":"192.168.1.5","id.orig_p":51000,"id.resp_h":"10.0.0.1","id.resp_p":80,"proto":"tcp","duration":1.5,"orig_bytes":10,"resp_bytes":20,"conn_state":"S0","history":"S","tunnel_parents":[]}"#)
            .unwrap()
            .into_event()
            .unwrap();
        assert_eq!(epoch.start_time.timestamp_micros(), 1_331_901_000_250_000);
        assert_eq!(epoch.end_time.timestamp_micros(), 1_331_901_001_750_000);
        assert_eq!(epoch.tcp_flag, Some(2));
        let iso = ConnRecord::from_json(r#"{"ts":"2012-03-16T12:30:00.250000Z","id.orig_h":"192.168.1.5","id.orig_p":51000,"id.resp_h":"10.0.0.1","id.resp_p":80,"proto":"udp","orig_ip_bytes":28,"resp_ip_bytes":0}"#)
            .unwrap()
            .into_event()
            .unwrap();
        assert_eq!(iso.start_time.to_rfc3339(), "2012-03-16T12:30:00.250+00:00");
        assert_eq!(iso.end_time, iso.start_time);
        assert_eq!((iso.tx_bytes, iso.rx_bytes), (28, 0));
    }

    #[test]
    fn iot23_labels_are_kept() {
        let mut header = TsvHeader::default();
        header
            .directive(&format!("{FIELDS}   label   detailed-label"))
            .unwrap();
        let fields = header.fields.clone().unwrap();
        assert_eq!(fields.len(), 23);
        let line = "1525879831.015811\tCx5\t192.168.100.103\t51524\t65.127.233.163\t23\ttcp\t-\t2.999051\t0\t0\tS0\t-\t-\t0\tS\t3\t180\t0\t0\t(empty)   Malicious   PartOfAHorizontalPortScan";
        let event = header.record(&fields, line).unwrap().into_event().unwrap();
        assert_eq!(
            event.label.as_deref(),
            Some("Malicious (PartOfAHorizontalPortScan)")
        );
        let benign = line.replace("Malicious   PartOfAHorizontalPortScan", "Benign   -");
        let event = header
            .record(&fields, &benign)
            .unwrap()
            .into_event()
            .unwrap();
        assert_eq!(event.label.as_deref(), Some("Benign"));
    }

    #[test]
    fn bad_records_are_rejected_under_their_field() {
        let good = "1331901000.5\tCx3\t192.168.1.5\t53000\t8.8.8.8\t53\tudp\tdns\t0.01\t40\t120\tSF\t-\t-\t0\tDd\t1\t68\t1\t148\t(empty)";
        let cases = [
            (
                good.replace("1331901000.5", "noon"),
                Some("ts"),
                "ts: `noon` is not a timestamp",
            ),
            (
                good.replace("\t0.01\t", "\t-0.01\t"),
                Some("duration"),
                "duration: `-0.01` is not",
            ),
            (
                good.replace("\t53000\t", "\t70000\t"),
                Some("srcPort"),
                "srcPort: 70000 is outside",
            ),
            (
                good.replace("8.8.8.8", "8.8.8"),
                Some("dstIP"),
                "dstIP: `8.8.8` is not",
            ),
            (
                good.replace("\t40\t120\t", "\t-\t120\t")
                    .replace("\t68\t", "\t-\t"),
                Some("orig_bytes"),
                "orig_bytes: unset",
            ),
            (
                good.replace("\t(empty)", ""),
                None,
                "has 20 fields, #fields has 21",
            ),
        ];
        for (line, field, reason) in cases {
            let rejection = tsv(&line).unwrap_err();
            assert_eq!(rejection.field, field, "{line}");
            assert!(
                rejection.reason.starts_with(reason),
                "{} !~ {reason}",
                rejection.reason
            );
        }
        let reason = ConnRecord::from_json("{\"ts\":").unwrap_err().reason;
        assert!(reason.starts_with("malformed JSON"), "{reason}");
    }

    #[test]
    fn a_fields_line_without_the_connection_fields_names_them() {
        let mut header = TsvHeader::default();
        let missing = header.directive("#fields\tts\tuid\tquery").unwrap_err();
        assert_eq!(
            missing,
            ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto"]
        );
        assert_eq!(unescape("\\x09"), "\t");
        assert_eq!(unescape("a\\x2cb\\xzz"), "a,b\\xzz");
    }
}
