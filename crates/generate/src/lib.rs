//! `netsentinel generate`: a deterministic mock netflow generator with labelled, injected
//! anomalies, and the JSONL/CSV writers for its output.
//!
//! Generation rules (the contract tests and downstream SQL rely on):
//!
//! - **Determinism.** Every random draw comes from a ChaCha8 stream whose key is (seed,
//!   subscriber index, purpose, counter) verbatim. A subscriber's profile, its normal traffic and
//!   each (subscriber, calendar minute) anomaly decision have their own streams, so the same seed
//!   and options give byte-identical output, output formats can't perturb the data, a shorter
//!   `StopAt::Events` run is a prefix of a longer one, and changing `anomaly_rate` leaves the
//!   normal traffic untouched. Host classes and long-running anomalies (below) draw who plays
//!   each role and all their traffic from streams of their own, so with their counts at zero the
//!   output is byte-identical to a generator without them, and with them every other event stays
//!   as it was. `start` is truncated to milliseconds; all times are whole ms.
//! - **Subscribers.** Each has a 17-digit subscriberId, a home srcIP inside one of the offline
//!   [`geo::GEO_TABLE`] blocks (geoCountry/geoCity/latitude/longitude always come from
//!   [`geo::lookup`] of the srcIP), and 3–8 dstIPs spread over 2–4 distinct /22 subnets of a shared
//!   service pool. Each destination is TCP 443 (60 %), TCP 80 (20 %), UDP 53 (12 %) or UDP 123
//!   (8 %) with its own byte profile (base + rate per second) and popularity weight.
//! - **Timing.** A subscriber's first flow starts at `start + U(0, avg)`, and each gap to its next
//!   flow is `U(0.5·avg, 1.5·avg)` (mean `avg`). Bytes scale with the gap that follows the flow:
//!   `(base + rate · gap) · U(0.6, 1.4)`, independently for tx and rx. Durations are
//!   `U(0.1, 0.9)·gap` for TCP and `U(0.01, 0.05)·gap` for UDP, never below 1 ms, so `endTime` is
//!   always strictly after `startTime`; `timestamp` = `endTime`.
//! - **Protocol fields.** tcp ↔ 6, udp ↔ 17. TCP flows carry one flag value: SYN 2 (5 %),
//!   ACK 16 (35 %), PSH|ACK 24 (50 %), FIN 1 (10 %). UDP flows have no TCP header, so `tcpFlag`
//!   is None (an empty CSV cell, JSON null).
//! - **Order and memory.** Events come out in nondecreasing startTime order (ties: subscriber
//!   index, then a minute's episode, then long-running activities, then light traffic). Traffic
//!   is produced one calendar minute at a time by merging per-subscriber streams through a heap,
//!   so memory is O(subscribers + one minute's episodes) however many events are generated.
//! - **Stop.** `StopAt::Events(n)` yields exactly n events (the last episode may be cut short);
//!   `StopAt::Duration(d)` yields every flow starting before `start + d`.
//! - **Host classes** ([`HostClass`], normal traffic, listed in
//!   [`GenerationSummary::subscribers_by_host_class`]). Subscribers are light clients (all of the
//!   above) except `busy_servers` busy servers and `backup_hosts` backup hosts, which keep a
//!   client's light traffic and add:
//!   - busy server: inbound connections to one service port (TCP 443 75 %, else 80) at Poisson
//!     times, 200–600 a minute all run long, from a per-server audience of 2k–50k clients in the
//!     home blocks (client number ⌊audience·u²⌋, so regulars recur); tx 300–2000 B, rx
//!     log-uniform within ÷10..×10 of a per-server median of 50–500 kB; 20–200 ms plus the
//!     transfer at 0.5–20 MB/s; the usual TCP flag mix;
//!   - backup host: at a fixed minute of every hour (+0–3 s), one TCP 443 PSH|ACK upload of a
//!     per-host 200–800 MB (±15 %) to one storage host in a service-pool /22 its light traffic
//!     never uses, rx 0.2–1 % of tx, lasting tx over a 2–12 MB/s uplink.
//! - **Long-running anomalies** (`beacons`, `slow_scans`, `long_connections`: that many distinct
//!   subscribers each).
//!   Every event is labelled, each is one episode, and each destination is used by it alone:
//!   - `beaconing`: TCP 443 PSH|ACK check-ins to one new host for the whole run, every
//!     `period · U(1 − j, 1 + j)` (period 30–120 s, jitter j 10–20 %, first within one period),
//!     tx 300–2000 B and rx 200–3000 B per beacon ±5 %, 50–400 ms ±10 %;
//!   - `slow_scan`: one src port probing one new host on a not yet tried port every
//!     `mean · U(0.7, 1.3)` (mean 20–60 s, so at most five a minute) for 50–70 min, placed to fit
//!     in the run when it can (a `StopAt::Events` run starts it within the first minute); SYN,
//!     tx 40–60 B, rx 0 or 40–60 B, 1–50 ms;
//!   - `long_connection`: one TCP connection (one src port) to one new host on 443 or 22, opened
//!     within the first 10 min and held for the rest of the run, exported as a PSH|ACK record
//!     per 30 min of it (a NetFlow exporter's active timeout), the last cut at the run's end;
//!     tx 20–400 kB and rx 20–800 kB per record.
//! - **Anomalies.** Each complete calendar minute inside the run, each subscriber hosts an episode
//!   with probability `anomaly_rate`; kinds are uniform over [`AnomalyKind::MINUTE_EPISODES`].
//!   An episode lives in one feature cell — one subscriber × one destination /22 × one aligned
//!   minute, with every flow's start *and* end inside the minute — and that /22 is one the
//!   subscriber's normal traffic never uses (except a flood on a busy server, whose clients come
//!   to the same home /22). Events are labelled `normal` or with [`AnomalyKind::as_label`].
//!   Kinds:
//!   - `exfiltration`: 3–8 TCP 443 PSH|ACK flows to one new external host, tx 50–500× the
//!     subscriber's usual per-flow tx, small rx, 2–15 s each.
//!   - `port_scan`: one new host, 50–300 distinct dst ports one flow each, one src port, SYN,
//!     tx 40–60 B, rx 0 or 40–60 B, 1–50 ms, within a 1–20 s burst.
//!   - `ddos_fan_in`: 50–300 distinct spoofed srcIPs (from the home blocks, so they geolocate
//!     all over), 1–3 flows each, to the victim's own home IP (its /22 is never a normal
//!     destination), one dst port; TCP SYN to 80/443 or UDP to one high port; tx 40–200 B, rx 0,
//!     1–20 ms, within a 10–45 s burst; subscriberId is the victim's.
//!   - `beaconing`: TCP 443 PSH|ACK flows to one new host starting exactly every N s
//!     (N ∈ {2, 3, 4, 5, 6, 10, 12, 15}, 4–30 flows), near-constant sizes (tx 150–400 B,
//!     rx 100–600 B, ±3 B), 20–200 ms each.

mod activity;
pub mod geo;
mod hosts;
mod long_running;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Serialize, Serializer};

use netsentinel_core::event::{EVENT_FIELDS, NetlogEvent};

use activity::Activity;
pub use hosts::HostClass;

/// Label of events that belong to no injected anomaly.
pub const NORMAL_LABEL: &str = "normal";

/// Most subscribers one run may simulate; each costs ~1 KiB of generator state.
pub const MAX_SUBSCRIBERS: u32 = 100_000;
/// Bounds of `average_gap`: millisecond timestamps need room for U(0.5·avg, 1.5·avg) to vary.
pub const MIN_AVERAGE_GAP: StdDuration = StdDuration::from_millis(10);
pub const MAX_AVERAGE_GAP: StdDuration = StdDuration::from_secs(24 * 3600);

const MINUTE_MS: i64 = 60_000;
/// 2026-01-01T00:00:00Z, the default start, so default runs are reproducible across days.
const DEFAULT_START_MS: i64 = 1_767_225_600_000;
/// 9999-12-31T23:59:59.999Z: RFC 3339 has four-digit years, so nothing may be generated later.
const MAX_TIME_MS: i64 = 253_402_300_799_999;
const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;
/// How many /22 subnets the shared pool of normal destinations has.
const SERVICE_SUBNETS: usize = 48;

/// When generation stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAt {
    /// After exactly this many events.
    Events(u64),
    /// At `start + duration`: every flow starting before it, none at or after it.
    Duration(chrono::Duration),
}

/// Options of `netsentinel generate`.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    pub seed: u64,
    pub subscribers: u32,
    pub stop: StopAt,
    /// Mean time between one subscriber's flow starts (`--average-time-between-requests`).
    pub average_gap: StdDuration,
    /// Probability that a (subscriber, calendar minute) hosts an anomaly episode.
    pub anomaly_rate: f64,
    pub start: DateTime<Utc>,
    /// A shift of normal traffic from a given time on, to produce drift on demand.
    pub drift: Option<Drift>,
    /// How many subscribers are busy servers ([`HostClass::BusyServer`]); normal traffic.
    pub busy_servers: u32,
    /// How many subscribers are backup hosts ([`HostClass::BackupHost`]); normal traffic.
    pub backup_hosts: u32,
    /// How many subscribers beacon to a server of their own for the whole run, each one
    /// `beaconing` episode.
    pub beacons: u32,
    /// How many subscribers run one slow port scan of about an hour, each one `slow_scan`
    /// episode.
    pub slow_scans: u32,
    /// How many subscribers hold one connection to a server of their own open for the whole
    /// run, each one `long_connection` episode.
    pub long_connections: u32,
}

/// Normal traffic changes at `at`: every subscriber sends `volume` times as many flows (each
/// as large as before), and a `new_destinations` share of its flows goes to destinations in
/// subnets of the service pool it never used. Draws for the new destinations come from their
/// own stream, so traffic before `at` is byte-identical to a run without drift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drift {
    pub at: DateTime<Utc>,
    pub volume: f64,
    pub new_destinations: f64,
}

/// Most a drift may multiply the flow rate by.
const MAX_DRIFT_VOLUME: f64 = 100.0;
/// Destinations a subscriber gains when its destination mix drifts.
const DRIFT_DESTINATIONS: usize = 3;

impl Default for GeneratorConfig {
    /// 100 subscribers × 30 minutes at one flow per 1.8 s each: ~100k normal events plus ~90
    /// episodes (~1 % of the ~9k feature windows).
    fn default() -> Self {
        Self {
            seed: 42,
            subscribers: 100,
            stop: StopAt::Duration(chrono::Duration::minutes(30)),
            average_gap: StdDuration::from_millis(1800),
            anomaly_rate: 0.03,
            start: DateTime::from_timestamp_millis(DEFAULT_START_MS).unwrap_or_default(),
            drift: None,
            busy_servers: 0,
            backup_hosts: 0,
            beacons: 0,
            slow_scans: 0,
            long_connections: 0,
        }
    }
}

/// Shares of subscribers in [`GeneratorConfig::with_realistic_mix`]: a few servers, some hosts
/// with scheduled backups, and a few hosts compromised over the whole run.
const REALISTIC_BUSY_SERVERS: f64 = 0.03;
const REALISTIC_BACKUP_HOSTS: f64 = 0.05;
const REALISTIC_BEACONS: f64 = 0.02;
const REALISTIC_SLOW_SCANS: f64 = 0.01;
const REALISTIC_LONG_CONNECTIONS: f64 = 0.01;

impl GeneratorConfig {
    /// This config with a real network's mix of hosts for its number of subscribers: 3 % busy
    /// servers, 5 % backup hosts, 2 % beacons, 1 % slow scans and 1 % long-lived connections,
    /// each at least one (as far as the subscribers go). 100 subscribers get 3, 5, 2, 1 and 1.
    pub fn with_realistic_mix(self) -> Self {
        let n = self.subscribers;
        let share = |fraction: f64| ((f64::from(n) * fraction).round() as u32).max(1).min(n);
        let busy_servers = share(REALISTIC_BUSY_SERVERS);
        Self {
            busy_servers,
            backup_hosts: share(REALISTIC_BACKUP_HOSTS).min(n - busy_servers),
            beacons: share(REALISTIC_BEACONS),
            slow_scans: share(REALISTIC_SLOW_SCANS),
            long_connections: share(REALISTIC_LONG_CONNECTIONS),
            ..self
        }
    }
}

/// What is wrong with a generator option.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid --{option} {value}: allowed is {allowed}")]
    InvalidOption {
        option: &'static str,
        value: String,
        allowed: String,
    },
    #[error(
        "--busy-servers {busy_servers} plus --backup-hosts {backup_hosts} is more than \
         --subscribers {subscribers}: each subscriber has one host class"
    )]
    HostClassesExceedSubscribers {
        busy_servers: u32,
        backup_hosts: u32,
        subscribers: u32,
    },
}

fn invalid(
    option: &'static str,
    value: impl fmt::Display,
    allowed: impl Into<String>,
) -> GenerateError {
    GenerateError::InvalidOption {
        option,
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

impl GeneratorConfig {
    /// Checks every option against its allowed range.
    pub fn validate(&self) -> Result<(), GenerateError> {
        if !(1..=MAX_SUBSCRIBERS).contains(&self.subscribers) {
            return Err(invalid(
                "subscribers",
                self.subscribers,
                format!("1..={MAX_SUBSCRIBERS}"),
            ));
        }
        if !(MIN_AVERAGE_GAP..=MAX_AVERAGE_GAP).contains(&self.average_gap) {
            return Err(invalid(
                "average-time-between-requests",
                format!("{:?}", self.average_gap),
                "10ms..=24h",
            ));
        }
        if !(0.0..=1.0).contains(&self.anomaly_rate) {
            return Err(invalid("anomaly-rate", self.anomaly_rate, "0.0..=1.0"));
        }
        if let Some(drift) = &self.drift {
            if !(drift.volume > 0.0 && drift.volume <= MAX_DRIFT_VOLUME) {
                return Err(invalid(
                    "drift-volume",
                    drift.volume,
                    format!("a factor above 0 and at most {MAX_DRIFT_VOLUME}"),
                ));
            }
            if !(0.0..=1.0).contains(&drift.new_destinations) {
                return Err(invalid(
                    "drift-destinations",
                    drift.new_destinations,
                    "0.0..=1.0",
                ));
            }
            if drift.volume == 1.0 && drift.new_destinations == 0.0 {
                return Err(invalid(
                    "drift-at",
                    drift.at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    "a time together with --drift-volume or --drift-destinations (what drifts)",
                ));
            }
        }
        self.validate_host_mix()?;
        let start_ms = self.start.timestamp_millis();
        if !(0..=MAX_TIME_MS).contains(&start_ms) {
            return Err(invalid(
                "start",
                self.start.to_rfc3339_opts(SecondsFormat::Millis, true),
                "1970-01-01T00:00:00Z..=9999-12-31T23:59:59.999Z",
            ));
        }
        match self.stop {
            StopAt::Events(n) => {
                // Every subscriber starts within one gap and then has a flow at least every
                // 1.5 gaps, so n events are out by this time at the latest.
                let per_subscriber = n.div_ceil(u64::from(self.subscribers)) as f64;
                let gap_ms = self.average_gap.as_secs_f64() * 1000.0;
                let latest = start_ms as f64 + gap_ms * (1.0 + 1.5 * (per_subscriber + 1.0));
                if n == 0 || latest > MAX_TIME_MS as f64 {
                    return Err(invalid(
                        "events",
                        n,
                        "at least 1, and few enough that the traffic ends before year 10000",
                    ));
                }
            }
            StopAt::Duration(d) => {
                let ms = d.num_milliseconds();
                if ms < 1 || ms > MAX_TIME_MS - start_ms {
                    return Err(invalid(
                        "duration",
                        format!("{ms}ms"),
                        "at least 1ms, ending before year 10000",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Each role needs subscribers of its own: host classes don't overlap, and each beacon or
    /// slow scan runs on a distinct subscriber (which may also be a server or backup host).
    fn validate_host_mix(&self) -> Result<(), GenerateError> {
        let n = self.subscribers;
        for (option, count) in [
            ("busy-servers", self.busy_servers),
            ("backup-hosts", self.backup_hosts),
            ("beacons", self.beacons),
            ("slow-scans", self.slow_scans),
            ("long-connections", self.long_connections),
        ] {
            if count > n {
                return Err(invalid(
                    option,
                    count,
                    format!("0..={n} (at most --subscribers)"),
                ));
            }
        }
        if u64::from(self.busy_servers) + u64::from(self.backup_hosts) > u64::from(n) {
            return Err(GenerateError::HostClassesExceedSubscribers {
                busy_servers: self.busy_servers,
                backup_hosts: self.backup_hosts,
                subscribers: n,
            });
        }
        Ok(())
    }
}

/// The injected anomaly kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyKind {
    Exfiltration,
    PortScan,
    DdosFanIn,
    /// A one-minute burst of exactly periodic check-ins, or a jittered beacon over the whole run.
    Beaconing,
    /// Long-running only: one new port every few tens of seconds for about an hour.
    SlowScan,
    /// Long-running only: one connection held open for the whole run.
    LongConnection,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 6] = [
        AnomalyKind::Exfiltration,
        AnomalyKind::PortScan,
        AnomalyKind::DdosFanIn,
        AnomalyKind::Beaconing,
        AnomalyKind::SlowScan,
        AnomalyKind::LongConnection,
    ];

    /// The kinds a one-minute episode is drawn from, uniformly; in this order, which the seeded
    /// output depends on.
    pub const MINUTE_EPISODES: [AnomalyKind; 4] = [
        AnomalyKind::Exfiltration,
        AnomalyKind::PortScan,
        AnomalyKind::DdosFanIn,
        AnomalyKind::Beaconing,
    ];

    /// The event `label` of this kind.
    pub fn as_label(self) -> &'static str {
        match self {
            AnomalyKind::Exfiltration => "exfiltration",
            AnomalyKind::PortScan => "port_scan",
            AnomalyKind::DdosFanIn => "ddos_fan_in",
            AnomalyKind::Beaconing => "beaconing",
            AnomalyKind::SlowScan => "slow_scan",
            AnomalyKind::LongConnection => "long_connection",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_label())
    }
}

/// Counts of what has been emitted so far. Maps are keyed by label and list every kind, zero
/// included; an episode (a minute's burst, a whole beacon, a whole slow scan) counts once, when
/// its first event is emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerationSummary {
    pub events: u64,
    pub anomalous_events_by_kind: BTreeMap<&'static str, u64>,
    pub episodes_by_kind: BTreeMap<&'static str, u64>,
    /// The subscriberIds of every host class but `client`, keyed by [`HostClass::as_label`]
    /// (each listed, empty included), in subscriber order; every subscriber not listed is a
    /// client. Fixed when generation starts.
    pub subscribers_by_host_class: BTreeMap<&'static str, Vec<String>>,
}

impl Default for GenerationSummary {
    fn default() -> Self {
        let zeros: BTreeMap<_, _> = AnomalyKind::ALL.iter().map(|k| (k.as_label(), 0)).collect();
        let classes = HostClass::ALL
            .iter()
            .filter(|c| **c != HostClass::Client)
            .map(|c| (c.as_label(), Vec::new()))
            .collect();
        Self {
            events: 0,
            anomalous_events_by_kind: zeros.clone(),
            episodes_by_kind: zeros,
            subscribers_by_host_class: classes,
        }
    }
}

impl GenerationSummary {
    pub fn anomalous_events(&self) -> u64 {
        self.anomalous_events_by_kind.values().sum()
    }

    pub fn episodes(&self) -> u64 {
        self.episodes_by_kind.values().sum()
    }
}

/// Why a random stream exists; part of its key so streams never overlap.
#[derive(Clone, Copy)]
#[repr(u32)]
enum Purpose {
    ServicePool = 1,
    Profile = 2,
    Traffic = 3,
    Episode = 4,
    Drift = 5,
    /// Who is a busy server or backup host (subscriber 0: one draw for the run).
    HostClasses = 6,
    /// Who beacons (subscriber 0).
    BeaconHosts = 7,
    /// Who slow-scans (subscriber 0).
    SlowScanHosts = 8,
    ServiceLoad = 9,
    /// One busy server's client number `counter`: its address.
    ServiceClient = 10,
    Backup = 11,
    Beacon = 12,
    SlowScan = 13,
    /// Who holds a long-lived connection (subscriber 0).
    LongConnectionHosts = 14,
    LongConnection = 15,
}

/// An independent ChaCha8 stream per (seed, subscriber, purpose, counter): the key is those
/// values verbatim, so distinct tuples never share a stream and the data for one subscriber can't
/// depend on how many draws anything else made.
fn stream_rng(seed: u64, subscriber: u32, purpose: Purpose, counter: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..12].copy_from_slice(&subscriber.to_le_bytes());
    key[12..16].copy_from_slice(&(purpose as u32).to_le_bytes());
    key[16..24].copy_from_slice(&counter.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

const SYN: u16 = 2;
const ACK: u16 = 16;
const PSH_ACK: u16 = 24;
const FIN: u16 = 1;

/// One of a subscriber's usual destinations and how much traffic a flow to it carries.
#[derive(Debug, Clone)]
struct Destination {
    ip: Ipv4Addr,
    protocol: Protocol,
    port: u16,
    /// Popularity; flows pick destinations with probability proportional to it.
    weight: f64,
    tx_base: f64,
    tx_per_sec: f64,
    rx_base: f64,
    rx_per_sec: f64,
}

impl Destination {
    fn draw(rng: &mut ChaCha8Rng, ip: Ipv4Addr) -> Self {
        let kind = rng.random::<f64>();
        let (protocol, port) = match kind {
            k if k < 0.60 => (Protocol::Tcp, 443),
            k if k < 0.80 => (Protocol::Tcp, 80),
            k if k < 0.92 => (Protocol::Udp, 53),
            _ => (Protocol::Udp, 123),
        };
        // Web traffic is download-heavy; DNS and NTP are a few small datagrams.
        let (tx_base, tx_per_sec, rx_base, rx_per_sec) = match port {
            443 => (
                400.0..1200.0,
                300.0..3000.0,
                1000.0..6000.0,
                3000.0..60000.0,
            ),
            80 => (300.0..900.0, 200.0..1500.0, 800.0..4000.0, 2000.0..30000.0),
            53 => (40.0..80.0, 20.0..80.0, 60.0..200.0, 40.0..250.0),
            _ => (76.0..77.0, 5.0..20.0, 76.0..77.0, 5.0..20.0),
        };
        Self {
            ip,
            protocol,
            port,
            weight: rng.random_range(0.2..1.0),
            tx_base: rng.random_range(tx_base),
            tx_per_sec: rng.random_range(tx_per_sec),
            rx_base: rng.random_range(rx_base),
            rx_per_sec: rng.random_range(rx_per_sec),
        }
    }
}

/// A flow before it becomes a `NetlogEvent`; times in Unix milliseconds.
#[derive(Debug, Clone)]
struct Flow {
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    tx: u64,
    rx: u64,
    protocol: Protocol,
    tcp_flag: Option<u16>,
    start_ms: i64,
    end_ms: i64,
    label: Option<AnomalyKind>,
    /// Set on an episode's first flow, so the summary counts episodes as they are emitted.
    opens_episode: bool,
}

impl Flow {
    /// An unlabelled TCP flow carrying one flag value, before its bytes and times are set.
    fn tcp(src_ip: Ipv4Addr, dst_ip: Ipv4Addr, src_port: u16, dst_port: u16, flag: u16) -> Self {
        Flow {
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            tx: 0,
            rx: 0,
            protocol: Protocol::Tcp,
            tcp_flag: Some(flag),
            start_ms: 0,
            end_ms: 0,
            label: None,
            opens_episode: false,
        }
    }
}

/// The flag value of an ordinary TCP flow: SYN 5 %, ACK 35 %, PSH|ACK 50 %, FIN 10 %.
fn normal_tcp_flag(rng: &mut ChaCha8Rng) -> u16 {
    match rng.random::<f64>() {
        f if f < 0.05 => SYN,
        f if f < 0.40 => ACK,
        f if f < 0.90 => PSH_ACK,
        _ => FIN,
    }
}

struct Subscriber {
    id: String,
    home: Ipv4Addr,
    destinations: Vec<Destination>,
    total_weight: f64,
    /// Mean tx of one normal flow, the reference for exfiltration bursts.
    usual_tx: f64,
    traffic: ChaCha8Rng,
    next_start_ms: i64,
    /// The current minute's episode, sorted by start; `episode_pos` is the next one to emit.
    episode: Vec<Flow>,
    episode_pos: usize,
    /// How this subscriber's traffic drifts, if it does.
    drift: Option<SubscriberDrift>,
    class: HostClass,
    /// What it keeps up beside its light traffic (server load, backups, long-running
    /// anomalies); [`Source::Activity`] indexes this.
    activities: Vec<Activity>,
}

struct SubscriberDrift {
    at_ms: i64,
    volume: f64,
    new_share: f64,
    /// Destinations in pool subnets the subscriber did not use before the drift.
    destinations: Vec<Destination>,
    rng: ChaCha8Rng,
}

fn random_host_in_22(rng: &mut ChaCha8Rng, subnet: Ipv4Addr) -> Ipv4Addr {
    let [a, b, c, _] = subnet.octets();
    Ipv4Addr::new(a, b, c + rng.random_range(0..4), rng.random_range(1..=254))
}

fn random_home_host(rng: &mut ChaCha8Rng) -> Ipv4Addr {
    let record = &geo::GEO_TABLE[rng.random_range(0..geo::GEO_TABLE.len())];
    let [a, b] = record.block;
    Ipv4Addr::new(a, b, rng.random(), rng.random_range(1..=254))
}

/// A host in a fresh /22 of the anomaly blocks, which no normal destination lies in.
fn anomaly_host(rng: &mut ChaCha8Rng) -> Ipv4Addr {
    let a = geo::ANOMALY_BLOCKS[rng.random_range(0..geo::ANOMALY_BLOCKS.len())];
    let subnet = Ipv4Addr::new(a, rng.random(), rng.random_range(0..64u8) * 4, 0);
    random_host_in_22(rng, subnet)
}

fn service_pool(seed: u64) -> Vec<Ipv4Addr> {
    let mut rng = stream_rng(seed, 0, Purpose::ServicePool, 0);
    let mut pool = Vec::with_capacity(SERVICE_SUBNETS);
    while pool.len() < SERVICE_SUBNETS {
        let [a, b] = geo::SERVICE_BLOCKS[rng.random_range(0..geo::SERVICE_BLOCKS.len())];
        let subnet = Ipv4Addr::new(a, b, rng.random_range(0..64u8) * 4, 0);
        if !pool.contains(&subnet) {
            pool.push(subnet);
        }
    }
    pool
}

impl Subscriber {
    fn build(
        config: &GeneratorConfig,
        index: u32,
        pool: &[Ipv4Addr],
        taken_ids: &mut HashSet<u64>,
        taken_homes: &mut HashSet<Ipv4Addr>,
    ) -> Self {
        let mut rng = stream_rng(config.seed, index, Purpose::Profile, 0);
        // Redraw on collision so ids and home IPs identify one subscriber each.
        let id = loop {
            let id = rng.random_range(10_000_000_000_000_000..100_000_000_000_000_000u64);
            if taken_ids.insert(id) {
                break id;
            }
        };
        let home = loop {
            let home = random_home_host(&mut rng);
            if taken_homes.insert(home) {
                break home;
            }
        };

        let subnet_count = rng.random_range(2..=4);
        let mut subnets: Vec<Ipv4Addr> = Vec::with_capacity(subnet_count);
        while subnets.len() < subnet_count {
            let subnet = pool[rng.random_range(0..pool.len())];
            if !subnets.contains(&subnet) {
                subnets.push(subnet);
            }
        }
        let destination_count = rng.random_range(subnet_count.max(3)..=8);
        let mut destinations: Vec<Destination> = Vec::with_capacity(destination_count);
        while destinations.len() < destination_count {
            // The first few cover every chosen subnet once; the rest land anywhere among them.
            let subnet = subnets
                .get(destinations.len())
                .copied()
                .unwrap_or_else(|| subnets[rng.random_range(0..subnet_count)]);
            let ip = random_host_in_22(&mut rng, subnet);
            if destinations.iter().all(|d| d.ip != ip) {
                destinations.push(Destination::draw(&mut rng, ip));
            }
        }

        let total_weight: f64 = destinations.iter().map(|d| d.weight).sum();
        let gap_s = config.average_gap.as_secs_f64();
        let usual_tx = destinations
            .iter()
            .map(|d| d.weight * (d.tx_base + d.tx_per_sec * gap_s))
            .sum::<f64>()
            / total_weight;

        let drift = config.drift.map(|drift| {
            let mut rng = stream_rng(config.seed, index, Purpose::Drift, 0);
            let unused: Vec<Ipv4Addr> = pool
                .iter()
                .copied()
                .filter(|p| !subnets.contains(p))
                .collect();
            let destinations = (0..DRIFT_DESTINATIONS)
                .map(|_| {
                    let subnet = unused[rng.random_range(0..unused.len())];
                    let ip = random_host_in_22(&mut rng, subnet);
                    Destination::draw(&mut rng, ip)
                })
                .collect();
            SubscriberDrift {
                at_ms: drift.at.timestamp_millis(),
                volume: drift.volume,
                new_share: drift.new_destinations,
                destinations,
                rng,
            }
        });
        let mut traffic = stream_rng(config.seed, index, Purpose::Traffic, 0);
        let avg_ms = config.average_gap.as_secs_f64() * 1000.0;
        // A random phase keeps subscribers from flowing in lockstep.
        let phase = (avg_ms * traffic.random::<f64>()) as i64;
        Self {
            id: id.to_string(),
            home,
            destinations,
            total_weight,
            usual_tx,
            traffic,
            next_start_ms: config.start.timestamp_millis() + phase,
            episode: Vec::new(),
            episode_pos: 0,
            drift,
            class: HostClass::Client,
            activities: Vec::new(),
        }
    }

    /// The /22 subnets its light traffic goes to (before any drift).
    fn subnets(&self) -> HashSet<Ipv4Addr> {
        self.destinations
            .iter()
            .map(|d| geo::subnet22(d.ip))
            .collect()
    }

    /// The normal flow starting at `next_start_ms`; schedules the one after it.
    fn next_normal_flow(&mut self, avg_ms: f64) -> Flow {
        let rng = &mut self.traffic;
        let start_ms = self.next_start_ms;
        let drawn_gap_ms = ((avg_ms * rng.random_range(0.5..1.5)).round() as i64).max(1);
        let drifting = self.drift.as_mut().filter(|d| start_ms >= d.at_ms);
        // Drifted volume: flows come `volume` times as often; bytes keep the drawn gap, so
        // each flow stays as large as before.
        let gap_ms = match &drifting {
            Some(d) => ((drawn_gap_ms as f64 / d.volume).round() as i64).max(1),
            None => drawn_gap_ms,
        };
        self.next_start_ms = start_ms + gap_ms;

        let mut pick = rng.random::<f64>() * self.total_weight;
        let mut chosen = &self.destinations[self.destinations.len() - 1];
        for destination in &self.destinations {
            if pick < destination.weight {
                chosen = destination;
                break;
            }
            pick -= destination.weight;
        }
        let moved = drifting.and_then(|d| {
            (d.new_share > 0.0 && d.rng.random_bool(d.new_share))
                .then(|| d.destinations[d.rng.random_range(0..d.destinations.len())].clone())
        });
        let chosen = moved.as_ref().unwrap_or(chosen);
        let gap_s = drawn_gap_ms as f64 / 1000.0;
        let tx = (chosen.tx_base + chosen.tx_per_sec * gap_s) * rng.random_range(0.6..1.4);
        let rx = (chosen.rx_base + chosen.rx_per_sec * gap_s) * rng.random_range(0.6..1.4);
        let (tcp_flag, duration_share) = match chosen.protocol {
            Protocol::Tcp => {
                let flag = normal_tcp_flag(rng);
                (Some(flag), rng.random_range(0.1..0.9))
            }
            Protocol::Udp => (None, rng.random_range(0.01..0.05)),
        };
        let duration_ms = ((gap_ms as f64 * duration_share).round() as i64).max(1);
        Flow {
            src_ip: self.home,
            dst_ip: chosen.ip,
            src_port: rng.random_range(EPHEMERAL_PORTS),
            dst_port: chosen.port,
            tx: tx.round() as u64,
            rx: rx.round() as u64,
            protocol: chosen.protocol,
            tcp_flag,
            start_ms,
            end_ms: start_ms + duration_ms,
            label: None,
            opens_episode: false,
        }
    }

    /// Builds this minute's episode of `kind`, sorted by start; every flow starts and ends
    /// inside `[minute_ms, minute_ms + 60 s)`.
    fn build_episode(&mut self, rng: &mut ChaCha8Rng, kind: AnomalyKind, minute_ms: i64) {
        let mut flows = Vec::new();
        let flow =
            |src_ip, dst_ip, src_port, dst_port, protocol, tcp_flag, start_ms, duration_ms| Flow {
                src_ip,
                dst_ip,
                src_port,
                dst_port,
                tx: 0,
                rx: 0,
                protocol,
                tcp_flag,
                start_ms,
                end_ms: start_ms + duration_ms,
                label: Some(kind),
                opens_episode: false,
            };
        match kind {
            AnomalyKind::Exfiltration => {
                let dst = anomaly_host(rng);
                let multiplier: f64 = rng.random_range(50.0..500.0);
                for _ in 0..rng.random_range(3..=8) {
                    let duration = rng.random_range(2_000..=15_000);
                    let start = minute_ms + rng.random_range(0..MINUTE_MS - duration);
                    let port = rng.random_range(EPHEMERAL_PORTS);
                    let mut f = flow(
                        self.home,
                        dst,
                        port,
                        443,
                        Protocol::Tcp,
                        Some(PSH_ACK),
                        start,
                        duration,
                    );
                    let factor = (multiplier * rng.random_range(0.9..1.1)).clamp(50.0, 500.0);
                    f.tx = (self.usual_tx * factor).round() as u64;
                    f.rx = (200.0 + f.tx as f64 * rng.random_range(0.005..0.02)).round() as u64;
                    flows.push(f);
                }
            }
            AnomalyKind::PortScan => {
                let dst = anomaly_host(rng);
                let src_port = rng.random_range(EPHEMERAL_PORTS);
                let port_count = rng.random_range(50..=300);
                let burst = rng.random_range(1_000..=20_000);
                let burst_start = minute_ms + rng.random_range(0..MINUTE_MS - burst - 50);
                let mut ports = HashSet::with_capacity(port_count);
                while ports.len() < port_count {
                    let port: u16 = rng.random_range(1..=u16::MAX);
                    if !ports.insert(port) {
                        continue;
                    }
                    let start = burst_start + rng.random_range(0..burst);
                    let duration = rng.random_range(1..=50);
                    let mut f = flow(
                        self.home,
                        dst,
                        src_port,
                        port,
                        Protocol::Tcp,
                        Some(SYN),
                        start,
                        duration,
                    );
                    f.tx = rng.random_range(40..=60);
                    f.rx = if rng.random_bool(0.5) {
                        0
                    } else {
                        rng.random_range(40..=60)
                    };
                    flows.push(f);
                }
            }
            AnomalyKind::DdosFanIn => {
                let (protocol, tcp_flag, dst_port) = if rng.random_bool(0.5) {
                    (
                        Protocol::Tcp,
                        Some(SYN),
                        if rng.random_bool(0.5) { 443 } else { 80 },
                    )
                } else {
                    (Protocol::Udp, None, rng.random_range(1024..=u16::MAX))
                };
                let source_count = rng.random_range(50..=300);
                let burst = rng.random_range(10_000..=45_000);
                let burst_start = minute_ms + rng.random_range(0..MINUTE_MS - burst - 20);
                let mut sources = HashSet::with_capacity(source_count);
                while sources.len() < source_count {
                    let src = random_home_host(rng);
                    if src == self.home || !sources.insert(src) {
                        continue;
                    }
                    for _ in 0..rng.random_range(1..=3) {
                        let start = burst_start + rng.random_range(0..burst);
                        let duration = rng.random_range(1..=20);
                        let port = rng.random_range(1024..=u16::MAX);
                        let mut f = flow(
                            src, self.home, port, dst_port, protocol, tcp_flag, start, duration,
                        );
                        f.tx = match protocol {
                            Protocol::Tcp => rng.random_range(40..=60),
                            Protocol::Udp => rng.random_range(60..=200),
                        };
                        flows.push(f);
                    }
                }
            }
            AnomalyKind::Beaconing => {
                let dst = anomaly_host(rng);
                const PERIODS_S: [i64; 8] = [2, 3, 4, 5, 6, 10, 12, 15];
                let period = PERIODS_S[rng.random_range(0..PERIODS_S.len())] * 1000;
                let duration = rng.random_range(20..=200);
                let tx = rng.random_range(150..=400u64);
                let rx = rng.random_range(100..=600u64);
                // Starting within period − 250 ms guarantees 60 s / N beacons fit (4 at N = 15);
                // the loop bound leaves room for ±10 ms of duration jitter.
                let mut start = minute_ms + rng.random_range(0..period - 250);
                while start + duration + 10 < minute_ms + MINUTE_MS {
                    let port = rng.random_range(EPHEMERAL_PORTS);
                    let d = duration + rng.random_range(-10..=10);
                    let mut f = flow(
                        self.home,
                        dst,
                        port,
                        443,
                        Protocol::Tcp,
                        Some(PSH_ACK),
                        start,
                        d,
                    );
                    f.tx = tx - 3 + rng.random_range(0..=6);
                    f.rx = rx - 3 + rng.random_range(0..=6);
                    flows.push(f);
                    start += period;
                }
            }
            // Long-running only (see `long_running`); never drawn for a minute.
            AnomalyKind::SlowScan | AnomalyKind::LongConnection => {}
        }
        flows.sort_by_key(|f| f.start_ms);
        if let Some(first) = flows.first_mut() {
            first.opens_episode = true;
        }
        self.episode = flows;
        self.episode_pos = 0;
    }
}

/// Which of a subscriber's streams a heap entry stands for. On ties a minute's episode comes
/// first, then the activities in their order, then light traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Episode,
    /// `Subscriber::activities[i]`.
    Activity(usize),
    Normal,
}

/// Streams the generated events; see the module docs for the rules. Pass `&mut generator` to a
/// writer to read [`Generator::summary`] afterwards.
pub struct Generator {
    seed: u64,
    anomaly_rate: f64,
    avg_ms: f64,
    start_ms: i64,
    /// Exclusive end of flow starts; effectively unbounded for `StopAt::Events`.
    end_ms: i64,
    limit: Option<u64>,
    subscribers: Vec<Subscriber>,
    heap: BinaryHeap<Reverse<(i64, u32, Source)>>,
    /// Start of the calendar minute being emitted, None before the first.
    minute_ms: Option<i64>,
    window_end_ms: i64,
    summary: GenerationSummary,
}

/// Validates `config` and sets up the subscribers; events are produced lazily by iterating.
pub fn generate(config: &GeneratorConfig) -> Result<Generator, GenerateError> {
    config.validate()?;
    let start_ms = config.start.timestamp_millis();
    let pool = service_pool(config.seed);
    let mut taken_ids = HashSet::new();
    let mut taken_homes = HashSet::new();
    let mut subscribers: Vec<Subscriber> = (0..config.subscribers)
        .map(|i| Subscriber::build(config, i, &pool, &mut taken_ids, &mut taken_homes))
        .collect();
    activity::assign(config, &pool, &mut subscribers);
    let mut summary = GenerationSummary::default();
    for subscriber in &subscribers {
        if let Some(ids) = summary
            .subscribers_by_host_class
            .get_mut(subscriber.class.as_label())
        {
            ids.push(subscriber.id.clone());
        }
    }
    let (end_ms, limit) = match config.stop {
        StopAt::Events(n) => (MAX_TIME_MS, Some(n)),
        StopAt::Duration(d) => (start_ms + d.num_milliseconds(), None),
    };
    Ok(Generator {
        seed: config.seed,
        anomaly_rate: config.anomaly_rate,
        avg_ms: config.average_gap.as_secs_f64() * 1000.0,
        start_ms,
        end_ms,
        limit,
        subscribers,
        heap: BinaryHeap::new(),
        minute_ms: None,
        window_end_ms: start_ms,
        summary,
    })
}

impl Generator {
    /// What has been emitted so far.
    pub fn summary(&self) -> &GenerationSummary {
        &self.summary
    }

    /// Every subscriber's id and host class, in subscriber order.
    pub fn host_classes(&self) -> impl Iterator<Item = (&str, HostClass)> {
        self.subscribers.iter().map(|s| (s.id.as_str(), s.class))
    }

    /// The host class of the subscriber with this subscriberId, None if there is none.
    /// O(subscribers); [`GenerationSummary::subscribers_by_host_class`] has them all at once.
    pub fn host_class(&self, subscriber_id: &str) -> Option<HostClass> {
        self.subscribers
            .iter()
            .find(|s| s.id == subscriber_id)
            .map(|s| s.class)
    }

    /// Moves to the next calendar minute: decides its episodes and queues every stream with a
    /// flow starting in it. False once the run is over.
    fn open_next_minute(&mut self) -> bool {
        let minute_ms = match self.minute_ms {
            Some(previous) => previous + MINUTE_MS,
            None => self.start_ms.div_euclid(MINUTE_MS) * MINUTE_MS,
        };
        if minute_ms >= self.end_ms {
            return false;
        }
        self.minute_ms = Some(minute_ms);
        self.window_end_ms = (minute_ms + MINUTE_MS).min(self.end_ms);
        // Partial first/last minutes get no episode, so every episode is a complete minute.
        let whole = minute_ms >= self.start_ms && minute_ms + MINUTE_MS <= self.end_ms;
        for (index, subscriber) in (0u32..).zip(self.subscribers.iter_mut()) {
            if whole && self.anomaly_rate > 0.0 {
                let minute = (minute_ms / MINUTE_MS) as u64;
                let mut rng = stream_rng(self.seed, index, Purpose::Episode, minute);
                if rng.random_bool(self.anomaly_rate) {
                    let kinds = AnomalyKind::MINUTE_EPISODES;
                    let kind = kinds[rng.random_range(0..kinds.len())];
                    subscriber.build_episode(&mut rng, kind, minute_ms);
                    if let Some(first) = subscriber.episode.first() {
                        self.heap
                            .push(Reverse((first.start_ms, index, Source::Episode)));
                    }
                }
            }
            for (slot, activity) in subscriber.activities.iter().enumerate() {
                if let Some(start) = activity.next_start_ms().filter(|s| *s < self.window_end_ms) {
                    self.heap
                        .push(Reverse((start, index, Source::Activity(slot))));
                }
            }
            if subscriber.next_start_ms < self.window_end_ms {
                self.heap
                    .push(Reverse((subscriber.next_start_ms, index, Source::Normal)));
            }
        }
        true
    }

    fn next_flow(&mut self) -> Option<(u32, Flow)> {
        loop {
            let Some(Reverse((_, index, source))) = self.heap.pop() else {
                if self.open_next_minute() {
                    continue;
                }
                return None;
            };
            let subscriber = &mut self.subscribers[index as usize];
            let flow = match source {
                Source::Normal => {
                    let flow = subscriber.next_normal_flow(self.avg_ms);
                    if subscriber.next_start_ms < self.window_end_ms {
                        self.heap
                            .push(Reverse((subscriber.next_start_ms, index, Source::Normal)));
                    }
                    flow
                }
                Source::Episode => {
                    let flow = subscriber.episode[subscriber.episode_pos].clone();
                    subscriber.episode_pos += 1;
                    match subscriber.episode.get(subscriber.episode_pos) {
                        Some(next) => {
                            self.heap
                                .push(Reverse((next.start_ms, index, Source::Episode)))
                        }
                        None => subscriber.episode.clear(),
                    }
                    flow
                }
                Source::Activity(slot) => {
                    let activity = &mut subscriber.activities[slot];
                    let flow = activity.next_flow();
                    if let Some(start) =
                        activity.next_start_ms().filter(|s| *s < self.window_end_ms)
                    {
                        self.heap
                            .push(Reverse((start, index, Source::Activity(slot))));
                    }
                    flow
                }
            };
            return Some((index, flow));
        }
    }
}

impl Iterator for Generator {
    type Item = NetlogEvent;

    fn next(&mut self) -> Option<NetlogEvent> {
        if self.limit.is_some_and(|n| self.summary.events >= n) {
            return None;
        }
        let (index, flow) = self.next_flow()?;
        // Validation keeps every time in range; ending the stream beats panicking if not.
        let start_time = DateTime::from_timestamp_millis(flow.start_ms)?;
        let end_time = DateTime::from_timestamp_millis(flow.end_ms)?;
        let geo = geo::lookup(IpAddr::V4(flow.src_ip));
        let summary = &mut self.summary;
        summary.events += 1;
        if let Some(kind) = flow.label {
            *summary
                .anomalous_events_by_kind
                .entry(kind.as_label())
                .or_default() += 1;
            if flow.opens_episode {
                *summary.episodes_by_kind.entry(kind.as_label()).or_default() += 1;
            }
        }
        Some(NetlogEvent {
            subscriber_id: self.subscribers[index as usize].id.clone(),
            src_ip: IpAddr::V4(flow.src_ip),
            dst_ip: IpAddr::V4(flow.dst_ip),
            src_port: flow.src_port,
            dst_port: flow.dst_port,
            tx_bytes: flow.tx,
            rx_bytes: flow.rx,
            tcp_flag: flow.tcp_flag,
            start_time,
            end_time,
            timestamp: Some(end_time),
            protocol_name: Some(flow.protocol.name().to_owned()),
            protocol_number: Some(flow.protocol.number()),
            geo_country: geo.map(|g| g.country.to_owned()),
            geo_city: geo.map(|g| g.city.to_owned()),
            latitude: geo.map(|g| g.latitude),
            longitude: geo.map(|g| g.longitude),
            label: Some(
                flow.label
                    .map_or(NORMAL_LABEL, AnomalyKind::as_label)
                    .to_owned(),
            ),
        })
    }
}

/// Formats a UTC instant as RFC 3339 with exactly three fractional digits and `Z`
/// (`2026-01-01T00:00:01.250Z`), the one timestamp format of both writers. chrono's own serde
/// form drops a zero fraction, which would make JSONL and CSV disagree.
pub struct Rfc3339Millis<'a>(pub &'a DateTime<Utc>);

impl Rfc3339Millis<'_> {
    /// The fixed-width form, or None for years outside 0000–9999 (no four-digit form exists).
    /// Hand-rolled because `write!` with padding dominated writer profiles.
    fn fixed(&self) -> Option<[u8; 24]> {
        let t = self.0.naive_utc();
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        // chrono keeps a leap second as second 59 with a fraction past one second.
        let (second, millis) = match t.nanosecond() / 1_000_000 {
            ms if ms >= 1000 => (60, ms - 1000),
            ms => (t.second(), ms),
        };
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: u32| {
            for slot in out[at..at + width].iter_mut().rev() {
                *slot = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, t.month());
        put(8, 2, t.day());
        put(11, 2, t.hour());
        put(14, 2, t.minute());
        put(17, 2, second);
        put(20, 3, millis);
        Some(out)
    }
}

impl fmt::Display for Rfc3339Millis<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fixed() {
            // The buffer is ASCII digits and separators, so this never falls through.
            Some(bytes) => f.write_str(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?),
            None => f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true)),
        }
    }
}

struct Millis<'a>(&'a DateTime<Utc>);

impl Serialize for Millis<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let stamp = Rfc3339Millis(self.0);
        match stamp.fixed() {
            Some(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => serializer.serialize_str(text),
                Err(_) => serializer.collect_str(&stamp),
            },
            None => serializer.collect_str(&stamp),
        }
    }
}

/// `NetlogEvent`'s wire form for both writers, with millisecond timestamps. Field order follows
/// `EVENT_FIELDS`; serializing CSV rows through it too keeps numbers and floats formatted the
/// same way (itoa/ryu) in both formats.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent<'a> {
    subscriber_id: &'a str,
    #[serde(rename = "srcIP")]
    src_ip: &'a IpAddr,
    #[serde(rename = "dstIP")]
    dst_ip: &'a IpAddr,
    src_port: u16,
    dst_port: u16,
    tx_bytes: u64,
    rx_bytes: u64,
    tcp_flag: Option<u16>,
    start_time: Millis<'a>,
    end_time: Millis<'a>,
    timestamp: Option<Millis<'a>>,
    protocol_name: Option<&'a str>,
    protocol_number: Option<u8>,
    geo_country: Option<&'a str>,
    geo_city: Option<&'a str>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    label: Option<&'a str>,
}

impl<'a> From<&'a NetlogEvent> for WireEvent<'a> {
    fn from(e: &'a NetlogEvent) -> Self {
        Self {
            subscriber_id: &e.subscriber_id,
            src_ip: &e.src_ip,
            dst_ip: &e.dst_ip,
            src_port: e.src_port,
            dst_port: e.dst_port,
            tx_bytes: e.tx_bytes,
            rx_bytes: e.rx_bytes,
            tcp_flag: e.tcp_flag,
            start_time: Millis(&e.start_time),
            end_time: Millis(&e.end_time),
            timestamp: e.timestamp.as_ref().map(Millis),
            protocol_name: e.protocol_name.as_deref(),
            protocol_number: e.protocol_number,
            geo_country: e.geo_country.as_deref(),
            geo_city: e.geo_city.as_deref(),
            latitude: e.latitude,
            longitude: e.longitude,
            label: e.label.as_deref(),
        }
    }
}

const WRITE_BUFFER: usize = 1 << 16;

/// Writes one JSON object per line; returns how many. Buffers internally, so `out` can be a raw
/// file or a stdout lock.
pub fn write_jsonl(events: impl Iterator<Item = NetlogEvent>, out: impl Write) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, out);
    let mut written = 0;
    for event in events {
        serde_json::to_writer(&mut out, &WireEvent::from(&event))?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

/// Writes a header of `EVENT_FIELDS` and one row per event (None → empty cell); returns how many
/// rows. Buffers internally.
pub fn write_csv(events: impl Iterator<Item = NetlogEvent>, out: impl Write) -> io::Result<u64> {
    // The header is written by hand so that it exists even for zero rows.
    let mut csv = csv::WriterBuilder::new()
        .has_headers(false)
        .buffer_capacity(WRITE_BUFFER)
        .from_writer(out);
    csv.write_record(EVENT_FIELDS)?;
    let mut written = 0;
    for event in events {
        csv.serialize(WireEvent::from(&event))?;
        written += 1;
    }
    csv.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;

    fn small() -> GeneratorConfig {
        GeneratorConfig {
            seed: 7,
            subscribers: 20,
            stop: StopAt::Duration(chrono::Duration::minutes(20)),
            average_gap: StdDuration::from_secs(2),
            anomaly_rate: 0.1,
            ..GeneratorConfig::default()
        }
    }

    fn events(config: &GeneratorConfig) -> Vec<NetlogEvent> {
        generate(config).unwrap().collect()
    }

    fn jsonl(config: &GeneratorConfig) -> Vec<u8> {
        let mut out = Vec::new();
        write_jsonl(generate(config).unwrap(), &mut out).unwrap();
        out
    }

    fn csv_bytes(config: &GeneratorConfig) -> Vec<u8> {
        let mut out = Vec::new();
        write_csv(generate(config).unwrap(), &mut out).unwrap();
        out
    }

    fn is_normal(e: &NetlogEvent) -> bool {
        e.label.as_deref() == Some(NORMAL_LABEL)
    }

    fn subnet(ip: IpAddr) -> Ipv4Addr {
        match ip {
            IpAddr::V4(v4) => geo::subnet22(v4),
            IpAddr::V6(_) => panic!("generator emits IPv4 only"),
        }
    }

    fn minute(t: &DateTime<Utc>) -> i64 {
        t.timestamp_millis().div_euclid(MINUTE_MS)
    }

    #[test]
    fn same_seed_and_options_give_identical_bytes() {
        let config = small();
        assert_eq!(jsonl(&config), jsonl(&config));
        assert_eq!(csv_bytes(&config), csv_bytes(&config));
    }

    /// FNV-1a, a fixed hash (unlike std's) to pin generated bytes across builds.
    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
            (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    /// A run with episodes and drift, whose bytes are pinned below.
    fn pinned() -> GeneratorConfig {
        let config = GeneratorConfig {
            anomaly_rate: 0.3,
            ..small()
        };
        GeneratorConfig {
            drift: Some(Drift {
                at: config.start + chrono::Duration::minutes(10),
                volume: 2.0,
                new_destinations: 0.3,
            }),
            ..config
        }
    }

    /// Seeded output is part of the contract (reproducible demos, stored fixtures): a change
    /// here must be deliberate, and then this hash is updated with it.
    #[test]
    fn output_is_pinned() {
        let bytes = jsonl(&pinned());
        assert_eq!(
            fnv1a(&bytes),
            5_044_815_638_101_214_678,
            "{} bytes",
            bytes.len()
        );
    }

    /// With every new count at zero, `output_is_pinned` holds; with them set, each event of the
    /// plain run is still there, unchanged and in order, and each added one belongs to a role.
    #[test]
    fn host_roles_only_add_traffic() {
        let plain = String::from_utf8(jsonl(&pinned())).unwrap();
        let config = GeneratorConfig {
            busy_servers: 2,
            backup_hosts: 2,
            beacons: 2,
            slow_scans: 2,
            long_connections: 2,
            ..pinned()
        };
        let mut generator = generate(&config).unwrap();
        let mut with_roles = Vec::new();
        write_jsonl(&mut generator, &mut with_roles).unwrap();
        let with_roles = String::from_utf8(with_roles).unwrap();
        let mut plain_lines = plain.lines().peekable();
        let mut added = Vec::new();
        for line in with_roles.lines() {
            if plain_lines.peek() == Some(&line) {
                plain_lines.next();
            } else {
                added.push(serde_json::from_str::<NetlogEvent>(line).unwrap());
            }
        }
        assert_eq!(
            plain_lines.next(),
            None,
            "every plain event is kept, in order"
        );

        let classes = &generator.summary().subscribers_by_host_class;
        let role_hosts: HashSet<&String> = classes.values().flatten().collect();
        assert_eq!(role_hosts.len(), 4);
        for e in &added {
            match e.label.as_deref() {
                Some("beaconing" | "slow_scan" | "long_connection") => {}
                _ => assert!(role_hosts.contains(&e.subscriber_id), "{e:?}"),
            }
        }
        let long_running = added
            .iter()
            .filter(|e| {
                matches!(
                    e.label.as_deref(),
                    Some("beaconing" | "slow_scan" | "long_connection")
                )
            })
            .count();
        assert!(long_running > 20 && added.len() > 10 * long_running);

        let again = {
            let mut out = Vec::new();
            write_jsonl(generate(&config).unwrap(), &mut out).unwrap();
            out
        };
        assert_eq!(again, with_roles.as_bytes(), "deterministic per seed");
        let starts: Vec<DateTime<Utc>> = with_roles
            .lines()
            .map(|l| serde_json::from_str::<NetlogEvent>(l).unwrap().start_time)
            .collect();
        assert!(
            starts.windows(2).all(|w| w[0] <= w[1]),
            "still in start order"
        );
    }

    #[test]
    fn different_seed_gives_different_data() {
        let other = GeneratorConfig { seed: 8, ..small() };
        assert_ne!(jsonl(&small()), jsonl(&other));
        assert_ne!(csv_bytes(&small()), csv_bytes(&other));
    }

    #[test]
    fn default_run_is_about_thirty_minutes_of_a_hundred_subscribers() {
        let config = GeneratorConfig::default();
        assert_eq!(
            config.start,
            "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let mut generator = generate(&config).unwrap();
        let all: Vec<_> = generator.by_ref().collect();
        let normal = all.iter().filter(|e| is_normal(e)).count();
        assert!(
            (95_000..=105_000).contains(&normal),
            "{normal} normal events"
        );
        let ids: BTreeSet<_> = all.iter().map(|e| &e.subscriber_id).collect();
        assert_eq!(ids.len(), 100);
        let episodes = generator.summary().episodes();
        assert!((50..=140).contains(&episodes), "{episodes} episodes");
        let last = all.last().unwrap().start_time;
        assert!(last < config.start + chrono::Duration::minutes(30));
        assert!(last > config.start + chrono::Duration::minutes(29));
    }

    #[test]
    fn events_are_ordered_and_end_after_start() {
        let all = events(&small());
        assert!(all.windows(2).all(|w| w[0].start_time <= w[1].start_time));
        for e in &all {
            assert!(e.end_time > e.start_time, "{e:?}");
            assert_eq!(e.timestamp, Some(e.end_time));
            assert_eq!(e.subscriber_id.len(), 17);
            assert!(e.subscriber_id.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    /// Per subscriber, normal flows in order with the gap to the next one.
    fn normal_flows_with_gaps(all: &[NetlogEvent]) -> Vec<(&NetlogEvent, f64)> {
        let mut by_subscriber: HashMap<&str, Vec<&NetlogEvent>> = HashMap::new();
        for e in all.iter().filter(|e| is_normal(e)) {
            by_subscriber.entry(&e.subscriber_id).or_default().push(e);
        }
        let mut out = Vec::new();
        for flows in by_subscriber.values() {
            for w in flows.windows(2) {
                let gap = (w[1].start_time - w[0].start_time).num_milliseconds() as f64 / 1000.0;
                out.push((w[0], gap));
            }
        }
        out
    }

    #[test]
    fn gaps_average_the_option() {
        for (average, rate) in [
            (StdDuration::from_secs(2), 0.1),
            (StdDuration::from_millis(150), 0.5),
        ] {
            let config = GeneratorConfig {
                average_gap: average,
                anomaly_rate: rate,
                ..small()
            };
            let all = events(&config);
            let gaps = normal_flows_with_gaps(&all);
            let mean = gaps.iter().map(|(_, g)| g).sum::<f64>() / gaps.len() as f64;
            let want = average.as_secs_f64();
            assert!(
                (mean - want).abs() < 0.1 * want,
                "mean gap {mean}s, want {want}s"
            );
            for (_, gap) in &gaps {
                assert!(
                    *gap >= 0.5 * want - 0.001 && *gap <= 1.5 * want + 0.001,
                    "{gap}"
                );
            }
        }
    }

    #[test]
    fn bytes_grow_with_the_gap() {
        let config = GeneratorConfig {
            average_gap: StdDuration::from_secs(30),
            stop: StopAt::Duration(chrono::Duration::hours(6)),
            ..small()
        };
        let all = events(&config);
        let flows = normal_flows_with_gaps(&all);
        // Normalize per destination so the test sees the gap effect, not destination mix.
        let mut means: HashMap<(&str, IpAddr), (f64, f64, f64)> = HashMap::new();
        for (e, _) in &flows {
            let m = means.entry((&e.subscriber_id, e.dst_ip)).or_default();
            m.0 += e.tx_bytes as f64;
            m.1 += e.rx_bytes as f64;
            m.2 += 1.0;
        }
        let correlation = |pick: fn(&NetlogEvent) -> u64, which: fn(&(f64, f64, f64)) -> f64| {
            let points: Vec<(f64, f64)> = flows
                .iter()
                .map(|(e, gap)| {
                    let m = &means[&(e.subscriber_id.as_str(), e.dst_ip)];
                    (*gap, pick(e) as f64 / (which(m) / m.2))
                })
                .collect();
            let n = points.len() as f64;
            let (mx, my) = points
                .iter()
                .fold((0.0, 0.0), |a, p| (a.0 + p.0 / n, a.1 + p.1 / n));
            let cov: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
            let vx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
            let vy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
            cov / (vx * vy).sqrt()
        };
        let tx = correlation(|e| e.tx_bytes, |m| m.0);
        let rx = correlation(|e| e.rx_bytes, |m| m.1);
        assert!(tx > 0.5, "tx/gap correlation {tx}");
        assert!(rx > 0.5, "rx/gap correlation {rx}");
    }

    #[test]
    fn protocol_fields_are_coherent() {
        let config = GeneratorConfig {
            anomaly_rate: 0.5,
            ..small()
        };
        let mut flags = BTreeSet::new();
        let mut protocols = BTreeSet::new();
        for e in events(&config) {
            match (e.protocol_name.as_deref(), e.protocol_number) {
                (Some("tcp"), Some(6)) => {
                    let flag = e.tcp_flag.expect("TCP flows carry a flag");
                    assert!([SYN, ACK, PSH_ACK, FIN].contains(&flag), "{e:?}");
                    flags.insert(flag);
                }
                (Some("udp"), Some(17)) => assert_eq!(e.tcp_flag, None, "{e:?}"),
                _ => panic!("incoherent protocol: {e:?}"),
            }
            protocols.insert(e.protocol_name.clone().unwrap_or_default());
            if is_normal(&e) {
                assert!(EPHEMERAL_PORTS.contains(&e.src_port));
                assert!([443, 80, 53, 123].contains(&e.dst_port), "{e:?}");
            }
        }
        assert_eq!(flags.len(), 4);
        assert_eq!(protocols.len(), 2);
    }

    type Geo = (Option<String>, Option<String>, Option<f64>, Option<f64>);

    #[test]
    fn geo_fields_follow_the_source_ip() {
        let config = GeneratorConfig {
            anomaly_rate: 0.5,
            ..small()
        };
        let mut seen: HashMap<IpAddr, Geo> = HashMap::new();
        for e in events(&config) {
            let geo = (
                e.geo_country.clone(),
                e.geo_city.clone(),
                e.latitude,
                e.longitude,
            );
            let record = geo::lookup(e.src_ip).expect("every generated srcIP geolocates");
            assert_eq!(geo.0.as_deref(), Some(record.country));
            assert_eq!(geo.1.as_deref(), Some(record.city));
            assert_eq!(
                (geo.2, geo.3),
                (Some(record.latitude), Some(record.longitude))
            );
            assert_eq!(seen.entry(e.src_ip).or_insert_with(|| geo.clone()), &geo);
        }
    }

    #[test]
    fn normal_destinations_are_stable_per_subscriber() {
        let all = events(&GeneratorConfig {
            stop: StopAt::Duration(chrono::Duration::minutes(40)),
            ..small()
        });
        let halfway = all[all.len() / 2].start_time;
        let mut halves: [HashMap<&str, BTreeSet<IpAddr>>; 2] = Default::default();
        let mut homes: HashMap<&str, BTreeSet<IpAddr>> = HashMap::new();
        for e in all.iter().filter(|e| is_normal(e)) {
            halves[usize::from(e.start_time >= halfway)]
                .entry(&e.subscriber_id)
                .or_default()
                .insert(e.dst_ip);
            homes.entry(&e.subscriber_id).or_default().insert(e.src_ip);
        }
        assert_eq!(halves[0], halves[1]);
        for (id, dsts) in &halves[0] {
            assert!((3..=8).contains(&dsts.len()), "{id}: {dsts:?}");
            let subnets: BTreeSet<_> = dsts.iter().map(|ip| subnet(*ip)).collect();
            assert!((2..=4).contains(&subnets.len()), "{id}: {subnets:?}");
            assert_eq!(homes[id].len(), 1, "one home srcIP per subscriber");
        }
    }

    #[test]
    fn anomaly_rate_leaves_normal_traffic_untouched() {
        let normal = |rate| -> Vec<NetlogEvent> {
            events(&GeneratorConfig {
                anomaly_rate: rate,
                ..small()
            })
            .into_iter()
            .filter(is_normal)
            .collect()
        };
        let quiet = normal(0.0);
        assert_eq!(quiet, normal(0.5));
        assert!(!quiet.is_empty());
    }

    #[test]
    fn events_stop_yields_exactly_n() {
        for n in [1, 17, 5_000, 40_000] {
            let config = GeneratorConfig {
                stop: StopAt::Events(n),
                anomaly_rate: 0.3,
                ..small()
            };
            let mut generator = generate(&config).unwrap();
            assert_eq!(generator.by_ref().count() as u64, n);
            assert_eq!(generator.summary().events, n);
            assert_eq!(generator.next(), None);
        }
        // A shorter run is a prefix of a longer one.
        let take = |n| {
            events(&GeneratorConfig {
                stop: StopAt::Events(n),
                ..small()
            })
        };
        assert_eq!(take(3_000)[..], take(6_000)[..3_000]);
    }

    #[test]
    fn duration_stop_is_exact_even_off_the_minute() {
        let start: DateTime<Utc> = "2026-03-04T05:06:07.890Z".parse().unwrap();
        let config = GeneratorConfig {
            start,
            stop: StopAt::Duration(chrono::Duration::milliseconds(7 * 60_000 + 1_234)),
            anomaly_rate: 0.5,
            ..small()
        };
        let end = start + chrono::Duration::milliseconds(7 * 60_000 + 1_234);
        let all = events(&config);
        assert!(
            all.iter()
                .all(|e| e.start_time >= start && e.start_time < end)
        );
        assert!(all.first().unwrap().start_time < start + chrono::Duration::seconds(2));
        assert!(all.last().unwrap().start_time > end - chrono::Duration::seconds(2));
        // Anomalies only in the six minutes that lie wholly inside the run.
        let minutes: BTreeSet<_> = all
            .iter()
            .filter(|e| !is_normal(e))
            .map(|e| minute(&e.start_time))
            .collect();
        assert!(
            minutes
                .iter()
                .all(|m| *m > minute(&start) && *m < minute(&end))
        );
    }

    #[test]
    fn anomaly_episodes_fill_exactly_one_unused_feature_cell() {
        let config = GeneratorConfig {
            anomaly_rate: 0.5,
            stop: StopAt::Duration(chrono::Duration::minutes(30)),
            ..small()
        };
        let mut generator = generate(&config).unwrap();
        let all: Vec<_> = generator.by_ref().collect();
        let summary = generator.summary().clone();

        let mut normal_subnets: HashMap<&str, HashSet<Ipv4Addr>> = HashMap::new();
        let mut normal_tx: HashMap<&str, (f64, f64)> = HashMap::new();
        let mut cells: BTreeMap<(&str, i64), Vec<&NetlogEvent>> = BTreeMap::new();
        for e in &all {
            if is_normal(e) {
                normal_subnets
                    .entry(&e.subscriber_id)
                    .or_default()
                    .insert(subnet(e.dst_ip));
                let t = normal_tx.entry(&e.subscriber_id).or_default();
                t.0 += e.tx_bytes as f64;
                t.1 += 1.0;
            } else {
                cells
                    .entry((&e.subscriber_id, minute(&e.start_time)))
                    .or_default()
                    .push(e);
            }
        }

        let mut episodes: BTreeMap<&str, u64> = BTreeMap::new();
        let mut anomalous: BTreeMap<&str, u64> = BTreeMap::new();
        for ((id, cell_minute), flows) in &cells {
            let label = flows[0].label.as_deref().unwrap();
            *episodes.entry(label).or_default() += 1;
            *anomalous.entry(label).or_default() += flows.len() as u64;
            let dst_subnet = subnet(flows[0].dst_ip);
            assert!(
                !normal_subnets[id].contains(&dst_subnet),
                "{label} reuses a normal subnet"
            );
            for f in flows {
                assert_eq!(f.label.as_deref(), Some(label), "one kind per cell");
                assert_eq!(subnet(f.dst_ip), dst_subnet, "one /22 per episode");
                assert_eq!(minute(&f.start_time), *cell_minute);
                assert_eq!(minute(&f.end_time), *cell_minute, "{f:?} leaves its minute");
            }
            let dsts: HashSet<_> = flows.iter().map(|f| f.dst_ip).collect();
            let srcs: HashSet<_> = flows.iter().map(|f| f.src_ip).collect();
            let ports: HashSet<_> = flows.iter().map(|f| f.dst_port).collect();
            assert_eq!(dsts.len(), 1, "{label}: one destination host");
            match label {
                "exfiltration" => {
                    assert!((3..=8).contains(&flows.len()));
                    let (sum, n) = normal_tx[id];
                    assert!(flows.iter().all(|f| f.tx_bytes as f64 > 20.0 * sum / n));
                    assert!(flows.iter().all(|f| f.rx_bytes < f.tx_bytes / 10));
                }
                "port_scan" => {
                    assert_eq!(flows.len(), ports.len());
                    assert!((50..=300).contains(&ports.len()));
                    assert!(
                        flows
                            .iter()
                            .all(|f| f.tcp_flag == Some(SYN) && f.tx_bytes <= 60)
                    );
                }
                "ddos_fan_in" => {
                    assert!((50..=300).contains(&srcs.len()), "{} sources", srcs.len());
                    assert_eq!(ports.len(), 1);
                    assert!(flows.iter().all(|f| f.tx_bytes <= 200 && f.rx_bytes == 0));
                    let victim_home = all
                        .iter()
                        .find(|e| is_normal(e) && e.subscriber_id == *id)
                        .unwrap()
                        .src_ip;
                    assert!(dsts.contains(&victim_home));
                    let countries: HashSet<_> = flows.iter().map(|f| &f.geo_country).collect();
                    assert!(countries.len() > 5);
                }
                "beaconing" => {
                    assert!((4..=30).contains(&flows.len()), "{} beacons", flows.len());
                    let intervals: HashSet<_> = flows
                        .windows(2)
                        .map(|w| (w[1].start_time - w[0].start_time).num_milliseconds())
                        .collect();
                    assert_eq!(intervals.len(), 1, "beacons are exactly periodic");
                    assert_eq!(intervals.iter().next().unwrap() % 1000, 0);
                    let (min, max) = flows.iter().fold((u64::MAX, 0), |(lo, hi), f| {
                        (lo.min(f.tx_bytes), hi.max(f.tx_bytes))
                    });
                    assert!(max - min <= 6);
                }
                other => panic!("unknown label {other}"),
            }
        }

        // 20 subscribers × 30 minutes × 0.5: ~300 episodes, ~75 of each kind.
        for kind in AnomalyKind::MINUTE_EPISODES {
            let n = episodes.get(kind.as_label()).copied().unwrap_or(0);
            assert!(n >= 40, "{kind}: {n} episodes");
        }
        // Slow scans and long connections are long-running only: the summary lists the kinds
        // with zero.
        for kind in ["slow_scan", "long_connection"] {
            assert_eq!(summary.episodes_by_kind[kind], 0);
            episodes.insert(kind, 0);
            anomalous.insert(kind, 0);
        }
        assert_eq!(summary.episodes_by_kind, episodes);
        assert_eq!(summary.anomalous_events_by_kind, anomalous);
        assert_eq!(summary.events, all.len() as u64);
    }

    #[test]
    fn writers_round_trip_and_agree_on_timestamps() {
        let config = GeneratorConfig {
            stop: StopAt::Events(2_000),
            anomaly_rate: 0.5,
            ..small()
        };
        let original = events(&config);

        let json = String::from_utf8(jsonl(&config)).unwrap();
        let from_json: Vec<NetlogEvent> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(from_json, original);
        let first = json.lines().next().unwrap();
        let positions: Vec<_> = EVENT_FIELDS
            .iter()
            .map(|f| first.find(&format!("\"{f}\":")).unwrap())
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "JSON keys follow EVENT_FIELDS"
        );

        let csv_text = String::from_utf8(csv_bytes(&config)).unwrap();
        assert_eq!(csv_text.lines().next().unwrap(), EVENT_FIELDS.join(","));
        let from_csv: Vec<NetlogEvent> = csv::Reader::from_reader(csv_text.as_bytes())
            .deserialize()
            .map(Result::unwrap)
            .collect();
        assert_eq!(from_csv, original);

        // A whole second still shows its milliseconds, in both formats.
        let mut whole = original[0].clone();
        whole.start_time = "2026-01-01T00:00:01Z".parse().unwrap();
        let (mut json_out, mut csv_out) = (Vec::new(), Vec::new());
        write_jsonl(std::iter::once(whole.clone()), &mut json_out).unwrap();
        write_csv(std::iter::once(whole), &mut csv_out).unwrap();
        let stamp = "2026-01-01T00:00:01.000Z";
        assert!(
            String::from_utf8(json_out)
                .unwrap()
                .contains(&format!("\"startTime\":\"{stamp}\""))
        );
        assert!(
            String::from_utf8(csv_out)
                .unwrap()
                .contains(&format!(",{stamp},"))
        );
        let udp = original
            .iter()
            .find(|e| e.protocol_number == Some(17))
            .unwrap();
        assert!(json.contains("\"tcpFlag\":null"));
        assert_eq!(
            Rfc3339Millis(&"2026-01-01T00:00:01.25Z".parse().unwrap()).to_string(),
            "2026-01-01T00:00:01.250Z"
        );
        assert!(udp.tcp_flag.is_none());
    }

    #[test]
    fn empty_input_still_gets_a_csv_header() {
        let mut out = Vec::new();
        assert_eq!(write_csv(std::iter::empty(), &mut out).unwrap(), 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}\n", EVENT_FIELDS.join(","))
        );
        let mut out = Vec::new();
        assert_eq!(write_jsonl(std::iter::empty(), &mut out).unwrap(), 0);
        assert!(out.is_empty());
    }

    #[test]
    fn validate_names_the_option_and_its_range() {
        let option_of = |config: GeneratorConfig| match config.validate() {
            Err(GenerateError::InvalidOption { option, .. }) => option,
            Err(other) => panic!("{config:?}: {other}, not one option's range"),
            Ok(()) => panic!("{config:?} should be invalid"),
        };
        let base = GeneratorConfig::default();
        assert_eq!(base.validate(), Ok(()));
        assert_eq!(
            option_of(GeneratorConfig {
                subscribers: 0,
                ..base.clone()
            }),
            "subscribers"
        );
        assert_eq!(
            option_of(GeneratorConfig {
                subscribers: MAX_SUBSCRIBERS + 1,
                ..base.clone()
            }),
            "subscribers"
        );
        for gap in [StdDuration::from_millis(9), StdDuration::from_secs(86_401)] {
            assert_eq!(
                option_of(GeneratorConfig {
                    average_gap: gap,
                    ..base.clone()
                }),
                "average-time-between-requests"
            );
        }
        for rate in [-0.1, 1.5, f64::NAN] {
            assert_eq!(
                option_of(GeneratorConfig {
                    anomaly_rate: rate,
                    ..base.clone()
                }),
                "anomaly-rate"
            );
        }
        assert_eq!(
            option_of(GeneratorConfig {
                stop: StopAt::Events(0),
                ..base.clone()
            }),
            "events"
        );
        assert_eq!(
            option_of(GeneratorConfig {
                stop: StopAt::Events(u64::MAX),
                ..base.clone()
            }),
            "events"
        );
        assert_eq!(
            option_of(GeneratorConfig {
                stop: StopAt::Duration(chrono::Duration::zero()),
                ..base.clone()
            }),
            "duration"
        );
        assert_eq!(
            option_of(GeneratorConfig {
                stop: StopAt::Duration(chrono::Duration::days(3_000_000)),
                ..base.clone()
            }),
            "duration"
        );
        assert_eq!(
            option_of(GeneratorConfig {
                start: "1969-12-31T23:59:59Z".parse().unwrap(),
                ..base.clone()
            }),
            "start"
        );
        let message = GeneratorConfig {
            anomaly_rate: 2.0,
            ..base.clone()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert_eq!(message, "invalid --anomaly-rate 2: allowed is 0.0..=1.0");
        assert!(
            generate(&GeneratorConfig {
                subscribers: 0,
                ..base
            })
            .is_err()
        );
    }

    #[test]
    fn drift_shifts_normal_traffic_only_from_its_time_on() {
        let quiet = GeneratorConfig {
            anomaly_rate: 0.0,
            ..small()
        };
        let at = quiet.start + chrono::Duration::minutes(10);
        let drifted = GeneratorConfig {
            drift: Some(Drift {
                at,
                volume: 3.0,
                new_destinations: 0.5,
            }),
            ..quiet.clone()
        };
        let before = |events: Vec<NetlogEvent>| -> Vec<NetlogEvent> {
            events.into_iter().filter(|e| e.start_time < at).collect()
        };
        let plain = events(&quiet);
        let shifted = events(&drifted);
        assert_eq!(before(plain.clone()), before(shifted.clone()));

        let after = |events: &[NetlogEvent]| events.iter().filter(|e| e.start_time >= at).count();
        let ratio = after(&shifted) as f64 / after(&plain) as f64;
        assert!((2.7..3.3).contains(&ratio), "flow rate ratio {ratio}");

        let subnet = |ip: &IpAddr| match ip {
            IpAddr::V4(v4) => u32::from(*v4) >> 10,
            IpAddr::V6(_) => unreachable!("the generator makes IPv4 only"),
        };
        let usual: BTreeSet<(String, u32)> = plain
            .iter()
            .map(|e| (e.subscriber_id.clone(), subnet(&e.dst_ip)))
            .collect();
        let moved = shifted
            .iter()
            .filter(|e| e.start_time >= at)
            .filter(|e| !usual.contains(&(e.subscriber_id.clone(), subnet(&e.dst_ip))))
            .count() as f64
            / after(&shifted) as f64;
        assert!((0.4..0.6).contains(&moved), "share to new subnets {moved}");
    }

    #[test]
    fn drift_needs_something_to_drift() {
        let config = GeneratorConfig {
            drift: Some(Drift {
                at: small().start,
                volume: 1.0,
                new_destinations: 0.0,
            }),
            ..small()
        };
        assert!(config.validate().is_err());
        let negative = GeneratorConfig {
            drift: Some(Drift {
                at: small().start,
                volume: -2.0,
                new_destinations: 0.0,
            }),
            ..small()
        };
        assert!(negative.validate().is_err());
    }
}
