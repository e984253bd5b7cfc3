//! One run of a pipeline at a time per warehouse: a row per pipeline in `ops.run_leases`, taken
//! before the run starts, kept alive by a [`Heartbeat`] while it runs and released at its end.
//! Two overlapping runs (a retry beside a slow run, a manual run beside the scheduler, two
//! Cloud Run executions) would otherwise resume the same run record and interleave their
//! jobs; the second one now exits at once, naming the first. A holder that was killed stops
//! beating: its lease expires, or is taken over at once when its process is visibly gone from
//! this host.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::heartbeat::{Heartbeat, Renewal};
use netsentinel_core::relation::{Dataset, TableRef};
use netsentinel_core::sql::quote_string;
use netsentinel_core::{Cell, Column, EngineError, TableDef, Warehouse};

/// A holder that has not renewed for this long is presumed dead.
pub const RUN_LEASE_TTL: Duration = Duration::from_secs(90);
/// How often a run renews its lease: several beats fit in the time to live, so a beat that
/// fails (a network blip) costs nothing.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum RunLeaseError {
    #[error(
        "another run of pipeline {pipeline} is under way on this warehouse: {holder}. This run did nothing; \
         run it again when that one has finished (if it was killed, its lease expires {ttl}s after its last heartbeat)"
    )]
    Held {
        pipeline: String,
        /// Who holds it: holder id, host, pid, since when, last heartbeat.
        holder: String,
        ttl: u64,
    },
    #[error(
        "the run lease of pipeline {0} changed hands while it was being taken; this run did nothing: run it again"
    )]
    Contended(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

pub fn run_leases() -> TableRef {
    TableRef::new(Dataset::Ops, "run_leases").expect("a valid table name")
}

const RUN_LEASE_COLUMNS: &[Column] = &[
    Column::string("pipeline"),
    Column::string("holder"),
    Column::string("host"),
    Column::int64("pid"),
    Column::timestamp("acquired_at"),
    Column::timestamp("heartbeat_at"),
];

pub fn run_leases_def() -> TableDef {
    TableDef::plain(run_leases(), RUN_LEASE_COLUMNS, &["pipeline", "holder"])
}

/// The lease this process holds on one pipeline's runs.
#[derive(Debug, Clone)]
pub struct RunLease {
    pipeline: String,
    holder: String,
    host: String,
    pid: u32,
}

impl RunLease {
    /// Takes the pipeline's lease unless a live holder has it. Two runs starting at the same
    /// moment may both insert a row; the earlier row wins and the later one is withdrawn.
    pub fn acquire(warehouse: &mut dyn Warehouse, pipeline: &str) -> Result<Self, RunLeaseError> {
        let lease = RunLease {
            pipeline: pipeline.to_string(),
            holder: format!("run_holder_{}", uuid::Uuid::now_v7().simple()),
            host: hostname(),
            pid: std::process::id(),
        };
        warehouse.create_table(&run_leases_def())?;
        // A row that vanished between the insert and the read (its holder released it) or a
        // dead holder's row is worth another try; a live holder's is not.
        const ATTEMPTS: usize = 3;
        for _ in 0..ATTEMPTS {
            lease.try_insert(warehouse)?;
            match lease.current_holder(warehouse)? {
                Some(row) if row.holder == lease.holder => return Ok(lease),
                Some(row) if row.process_gone() => {
                    tracing::warn!(pipeline, holder = %row.holder, pid = row.pid, "the run holding the lease died; taking it over");
                    lease.remove_holder(warehouse, &row.holder)?;
                }
                Some(row) => {
                    lease.release(warehouse)?;
                    return Err(row.into_error(pipeline));
                }
                None => {}
            }
        }
        let row = lease.current_holder(warehouse)?;
        lease.release(warehouse)?;
        Err(row.map_or_else(
            || RunLeaseError::Contended(pipeline.to_string()),
            |row| row.into_error(pipeline),
        ))
    }

    /// Renews the lease on `session` every [`HEARTBEAT_EVERY`] until the heartbeat is dropped.
    pub fn keep_alive(&self, session: Box<dyn Warehouse>) -> Heartbeat {
        self.keep_alive_every(session, HEARTBEAT_EVERY)
    }

    fn keep_alive_every(&self, session: Box<dyn Warehouse>, every: Duration) -> Heartbeat {
        let lease = self.clone();
        Heartbeat::start(session, every, move |warehouse| lease.renew(warehouse))
    }

    /// Moves the heartbeat on; says whether this holder still has the lease.
    pub fn renew(&self, warehouse: &mut dyn Warehouse) -> Result<Renewal, EngineError> {
        let table = warehouse.naming().qualify(&run_leases());
        warehouse.execute_script(&format!(
            "UPDATE {table} SET heartbeat_at = CURRENT_TIMESTAMP() WHERE pipeline = {} AND holder = {}",
            quote_string(&self.pipeline),
            quote_string(&self.holder)
        ))?;
        Ok(match self.current_holder(warehouse)? {
            Some(row) if row.holder == self.holder => Renewal::Held,
            other => Renewal::Lost {
                holder: other.map_or("nobody".to_string(), |row| row.holder),
            },
        })
    }

    pub fn release(&self, warehouse: &mut dyn Warehouse) -> Result<(), EngineError> {
        self.remove_holder(warehouse, &self.holder)
    }

    /// Clears expired rows and this holder's own, then inserts this holder's row if the
    /// pipeline has none.
    fn try_insert(&self, warehouse: &mut dyn Warehouse) -> Result<(), EngineError> {
        let table = warehouse.naming().qualify(&run_leases());
        let pipeline = quote_string(&self.pipeline);
        let holder = quote_string(&self.holder);
        warehouse.execute_script(&format!(
            "DELETE FROM {table} WHERE pipeline = {pipeline} AND (heartbeat_at < TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {ttl} SECOND) OR holder = {holder});\n\
             INSERT INTO {table} (pipeline, holder, host, pid, acquired_at, heartbeat_at)\n\
             SELECT {pipeline}, {holder}, {host}, {pid}, CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP() FROM (SELECT 1 AS one) AS seed\n\
             WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE pipeline = {pipeline})",
            ttl = RUN_LEASE_TTL.as_secs(),
            host = quote_string(&self.host),
            pid = self.pid,
        ))?;
        Ok(())
    }

    fn remove_holder(
        &self,
        warehouse: &mut dyn Warehouse,
        holder: &str,
    ) -> Result<(), EngineError> {
        let table = warehouse.naming().qualify(&run_leases());
        warehouse.execute_script(&format!(
            "DELETE FROM {table} WHERE pipeline = {} AND holder = {}",
            quote_string(&self.pipeline),
            quote_string(holder)
        ))?;
        Ok(())
    }

    /// The pipeline's live lease: its earliest row, if any.
    fn current_holder(
        &self,
        warehouse: &mut dyn Warehouse,
    ) -> Result<Option<LeaseRow>, EngineError> {
        let table = warehouse.naming().qualify(&run_leases());
        let result = warehouse.query(&format!(
            "SELECT holder, host, pid, acquired_at, heartbeat_at FROM {table} WHERE pipeline = {} \
             ORDER BY acquired_at, holder LIMIT 1",
            quote_string(&self.pipeline)
        ))?;
        Ok(result.rows.into_iter().next().map(LeaseRow::from_cells))
    }
}

struct LeaseRow {
    holder: String,
    host: String,
    pid: i64,
    acquired_at: Option<DateTime<Utc>>,
    heartbeat_at: Option<DateTime<Utc>>,
}

impl LeaseRow {
    fn from_cells(row: Vec<Cell>) -> Self {
        let text = |cell: Option<&Cell>| match cell {
            Some(Cell::Text(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let time = |cell: Option<&Cell>| match cell {
            Some(Cell::Timestamp(t)) => Some(*t),
            _ => None,
        };
        LeaseRow {
            holder: text(row.first()),
            host: text(row.get(1)),
            pid: row.get(2).and_then(Cell::as_i64).unwrap_or(0),
            acquired_at: time(row.get(3)),
            heartbeat_at: time(row.get(4)),
        }
    }

    /// Whether the holder's process is known to have ended: it ran on this host (so its pid
    /// means something here) and no process has that pid now. A holder elsewhere is judged by
    /// its heartbeat alone.
    fn process_gone(&self) -> bool {
        let proc_fs = std::path::Path::new("/proc/self").exists();
        proc_fs
            && self.host == hostname()
            && u32::try_from(self.pid).is_ok_and(|pid| pid != std::process::id())
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    fn into_error(self, pipeline: &str) -> RunLeaseError {
        let time = |t: Option<DateTime<Utc>>| t.map_or("?".to_string(), |t| t.to_rfc3339());
        RunLeaseError::Held {
            pipeline: pipeline.to_string(),
            holder: format!(
                "{} (host {}, pid {}), started {}, last heartbeat {}",
                self.holder,
                self.host,
                self.pid,
                time(self.acquired_at),
                time(self.heartbeat_at)
            ),
            ttl: RUN_LEASE_TTL.as_secs(),
        }
    }
}

/// This machine's name, to tell leases held here from leases held elsewhere.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use netsentinel_duckdb::DuckDbWarehouse;

    fn scalar(warehouse: &mut dyn Warehouse, sql: &str) -> Cell {
        warehouse
            .query(sql)
            .unwrap()
            .scalar()
            .cloned()
            .unwrap_or(Cell::Null)
    }

    /// Polls `done` for up to a minute: the heartbeat thread runs on a loaded machine.
    fn eventually(mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn a_second_run_of_a_pipeline_is_refused_with_who_holds_it_and_others_are_not() {
        let mut warehouse = DuckDbWarehouse::open_in_memory().unwrap();
        let first = RunLease::acquire(&mut warehouse, "detect").unwrap();
        let error = RunLease::acquire(&mut warehouse, "detect")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("another run of pipeline detect")
                && error.contains(&first.holder)
                && error.contains(&format!("pid {}", std::process::id()))
                && error.contains("did nothing"),
            "{error}"
        );
        let train = RunLease::acquire(&mut warehouse, "train").unwrap();
        first.release(&mut warehouse).unwrap();
        RunLease::acquire(&mut warehouse, "detect").unwrap();
        train.release(&mut warehouse).unwrap();
    }

    #[test]
    fn a_lease_left_by_a_process_gone_from_this_host_or_silent_too_long_is_taken_over() {
        let mut warehouse = DuckDbWarehouse::open_in_memory().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = RunLease {
            pipeline: "detect".to_string(),
            holder: "run_holder_killed".to_string(),
            host: hostname(),
            pid: dead_pid,
        };
        warehouse.create_table(&run_leases_def()).unwrap();
        dead.try_insert(&mut warehouse).unwrap();
        let next = RunLease::acquire(&mut warehouse, "detect").unwrap();
        next.release(&mut warehouse).unwrap();

        let elsewhere = RunLease {
            host: "another-host".to_string(),
            pid: std::process::id(),
            ..dead
        };
        elsewhere.try_insert(&mut warehouse).unwrap();
        assert!(RunLease::acquire(&mut warehouse, "detect").is_err());
        warehouse
            .execute_script(&format!(
                "UPDATE ops.run_leases SET heartbeat_at = TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {} SECOND)",
                RUN_LEASE_TTL.as_secs() + 1
            ))
            .unwrap();
        RunLease::acquire(&mut warehouse, "detect").unwrap();
    }

    #[test]
    fn the_heartbeat_keeps_a_long_run_s_lease_fresh_and_notices_a_takeover() {
        let mut warehouse = DuckDbWarehouse::open_in_memory().unwrap();
        let lease = RunLease::acquire(&mut warehouse, "detect").unwrap();
        let stale = format!(
            "UPDATE ops.run_leases SET heartbeat_at = TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {} SECOND)",
            RUN_LEASE_TTL.as_secs() - 1
        );
        warehouse.execute_script(&stale).unwrap();
        let fresh = "SELECT heartbeat_at > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 10 SECOND) FROM ops.run_leases";
        let heartbeat = lease.keep_alive_every(
            warehouse.another_session().unwrap(),
            Duration::from_millis(10),
        );
        assert!(
            eventually(|| scalar(&mut warehouse, fresh) == Cell::Bool(true)),
            "the heartbeat renewed the lease"
        );
        assert_eq!(heartbeat.lost_to(), None);

        warehouse
            .execute_script(
                "UPDATE ops.run_leases SET holder = 'run_holder_taker', acquired_at = CURRENT_TIMESTAMP()",
            )
            .unwrap();
        assert!(
            eventually(|| heartbeat.lost_to().as_deref() == Some("run_holder_taker")),
            "the heartbeat noticed the takeover"
        );
    }
}
