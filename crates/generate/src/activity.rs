//! Traffic a subscriber keeps up beside its light interactive flows: a busy server's load, an
//! hourly backup, a beacon, a slow scan or a long-lived connection. Each activity is its own stream of flows in start
//! order, drawn from its own random streams, which the generator merges with everything else.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::hosts::{self, BackupJob, HostClass, ServiceLoad};
use crate::long_running::{Beacon, LongConnection, SlowScan};
use crate::{Flow, GeneratorConfig, Purpose, StopAt, Subscriber};

/// What an activity needs to know about its subscriber and the run.
pub(crate) struct Setting {
    pub seed: u64,
    pub index: u32,
    pub home: Ipv4Addr,
    pub start_ms: i64,
    /// The run's end for `StopAt::Duration`; None when it stops after n events.
    pub end_ms: Option<i64>,
}

pub(crate) enum Activity {
    Service(ServiceLoad),
    Backup(BackupJob),
    Beacon(Beacon),
    SlowScan(SlowScan),
    LongConnection(LongConnection),
}

impl Activity {
    /// Start of the next flow; None once the activity is over.
    pub(crate) fn next_start_ms(&self) -> Option<i64> {
        match self {
            Activity::Service(load) => Some(load.next_start_ms()),
            Activity::Backup(job) => Some(job.next_start_ms()),
            Activity::Beacon(beacon) => Some(beacon.next_start_ms()),
            Activity::SlowScan(scan) => scan.next_start_ms(),
            Activity::LongConnection(connection) => connection.next_start_ms(),
        }
    }

    /// The flow starting at `next_start_ms`, which must be Some; schedules the one after it.
    pub(crate) fn next_flow(&mut self) -> Flow {
        match self {
            Activity::Service(load) => load.next_flow(),
            Activity::Backup(job) => job.next_flow(),
            Activity::Beacon(beacon) => beacon.next_flow(),
            Activity::SlowScan(scan) => scan.next_flow(),
            Activity::LongConnection(connection) => connection.next_flow(),
        }
    }
}

/// Gives every subscriber its host class and activities as `config` asks. Who plays which role
/// comes from per-role random orders and each activity from its own streams, so with every count
/// at zero nothing is drawn and the output is what it was before host classes existed.
pub(crate) fn assign(config: &GeneratorConfig, pool: &[Ipv4Addr], subscribers: &mut [Subscriber]) {
    let count = config.subscribers;
    let classes = hosts::host_classes(config.seed, count, config.busy_servers, config.backup_hosts);
    let beacons = chosen(config.seed, Purpose::BeaconHosts, count, config.beacons);
    let scanners = chosen(
        config.seed,
        Purpose::SlowScanHosts,
        count,
        config.slow_scans,
    );
    let holders = chosen(
        config.seed,
        Purpose::LongConnectionHosts,
        count,
        config.long_connections,
    );
    let start_ms = config.start.timestamp_millis();
    let end_ms = match config.stop {
        StopAt::Duration(d) => Some(start_ms + d.num_milliseconds()),
        StopAt::Events(_) => None,
    };
    // Beacon servers, scan targets and tunnel ends, each used by one anomaly only.
    let mut taken = HashSet::new();
    for ((index, subscriber), class) in (0u32..).zip(subscribers.iter_mut()).zip(classes) {
        let setting = Setting {
            seed: config.seed,
            index,
            home: subscriber.home,
            start_ms,
            end_ms,
        };
        subscriber.class = class;
        match class {
            HostClass::Client => {}
            HostClass::BusyServer => {
                let load = ServiceLoad::new(&setting);
                subscriber.activities.push(Activity::Service(load));
            }
            HostClass::BackupHost => {
                let used = subscriber.subnets();
                let job = BackupJob::new(&setting, pool, &used);
                subscriber.activities.push(Activity::Backup(job));
            }
        }
        if beacons.contains(&index) {
            let beacon = Beacon::new(&setting, &mut taken);
            subscriber.activities.push(Activity::Beacon(beacon));
        }
        if scanners.contains(&index) {
            let scan = SlowScan::new(&setting, &mut taken);
            subscriber.activities.push(Activity::SlowScan(scan));
        }
        if holders.contains(&index) {
            let connection = LongConnection::new(&setting, &mut taken);
            subscriber
                .activities
                .push(Activity::LongConnection(connection));
        }
    }
}

/// `n` distinct subscribers picked at random for one role.
fn chosen(seed: u64, purpose: Purpose, subscribers: u32, n: u32) -> HashSet<u32> {
    if n == 0 {
        return HashSet::new();
    }
    let order = hosts::shuffled_subscribers(seed, purpose, subscribers);
    order[..n as usize].iter().copied().collect()
}
