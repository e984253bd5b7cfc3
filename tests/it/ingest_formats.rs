//! Ingest of the other formats through the CLI: CICFlowMeter CSV and Zeek conn.log (TSV and JSON)
//! land as netlog events with the documented mapping, labels kept, bad rows rejected with their
//! line and field; the CIC DDoS reference sample ingests whole with its label distribution.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::TestProject;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/formats")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn a_cicflowmeter_file_ingests_with_its_labels_kept() {
    let project = TestProject::shipped();
    let file = fixture("cic_ids2017_style.csv");
    // CRLF line endings, as CIC's files have. CIC-IDS2017 was captured in New Brunswick in
    // July: Atlantic Daylight Time.
    let out = project.run_ok(&[
        "ingest",
        &file,
        "--format",
        "cicflowmeter",
        "--utc-offset",
        "-03:00",
    ]);
    assert!(out.contains("8 rows read: 5 new events"), "{out}");
    assert!(out.contains("3 rejected"), "{out}");

    let events = project.query_csv(
        "SELECT subscriberId, srcIP, srcPort, dstIP, dstPort, protocolName, protocolNumber, \
         tcpFlag, txBytes, rxBytes, startTime, endTime, label \
         FROM raw.netlog_events ORDER BY startTime, srcPort",
    );
    assert_eq!(
        events,
        [
            "192.168.10.5,192.168.10.5,51000,10.20.30.40,443,tcp,6,27,1500,64000,2017-07-05T12:00:00Z,2017-07-05T12:00:02.500Z,BENIGN",
            "192.168.10.5,192.168.10.5,53000,10.20.30.53,53,udp,17,,40,120,2017-07-05T12:00:01.250Z,2017-07-05T12:00:01.280Z,BENIGN",
            "10.9.8.7,10.9.8.7,0,10.9.8.1,0,other,0,,0,0,2017-07-05T12:00:02Z,2017-07-05T12:02:01Z,BENIGN",
            "172.16.0.1,172.16.0.1,40001,192.168.10.50,80,tcp,6,2,0,0,2017-07-05T18:41:08Z,2017-07-05T18:41:08.001200Z,DDoS",
            "172.16.0.1,172.16.0.1,40002,192.168.10.50,22,tcp,6,22,0,0,2017-07-05T18:41:09Z,2017-07-05T18:41:09Z,PortScan",
        ]
    );

    let rejects =
        project.query_csv("SELECT line, field, reason FROM raw.netlog_rejects ORDER BY line");
    assert_eq!(rejects.len(), 3, "{rejects:?}");
    assert_eq!(rejects[0], "7,Flow_Duration,Flow_Duration: -1 is negative");
    assert!(
        rejects[1].starts_with("8,Timestamp,\"Timestamp: `5th July 2017` is not a timestamp"),
        "{rejects:?}"
    );
    assert_eq!(rejects[2], "9,,\"has 6 fields, the header has 23\"");
    assert_eq!(
        project.query_csv("SELECT raw FROM raw.netlog_rejects WHERE line = 9"),
        ["\"192.168.10.5-10.20.30.40-51002-443-6, 192.168.10.5, 51002, 10.20.30.40, 443, 6\""],
        "the raw record without the CRLF file's \\r"
    );

    let labels = project
        .query_csv("SELECT label, COUNT(*) FROM raw.netlog_events GROUP BY label ORDER BY label");
    assert_eq!(labels, ["BENIGN,3", "DDoS,1", "PortScan,1"]);

    let again = project.run_ok(&["ingest", &file, "--utc-offset", "-03:00"]);
    assert!(
        again.contains("0 new events, 5 already stored"),
        "detected as CICFlowMeter by its header, and idempotent: {again}"
    );
}

#[test]
fn zeek_conn_logs_in_tsv_and_json_are_detected_and_mapped() {
    let project = TestProject::shipped();
    let tsv = project.run_ok(&["ingest", &fixture("conn.log")]);
    assert!(tsv.contains("7 rows read: 5 new events"), "{tsv}");
    assert!(tsv.contains("2 rejected"), "{tsv}");
    let json = project.run_ok(&["ingest", &fixture("conn.json")]);
    assert!(json.contains("4 rows read: 2 new events"), "{json}");
    assert!(json.contains("2 rejected"), "{json}");

    let events = project.query_csv(
        "SELECT subscriberId, srcPort, dstIP, dstPort, protocolName, protocolNumber, tcpFlag, \
         txBytes, rxBytes, startTime, endTime, label \
         FROM raw.netlog_events ORDER BY startTime, srcPort",
    );
    assert_eq!(
        events,
        [
            // TSV: a whole TLS connection (ShADadFf: SYN, ACK, PSH, FIN).
            "192.168.10.5,51000,10.20.30.40,443,tcp,6,27,1500,64000,2017-07-05T09:00:00Z,2017-07-05T09:00:02.500Z,",
            "192.168.10.5,53000,10.20.30.53,53,udp,17,,40,120,2017-07-05T09:00:01.250Z,2017-07-05T09:00:01.280Z,",
            // ICMPv6 is "icmp" in Zeek; the address family gives 58.
            "fe80::1,135,ff02::1,136,icmp,58,,32,0,2017-07-05T09:00:02Z,2017-07-05T09:00:02.500Z,",
            // JSON: epoch ts, then ISO 8601 ts with no duration and IP-level bytes only.
            "192.168.10.6,52000,10.20.30.40,443,tcp,6,27,900,4000,2017-07-05T09:01:40.500Z,2017-07-05T09:01:41.750Z,",
            "192.168.10.6,52001,10.20.30.53,53,udp,17,,73,0,2017-07-05T09:01:41Z,2017-07-05T09:01:41Z,Benign",
            // A SYN with no reply (S0, history S) is SYN-only; one answered by RST (Sr) is SYN|RST.
            "172.16.0.1,40001,192.168.10.50,80,tcp,6,2,60,0,2017-07-05T15:01:08Z,2017-07-05T15:01:08Z,",
            "172.16.0.1,40002,192.168.10.50,22,tcp,6,6,0,0,2017-07-05T15:01:09Z,2017-07-05T15:01:09.000100Z,",
        ]
    );

    let rejects = project.query_csv(
        "SELECT regexp_replace(source, '.*/', ''), line, field, reason \
         FROM raw.netlog_rejects ORDER BY source, line",
    );
    assert_eq!(rejects.len(), 4, "{rejects:?}");
    assert!(
        rejects[0].starts_with("conn.json,3,dstIP,dstIP: `not-an-ip` is not"),
        "{rejects:?}"
    );
    assert!(
        rejects[1].starts_with("conn.json,4,,malformed JSON"),
        "{rejects:?}"
    );
    assert_eq!(
        rejects[2],
        "conn.log,14,srcPort,srcPort: 99999 is outside 0..=65535"
    );
    assert!(
        rejects[3].starts_with("conn.log,15,ts,\"ts: `yesterday` is not a timestamp"),
        "{rejects:?}"
    );
}

#[test]
fn headers_that_are_not_the_format_are_refused_naming_the_missing_columns() {
    let project = TestProject::shipped();
    let cases = [
        (
            "features.csv",
            "Destination Port, Flow Duration, Label\n80, 10, BENIGN\n",
            "CICFlowMeter CSV header lacks required column(s) Src_IP, Src_Port, Dst_IP, Protocol, Timestamp, TotLen_Fwd_Pkts, TotLen_Bwd_Pkts",
        ),
        (
            "dns.log",
            "#separator \\x09\n#fields\tts\tuid\tquery\n1.0\tC1\texample.org\n",
            "Zeek conn.log #fields header lacks required column(s) id.orig_h, id.orig_p, id.resp_h, id.resp_p, proto",
        ),
        (
            "headless.log",
            "1.0\tC1\t10.0.0.1\n",
            "line 1 is a Zeek TSV record but no #fields header came before it",
        ),
    ];
    for (name, text, expected) in cases {
        let path = project.path().join(name);
        std::fs::write(&path, text).unwrap();
        let output = project
            .command(&["ingest", &path.display().to_string()])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name), "names the file: {stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

/// The CIC DDoS reference sample beside the project (not part of it: Apache-2.0 data).
fn cic_sample() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cic_ddos_sample.csv");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing, and CI must run this test",
        path.display()
    );
    eprintln!("skipped: {} is missing", path.display());
    None
}

#[test]
fn the_cic_ddos_sample_ingests_every_flow_with_its_label_distribution() {
    let Some(sample) = cic_sample() else { return };
    let mut reader = csv::Reader::from_path(&sample).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (label, protocol, timestamp) = (column("Label"), column("Protocol"), column("Timestamp"));
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    // The sample mixes captures: ISCX 2010, CIC-IDS2017, CSE-CIC-IDS2018 (dd/mm/YYYY …).
    let mut years: BTreeMap<String, u64> = BTreeMap::new();
    let (mut rows, mut not_tcp) = (0u64, 0u64);
    for record in reader.records() {
        let record = record.unwrap();
        rows += 1;
        *expected.entry(record[label].to_string()).or_default() += 1;
        *years
            .entry(record[timestamp][6..10].to_string())
            .or_default() += 1;
        not_tcp += u64::from(&record[protocol] != "6");
    }
    assert_eq!(rows, 1000);

    let project = TestProject::shipped();
    let out = project.run_ok(&["ingest", &sample.display().to_string()]);
    assert!(
        out.contains("1000 rows read: 1000 new events, 0 already stored, 0 rejected"),
        "detected as CICFlowMeter, every flow kept: {out}"
    );
    let stored: BTreeMap<String, u64> = project
        .query_csv("SELECT label, COUNT(*) FROM raw.netlog_events GROUP BY label")
        .iter()
        .map(|row| {
            let (label, count) = row.rsplit_once(',').unwrap();
            (label.to_string(), count.parse().unwrap())
        })
        .collect();
    assert_eq!(stored, expected);
    assert_eq!(
        project.query_csv(
            "SELECT COUNT(*) FROM raw.netlog_events WHERE protocolNumber <> 6 AND tcpFlag IS NULL"
        ),
        [not_tcp.to_string()],
        "only TCP flows carry a tcpFlag"
    );
    let stored_years: BTreeMap<String, u64> = project
        .query_csv(
            "SELECT EXTRACT(YEAR FROM startTime), COUNT(*) FROM raw.netlog_events GROUP BY 1",
        )
        .iter()
        .map(|row| {
            let (year, count) = row.split_once(',').unwrap();
            (year.to_string(), count.parse().unwrap())
        })
        .collect();
    assert_eq!(stored_years, years);
    assert_eq!(
        project.query_csv(
            "SELECT COUNT(*) FROM raw.netlog_events WHERE endTime < startTime OR subscriberId <> srcIP"
        ),
        ["0"]
    );
}

#[test]
fn standard_input_is_detected_from_its_first_line_and_format_overrides_detection() {
    let project = TestProject::shipped();
    let zeek = std::fs::read_to_string(fixture("conn.log")).unwrap();
    let output = project
        .command(&["ingest", "-"])
        .write_stdin(zeek)
        .output()
        .unwrap();
    crate::common::assert_success(&output, &["ingest", "-"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("7 rows read: 5 new events"), "{stdout}");
    assert_eq!(
        project.query_csv("SELECT DISTINCT source FROM raw.netlog_events"),
        ["<stdin>"]
    );

    let output = project
        .command(&[
            "ingest",
            &fixture("cic_ids2017_style.csv"),
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CSV header lacks required column(s) subscriberId, srcIP"),
        "--format csv reads it as netlog CSV: {stderr}"
    );
}

#[test]
fn a_utc_offset_that_is_not_one_is_refused() {
    let project = TestProject::shipped();
    let file = fixture("cic_ids2017_style.csv");
    let output = project
        .command(&["ingest", &file, "--utc-offset", "Europe/Paris"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`Europe/Paris` is not a UTC offset such as +02:00 or -03:00"),
        "{stderr}"
    );
    for accepted in ["UTC", "+0200"] {
        project.run_ok(&["ingest", &file, "--utc-offset", accepted]);
    }
    assert_eq!(
        project.query_csv(
            "SELECT COUNT(*), COUNT(DISTINCT startTime) FROM raw.netlog_events WHERE label = 'DDoS'"
        ),
        ["2,2"],
        "the same flow at two offsets is two events"
    );
}
