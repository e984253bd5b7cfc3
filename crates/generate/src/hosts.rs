//! Host classes: most subscribers are light clients, a few are busy servers or backup hosts.
//! Servers and backup jobs are normal traffic that only looks unusual next to a client's — the
//! heavy but benign hosts every real network has — so their flows are labelled `normal`, and the
//! summary names their subscribers so that false alerts can be counted per class.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::activity::Setting;
use crate::{
    EPHEMERAL_PORTS, Flow, PSH_ACK, Purpose, normal_tcp_flag, random_home_host, random_host_in_22,
    stream_rng,
};

/// What kind of host a subscriber is; every subscriber has exactly one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostClass {
    /// Interactive traffic only: a few flows a minute to a handful of services.
    Client,
    /// A client's traffic plus a public service: hundreds of inbound connections a minute from
    /// many distinct peers all over the world, most of them large downloads, all run long.
    BusyServer,
    /// A client's traffic plus an hourly backup job: one upload of hundreds of MB to the same
    /// storage host at the same minute of every hour.
    BackupHost,
}

impl HostClass {
    pub const ALL: [HostClass; 3] = [
        HostClass::Client,
        HostClass::BusyServer,
        HostClass::BackupHost,
    ];

    /// The class's name in the summary (and its serialized form).
    pub fn as_label(self) -> &'static str {
        match self {
            HostClass::Client => "client",
            HostClass::BusyServer => "busy_server",
            HostClass::BackupHost => "backup_host",
        }
    }
}

/// Every subscriber index in a random order drawn from `purpose`'s own stream, so choosing who
/// plays a role never moves any other draw.
pub(crate) fn shuffled_subscribers(seed: u64, purpose: Purpose, subscribers: u32) -> Vec<u32> {
    let mut order: Vec<u32> = (0..subscribers).collect();
    order.shuffle(&mut stream_rng(seed, 0, purpose, 0));
    order
}

/// Each subscriber's class. Busy servers come from the front of one random order and backup
/// hosts from its back, so the classes never overlap and changing one count keeps the other
/// class's members.
pub(crate) fn host_classes(
    seed: u64,
    subscribers: u32,
    busy_servers: u32,
    backup_hosts: u32,
) -> Vec<HostClass> {
    let mut classes = vec![HostClass::Client; subscribers as usize];
    if busy_servers == 0 && backup_hosts == 0 {
        return classes;
    }
    let order = shuffled_subscribers(seed, Purpose::HostClasses, subscribers);
    for index in &order[..busy_servers as usize] {
        classes[*index as usize] = HostClass::BusyServer;
    }
    for index in order.iter().rev().take(backup_hosts as usize) {
        classes[*index as usize] = HostClass::BackupHost;
    }
    classes
}

/// A busy server's inbound load: clients connect to its one service port at random (Poisson)
/// times, send a small request and download a response spread over two orders of magnitude.
pub(crate) struct ServiceLoad {
    seed: u64,
    index: u32,
    home: Ipv4Addr,
    port: u16,
    mean_gap_ms: f64,
    /// How many distinct clients the service has over the run.
    audience: u32,
    /// Median response size in bytes; responses are log-uniform within ÷10..×10 of it.
    median_response: f64,
    rng: ChaCha8Rng,
    next_start_ms: i64,
}

impl ServiceLoad {
    pub(crate) fn new(setting: &Setting) -> Self {
        let mut rng = stream_rng(setting.seed, setting.index, Purpose::ServiceLoad, 0);
        let port = if rng.random_bool(0.75) { 443 } else { 80 };
        let per_minute: f64 = rng.random_range(200.0..600.0);
        let mean_gap_ms = 60_000.0 / per_minute;
        let audience = rng.random_range(2_000..=50_000);
        let median_response = rng.random_range(50_000.0..500_000.0);
        let first = setting.start_ms + exponential_gap_ms(&mut rng, mean_gap_ms);
        Self {
            seed: setting.seed,
            index: setting.index,
            home: setting.home,
            port,
            mean_gap_ms,
            audience,
            median_response,
            rng,
            next_start_ms: first,
        }
    }

    pub(crate) fn next_start_ms(&self) -> i64 {
        self.next_start_ms
    }

    /// The connection starting at `next_start_ms`; schedules the next one.
    pub(crate) fn next_flow(&mut self) -> Flow {
        let start_ms = self.next_start_ms;
        self.next_start_ms += exponential_gap_ms(&mut self.rng, self.mean_gap_ms);
        let visitor: f64 = self.rng.random();
        let client = self.client(visitor);
        let rng = &mut self.rng;
        let rx = log_uniform(
            rng,
            self.median_response / 10.0,
            self.median_response * 10.0,
        );
        let tx = rng.random_range(300..=2_000);
        // Round trips plus the transfer at the client's own bandwidth.
        let bytes_per_ms = rng.random_range(500.0..20_000.0);
        let duration_ms = rng.random_range(20..=200) + (rx / bytes_per_ms).round() as i64;
        let flag = normal_tcp_flag(rng);
        let src_port = rng.random_range(EPHEMERAL_PORTS);
        Flow {
            tx,
            rx: rx.round() as u64,
            start_ms,
            end_ms: start_ms + duration_ms,
            ..Flow::tcp(client, self.home, src_port, self.port, flag)
        }
    }

    /// Client number ⌊audience · u²⌋: the low numbers are regulars who come back all the time,
    /// the high ones visit rarely, as a real audience does. A client's address comes from its
    /// own stream, so it is the same on every visit.
    fn client(&self, u: f64) -> Ipv4Addr {
        let number = (f64::from(self.audience) * u * u) as u64;
        let mut rng = stream_rng(self.seed, self.index, Purpose::ServiceClient, number);
        loop {
            let ip = random_home_host(&mut rng);
            if ip != self.home {
                return ip;
            }
        }
    }
}

/// An hourly backup job (cron at a fixed minute): one upload to the same storage host each time,
/// started within a few seconds of its minute.
pub(crate) struct BackupJob {
    home: Ipv4Addr,
    storage: Ipv4Addr,
    /// Typical upload size in bytes; each run is within ±15 % of it.
    size: f64,
    /// The subscriber's upstream bandwidth.
    uplink_bytes_per_ms: f64,
    rng: ChaCha8Rng,
    /// When the next run is due: the start of its scheduled minute.
    next_due_ms: i64,
    next_start_ms: i64,
}

const HOUR_MS: i64 = 3_600_000;
/// Longest wait between a run's scheduled minute and its upload (cron and script start-up).
const BACKUP_START_DELAY_MS: i64 = 3_000;

impl BackupJob {
    /// `pool` is the shared service pool and `used` the /22 subnets the host's interactive
    /// traffic goes to: the storage host lies in a pool subnet outside them, as a dedicated
    /// storage service would.
    pub(crate) fn new(setting: &Setting, pool: &[Ipv4Addr], used: &HashSet<Ipv4Addr>) -> Self {
        let mut rng = stream_rng(setting.seed, setting.index, Purpose::Backup, 0);
        let unused: Vec<Ipv4Addr> = pool.iter().copied().filter(|s| !used.contains(s)).collect();
        let subnet = unused[rng.random_range(0..unused.len())];
        let storage = random_host_in_22(&mut rng, subnet);
        let minute_of_hour = rng.random_range(0..60) * 60_000;
        let size = rng.random_range(200e6..800e6);
        // 2–12 MB/s: the upstream of a business or fibre line.
        let uplink_bytes_per_ms = rng.random_range(2_000.0..12_000.0);
        let hour = setting.start_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let mut next_due_ms = hour + minute_of_hour;
        if next_due_ms < setting.start_ms {
            next_due_ms += HOUR_MS;
        }
        let next_start_ms = next_due_ms + rng.random_range(0..=BACKUP_START_DELAY_MS);
        Self {
            home: setting.home,
            storage,
            size,
            uplink_bytes_per_ms,
            rng,
            next_due_ms,
            next_start_ms,
        }
    }

    pub(crate) fn next_start_ms(&self) -> i64 {
        self.next_start_ms
    }

    /// The upload starting at `next_start_ms`; schedules the next hour's.
    pub(crate) fn next_flow(&mut self) -> Flow {
        let rng = &mut self.rng;
        let start_ms = self.next_start_ms;
        let tx = self.size * rng.random_range(0.85..1.15);
        // TLS records and storage API replies: well under 1 % of what goes up.
        let rx = tx * rng.random_range(0.002..0.01);
        let duration_ms = (tx / self.uplink_bytes_per_ms * rng.random_range(0.9..1.1)).round();
        let src_port = rng.random_range(EPHEMERAL_PORTS);
        let flow = Flow {
            tx: tx.round() as u64,
            rx: rx.round() as u64,
            start_ms,
            end_ms: start_ms + (duration_ms as i64).max(1),
            ..Flow::tcp(self.home, self.storage, src_port, 443, PSH_ACK)
        };
        self.next_due_ms += HOUR_MS;
        self.next_start_ms = self.next_due_ms + rng.random_range(0..=BACKUP_START_DELAY_MS);
        flow
    }
}

/// An exponential wait with the given mean, at least 1 ms: independent clients arriving at
/// random make a Poisson process.
fn exponential_gap_ms(rng: &mut ChaCha8Rng, mean_ms: f64) -> i64 {
    let u: f64 = rng.random();
    ((-mean_ms * (1.0 - u).ln()).round() as i64).max(1)
}

/// A value whose logarithm is uniform in [ln low, ln high): sizes spread over orders of magnitude.
fn log_uniform(rng: &mut ChaCha8Rng, low: f64, high: f64) -> f64 {
    (low.ln() + rng.random::<f64>() * (high / low).ln()).exp()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::net::IpAddr;
    use std::time::Duration as StdDuration;

    use netsentinel_core::event::NetlogEvent;

    use super::*;
    use crate::{
        GenerateError, GenerationSummary, GeneratorConfig, NORMAL_LABEL, StopAt, generate,
    };

    fn run(config: &GeneratorConfig) -> (Vec<NetlogEvent>, GenerationSummary) {
        let mut generator = generate(config).unwrap();
        let events: Vec<_> = generator.by_ref().collect();
        (events, generator.summary().clone())
    }

    fn quiet_network(minutes: i64) -> GeneratorConfig {
        GeneratorConfig {
            seed: 11,
            subscribers: 12,
            stop: StopAt::Duration(chrono::Duration::minutes(minutes)),
            average_gap: StdDuration::from_secs(5),
            anomaly_rate: 0.0,
            ..GeneratorConfig::default()
        }
    }

    fn minute_of(e: &NetlogEvent) -> i64 {
        e.start_time.timestamp() / 60
    }

    #[test]
    fn busy_servers_carry_far_more_flows_bytes_and_peers_per_minute_than_clients() {
        let minutes = 20;
        let config = GeneratorConfig {
            busy_servers: 2,
            ..quiet_network(minutes)
        };
        let (events, summary) = run(&config);
        let servers = &summary.subscribers_by_host_class["busy_server"];
        assert_eq!(servers.len(), 2);
        assert!(
            events
                .iter()
                .all(|e| e.label.as_deref() == Some(NORMAL_LABEL))
        );

        // Per subscriber: flows and bytes a minute, and each minute's distinct sources (a
        // server's clients connect in, so they are the flows' srcIPs).
        let mut flows: HashMap<&str, f64> = HashMap::new();
        let mut bytes: HashMap<&str, f64> = HashMap::new();
        let mut clients: BTreeMap<(&str, i64), BTreeSet<IpAddr>> = BTreeMap::new();
        for e in &events {
            *flows.entry(&e.subscriber_id).or_default() += 1.0 / minutes as f64;
            *bytes.entry(&e.subscriber_id).or_default() +=
                (e.tx_bytes + e.rx_bytes) as f64 / minutes as f64;
            clients
                .entry((&e.subscriber_id, minute_of(e)))
                .or_default()
                .insert(e.src_ip);
        }
        let is_server = |id: &str| servers.iter().any(|s| s == id);
        let busiest_client = |m: &HashMap<&str, f64>| {
            m.iter()
                .filter(|(id, _)| !is_server(id))
                .map(|(_, v)| *v)
                .fold(0.0, f64::max)
        };
        let (client_flows, client_bytes) = (busiest_client(&flows), busiest_client(&bytes));
        let mut generator = generate(&config).unwrap();
        for id in servers {
            assert_eq!(generator.host_class(id), Some(HostClass::BusyServer));
            assert!(
                flows[id.as_str()] >= 200.0,
                "{id}: {} flows a minute",
                flows[id.as_str()]
            );
            assert!(flows[id.as_str()] > 10.0 * client_flows);
            assert!(
                bytes[id.as_str()] > 4.0 * client_bytes,
                "{} vs {client_bytes}",
                bytes[id.as_str()]
            );
            // All run long, and from many distinct peers every minute.
            let start = minute_of(&events[0]);
            for minute in start..start + minutes {
                let seen = clients.get(&(id.as_str(), minute)).map_or(0, BTreeSet::len);
                assert!(seen >= 100, "{id} minute {minute}: {seen} peers");
            }
        }
        let client = events
            .iter()
            .find(|e| !is_server(&e.subscriber_id))
            .unwrap();
        assert_eq!(
            generator.host_class(&client.subscriber_id),
            Some(HostClass::Client)
        );
        assert_eq!(generator.host_class("no such subscriber"), None);
        assert!(generator.next().is_some());
    }

    #[test]
    fn backup_hosts_upload_once_an_hour_at_the_same_minute_to_the_same_host() {
        let hours = 5;
        let config = GeneratorConfig {
            backup_hosts: 3,
            ..quiet_network(hours * 60)
        };
        let (events, summary) = run(&config);
        let backups = &summary.subscribers_by_host_class["backup_host"];
        assert_eq!(backups.len(), 3);
        assert!(summary.subscribers_by_host_class["busy_server"].is_empty());

        let bulk = |e: &&NetlogEvent| e.tx_bytes > 100_000_000;
        for id in backups {
            let mine: Vec<&NetlogEvent> =
                events.iter().filter(|e| &e.subscriber_id == id).collect();
            let uploads: Vec<&NetlogEvent> = mine.iter().copied().filter(bulk).collect();
            assert_eq!(uploads.len() as i64, hours, "{id}: one upload an hour");
            let minutes: BTreeSet<_> = uploads.iter().map(|e| minute_of(e) % 60).collect();
            assert_eq!(minutes.len(), 1, "{id}: same minute of the hour");
            let hours_seen: BTreeSet<_> = uploads.iter().map(|e| minute_of(e) / 60).collect();
            assert_eq!(hours_seen.len() as i64, hours, "{id}: every hour");
            let storage: BTreeSet<_> = uploads.iter().map(|e| e.dst_ip).collect();
            assert_eq!(storage.len(), 1, "{id}: same destination");
            for upload in &uploads {
                assert_eq!(upload.label.as_deref(), Some(NORMAL_LABEL));
                assert!(upload.tx_bytes < 1_000_000_000, "hundreds of MB");
                assert!(upload.rx_bytes < upload.tx_bytes / 50);
                assert_eq!(upload.src_ip, mine[0].src_ip, "from the host itself");
            }
            // Besides the uploads it is an ordinary light client.
            let light = mine.len() - uploads.len();
            assert!((hours as usize * 60 * 60 / 5 * 9 / 10..).contains(&light));
        }
        let uploaders: BTreeSet<_> = events
            .iter()
            .filter(bulk)
            .map(|e| &e.subscriber_id)
            .collect();
        assert_eq!(uploaders, backups.iter().collect());
    }

    #[test]
    fn host_classes_take_distinct_subscribers() {
        let classes = host_classes(3, 50, 10, 40);
        let count = |class| classes.iter().filter(|c| **c == class).count();
        assert_eq!(
            (count(HostClass::BusyServer), count(HostClass::BackupHost)),
            (10, 40)
        );
        // One count changing keeps the other class's members.
        let fewer_servers = host_classes(3, 50, 2, 40);
        for (a, b) in classes.iter().zip(&fewer_servers) {
            if *a == HostClass::BackupHost {
                assert_eq!(b, a);
            }
        }
        let quiet = quiet_network(1);
        let too_many = GeneratorConfig {
            busy_servers: 7,
            backup_hosts: 6,
            ..quiet.clone()
        };
        let error = too_many.validate().unwrap_err();
        assert_eq!(
            error,
            GenerateError::HostClassesExceedSubscribers {
                busy_servers: 7,
                backup_hosts: 6,
                subscribers: 12,
            }
        );
        assert!(error.to_string().contains("--subscribers 12"), "{error}");
        for (config, option) in [
            (
                GeneratorConfig {
                    busy_servers: 13,
                    ..quiet.clone()
                },
                "busy-servers",
            ),
            (
                GeneratorConfig {
                    backup_hosts: 13,
                    ..quiet.clone()
                },
                "backup-hosts",
            ),
            (
                GeneratorConfig {
                    beacons: 13,
                    ..quiet.clone()
                },
                "beacons",
            ),
            (
                GeneratorConfig {
                    slow_scans: 13,
                    ..quiet.clone()
                },
                "slow-scans",
            ),
        ] {
            match config.validate() {
                Err(GenerateError::InvalidOption { option: named, .. }) => {
                    assert_eq!(named, option)
                }
                other => panic!("{option}: {other:?}"),
            }
        }
        let all_roles = GeneratorConfig {
            busy_servers: 6,
            backup_hosts: 6,
            beacons: 12,
            slow_scans: 12,
            ..quiet
        };
        assert_eq!(all_roles.validate(), Ok(()));
    }

    #[test]
    fn realistic_mix_scales_with_the_subscribers() {
        let mix = |subscribers| {
            let config = GeneratorConfig {
                subscribers,
                ..GeneratorConfig::default()
            }
            .with_realistic_mix();
            assert_eq!(config.validate(), Ok(()), "{subscribers}");
            (
                config.busy_servers,
                config.backup_hosts,
                config.beacons,
                config.slow_scans,
            )
        };
        assert_eq!(mix(100), (3, 5, 2, 1));
        assert_eq!(mix(1_000), (30, 50, 20, 10));
        assert_eq!(mix(1), (1, 0, 1, 1));
        assert_eq!(GeneratorConfig::default().busy_servers, 0);
    }
}
