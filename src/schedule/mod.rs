//! `netsentinel schedule`: a long-lived process that runs each pipeline on its cron schedule.
//!
//! Runs happen one at a time on this thread, so a pipeline never overlaps itself (nor another
//! pipeline: both write the same warehouse). Ticks that pass while a run is still going are
//! skipped and logged, not queued. After downtime, a pipeline whose tick was missed runs once
//! (or waits, per `scheduler.misfire`); a failed run is retried with doubling delays. The
//! warehouse is opened for each run and closed after, so other commands can use a local DuckDB
//! file between runs; a lease row, renewed by a heartbeat during runs too, keeps a second
//! scheduler off the same warehouse, and each run holds its pipeline's run lease. A stop
//! request (SIGINT/SIGTERM) lets the step under way finish, records the run as interrupted
//! (the next run resumes it) and returns.

// Run errors carry the failing step's SQL; they are logged once per run, not hot.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod lease;
pub mod timing;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::CronSchedule;
use crate::metrics::Metrics;
use crate::project::Project;
use crate::runner::{RunError, Runner};
use crate::state;
use crate::vars::Vars;
use config::{Misfire, SchedulerConfig};
use lease::{Holder, LeaseError};
use netsentinel_core::sql::quote_string;
use netsentinel_core::{Cell, EngineError, Warehouse};

/// How often an idle scheduler looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// How long a warehouse that cannot be opened is tried again.
const OPEN_PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("no pipeline to schedule: {0}")]
    NothingToSchedule(String),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<EngineError> for LeaseErrorOrRun {
    fn from(error: EngineError) -> Self {
        LeaseErrorOrRun::Run(RunError::Engine(error))
    }
}

/// What a scheduled run can end in besides its report.
enum LeaseErrorOrRun {
    Lease(LeaseError),
    Run(RunError),
}

pub type OpenWarehouse<'a> = dyn Fn() -> Result<Box<dyn Warehouse>, EngineError> + 'a;

pub struct Scheduler<'a> {
    pub project: &'a Project,
    pub vars: &'a Vars,
    pub target: &'a str,
    pub config: &'a SchedulerConfig,
    /// Opens the target's warehouse; called for each run.
    pub open: &'a OpenWarehouse<'a>,
    pub metrics: &'a Metrics,
    pub stop: &'a AtomicBool,
}

struct Scheduled {
    pipeline: String,
    schedule: CronSchedule,
    next_tick: DateTime<Utc>,
    /// A failed run's next attempt: when, and which attempt it is (1 = first retry).
    retry: Option<(DateTime<Utc>, u32)>,
}

impl Scheduled {
    fn due(&self) -> DateTime<Utc> {
        match self.retry {
            Some((at, _)) => at.min(self.next_tick),
            None => self.next_tick,
        }
    }
}

impl Scheduler<'_> {
    /// Schedules `pipelines` (every pipeline with a schedule when empty) until asked to stop.
    pub fn run(&self, pipelines: &[String]) -> Result<(), ScheduleError> {
        let holder = Holder::this_process();
        self.with_warehouse(|w| lease::acquire(w, &holder))?;
        tracing::info!(holder = %holder.id, "scheduler lease taken");
        let result = self.schedule_loop(pipelines, &holder);
        if let Err(error) = self.with_warehouse(|w| lease::release(w, &holder)) {
            tracing::warn!(%error, "could not release the scheduler lease; it expires by itself");
        }
        result
    }

    fn schedule_loop(&self, pipelines: &[String], holder: &Holder) -> Result<(), ScheduleError> {
        let mut scheduled = self.initial_state(pipelines)?;
        let mut last_renewal = Instant::now();
        loop {
            if self.stop_requested() {
                tracing::info!("scheduler stopped");
                return Ok(());
            }
            let next = scheduled
                .iter_mut()
                .min_by_key(|s| s.due())
                .expect("at least one pipeline is scheduled");
            if next.due() <= Utc::now() {
                self.run_due(next, holder)?;
                last_renewal = Instant::now();
                continue;
            }
            std::thread::sleep(POLL);
            if last_renewal.elapsed() >= lease::RENEW_EVERY {
                self.renew(holder)?;
                last_renewal = Instant::now();
            }
        }
    }

    /// The pipelines to schedule, each due at its next tick, or now when downtime made it miss
    /// one and the misfire policy says to run once.
    fn initial_state(&self, pipelines: &[String]) -> Result<Vec<Scheduled>, ScheduleError> {
        let names = if pipelines.is_empty() {
            self.project.pipeline_names()
        } else {
            pipelines.to_vec()
        };
        let mut scheduled = Vec::new();
        let now = Utc::now();
        let tz = self.config.timezone;
        for name in names {
            let pipeline = self
                .project
                .pipeline(&name)
                .map_err(|e| ScheduleError::NothingToSchedule(e.to_string()))?;
            let Some(schedule) = pipeline.schedule.clone() else {
                if !pipelines.is_empty() {
                    return Err(ScheduleError::NothingToSchedule(format!(
                        "pipeline `{name}` has no `schedule:` in pipelines.yaml"
                    )));
                }
                continue;
            };
            let last_started = self.with_warehouse(|w| last_run_start(w, &name))?;
            let next_tick = timing::next_tick(&schedule, tz, now).ok_or_else(|| {
                ScheduleError::NothingToSchedule(format!(
                    "`{schedule}` of pipeline `{name}` never fires again"
                ))
            })?;
            let missed =
                last_started.and_then(|last| timing::missed_tick(&schedule, tz, last, now));
            let next_tick = match (missed, self.config.misfire) {
                (Some(tick), Misfire::RunOnce) => {
                    tracing::info!(pipeline = %name, missed_tick = %tick, "a tick was missed while no scheduler ran: running once now");
                    now
                }
                (Some(tick), Misfire::Skip) => {
                    tracing::info!(pipeline = %name, missed_tick = %tick, next = %next_tick, "a tick was missed while no scheduler ran: waiting for the next one (misfire: skip)");
                    next_tick
                }
                (None, _) => next_tick,
            };
            tracing::info!(pipeline = %name, schedule = %schedule, timezone = %tz, next = %next_tick, "scheduled");
            self.metrics.register_pipeline(&name);
            scheduled.push(Scheduled {
                pipeline: name,
                schedule,
                next_tick,
                retry: None,
            });
        }
        if scheduled.is_empty() {
            return Err(ScheduleError::NothingToSchedule(
                "no pipeline in pipelines.yaml has a `schedule:`".to_string(),
            ));
        }
        Ok(scheduled)
    }

    fn run_due(&self, scheduled: &mut Scheduled, holder: &Holder) -> Result<(), ScheduleError> {
        let due = scheduled.due();
        let attempt = scheduled.retry.filter(|(at, _)| *at <= due).map(|(_, n)| n);
        let pipeline = scheduled.pipeline.clone();
        tracing::info!(pipeline = %pipeline, due = %due, retry = attempt, "scheduled run starting");
        let runner = Runner {
            project: self.project,
            vars: self.vars,
            target: self.target,
            stop: Some(self.stop),
        };
        let outcome = self.with_warehouse(|w| {
            lease::renew(w, holder).map_err(LeaseErrorOrRun::Lease)?;
            let _heartbeat = lease::keep_alive(w.another_session()?, holder);
            runner
                .run_pipeline(w, &pipeline)
                .map_err(LeaseErrorOrRun::Run)
        });
        let finished = Utc::now();
        match outcome {
            Ok(report) => {
                self.metrics.run_succeeded(&report, finished);
                scheduled.retry = None;
                tracing::info!(pipeline = %pipeline, run_id = %report.run_id, "scheduled run finished");
            }
            Err(LeaseErrorOrRun::Lease(error)) => return Err(error.into()),
            Err(LeaseErrorOrRun::Run(RunError::Interrupted { run_id, .. })) => {
                tracing::info!(pipeline = %pipeline, run_id = %run_id, "run interrupted; the next run resumes it");
                return Ok(());
            }
            Err(LeaseErrorOrRun::Run(error)) => {
                self.metrics.run_failed(&pipeline);
                let next_attempt = attempt.map_or(1, |n| n + 1);
                if next_attempt <= self.config.retries {
                    let delay = self.config.retry_delay(next_attempt);
                    let at = finished
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                    tracing::error!(pipeline = %pipeline, %error, retry_in = ?delay, attempt = next_attempt, "scheduled run failed; retrying");
                    scheduled.retry = Some((at, next_attempt));
                } else {
                    tracing::error!(pipeline = %pipeline, %error, "scheduled run failed; retries exhausted, waiting for the next tick");
                    scheduled.retry = None;
                }
            }
        }
        let tz = self.config.timezone;
        let overran = timing::ticks_between(&scheduled.schedule, tz, due, finished);
        if overran > 0 {
            tracing::warn!(pipeline = %pipeline, ticks = overran, "skipped late tick(s): the run was still going");
            self.metrics.ticks_skipped(&pipeline, overran);
        }
        scheduled.next_tick = timing::next_tick(&scheduled.schedule, tz, finished.max(due))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Ok(())
    }

    /// Renews the lease; a warehouse that cannot be opened right now (another command holds
    /// the local file) is tried again at the next renewal.
    fn renew(&self, holder: &Holder) -> Result<(), ScheduleError> {
        match self.with_warehouse(|w| lease::renew(w, holder)) {
            Err(LeaseError::Engine(error)) => {
                tracing::warn!(%error, "could not renew the scheduler lease; trying again");
                Ok(())
            }
            other => Ok(other?),
        }
    }

    /// Opens the warehouse for `work`. A local file another command holds for a moment is
    /// tried again for a few seconds before the error counts.
    fn with_warehouse<T, E: From<EngineError>>(
        &self,
        work: impl FnOnce(&mut dyn Warehouse) -> Result<T, E>,
    ) -> Result<T, E> {
        let deadline = Instant::now() + OPEN_PATIENCE;
        let mut warehouse = loop {
            match (self.open)() {
                Ok(warehouse) => break warehouse,
                Err(EngineError::Open { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(POLL);
                }
                Err(error) => return Err(error.into()),
            }
        };
        work(warehouse.as_mut())
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// When the pipeline's newest recorded run started, on any trigger.
fn last_run_start(
    warehouse: &mut dyn Warehouse,
    pipeline: &str,
) -> Result<Option<DateTime<Utc>>, EngineError> {
    state::create_tables(warehouse)?;
    let naming = warehouse.naming().clone();
    let result = warehouse.query(&format!(
        "SELECT MAX(started_at) FROM {} WHERE pipeline = {}",
        naming.qualify(&state::runs()),
        quote_string(pipeline)
    ))?;
    Ok(match result.scalar() {
        Some(Cell::Timestamp(t)) => Some(*t),
        _ => None,
    })
}
