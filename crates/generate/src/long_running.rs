//! Long-running anomalies: a beacon calling home for the whole run, a slow port scan over
//! about an hour and a connection held open for the whole run. Neither stands out in any one minute — that is what makes them hard — so every
//! one of their events carries the label, and a (subscriber, destination) pair or any window can
//! be labelled from the events alone. Each counts as one episode.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::activity::Setting;
use crate::{
    AnomalyKind, EPHEMERAL_PORTS, Flow, MINUTE_MS, PSH_ACK, Purpose, SYN, anomaly_host, stream_rng,
};

/// A host in the anomaly blocks no other long-running anomaly of this run uses; redrawn on the
/// (rare) collision so that each beacon or scan has its destination to itself.
fn own_destination(rng: &mut ChaCha8Rng, taken: &mut HashSet<Ipv4Addr>) -> Ipv4Addr {
    loop {
        let host = anomaly_host(rng);
        if taken.insert(host) {
            return host;
        }
    }
}

/// Malware calling its command-and-control server: one small HTTPS exchange of nearly the same
/// size every period, with the random sleep jitter implants use to avoid exact periodicity.
pub(crate) struct Beacon {
    home: Ipv4Addr,
    server: Ipv4Addr,
    period_ms: f64,
    /// Each sleep is `period · U(1 − jitter, 1 + jitter)`.
    jitter: f64,
    tx: f64,
    rx: f64,
    duration_ms: f64,
    rng: ChaCha8Rng,
    next_start_ms: i64,
    opened: bool,
}

impl Beacon {
    pub(crate) fn new(setting: &Setting, taken: &mut HashSet<Ipv4Addr>) -> Self {
        let mut rng = stream_rng(setting.seed, setting.index, Purpose::Beacon, 0);
        let server = own_destination(&mut rng, taken);
        let period_ms = rng.random_range(30_000.0..120_000.0);
        let jitter = rng.random_range(0.10..0.20);
        let first = setting.start_ms + rng.random_range(0..period_ms as i64);
        Self {
            home: setting.home,
            server,
            period_ms,
            jitter,
            tx: rng.random_range(300.0..2_000.0),
            rx: rng.random_range(200.0..3_000.0),
            duration_ms: rng.random_range(50.0..400.0),
            rng,
            next_start_ms: first,
            opened: false,
        }
    }

    pub(crate) fn next_start_ms(&self) -> i64 {
        self.next_start_ms
    }

    /// The check-in starting at `next_start_ms`; schedules the next one.
    pub(crate) fn next_flow(&mut self) -> Flow {
        let rng = &mut self.rng;
        let start_ms = self.next_start_ms;
        let sleep = self.period_ms * rng.random_range(1.0 - self.jitter..1.0 + self.jitter);
        self.next_start_ms = start_ms + sleep.round() as i64;
        let duration_ms = (self.duration_ms * rng.random_range(0.9..1.1)).round() as i64;
        let src_port = rng.random_range(EPHEMERAL_PORTS);
        let flow = Flow {
            tx: (self.tx * rng.random_range(0.95..1.05)).round() as u64,
            rx: (self.rx * rng.random_range(0.95..1.05)).round() as u64,
            start_ms,
            end_ms: start_ms + duration_ms.max(1),
            label: Some(AnomalyKind::Beaconing),
            opens_episode: !self.opened,
            ..Flow::tcp(self.home, self.server, src_port, 443, PSH_ACK)
        };
        self.opened = true;
        flow
    }
}

/// A patient SYN scan: one probe of a port not yet tried every few tens of seconds, from one
/// source port to one target, for about an hour, staying far below any per-minute burst.
pub(crate) struct SlowScan {
    home: Ipv4Addr,
    target: Ipv4Addr,
    src_port: u16,
    mean_gap_ms: f64,
    end_ms: i64,
    probed: HashSet<u16>,
    rng: ChaCha8Rng,
    next_start_ms: Option<i64>,
}

/// Each wait between probes is `mean · U(1 − SLOW_SCAN_JITTER, 1 + SLOW_SCAN_JITTER)`, so with
/// a mean of at least 20 s a calendar minute holds at most five probes.
const SLOW_SCAN_JITTER: f64 = 0.3;

impl SlowScan {
    pub(crate) fn new(setting: &Setting, taken: &mut HashSet<Ipv4Addr>) -> Self {
        let mut rng = stream_rng(setting.seed, setting.index, Purpose::SlowScan, 0);
        let target = own_destination(&mut rng, taken);
        let mean_gap_ms = rng.random_range(20_000.0..60_000.0);
        let length_ms = rng.random_range(50..=70) * MINUTE_MS;
        // Placed so the whole hour fits in the run when it can; a run that stops after n events
        // has no known end, so there the scan starts within the first minute.
        let room_ms = match setting.end_ms {
            Some(end_ms) => end_ms - setting.start_ms - length_ms,
            None => 0,
        };
        let start_ms = setting.start_ms + rng.random_range(0..room_ms.max(MINUTE_MS));
        Self {
            home: setting.home,
            target,
            src_port: rng.random_range(EPHEMERAL_PORTS),
            mean_gap_ms,
            end_ms: start_ms + length_ms,
            probed: HashSet::new(),
            rng,
            next_start_ms: Some(start_ms),
        }
    }

    /// None once the scan is over.
    pub(crate) fn next_start_ms(&self) -> Option<i64> {
        self.next_start_ms
    }

    /// The probe starting at `next_start_ms` (which must be Some); schedules the next one.
    pub(crate) fn next_flow(&mut self) -> Flow {
        let rng = &mut self.rng;
        let start_ms = self.next_start_ms.unwrap_or(self.end_ms);
        let wait =
            self.mean_gap_ms * rng.random_range(1.0 - SLOW_SCAN_JITTER..1.0 + SLOW_SCAN_JITTER);
        let next = start_ms + wait.round() as i64;
        self.next_start_ms = (next < self.end_ms).then_some(next);
        let port = loop {
            let port = rng.random_range(1..=u16::MAX);
            if self.probed.insert(port) {
                break port;
            }
        };
        // A SYN and at most a SYN-ACK or RST back; closed or filtered ports answer nothing.
        let rx = if rng.random_bool(0.5) {
            0
        } else {
            rng.random_range(40..=60)
        };
        Flow {
            tx: rng.random_range(40..=60),
            rx,
            start_ms,
            end_ms: start_ms + rng.random_range(1..=50),
            label: Some(AnomalyKind::SlowScan),
            opens_episode: self.probed.len() == 1,
            ..Flow::tcp(self.home, self.target, self.src_port, port, SYN)
        }
    }
}

/// A tunnel or reverse shell: one connection to a server of its own, held open from early in
/// the run to its end. Flow exporters cut a long connection into records at their active
/// timeout, so it arrives as one record per 30 minutes of the same 5-tuple, none with a FIN.
pub(crate) struct LongConnection {
    home: Ipv4Addr,
    server: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    /// The run's end, where the last record is cut; None when it stops after n events.
    end_ms: Option<i64>,
    rng: ChaCha8Rng,
    next_start_ms: Option<i64>,
    opened: bool,
}

/// A common NetFlow/IPFIX active timeout: a long flow is exported in records this long.
const ACTIVE_TIMEOUT_MS: i64 = 30 * MINUTE_MS;

impl LongConnection {
    pub(crate) fn new(setting: &Setting, taken: &mut HashSet<Ipv4Addr>) -> Self {
        let mut rng = stream_rng(setting.seed, setting.index, Purpose::LongConnection, 0);
        let server = own_destination(&mut rng, taken);
        let dst_port = if rng.random_bool(0.5) { 443 } else { 22 };
        let start_ms = setting.start_ms + rng.random_range(0..10 * MINUTE_MS);
        Self {
            home: setting.home,
            server,
            src_port: rng.random_range(EPHEMERAL_PORTS),
            dst_port,
            end_ms: setting.end_ms,
            rng,
            next_start_ms: Some(start_ms),
            opened: false,
        }
    }

    /// None once the run's end is reached.
    pub(crate) fn next_start_ms(&self) -> Option<i64> {
        self.next_start_ms
    }

    /// The record starting at `next_start_ms` (which must be Some); schedules the next one.
    pub(crate) fn next_flow(&mut self) -> Flow {
        let rng = &mut self.rng;
        let start_ms = self.next_start_ms.unwrap_or_default();
        let full_end_ms = start_ms + ACTIVE_TIMEOUT_MS;
        let end_ms = self.end_ms.map_or(full_end_ms, |end| end.min(full_end_ms));
        self.next_start_ms = match self.end_ms {
            Some(end) if end_ms >= end => None,
            _ => Some(end_ms),
        };
        let flow = Flow {
            tx: rng.random_range(20_000..=400_000),
            rx: rng.random_range(20_000..=800_000),
            start_ms,
            end_ms: end_ms.max(start_ms + 1),
            label: Some(AnomalyKind::LongConnection),
            opens_episode: !self.opened,
            ..Flow::tcp(
                self.home,
                self.server,
                self.src_port,
                self.dst_port,
                PSH_ACK,
            )
        };
        self.opened = true;
        flow
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration as StdDuration;

    use netsentinel_core::event::NetlogEvent;

    use crate::{GenerationSummary, GeneratorConfig, StopAt, generate};

    fn run(config: &GeneratorConfig) -> (Vec<NetlogEvent>, GenerationSummary) {
        let mut generator = generate(config).unwrap();
        let events: Vec<_> = generator.by_ref().collect();
        (events, generator.summary().clone())
    }

    /// A network with every role, minute episodes off so the long-running ones stand alone.
    fn network(minutes: i64, beacons: u32, slow_scans: u32) -> GeneratorConfig {
        GeneratorConfig {
            seed: 5,
            subscribers: 15,
            stop: StopAt::Duration(chrono::Duration::minutes(minutes)),
            average_gap: StdDuration::from_secs(5),
            anomaly_rate: 0.0,
            busy_servers: 1,
            backup_hosts: 1,
            beacons,
            slow_scans,
            ..GeneratorConfig::default()
        }
    }

    /// Events with this label, per subscriber.
    fn labelled<'a>(
        events: &'a [NetlogEvent],
        label: &str,
    ) -> BTreeMap<&'a str, Vec<&'a NetlogEvent>> {
        let mut out: BTreeMap<&str, Vec<&NetlogEvent>> = BTreeMap::new();
        for e in events.iter().filter(|e| e.label.as_deref() == Some(label)) {
            out.entry(&e.subscriber_id).or_default().push(e);
        }
        out
    }

    fn ms(t: &chrono::DateTime<chrono::Utc>) -> f64 {
        t.timestamp_millis() as f64
    }

    #[test]
    fn beacons_call_a_server_of_their_own_with_low_jitter_for_the_whole_run() {
        let minutes = 120;
        let config = network(minutes, 3, 2);
        let (events, summary) = run(&config);
        let beacons = labelled(&events, "beaconing");
        assert_eq!(beacons.len(), 3, "one beaconing subscriber each");
        assert_eq!(
            summary.episodes_by_kind["beaconing"], 3,
            "a beacon is one episode"
        );
        let flows: usize = beacons.values().map(Vec::len).sum();
        assert_eq!(summary.anomalous_events_by_kind["beaconing"], flows as u64);

        let (run_start, run_end) = (ms(&config.start), ms(&config.start) + minutes as f64 * 60e3);
        for (id, flows) in &beacons {
            let server = flows[0].dst_ip;
            assert!(flows.iter().all(|f| f.dst_ip == server), "{id}: one server");
            let others: BTreeSet<_> = events
                .iter()
                .filter(|e| e.dst_ip == server || e.src_ip == server)
                .map(|e| (e.subscriber_id.as_str(), e.label.as_deref()))
                .collect();
            assert_eq!(
                others,
                BTreeSet::from([(*id, Some("beaconing"))]),
                "nobody else"
            );

            let gaps: Vec<f64> = flows
                .windows(2)
                .map(|w| ms(&w[1].start_time) - ms(&w[0].start_time))
                .collect();
            let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let sd =
                (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
            assert!((30e3..=120e3).contains(&mean), "{id}: period {mean} ms");
            assert!(sd / mean < 0.15, "{id}: relative jitter {}", sd / mean);
            assert!(
                gaps.iter().all(|g| (0.75 * mean..1.25 * mean).contains(g)),
                "{id}: {gaps:?}"
            );
            // From the first period to the last: the whole run, not one minute.
            assert!(ms(&flows[0].start_time) - run_start < 1.25 * mean);
            assert!(run_end - ms(&flows.last().unwrap().start_time) < 1.25 * mean);

            let tx: Vec<f64> = flows.iter().map(|f| f.tx_bytes as f64).collect();
            let (low, high) = tx
                .iter()
                .fold((f64::MAX, 0.0f64), |(l, h), t| (l.min(*t), h.max(*t)));
            assert!(high / low < 1.15, "{id}: similar sizes, {low}..{high}");
            assert!(
                flows
                    .iter()
                    .all(|f| f.dst_port == 443 && f.tcp_flag == Some(24))
            );
        }
    }

    #[test]
    fn slow_scans_probe_a_new_port_a_few_times_a_minute_for_about_an_hour() {
        let config = network(90, 1, 2);
        let (events, summary) = run(&config);
        let scans = labelled(&events, "slow_scan");
        assert_eq!(scans.len(), 2);
        assert_eq!(summary.episodes_by_kind["slow_scan"], 2);
        let probes: usize = scans.values().map(Vec::len).sum();
        assert_eq!(summary.anomalous_events_by_kind["slow_scan"], probes as u64);
        for (id, probes) in &scans {
            let targets: BTreeSet<_> = probes.iter().map(|p| p.dst_ip).collect();
            let sources: BTreeSet<_> = probes.iter().map(|p| (p.src_ip, p.src_port)).collect();
            let ports: BTreeSet<_> = probes.iter().map(|p| p.dst_port).collect();
            assert_eq!(
                (targets.len(), sources.len()),
                (1, 1),
                "{id}: one source, one target"
            );
            assert_eq!(ports.len(), probes.len(), "{id}: a new port each time");
            assert!(probes.len() >= 40, "{id}: {} probes", probes.len());
            assert!(
                probes
                    .iter()
                    .all(|p| p.tcp_flag == Some(2) && p.tx_bytes <= 60 && p.rx_bytes <= 60),
                "{id}: SYN only, tiny"
            );
            let mut per_minute: BTreeMap<i64, usize> = BTreeMap::new();
            for p in probes {
                *per_minute.entry(p.start_time.timestamp() / 60).or_default() += 1;
            }
            let busiest = per_minute.values().max().unwrap();
            assert!(*busiest <= 5, "{id}: {busiest} probes in one minute");
            let span = (probes.last().unwrap().start_time - probes[0].start_time).num_minutes();
            assert!((48..=70).contains(&span), "{id}: {span} minutes");
        }
    }

    #[test]
    fn a_long_connection_is_one_5_tuple_exported_every_30_minutes_to_the_run_end() {
        let minutes = 100;
        let config = GeneratorConfig {
            long_connections: 2,
            ..network(minutes, 0, 0)
        };
        let (events, summary) = run(&config);
        let connections = labelled(&events, "long_connection");
        assert_eq!(connections.len(), 2);
        assert_eq!(summary.episodes_by_kind["long_connection"], 2);
        let run_end = ms(&config.start) + minutes as f64 * 60e3;
        for (id, records) in &connections {
            let tuples: BTreeSet<_> = records
                .iter()
                .map(|r| (r.src_ip, r.src_port, r.dst_ip, r.dst_port))
                .collect();
            assert_eq!(tuples.len(), 1, "{id}: one connection");
            let server = records[0].dst_ip;
            assert!(
                events
                    .iter()
                    .filter(|e| e.dst_ip == server)
                    .all(|e| e.subscriber_id == **id),
                "{id}: nobody else talks to its server"
            );
            assert!(ms(&records[0].start_time) - ms(&config.start) < 10.0 * 60e3);
            for pair in records.windows(2) {
                assert_eq!(pair[0].end_time, pair[1].start_time, "{id}: records abut");
                let length = ms(&pair[0].end_time) - ms(&pair[0].start_time);
                assert_eq!(length, 30.0 * 60e3, "{id}: cut at the active timeout");
            }
            let last = records.last().unwrap();
            assert_eq!(ms(&last.end_time), run_end, "{id}: open to the run's end");
            assert!(
                records
                    .iter()
                    .all(|r| r.tcp_flag == Some(24) && r.tx_bytes >= 20_000),
                "{id}: no FIN, traffic in every record"
            );
        }
    }

    #[test]
    fn a_run_of_n_events_keeps_its_beacons_and_scans_going() {
        let config = GeneratorConfig {
            stop: StopAt::Events(150_000),
            ..network(1, 2, 2)
        };
        let (events, summary) = run(&config);
        assert_eq!(events.len(), 150_000);
        assert_eq!(summary.episodes_by_kind["beaconing"], 2);
        assert_eq!(summary.episodes_by_kind["slow_scan"], 2);
        let first_scan = events
            .iter()
            .find(|e| e.label.as_deref() == Some("slow_scan"));
        let offset = first_scan.unwrap().start_time - config.start;
        assert!(
            offset < chrono::Duration::minutes(1),
            "no known end: scans start at once"
        );
    }
}
