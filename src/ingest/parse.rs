//! Turning one JSONL line or CSV record into a validated `NetlogEvent`, or a rejection that names
//! the field and says what is wrong. JSONL and CSV share one validation path.

use std::net::IpAddr;

use chrono::{DateTime, Offset, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use xxhash_rust::xxh3::Xxh3;

use netsentinel_core::event::NetlogEvent;
use netsentinel_core::{from_epoch_number, parse_event_time};

/// A scalar as it arrived: JSON values keep their type, CSV cells arrive as text.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::UInt(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// The event's fields as received, before validation. Unknown keys are ignored; JSON `null`
/// and empty CSV cells are absent.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireEvent {
    pub subscriber_id: Option<Scalar>,
    #[serde(rename = "srcIP")]
    pub src_ip: Option<Scalar>,
    #[serde(rename = "dstIP")]
    pub dst_ip: Option<Scalar>,
    pub src_port: Option<Scalar>,
    pub dst_port: Option<Scalar>,
    pub tx_bytes: Option<Scalar>,
    pub rx_bytes: Option<Scalar>,
    pub tcp_flag: Option<Scalar>,
    pub start_time: Option<Scalar>,
    pub end_time: Option<Scalar>,
    pub timestamp: Option<Scalar>,
    pub protocol_name: Option<Scalar>,
    pub protocol_number: Option<Scalar>,
    pub geo_country: Option<Scalar>,
    pub geo_city: Option<Scalar>,
    pub latitude: Option<Scalar>,
    pub longitude: Option<Scalar>,
    pub label: Option<Scalar>,
}

impl WireEvent {
    /// Sets a field from a CSV cell by its header name; unknown headers are ignored.
    pub fn set_text(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let slot = match field {
            "subscriberId" => &mut self.subscriber_id,
            "srcIP" => &mut self.src_ip,
            "dstIP" => &mut self.dst_ip,
            "srcPort" => &mut self.src_port,
            "dstPort" => &mut self.dst_port,
            "txBytes" => &mut self.tx_bytes,
            "rxBytes" => &mut self.rx_bytes,
            "tcpFlag" => &mut self.tcp_flag,
            "startTime" => &mut self.start_time,
            "endTime" => &mut self.end_time,
            "timestamp" => &mut self.timestamp,
            "protocolName" => &mut self.protocol_name,
            "protocolNumber" => &mut self.protocol_number,
            "geoCountry" => &mut self.geo_country,
            "geoCity" => &mut self.geo_city,
            "latitude" => &mut self.latitude,
            "longitude" => &mut self.longitude,
            "label" => &mut self.label,
            _ => return,
        };
        *slot = Some(Scalar::Text(value.to_string()));
    }
}

/// Why a row was rejected: the field (when one field is to blame) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub field: Option<&'static str>,
    pub reason: String,
}

impl Rejection {
    pub(crate) fn field(field: &'static str, reason: impl Into<String>) -> Self {
        Rejection {
            field: Some(field),
            reason: format!("{field}: {}", reason.into()),
        }
    }

    /// A valid event that arrived after its window closed.
    pub fn late(reason: impl Into<String>) -> Self {
        Rejection {
            field: Some("startTime"),
            reason: reason.into(),
        }
    }

    pub fn row(reason: impl Into<String>) -> Self {
        Rejection {
            field: None,
            reason: reason.into(),
        }
    }
}

pub fn parse_json_line(line: &str) -> Result<NetlogEvent, Rejection> {
    let wire: WireEvent =
        serde_json::from_str(line).map_err(|e| Rejection::row(format!("malformed JSON: {e}")))?;
    validate(wire)
}

pub fn validate(wire: WireEvent) -> Result<NetlogEvent, Rejection> {
    let start_time = timestamp("startTime", required("startTime", wire.start_time)?)?;
    let end_time = timestamp("endTime", required("endTime", wire.end_time)?)?;
    if end_time < start_time {
        return Err(Rejection::field(
            "endTime",
            format!("{end_time} is before startTime {start_time}"),
        ));
    }
    Ok(NetlogEvent {
        subscriber_id: non_empty_text(
            "subscriberId",
            required("subscriberId", wire.subscriber_id)?,
        )?,
        src_ip: ip("srcIP", required("srcIP", wire.src_ip)?)?,
        dst_ip: ip("dstIP", required("dstIP", wire.dst_ip)?)?,
        src_port: bounded("srcPort", required("srcPort", wire.src_port)?, 65_535)? as u16,
        dst_port: bounded("dstPort", required("dstPort", wire.dst_port)?, 65_535)? as u16,
        tx_bytes: bounded(
            "txBytes",
            required("txBytes", wire.tx_bytes)?,
            i64::MAX as u64,
        )?,
        rx_bytes: bounded(
            "rxBytes",
            required("rxBytes", wire.rx_bytes)?,
            i64::MAX as u64,
        )?,
        tcp_flag: wire
            .tcp_flag
            .map(|v| bounded("tcpFlag", v, 511).map(|f| f as u16))
            .transpose()?,
        start_time,
        end_time,
        timestamp: wire
            .timestamp
            .map(|v| timestamp("timestamp", v))
            .transpose()?,
        protocol_name: wire.protocol_name.map(text),
        protocol_number: wire
            .protocol_number
            .map(|v| bounded("protocolNumber", v, 255).map(|n| n as u8))
            .transpose()?,
        geo_country: wire.geo_country.map(text),
        geo_city: wire.geo_city.map(text),
        latitude: wire
            .latitude
            .map(|v| coordinate("latitude", v, 90.0))
            .transpose()?,
        longitude: wire
            .longitude
            .map(|v| coordinate("longitude", v, 180.0))
            .transpose()?,
        label: wire.label.map(text),
    })
}

fn required(field: &'static str, value: Option<Scalar>) -> Result<Scalar, Rejection> {
    value.ok_or_else(|| Rejection::field(field, "missing"))
}

pub(crate) fn text(value: Scalar) -> String {
    match value {
        Scalar::Text(s) => s,
        Scalar::Int(v) => v.to_string(),
        Scalar::UInt(v) => v.to_string(),
        Scalar::Float(v) => v.to_string(),
        Scalar::Bool(v) => v.to_string(),
    }
}

fn non_empty_text(field: &'static str, value: Scalar) -> Result<String, Rejection> {
    let text = text(value);
    if text.trim().is_empty() {
        Err(Rejection::field(field, "empty"))
    } else {
        Ok(text)
    }
}

fn ip(field: &'static str, value: Scalar) -> Result<IpAddr, Rejection> {
    match value {
        Scalar::Text(s) => s
            .trim()
            .parse()
            .map_err(|_| Rejection::field(field, format!("`{s}` is not an IPv4 or IPv6 address"))),
        other => Err(Rejection::field(
            field,
            format!("expected an IP address string, got {}", text(other)),
        )),
    }
}

/// A non-negative integer no larger than `max`.
fn bounded(field: &'static str, value: Scalar, max: u64) -> Result<u64, Rejection> {
    let out_of_range =
        |shown: String| Rejection::field(field, format!("{shown} is outside 0..={max}"));
    let n = match value {
        Scalar::UInt(v) => v,
        Scalar::Int(v) if v < 0 => return Err(out_of_range(v.to_string())),
        Scalar::Int(v) => v as u64,
        Scalar::Float(v) if v.fract() == 0.0 && v >= 0.0 && v <= u64::MAX as f64 => v as u64,
        Scalar::Float(v) if v < 0.0 => return Err(out_of_range(v.to_string())),
        Scalar::Text(s) => match s.trim().parse::<i128>() {
            Ok(v) if v < 0 || v > u64::MAX as i128 => return Err(out_of_range(s)),
            Ok(v) => v as u64,
            Err(_) => {
                return Err(Rejection::field(field, format!("`{s}` is not an integer")));
            }
        },
        other => {
            return Err(Rejection::field(
                field,
                format!("expected an integer, got {}", text(other)),
            ));
        }
    };
    if n > max {
        return Err(out_of_range(n.to_string()));
    }
    Ok(n)
}

fn coordinate(field: &'static str, value: Scalar, limit: f64) -> Result<f64, Rejection> {
    let v = match &value {
        Scalar::Float(v) => *v,
        Scalar::Int(v) => *v as f64,
        Scalar::UInt(v) => *v as f64,
        Scalar::Text(s) => s
            .trim()
            .parse()
            .map_err(|_| Rejection::field(field, format!("`{s}` is not a number")))?,
        Scalar::Bool(_) => return Err(Rejection::field(field, "expected a number")),
    };
    if v.is_finite() && v.abs() <= limit {
        Ok(v)
    } else {
        Err(Rejection::field(
            field,
            format!("{v} is outside -{limit}..={limit}"),
        ))
    }
}

/// A timestamp as exports write them (see [`parse_event_time`]): RFC 3339 or a space-separated
/// date-time with a zone (`Z`, `+00:00`, ` UTC`), a zone-less one read as UTC, or epoch seconds
/// or milliseconds as a number or numeric text.
pub(crate) fn timestamp(field: &'static str, value: Scalar) -> Result<DateTime<Utc>, Rejection> {
    let parsed = match value {
        Scalar::Int(v) => from_epoch_number(v as f64),
        Scalar::UInt(v) => from_epoch_number(v as f64),
        Scalar::Float(v) => from_epoch_number(v),
        Scalar::Text(s) => parse_event_time(&s, Utc.fix()),
        Scalar::Bool(_) => return Err(Rejection::field(field, "expected a timestamp")),
    };
    parsed.map_err(|e| Rejection::field(field, e.to_string()))
}

/// The id that makes re-ingest idempotent: a hash of the fields that identify a flow
/// (enrichment such as geo or label does not change which flow it is).
pub fn event_id(event: &NetlogEvent) -> String {
    let mut h = Xxh3::new();
    h.update(event.subscriber_id.as_bytes());
    h.update(&[0]);
    for ip in [event.src_ip, event.dst_ip] {
        match ip {
            IpAddr::V4(v4) => h.update(&v4.octets()),
            IpAddr::V6(v6) => h.update(&v6.octets()),
        }
    }
    h.update(&event.src_port.to_le_bytes());
    h.update(&event.dst_port.to_le_bytes());
    h.update(&event.tx_bytes.to_le_bytes());
    h.update(&event.rx_bytes.to_le_bytes());
    h.update(&event.tcp_flag.map_or(u32::MAX, u32::from).to_le_bytes());
    h.update(&event.start_time.timestamp_micros().to_le_bytes());
    h.update(&event.end_time.timestamp_micros().to_le_bytes());
    h.update(
        &event
            .protocol_number
            .map_or(u16::MAX, u16::from)
            .to_le_bytes(),
    );
    h.update(event.protocol_name.as_deref().unwrap_or("").as_bytes());
    format!("{:032x}", h.digest128())
}

pub fn reject_id(source: &str, line: u64, raw: &str) -> String {
    let mut h = Xxh3::new();
    h.update(source.as_bytes());
    h.update(&[0]);
    h.update(&line.to_le_bytes());
    h.update(raw.as_bytes());
    format!("{:032x}", h.digest128())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"subscriberId":"34386449921202913","srcIP":"10.159.166.182","dstIP":"12.0.9.2","srcPort":2666,"dstPort":1736,"txBytes":170,"rxBytes":151,"startTime":1570276560,"endTime":1570276570,"tcpFlag":1,"protocolName":"tcp","protocolNumber":0}"#;

    fn reason_for(json: &str) -> String {
        parse_json_line(json).unwrap_err().reason
    }

    #[test]
    fn the_seed_format_with_epoch_seconds_is_accepted() {
        let event = parse_json_line(GOOD).unwrap();
        assert_eq!(event.start_time.to_rfc3339(), "2019-10-05T11:56:00+00:00");
        assert_eq!(event.tx_bytes, 170);
        assert_eq!(event.timestamp, None);
    }

    #[test]
    fn timestamps_accept_the_shapes_exports_write() {
        for (text, expected) in [
            ("\"2026-01-01T00:00:01.250Z\"", 1_767_225_601_250_000i64),
            ("\"2026-01-01T00:00:01.250+00:00\"", 1_767_225_601_250_000),
            ("\"2026-01-01 00:00:01.250 UTC\"", 1_767_225_601_250_000),
            ("\"2026-01-01 01:00:01.25+01:00\"", 1_767_225_601_250_000),
            ("\"2026-01-01 00:00:01.25\"", 1_767_225_601_250_000),
            ("1767225601.25", 1_767_225_601_250_000),
            ("1767225601250", 1_767_225_601_250_000),
            ("\"1767225601250\"", 1_767_225_601_250_000),
        ] {
            let t = timestamp("startTime", serde_json::from_str(text).unwrap()).unwrap();
            assert_eq!(t.timestamp_micros(), expected, "{text}");
        }
        let rejection =
            timestamp("startTime", Scalar::Text("2026-01-01 00:00:01 CET".into())).unwrap_err();
        assert!(
            rejection
                .reason
                .starts_with("startTime: `2026-01-01 00:00:01 CET`"),
            "names the field and the value: {}",
            rejection.reason
        );
    }

    #[test]
    fn each_bad_field_is_named_in_the_reason() {
        let cases = [
            (
                GOOD.replace("\"srcPort\":2666", "\"srcPort\":70000"),
                "srcPort: 70000 is outside 0..=65535",
            ),
            (
                GOOD.replace("\"txBytes\":170", "\"txBytes\":-5"),
                "txBytes: -5 is outside",
            ),
            (
                GOOD.replace("10.159.166.182", "10.159.166"),
                "srcIP: `10.159.166` is not an IPv4 or IPv6 address",
            ),
            (
                GOOD.replace("\"endTime\":1570276570", "\"endTime\":1570276550"),
                "endTime: ",
            ),
            (
                GOOD.replace("\"dstIP\":\"12.0.9.2\",", ""),
                "dstIP: missing",
            ),
            (
                GOOD.replace("\"rxBytes\":151", "\"rxBytes\":\"many\""),
                "rxBytes: `many` is not an integer",
            ),
            (
                GOOD.replace("1570276560", "\"yesterday\""),
                "startTime: `yesterday` is not a timestamp: expected RFC 3339",
            ),
            ("{not json".to_string(), "malformed JSON"),
        ];
        for (json, expected) in cases {
            let reason = reason_for(&json);
            assert!(reason.starts_with(expected), "{reason} !~ {expected}");
        }
    }

    #[test]
    fn event_ids_identify_flows_not_enrichment() {
        let a = parse_json_line(GOOD).unwrap();
        let mut b = a.clone();
        b.geo_city = Some("Paris".into());
        b.label = Some("normal".into());
        assert_eq!(event_id(&a), event_id(&b));
        b.tx_bytes += 1;
        assert_ne!(event_id(&a), event_id(&b));
    }
}
