//! Input formats other than the netlog layout, mapped onto the netlog schema: CICFlowMeter CSV
//! (the CIC IDS data sets) and Zeek `conn.log` (TSV or JSON). This module holds what they share:
//! the format choice and its detection, protocol numbers and names, TCP flag bits.

pub mod cicflowmeter;
pub mod zeek;

use std::path::Path;

/// What `ingest` reads. `Jsonl` and `Csv` are the netlog layout (the seed's field names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    Jsonl,
    Csv,
    /// CICFlowMeter CSV, as in the CIC IDS data sets (CIC-IDS2017, CSE-CIC-IDS2018, CICDDoS2019).
    Cicflowmeter,
    /// Zeek `conn.log`, TSV (with its `#fields` header) or JSON (one object per line).
    Zeek,
}

impl InputFormat {
    /// The format of a file from its first line, then its extension; None when neither says.
    /// Content decides first because it is unambiguous where it speaks: a Zeek TSV log opens with
    /// `#separator`/`#fields`, a Zeek JSON record has an `id.orig_h` key no netlog event has, and a
    /// CICFlowMeter header has flow columns no netlog CSV has.
    pub fn detect(path: &Path, first_line: &str) -> Option<Self> {
        let line = first_line.trim_start_matches('\u{feff}').trim();
        if line.starts_with("#separator") || line.starts_with("#fields") {
            return Some(InputFormat::Zeek);
        }
        if line.starts_with('{') {
            return Some(if line.contains("\"id.orig_h\"") {
                InputFormat::Zeek
            } else {
                InputFormat::Jsonl
            });
        }
        if cicflowmeter::is_header(line) {
            return Some(InputFormat::Cicflowmeter);
        }
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Some(InputFormat::Jsonl),
            "csv" => Some(InputFormat::Csv),
            "log" => Some(InputFormat::Zeek),
            _ => None,
        }
    }
}

/// TCP flag bits as in the TCP header's flags byte, which is what `tcpFlag` holds (the netlog
/// generator's SYN is 2, PSH|ACK 24; `sql/features` counts `tcpFlag = 2` as SYN-only).
pub mod tcp_flags {
    pub const FIN: u16 = 1;
    pub const SYN: u16 = 2;
    pub const RST: u16 = 4;
    pub const PSH: u16 = 8;
    pub const ACK: u16 = 16;
    pub const URG: u16 = 32;
    pub const ECE: u16 = 64;
    pub const CWR: u16 = 128;
}

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;
pub const ICMPV6: u8 = 58;

/// IANA keyword (lowercase) of the IP protocols flow logs commonly carry.
pub fn protocol_name(number: u8) -> Option<&'static str> {
    Some(match number {
        ICMP => "icmp",
        2 => "igmp",
        TCP => "tcp",
        UDP => "udp",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        ICMPV6 => "ipv6-icmp",
        132 => "sctp",
        _ => return None,
    })
}

/// Exact microseconds of a non-negative decimal such as Zeek's `1331901000.123456`; f64 would
/// round epoch microseconds. None when the text is not such a decimal.
pub fn decimal_micros(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if (whole.is_empty() && fraction.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // Digits past microseconds are dropped: no flow source resolves below them.
    let mut micros = 0i64;
    for position in 0..6 {
        let digit = fraction
            .as_bytes()
            .get(position)
            .map_or(0, |b| i64::from(b - b'0'));
        micros = micros * 10 + digit;
    }
    whole.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_before_the_extension() {
        let detect = |path: &str, line: &str| InputFormat::detect(Path::new(path), line);
        assert_eq!(detect("x.csv", "#separator \\x09"), Some(InputFormat::Zeek));
        assert_eq!(detect("-", "#fields\tts\tuid"), Some(InputFormat::Zeek));
        assert_eq!(
            detect("conn.json", r#"{"ts":1.5,"id.orig_h":"10.0.0.1"}"#),
            Some(InputFormat::Zeek)
        );
        assert_eq!(
            detect("conn.log", r#"{"subscriberId":"1"}"#),
            Some(InputFormat::Jsonl)
        );
        assert_eq!(
            detect("flows.csv", "field0,Flow_ID,Src_IP,Src_Port,Dst_IP"),
            Some(InputFormat::Cicflowmeter)
        );
        assert_eq!(
            detect("flows.txt", "Flow ID, Source IP, Source Port"),
            Some(InputFormat::Cicflowmeter)
        );
        assert_eq!(
            detect("netlog.csv", "subscriberId,srcIP,dstIP"),
            Some(InputFormat::Csv)
        );
        assert_eq!(detect("conn.log", "1.0\tabc"), Some(InputFormat::Zeek));
        assert_eq!(detect("events.NDJSON", ""), Some(InputFormat::Jsonl));
        assert_eq!(detect("events.txt", "a,b"), None);
        assert_eq!(detect("-", ""), None);
    }

    #[test]
    fn decimals_become_exact_microseconds() {
        assert_eq!(
            decimal_micros("1331901000.123456"),
            Some(1_331_901_000_123_456)
        );
        assert_eq!(decimal_micros("0.5"), Some(500_000));
        assert_eq!(decimal_micros("12"), Some(12_000_000));
        assert_eq!(decimal_micros(".000001"), Some(1));
        assert_eq!(decimal_micros("1.12345678"), Some(1_123_456));
        for bad in ["", ".", "-1.0", "1e3", "1.2.3", "Infinity"] {
            assert_eq!(decimal_micros(bad), None, "{bad}");
        }
    }
}
