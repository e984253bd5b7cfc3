//! One scheduler per warehouse: a lease row in `ops.scheduler_lease`, renewed while the
//! scheduler lives (by a heartbeat during runs, which may outlast the lease's time to live) and
//! released when it exits. A lease whose holder stopped renewing (its
//! process was killed) expires, so a crashed scheduler never blocks the next one for long.
//! Kept in the warehouse itself, so it works the same for a DuckDB file and a BigQuery project.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::heartbeat::{Heartbeat, Renewal};
use netsentinel_core::relation::{Dataset, TableRef};
use netsentinel_core::sql::quote_string;
use netsentinel_core::{Cell, Column, EngineError, TableDef, Warehouse};

/// A holder that has not renewed for this long is presumed dead.
pub const LEASE_TTL: Duration = Duration::from_secs(90);
/// How often a live scheduler renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "another scheduler already runs on this warehouse: {holder} (host {host}, pid {pid}), since {since}, last seen {heartbeat}. \
         Stop it first; if it was killed, its lease expires {ttl}s after it was last seen"
    )]
    Held {
        holder: String,
        host: String,
        pid: i64,
        since: String,
        heartbeat: String,
        ttl: u64,
    },
    #[error("this scheduler's lease on the warehouse was taken over by {holder}; stopping")]
    Lost { holder: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

pub fn lease_table() -> TableRef {
    TableRef::new(Dataset::Ops, "scheduler_lease").expect("a valid table name")
}

/// Who holds the lease: unique per process start.
#[derive(Debug, Clone)]
pub struct Holder {
    pub id: String,
    pub host: String,
    pub pid: u32,
}

impl Holder {
    pub fn this_process() -> Self {
        Holder {
            id: format!("scheduler_{}", uuid::Uuid::now_v7().simple()),
            host: crate::run_lease::hostname(),
            pid: std::process::id(),
        }
    }
}

const LEASE_COLUMNS: &[Column] = &[
    Column::string("holder"),
    Column::string("host"),
    Column::int64("pid"),
    Column::timestamp("acquired_at"),
    Column::timestamp("heartbeat_at"),
];

pub fn lease_def() -> TableDef {
    TableDef::plain(lease_table(), LEASE_COLUMNS, &["holder"])
}

/// Takes the lease unless a live holder has it. Two schedulers starting at the same moment
/// may both insert a row; the earlier row wins and the later one is withdrawn.
pub fn acquire(warehouse: &mut dyn Warehouse, holder: &Holder) -> Result<(), LeaseError> {
    let table = warehouse.naming().qualify(&lease_table());
    warehouse.create_table(&lease_def())?;
    warehouse.execute_script(&format!(
        "DELETE FROM {table} WHERE heartbeat_at < TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {ttl} SECOND) OR holder = {id};\n\
         INSERT INTO {table} (holder, host, pid, acquired_at, heartbeat_at)\n\
         SELECT {id}, {host}, {pid}, CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP() FROM (SELECT 1 AS one) AS seed\n\
         WHERE NOT EXISTS (SELECT 1 FROM {table})",
        ttl = LEASE_TTL.as_secs(),
        id = quote_string(&holder.id),
        host = quote_string(&holder.host),
        pid = holder.pid,
    ))?;
    match current_holder(warehouse)? {
        Some(current) if current.holder == holder.id => Ok(()),
        Some(current) => {
            release(warehouse, holder)?;
            Err(current.into_error())
        }
        None => Err(LeaseError::Lost {
            holder: "nobody".to_string(),
        }),
    }
}

/// Keeps the lease alive; fails if another scheduler holds it now.
pub fn renew(warehouse: &mut dyn Warehouse, holder: &Holder) -> Result<(), LeaseError> {
    let table = warehouse.naming().qualify(&lease_table());
    warehouse.execute_script(&format!(
        "UPDATE {table} SET heartbeat_at = CURRENT_TIMESTAMP() WHERE holder = {}",
        quote_string(&holder.id)
    ))?;
    match current_holder(warehouse)? {
        Some(current) if current.holder == holder.id => Ok(()),
        other => Err(LeaseError::Lost {
            holder: other.map_or("nobody".to_string(), |c| c.holder),
        }),
    }
}

/// Renews the lease on `session` every [`RENEW_EVERY`] while a run goes on, until dropped.
pub fn keep_alive(session: Box<dyn Warehouse>, holder: &Holder) -> Heartbeat {
    let holder = holder.clone();
    Heartbeat::start(session, RENEW_EVERY, move |warehouse| {
        match renew(warehouse, &holder) {
            Ok(()) => Ok(Renewal::Held),
            Err(LeaseError::Engine(error)) => Err(error),
            Err(LeaseError::Lost { holder } | LeaseError::Held { holder, .. }) => {
                Ok(Renewal::Lost { holder })
            }
        }
    })
}

pub fn release(warehouse: &mut dyn Warehouse, holder: &Holder) -> Result<(), EngineError> {
    let table = warehouse.naming().qualify(&lease_table());
    warehouse.execute_script(&format!(
        "DELETE FROM {table} WHERE holder = {}",
        quote_string(&holder.id)
    ))?;
    Ok(())
}

struct LeaseRow {
    holder: String,
    host: String,
    pid: i64,
    acquired_at: Option<DateTime<Utc>>,
    heartbeat_at: Option<DateTime<Utc>>,
}

impl LeaseRow {
    fn into_error(self) -> LeaseError {
        let time = |t: Option<DateTime<Utc>>| t.map_or("?".to_string(), |t| t.to_rfc3339());
        LeaseError::Held {
            holder: self.holder,
            host: self.host,
            pid: self.pid,
            since: time(self.acquired_at),
            heartbeat: time(self.heartbeat_at),
            ttl: LEASE_TTL.as_secs(),
        }
    }
}

/// The live lease: the earliest row, if any.
fn current_holder(warehouse: &mut dyn Warehouse) -> Result<Option<LeaseRow>, EngineError> {
    let table = warehouse.naming().qualify(&lease_table());
    let result = warehouse.query(&format!(
        "SELECT holder, host, pid, acquired_at, heartbeat_at FROM {table} ORDER BY acquired_at, holder LIMIT 1"
    ))?;
    let Some(row) = result.rows.into_iter().next() else {
        return Ok(None);
    };
    let text = |cell: &Cell| match cell {
        Cell::Text(s) => s.clone(),
        other => other.to_string(),
    };
    let time = |cell: &Cell| match cell {
        Cell::Timestamp(t) => Some(*t),
        _ => None,
    };
    Ok(Some(LeaseRow {
        holder: text(&row[0]),
        host: text(&row[1]),
        pid: row[2].as_i64().unwrap_or(0),
        acquired_at: time(&row[3]),
        heartbeat_at: time(&row[4]),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsentinel_duckdb::DuckDbWarehouse;

    fn holder(id: &str) -> Holder {
        Holder {
            id: id.to_string(),
            host: "test-host".to_string(),
            pid: 42,
        }
    }

    #[test]
    fn one_holder_at_a_time_and_release_frees_it() {
        let mut warehouse = DuckDbWarehouse::open_in_memory().unwrap();
        acquire(&mut warehouse, &holder("first")).unwrap();
        let error = acquire(&mut warehouse, &holder("second"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("first") && error.contains("test-host") && error.contains("pid 42"),
            "{error}"
        );
        renew(&mut warehouse, &holder("first")).unwrap();
        assert!(renew(&mut warehouse, &holder("second")).is_err());
        release(&mut warehouse, &holder("first")).unwrap();
        acquire(&mut warehouse, &holder("second")).unwrap();
    }

    #[test]
    fn a_lease_nobody_renewed_expires() {
        let mut warehouse = DuckDbWarehouse::open_in_memory().unwrap();
        acquire(&mut warehouse, &holder("crashed")).unwrap();
        warehouse
            .execute_script(&format!(
                "UPDATE ops.scheduler_lease SET heartbeat_at = TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {} SECOND)",
                LEASE_TTL.as_secs() + 1
            ))
            .unwrap();
        acquire(&mut warehouse, &holder("next")).unwrap();
        assert!(renew(&mut warehouse, &holder("crashed")).is_err());
    }
}
