//! Continuous ingest (`netsentinel ingest --follow`): NDJSON netlog from standard input,
//! `POST /v1/events` or a Pub/Sub subscription, committed in micro-batches when enough rows
//! are waiting or the commit interval has passed.
//!
//! Every piece of input arrives as a [`Receipt`] carrying its own acknowledgement, which runs
//! only once its rows are committed (an HTTP request is answered, a Pub/Sub message acked), so
//! a crash loses nothing that was acknowledged; input delivered again after a crash is stored
//! once, because event ids are content hashes. A commit that fails is retried with backoff
//! until it succeeds or the ingest is stopped: its rows stay held (standard input has no other
//! copy), and the senders that can send again are told so at once (HTTP 503, Pub/Sub nack).
//! An event whose window has closed (the newest event seen is past the window's end plus the
//! allowed lateness) is rejected as late: the window was already scored.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::batch::{EventBatch, LoadOutcome, Reject, StoredEvent};
use super::budget::Held;
use super::parse::{self, Rejection};
use super::schema;
use super::skew::ClockGuard;
use super::{IngestError, IngestSummary};
use crate::metrics::{CommittedBatch, Metrics};
use crate::vars::{VarValue, Vars};
use netsentinel_core::event::NetlogEvent;
use netsentinel_core::sql::quote_string;
use netsentinel_core::{Backoff, Cell, Warehouse};

/// What became of a receipt's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptOutcome {
    pub accepted: u64,
    pub rejected: u64,
}

/// A receipt's rows could not be committed (yet): its sender should send them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotCommitted;

/// Called once the receipt's rows are committed, or when they could not be.
pub type Acknowledge = Box<dyn FnOnce(Result<ReceiptOutcome, NotCommitted>) + Send>;

/// A piece of input: one or more NDJSON lines from one source.
pub struct Receipt {
    /// Where it came from, as recorded with rejects (`<stdin>`, `http`, `pubsub:<message id>`).
    pub source: String,
    /// The line number of the body's first line within the source.
    pub first_line: u64,
    pub body: String,
    pub acknowledge: Acknowledge,
    /// Its share of the input budget, given back once its rows are committed.
    pub held: Held,
}

impl Receipt {
    pub fn unacknowledged(source: &str, first_line: u64, body: String, held: Held) -> Self {
        Receipt {
            source: source.to_string(),
            first_line,
            body,
            acknowledge: Box::new(|_| {}),
            held,
        }
    }
}

/// When a window stops accepting events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowClock {
    pub window: Duration,
    pub allowed_lateness: Duration,
}

impl WindowClock {
    /// The clock the SQL uses: vars `window_seconds` and `allowed_lateness_seconds` (0 when
    /// not declared); `None` without `window_seconds`.
    pub fn from_vars(vars: &Vars) -> Option<Self> {
        let seconds = |name: &str| match vars.get(name) {
            Some(VarValue::Int(v)) if *v >= 0 => Some(Duration::from_secs(*v as u64)),
            _ => None,
        };
        Some(WindowClock {
            window: seconds("window_seconds")?,
            allowed_lateness: seconds("allowed_lateness_seconds").unwrap_or_default(),
        })
    }

    /// When the window holding `start` closes.
    fn closes_at(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        let window = self.window.as_secs().max(1) as i64;
        let window_start = start.timestamp().div_euclid(window) * window;
        DateTime::from_timestamp(window_start + window, 0).unwrap_or(start)
            + chrono::Duration::from_std(self.allowed_lateness).unwrap_or_default()
    }
}

/// The pauses between attempts at a failing commit: short at first (a lock held for a moment),
/// then at most 30 s, so a warehouse that is back is used again within half a minute.
pub const COMMIT_RETRY: Backoff = Backoff {
    initial: Duration::from_millis(500),
    max: Duration::from_secs(30),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowConfig {
    /// Commit once this many rows wait…
    pub commit_rows: usize,
    /// …or this long after the first of them arrived.
    pub commit_interval: Duration,
    /// `None`: no lateness check (a project without the window vars).
    pub clock: Option<WindowClock>,
    pub clock_guard: ClockGuard,
    pub retry: Backoff,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowSummary {
    pub rows_read: u64,
    pub late: u64,
    pub load: LoadOutcome,
}

/// Whether commits are failing, for the sources that can ask their senders to come back later
/// (HTTP): they refuse input until a commit succeeds again instead of queueing it behind a
/// failing warehouse.
#[derive(Debug, Default)]
pub struct CommitHealth {
    next_attempt: Mutex<Option<Instant>>,
}

impl CommitHealth {
    /// While commits are failing, how long until the next attempt (zero while it is under way).
    pub fn retry_after(&self) -> Option<Duration> {
        let next = (*self.lock())?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    fn failing_until(&self, next_attempt: Instant) {
        *self.lock() = Some(next_attempt);
    }

    fn recovered(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.next_attempt.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Continuous ingest into one warehouse session.
pub struct Follower {
    config: FollowConfig,
    pending: Pending,
}

impl Follower {
    /// Creates the raw tables and finds the newest stored event (the watermark windows close
    /// by). Done before any source starts, so a warehouse that cannot be reached fails the
    /// command with no input read and lost.
    pub fn prepare(
        warehouse: &mut dyn Warehouse,
        config: FollowConfig,
    ) -> Result<Self, IngestError> {
        schema::create_raw_tables(warehouse)?;
        let watermark = newest_event(warehouse, config.clock_guard.latest_allowed(Utc::now()))?;
        Ok(Follower {
            config,
            pending: Pending {
                watermark,
                ..Pending::default()
            },
        })
    }

    /// Ingests receipts until every sender is gone (end of input) and all is committed, or
    /// until `stop` is set. A failed commit is retried, with backoff, until it succeeds; once
    /// stopped, what is held gets one more attempt, and rows that still could not be committed
    /// are the error.
    pub fn run(
        mut self,
        warehouse: &mut dyn Warehouse,
        receipts: &Receiver<Receipt>,
        stop: &AtomicBool,
        metrics: &Metrics,
        health: &CommitHealth,
    ) -> Result<FollowSummary, IngestError> {
        let config = self.config;
        let pending = &mut self.pending;
        let mut summary = FollowSummary::default();
        let mut input_open = true;
        let mut failed_attempts = 0;
        while !stop.load(Ordering::SeqCst) {
            // A failed batch is retried without reading on: the sources wait (or refuse) until
            // a commit succeeds.
            let retrying = failed_attempts > 0 && !pending.is_empty();
            if input_open && !retrying {
                input_open = pending.receive(receipts, &config);
            }
            let due = retrying || !input_open || pending.is_due(&config);
            if due && !pending.is_empty() {
                match pending.commit(warehouse, metrics) {
                    Ok(committed) => {
                        summary += committed;
                        if failed_attempts > 0 {
                            tracing::info!(failed_attempts, "commits succeed again");
                            health.recovered();
                            failed_attempts = 0;
                        }
                    }
                    Err(error) => {
                        failed_attempts += 1;
                        let delay = config.retry.delay(failed_attempts);
                        metrics.commit_failed();
                        // Before the answers, so the senders told to retry learn when.
                        health.failing_until(Instant::now() + delay);
                        // Input already queued is answered now rather than after the outage;
                        // the input budget bounds what the held batch grows by.
                        pending.take_queued(receipts, &config);
                        pending.refuse_receipts();
                        tracing::warn!(
                            %error,
                            attempt = failed_attempts,
                            retry_in = ?delay,
                            rows_held = pending.rows_held(),
                            "commit failed; its rows are held and the commit retried"
                        );
                        wait_unless_stopped(delay, stop);
                    }
                }
            }
            if !input_open && pending.is_empty() {
                break;
            }
        }
        if !pending.is_empty() {
            let rows = pending.rows_held();
            match pending.commit(warehouse, metrics) {
                Ok(committed) => summary += committed,
                Err(error) => {
                    pending.refuse_receipts();
                    return Err(IngestError::Uncommitted {
                        rows,
                        source: Box::new(error),
                    });
                }
            }
        }
        Ok(summary)
    }
}

/// How long the loop waits for input before looking at the stop flag again.
const POLL: Duration = Duration::from_millis(100);

fn wait_unless_stopped(delay: Duration, stop: &AtomicBool) {
    let until = Instant::now() + delay;
    while !stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(POLL));
    }
}

/// A pipeline the in-process loop of `--detect-every` runs, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence<'a> {
    pub pipeline: &'a str,
    pub every: Duration,
}

/// Runs each cadence's pipeline every `every` until `done` is set: one run at a time, the
/// longest overdue first (so a detection that runs back to back does not starve the drift
/// pipeline), and a run in progress finishes first. `--detect-every` runs this on a thread and
/// warehouse session of its own, so the ingest never waits for a run.
pub fn repeat_until(cadences: &[Cadence<'_>], done: &AtomicBool, mut run: impl FnMut(&str)) {
    let mut due = vec![Instant::now(); cadences.len()];
    while !done.load(Ordering::SeqCst) {
        let Some((next, at)) = due.iter().copied().enumerate().min_by_key(|(_, at)| *at) else {
            return;
        };
        let now = Instant::now();
        if now >= at {
            due[next] = now + cadences[next].every;
            run(cadences[next].pipeline);
        } else {
            std::thread::sleep((at - now).min(POLL));
        }
    }
}

impl FollowSummary {
    /// The totals in the shape a batch ingest reports: every row read and not stored (as new
    /// or as a duplicate) went to the rejects table.
    pub fn ingest(&self) -> IngestSummary {
        IngestSummary {
            rows_read: self.rows_read,
            rows_rejected: self
                .rows_read
                .saturating_sub(self.load.events_inserted + self.load.events_duplicate),
            load: self.load,
        }
    }
}

impl std::ops::AddAssign for FollowSummary {
    fn add_assign(&mut self, other: Self) {
        self.rows_read += other.rows_read;
        self.late += other.late;
        self.load += other.load;
    }
}

/// Rows received and not committed yet, with the receipts to acknowledge after the commit.
/// After a failed commit the rows stay and the receipts are gone (answered).
#[derive(Default)]
struct Pending {
    batch: EventBatch,
    receipts: Vec<(Acknowledge, ReceiptOutcome)>,
    /// Events of closed windows: rejects as late, unless already stored (input replayed after
    /// a restart), which the commit finds out. With the receipt they came in, until it is
    /// answered.
    late: Vec<(Option<usize>, StoredEvent, Reject)>,
    /// Late events found really late, counted once their rejects are committed.
    really_late: u64,
    /// When the oldest uncommitted receipt arrived.
    since: Option<Instant>,
    rows_read: u64,
    /// The input budget the rows take, until they are committed.
    held: Vec<Held>,
    /// The newest event start committed or pending: the event-time clock windows close by.
    watermark: Option<DateTime<Utc>>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.receipts.is_empty() && self.batch.is_empty() && self.late.is_empty()
    }

    fn rows_held(&self) -> usize {
        self.batch.len() + self.late.len()
    }

    fn is_due(&self, config: &FollowConfig) -> bool {
        self.batch.len() >= config.commit_rows
            || self
                .since
                .is_some_and(|since| since.elapsed() >= config.commit_interval)
    }

    /// Waits for input, until the commit interval runs out and at most [`POLL`], then takes
    /// what else is queued. False once every source has ended.
    fn receive(&mut self, receipts: &Receiver<Receipt>, config: &FollowConfig) -> bool {
        let wait = self
            .since
            .map_or(config.commit_interval, |since| {
                config.commit_interval.saturating_sub(since.elapsed())
            })
            .min(POLL);
        match receipts.recv_timeout(wait) {
            Ok(receipt) => self.add(receipt, config),
            Err(RecvTimeoutError::Timeout) => return true,
            Err(RecvTimeoutError::Disconnected) => return false,
        }
        // Everything already queued joins the batch: a commit per receipt would fall behind a
        // busy sender.
        while self.batch.len() < config.commit_rows {
            match receipts.try_recv() {
                Ok(receipt) => self.add(receipt, config),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    /// Takes every receipt already queued, however many rows that makes.
    fn take_queued(&mut self, receipts: &Receiver<Receipt>, config: &FollowConfig) {
        while let Ok(receipt) = receipts.try_recv() {
            self.add(receipt, config);
        }
    }

    fn add(&mut self, receipt: Receipt, config: &FollowConfig) {
        self.since.get_or_insert_with(Instant::now);
        self.held.push(receipt.held);
        let receipt_index = self.receipts.len();
        let mut outcome = ReceiptOutcome::default();
        let received_at = Utc::now();
        for (offset, line) in receipt.body.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            self.rows_read += 1;
            let line_number = receipt.first_line + offset as u64;
            let reject = |rejection: Rejection| Reject {
                reject_id: parse::reject_id(&receipt.source, line_number, line),
                source: receipt.source.clone(),
                line: line_number,
                field: rejection.field.map(str::to_string),
                reason: rejection.reason,
                raw: line.to_string(),
            };
            let admitted = parse::parse_json_line(line)
                .and_then(|event| config.clock_guard.admit(event, received_at));
            let event = match admitted {
                Ok(event) => event,
                Err(rejection) => {
                    outcome.rejected += 1;
                    self.batch.rejects.push(reject(rejection));
                    continue;
                }
            };
            let lateness = self.lateness(&event, config.clock);
            let stored = StoredEvent {
                event_id: parse::event_id(&event),
                event,
                source: receipt.source.clone(),
                line: line_number,
            };
            match lateness {
                None => {
                    outcome.accepted += 1;
                    self.watermark = self.watermark.max(Some(stored.event.start_time));
                    self.batch.events.push(stored);
                }
                Some(rejection) => {
                    outcome.rejected += 1;
                    self.late
                        .push((Some(receipt_index), stored, reject(rejection)));
                }
            }
        }
        self.receipts.push((receipt.acknowledge, outcome));
    }

    /// Why the event is late, if its window has closed.
    fn lateness(&self, event: &NetlogEvent, clock: Option<WindowClock>) -> Option<Rejection> {
        let (Some(clock), Some(watermark)) = (clock, self.watermark) else {
            return None;
        };
        let closes_at = clock.closes_at(event.start_time);
        (closes_at <= watermark).then(|| {
            Rejection::late(format!(
                "late: its window closed at {} ({} s window, {} s allowed lateness) and events up to {} have arrived",
                closes_at.to_rfc3339(),
                clock.window.as_secs(),
                clock.allowed_lateness.as_secs(),
                watermark.to_rfc3339()
            ))
        })
    }

    /// Sorts the late events: already stored ones are duplicates (and count as accepted in
    /// their receipt's answer), the others rejects.
    fn settle_late(&mut self, warehouse: &mut dyn Warehouse) -> Result<(), IngestError> {
        if self.late.is_empty() {
            return Ok(());
        }
        let mut stored = stored_ids(warehouse, self.late.iter().map(|(_, event, _)| event))?;
        // Delivered twice within this batch (a redelivered message) counts as stored too.
        stored.extend(self.batch.events.iter().map(|e| e.event_id.clone()));
        for (receipt, event, reject) in std::mem::take(&mut self.late) {
            if stored.contains(&event.event_id) {
                if let Some((_, outcome)) = receipt.and_then(|r| self.receipts.get_mut(r)) {
                    outcome.rejected -= 1;
                    outcome.accepted += 1;
                }
                self.batch.events.push(event);
            } else {
                self.really_late += 1;
                self.batch.rejects.push(reject);
            }
        }
        Ok(())
    }

    /// Commits the rows, then acknowledges their receipts. When the commit fails everything
    /// stays for the next attempt or [`Pending::refuse_receipts`].
    fn commit(
        &mut self,
        warehouse: &mut dyn Warehouse,
        metrics: &Metrics,
    ) -> Result<FollowSummary, IngestError> {
        self.settle_late(warehouse)?;
        let load = self.batch.store(warehouse)?;
        Ok(self.committed(load, metrics))
    }

    /// Answers the receipts of a failed commit that their rows were not committed: their
    /// senders may send them again, which stores nothing twice. The rows stay for the next
    /// attempt.
    fn refuse_receipts(&mut self) {
        for (acknowledge, _) in self.receipts.drain(..) {
            acknowledge(Err(NotCommitted));
        }
        // Their answers are given: no late event may correct one, or a later receipt at the
        // same index.
        for (receipt, _, _) in &mut self.late {
            *receipt = None;
        }
    }

    fn committed(&mut self, load: LoadOutcome, metrics: &Metrics) -> FollowSummary {
        let batch = std::mem::take(&mut self.batch);
        let committed = FollowSummary {
            rows_read: std::mem::take(&mut self.rows_read),
            late: std::mem::take(&mut self.really_late),
            load,
        };
        metrics.batch_committed(
            &CommittedBatch {
                events: load.events_inserted,
                duplicates: load.events_duplicate,
                rejects: batch.rejects.len() as u64,
                late: committed.late,
                newest_event: batch.events.iter().map(|e| e.event.start_time).max(),
            },
            Utc::now(),
        );
        tracing::debug!(
            events = load.events_inserted,
            rejects = batch.rejects.len(),
            "batch committed"
        );
        for (acknowledge, outcome) in self.receipts.drain(..) {
            acknowledge(Ok(outcome));
        }
        self.held.clear();
        self.since = None;
        committed
    }
}

/// Which of `events` are stored already (looked up within their time range, which prunes).
fn stored_ids<'e>(
    warehouse: &mut dyn Warehouse,
    events: impl Iterator<Item = &'e StoredEvent>,
) -> Result<HashSet<String>, IngestError> {
    let events: Vec<&StoredEvent> = events.collect();
    let table = warehouse.naming().qualify(&schema::events_table());
    let mut stored = HashSet::new();
    for chunk in events.chunks(ID_LOOKUP_CHUNK) {
        let ids: Vec<String> = chunk.iter().map(|e| quote_string(&e.event_id)).collect();
        let starts = chunk.iter().map(|e| e.event.start_time);
        let (Some(first), Some(last)) = (starts.clone().min(), starts.max()) else {
            continue;
        };
        let found = warehouse.query(&format!(
            "SELECT event_id FROM {table} WHERE startTime BETWEEN {} AND {} AND event_id IN ({})",
            Cell::Timestamp(first).to_sql_literal(),
            Cell::Timestamp(last).to_sql_literal(),
            ids.join(", ")
        ))?;
        stored.extend(
            found
                .rows
                .into_iter()
                .filter_map(|row| match row.into_iter().next() {
                    Some(Cell::Text(id)) => Some(id),
                    _ => None,
                }),
        );
    }
    Ok(stored)
}

const ID_LOOKUP_CHUNK: usize = 1000;

/// The newest event already stored: windows before it closed while this ingester was away.
/// The newest stored event start up to `latest`: an event stored before the clock guard existed,
/// dated in the future, must not hold the watermark there after a restart.
fn newest_event(
    warehouse: &mut dyn Warehouse,
    latest: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, IngestError> {
    let events = warehouse.naming().qualify(&schema::events_table());
    let result = warehouse.query(&format!(
        "SELECT MAX(startTime) FROM {events} WHERE startTime <= TIMESTAMP {}",
        quote_string(&latest.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string())
    ))?;
    Ok(match result.scalar() {
        Some(Cell::Timestamp(t)) => Some(*t),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::ingest::budget::ByteBudget;
    use netsentinel_duckdb::DuckDbWarehouse;

    /// A share of a budget of its own: these tests are not about the budget.
    fn held() -> Held {
        ByteBudget::new(usize::MAX).try_hold(0).unwrap()
    }

    fn unacknowledged(body: String) -> Receipt {
        Receipt::unacknowledged("test", 1, body, held())
    }

    fn clock() -> WindowClock {
        WindowClock {
            window: Duration::from_secs(60),
            allowed_lateness: Duration::from_secs(10),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn config(clock: Option<WindowClock>) -> FollowConfig {
        FollowConfig {
            commit_rows: 1000,
            commit_interval: Duration::from_secs(1),
            clock,
            clock_guard: ClockGuard::default(),
            retry: Backoff {
                initial: Duration::from_millis(10),
                max: Duration::from_millis(50),
            },
        }
    }

    #[test]
    fn windows_close_at_their_end_plus_the_allowed_lateness() {
        assert_eq!(
            clock().closes_at(at("2026-01-01T00:00:59Z")),
            at("2026-01-01T00:01:10Z")
        );
        assert_eq!(
            clock().closes_at(at("2026-01-01T00:01:00Z")),
            at("2026-01-01T00:02:10Z")
        );
    }

    fn line(start: &str) -> String {
        format!(
            r#"{{"subscriberId":"s1","srcIP":"10.0.0.1","dstIP":"10.1.0.1","srcPort":1,"dstPort":2,"txBytes":3,"rxBytes":4,"startTime":"{start}","endTime":"{start}"}}"#
        )
    }

    #[test]
    fn events_of_closed_windows_are_late_unless_already_stored() {
        let mut warehouse = DuckDbWarehouse::open_in_memory().unwrap();
        schema::create_raw_tables(&mut warehouse).unwrap();
        let mut pending = Pending::default();
        let stored_before = line("2026-01-01T00:00:20Z");
        pending.add(unacknowledged(stored_before.clone()), &config(None));
        pending.commit(&mut warehouse, &Metrics::default()).unwrap();

        let body = [
            line("2026-01-01T00:00:30Z"),
            line("2026-01-01T00:01:09Z"),
            // The 00:00 window closed at 00:01:10: not late yet at 00:01:09…
            line("2026-01-01T00:00:40Z"),
            line("2026-01-01T00:01:10Z"),
            // …late once an event of 00:01:10 has arrived; a replay of a stored one is not.
            line("2026-01-01T00:00:50Z"),
            stored_before,
            "not json".to_string(),
        ]
        .join("\n");
        let answer: Arc<Mutex<Option<ReceiptOutcome>>> = Arc::default();
        let answered = answer.clone();
        pending.add(
            Receipt {
                source: "test".into(),
                first_line: 1,
                body,
                acknowledge: Box::new(move |r| *answered.lock().unwrap() = r.ok()),
                held: held(),
            },
            &config(Some(clock())),
        );
        assert_eq!(pending.watermark, Some(at("2026-01-01T00:01:10Z")));
        let committed = pending.commit(&mut warehouse, &Metrics::default()).unwrap();
        assert_eq!(committed.late, 1);
        assert_eq!(committed.load.events_inserted, 4);
        assert_eq!(committed.load.events_duplicate, 1);
        assert_eq!(
            *answer.lock().unwrap(),
            Some(ReceiptOutcome {
                accepted: 5,
                rejected: 2
            })
        );
        let rejects = warehouse
            .query("SELECT line, field, reason FROM raw.netlog_rejects ORDER BY line")
            .unwrap()
            .rows;
        assert_eq!(rejects.len(), 2);
        assert_eq!(rejects[0][0], Cell::Int(5));
        assert_eq!(rejects[0][1], Cell::Text("startTime".into()));
        let reason = rejects[0][2].to_string();
        assert!(
            reason.starts_with("late: its window closed at 2026-01-01T00:01:10"),
            "{reason}"
        );
        assert_eq!(rejects[1][0], Cell::Int(7));
    }

    #[test]
    fn the_longest_overdue_pipeline_runs_next_and_a_slow_one_starves_no_other() {
        let done = AtomicBool::new(false);
        let cadences = [
            Cadence {
                pipeline: "detect",
                every: Duration::from_millis(1),
            },
            Cadence {
                pipeline: "drift",
                every: Duration::from_millis(30),
            },
        ];
        let mut runs = Vec::new();
        repeat_until(&cadences, &done, |pipeline| {
            runs.push(pipeline.to_string());
            // Detection slower than its cadence: always overdue.
            std::thread::sleep(Duration::from_millis(5));
            if runs.len() == 40 {
                done.store(true, Ordering::SeqCst);
            }
        });
        assert_eq!(runs[..2], ["detect", "drift"]);
        // 40 runs of at least 5 ms each span at least 200 ms: drift was due again at least
        // five times, and ran each time right after a detection.
        let drift_runs = runs.iter().filter(|p| *p == "drift").count();
        assert!(drift_runs >= 5, "{runs:?}");
        assert!(runs.windows(2).all(|w| w != ["drift", "drift"]), "{runs:?}");
    }

    #[test]
    fn without_a_clock_nothing_is_late() {
        let mut pending = Pending::default();
        let body = [line("2026-01-01T01:00:00Z"), line("2026-01-01T00:00:00Z")].join("\n");
        pending.add(unacknowledged(body), &config(None));
        assert_eq!(pending.batch.events.len(), 2);
        assert!(pending.late.is_empty());
    }

    #[test]
    fn an_event_from_a_skewed_clock_is_quarantined_and_leaves_the_watermark_alone() {
        let now = Utc::now();
        let recent = |minutes| (now - chrono::Duration::minutes(minutes)).to_rfc3339();
        let skewed = (now + chrono::Duration::days(1)).to_rfc3339();
        let mut pending = Pending::default();
        let body = [line(&recent(2)), line(&skewed), line(&recent(1))].join("\n");
        pending.add(unacknowledged(body), &config(Some(clock())));

        assert_eq!(pending.batch.events.len(), 2, "both recent events are kept");
        assert_eq!(pending.batch.rejects.len(), 1);
        assert_eq!(pending.batch.rejects[0].field.as_deref(), Some("startTime"));
        assert!(pending.watermark < Some(now), "{:?}", pending.watermark);
    }

    fn count(warehouse: &mut DuckDbWarehouse, table: &str) -> Cell {
        warehouse
            .query(&format!("SELECT COUNT(*) FROM {table}"))
            .unwrap()
            .rows[0][0]
            .clone()
    }

    type Answer = Arc<Mutex<Option<Result<ReceiptOutcome, NotCommitted>>>>;

    /// A receipt whose answer lands in the returned slot.
    fn answered(body: String) -> (Receipt, Answer) {
        let answer = Arc::new(Mutex::new(None));
        let slot = answer.clone();
        let receipt = Receipt {
            source: "http".into(),
            first_line: 1,
            body,
            acknowledge: Box::new(move |result| *slot.lock().unwrap() = Some(result)),
            held: held(),
        };
        (receipt, answer)
    }

    #[test]
    fn a_failed_commit_keeps_its_rows_answers_its_receipts_and_stores_them_once_later() {
        let mut warehouse = DuckDbWarehouse::open_in_memory().unwrap();
        let mut pending = Pending::default();
        pending.add(unacknowledged(line("2026-01-01T00:00:01Z")), &config(None));
        let (receipt, answer) = answered(line("2026-01-01T00:00:02Z"));
        pending.add(receipt, &config(None));
        // No raw tables: the commit fails as a warehouse that refuses writes does.
        let failed = pending.commit(&mut warehouse, &Metrics::default());
        assert!(failed.is_err());
        pending.refuse_receipts();
        assert_eq!(*answer.lock().unwrap(), Some(Err(NotCommitted)));
        assert_eq!(pending.rows_held(), 2);
        assert!(!pending.is_empty());

        schema::create_raw_tables(&mut warehouse).unwrap();
        let committed = pending.commit(&mut warehouse, &Metrics::default()).unwrap();
        assert_eq!(committed.load.events_inserted, 2);
        assert!(pending.is_empty());
        // The HTTP sender, told to retry, sends its body again: stored once.
        let (receipt, answer) = answered(line("2026-01-01T00:00:02Z"));
        pending.add(receipt, &config(None));
        pending.commit(&mut warehouse, &Metrics::default()).unwrap();
        assert_eq!(
            *answer.lock().unwrap(),
            Some(Ok(ReceiptOutcome {
                accepted: 1,
                rejected: 0
            }))
        );
        assert_eq!(count(&mut warehouse, "raw.netlog_events"), Cell::Int(2));
    }

    fn commit_failures(metrics: &Metrics) -> u64 {
        let series = "netsentinel_ingest_commit_failures_total ";
        let text = metrics.render();
        let line = text.lines().find(|l| l.starts_with(series)).unwrap();
        line[series.len()..].parse().unwrap()
    }

    #[test]
    fn a_late_event_of_an_answered_receipt_corrects_no_later_receipts_answer() {
        let mut warehouse = DuckDbWarehouse::open_in_memory().unwrap();
        let mut pending = Pending::default();
        // The first flow again once its window has closed: late, and a duplicate in the batch.
        let repeated = line("2026-01-01T00:00:30Z");
        let body = [repeated.clone(), line("2026-01-01T00:01:10Z"), repeated].join("\n");
        pending.add(unacknowledged(body), &config(Some(clock())));
        assert_eq!(pending.late.len(), 1);
        let failed = pending.commit(&mut warehouse, &Metrics::default());
        assert!(failed.is_err(), "no raw tables yet");
        pending.refuse_receipts();

        let (receipt, answer) = answered(line("2026-01-01T00:01:11Z"));
        pending.add(receipt, &config(Some(clock())));
        schema::create_raw_tables(&mut warehouse).unwrap();
        pending.commit(&mut warehouse, &Metrics::default()).unwrap();
        assert_eq!(
            *answer.lock().unwrap(),
            Some(Ok(ReceiptOutcome {
                accepted: 1,
                rejected: 0
            }))
        );
        assert_eq!(count(&mut warehouse, "raw.netlog_events"), Cell::Int(3));
    }

    /// Runs `follower` on a thread of its own; its result comes through the returned channel.
    fn run_elsewhere(
        follower: Follower,
        mut warehouse: Box<dyn Warehouse>,
        received: Receiver<Receipt>,
        shared: &Arc<(AtomicBool, Metrics, CommitHealth)>,
    ) -> Receiver<Result<FollowSummary, String>> {
        let (done, finished) = std::sync::mpsc::channel();
        let shared = shared.clone();
        std::thread::spawn(move || {
            let (stop, metrics, health) = &*shared;
            let result = follower.run(warehouse.as_mut(), &received, stop, metrics, health);
            let _ = done.send(result.map_err(|e| e.to_string()));
        });
        finished
    }

    /// A warehouse whose commits fail until its batch log is created again, and a follower of it.
    fn failing_warehouse() -> (DuckDbWarehouse, Follower) {
        let mut warehouse = DuckDbWarehouse::open_in_memory().unwrap();
        let follower = Follower::prepare(&mut warehouse, config(None)).unwrap();
        warehouse.query("DROP TABLE ops.ingest_batches").unwrap();
        (warehouse, follower)
    }

    #[test]
    fn following_retries_a_failing_commit_until_it_succeeds() {
        let (mut warehouse, follower) = failing_warehouse();
        let (receipts, received) = std::sync::mpsc::sync_channel(8);
        let event = unacknowledged(line("2026-01-01T00:00:01Z"));
        receipts.send(event).unwrap();
        drop(receipts);
        let shared = Arc::new((
            AtomicBool::new(false),
            Metrics::default(),
            CommitHealth::default(),
        ));
        let session = warehouse.another_session().unwrap();
        let finished = run_elsewhere(follower, session, received, &shared);
        let deadline = Instant::now() + Duration::from_secs(30);
        while commit_failures(&shared.1) < 3 {
            assert!(Instant::now() < deadline, "{}", shared.1.render());
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            shared.2.retry_after().is_some(),
            "failing until a commit succeeds"
        );
        schema::create_raw_tables(&mut warehouse).unwrap();
        let summary = finished
            .recv_timeout(Duration::from_secs(30))
            .expect("the ingest ended with its input, once committed")
            .unwrap();
        assert_eq!(summary.load.events_inserted, 1);
        assert_eq!(shared.2.retry_after(), None);
        assert_eq!(count(&mut warehouse, "raw.netlog_events"), Cell::Int(1));
    }

    #[test]
    fn commit_health_says_how_long_until_the_next_attempt() {
        let health = CommitHealth::default();
        assert_eq!(health.retry_after(), None);
        health.failing_until(Instant::now() + Duration::from_secs(60));
        let left = health.retry_after().expect("failing");
        assert!(left > Duration::from_secs(50) && left <= Duration::from_secs(60));
        health.failing_until(Instant::now());
        assert_eq!(
            health.retry_after(),
            Some(Duration::ZERO),
            "failing until an attempt succeeds"
        );
        health.failing_until(Instant::now() + Duration::from_secs(60));
        health.recovered();
        assert_eq!(health.retry_after(), None);
    }

    #[test]
    fn a_stop_while_commits_fail_ends_the_ingest_with_the_rows_not_committed() {
        let (warehouse, follower) = failing_warehouse();
        let (receipts, received) = std::sync::mpsc::sync_channel(8);
        let event = unacknowledged(line("2026-01-01T00:00:01Z"));
        receipts.send(event).unwrap();
        let shared = Arc::new((
            AtomicBool::new(false),
            Metrics::default(),
            CommitHealth::default(),
        ));
        let finished = run_elsewhere(follower, Box::new(warehouse), received, &shared);
        let deadline = Instant::now() + Duration::from_secs(30);
        while commit_failures(&shared.1) < 1 {
            assert!(Instant::now() < deadline, "{}", shared.1.render());
            std::thread::sleep(Duration::from_millis(5));
        }
        shared.0.store(true, Ordering::SeqCst);
        let error = finished
            .recv_timeout(Duration::from_secs(10))
            .expect("the ingest stopped within the bound, input still open")
            .expect_err("its rows could not be committed");
        assert!(
            error.starts_with("stopped with 1 row(s) read and not committed"),
            "{error}"
        );
        drop(receipts);
    }
}
