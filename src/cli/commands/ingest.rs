//! `netsentinel ingest`: files once, or `--follow` from stdin, HTTP or Pub/Sub with detection in process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::bail;
use chrono::Utc;

use netsentinel::ingest::budget::ByteBudget;
use netsentinel::ingest::follow::{self, CommitHealth, FollowConfig, Follower, WindowClock};
use netsentinel::ingest::skew::ClockGuard;
use netsentinel::ingest::sources;
use netsentinel::ingest::{self, ReadOptions};
use netsentinel::metrics::Metrics;
use netsentinel::runner::{RunError, Runner};
use netsentinel::service::{ConnectionLimits, EventLimits, EventsRoute, Service, ServiceOptions};
use netsentinel_core::Warehouse;

use crate::cli::Session;
use crate::cli::args::{FollowArgs, GlobalArgs, IngestArgs};
use crate::cli::print::write_ingest_summary;

pub fn ingest_command(global: &GlobalArgs, args: &IngestArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    if args.follow.follow {
        return follow_command(&session, args);
    }
    let mut warehouse = session.open_warehouse()?;
    let options = ReadOptions {
        format: args.format,
        utc_offset: args.utc_offset,
        clock_guard: ClockGuard::from_vars(&session.vars),
    };
    let summary = ingest::ingest_files(warehouse.as_mut(), &args.files, &options, args.batch_rows)?;
    write_ingest_summary(&mut std::io::stdout().lock(), &summary, None)?;
    Ok(())
}

const INGEST_TOKEN_VAR: &str = "NETSENTINEL_INGEST_TOKEN";

pub fn follow_command(session: &Session, args: &IngestArgs) -> anyhow::Result<()> {
    let follow_args = &args.follow;
    let stdin = match args.files.as_slice() {
        [] => false,
        [only] if only == "-" => true,
        _ => bail!(
            "--follow reads standard input (-), --http and --subscription; to load files, drop --follow"
        ),
    };
    let clock = WindowClock::from_vars(&session.vars);
    if clock.is_none() {
        tracing::warn!("vars window_seconds is not declared: no event is treated as late");
    }
    let config = FollowConfig {
        commit_rows: follow_args.commit_rows,
        commit_interval: follow_args.commit_interval,
        clock,
        clock_guard: ClockGuard::from_vars(&session.vars),
        retry: follow::COMMIT_RETRY,
    };
    let cadences = in_process_runs(session, follow_args)?;
    let mut warehouse = session.open_warehouse()?;
    // Before any source starts: a warehouse that cannot be reached fails the command with no
    // input read and lost. It creates the tables before the second session exists: two
    // sessions creating the same tables conflict.
    let follower = Follower::prepare(warehouse.as_mut(), config)?;
    let detection = if cadences.is_empty() {
        None
    } else {
        Some(warehouse.another_session()?)
    };

    let metrics = Arc::new(Metrics::default());
    let stop = Arc::new(AtomicBool::new(false));
    let health = Arc::new(CommitHealth::default());
    let budget = ByteBudget::new(follow_args.queue_bytes);
    let (receipts, received) = std::sync::mpsc::sync_channel(RECEIPT_QUEUE);
    let events = follow_args.http.then(|| EventsRoute {
        receipts: receipts.clone(),
        budget: budget.clone(),
        health: health.clone(),
        limits: EventLimits {
            max_body_bytes: follow_args.max_body_bytes,
            max_lines: follow_args.max_request_lines,
            body_timeout: follow_args.body_timeout.into(),
        },
        token: std::env::var(INGEST_TOKEN_VAR)
            .ok()
            .filter(|t| !t.is_empty()),
        token_env: INGEST_TOKEN_VAR.to_string(),
    });
    let service = Service::start(ServiceOptions {
        listen: follow_args.listen,
        metrics: metrics.clone(),
        stop: stop.clone(),
        limits: ConnectionLimits {
            header_timeout: follow_args.header_timeout.into(),
            max_connections: follow_args.max_connections,
            ..ConnectionLimits::default()
        },
        events,
    })?;
    if follow_args.http {
        println!("accepting POST http://{}/v1/events", service.addr);
    }
    println!("serving http://{}/metrics", service.addr);
    if stdin {
        sources::stdin(receipts.clone(), budget.clone());
    }
    let puller = follow_args.subscription.clone().map(|subscription| {
        sources::pubsub(subscription, receipts.clone(), budget.clone(), stop.clone())
    });
    // Input ends when every source has: the committer sees the channel close.
    drop(receipts);

    let ingest_done = AtomicBool::new(false);
    let summary = std::thread::scope(|scope| {
        if let Some(mut detection_warehouse) = detection {
            let (cadences, ingest_done, stop, metrics) =
                (&cadences, &ingest_done, &*stop, &*metrics);
            scope.spawn(move || {
                let runner = Runner {
                    stop: Some(stop),
                    ..session.runner()
                };
                follow::repeat_until(cadences, ingest_done, |pipeline| {
                    run_in_process(&runner, detection_warehouse.as_mut(), pipeline, metrics)
                });
            });
        }
        let summary = follower.run(warehouse.as_mut(), &received, &stop, &metrics, &health);
        // A detection run in progress finishes; no new one starts.
        ingest_done.store(true, Ordering::SeqCst);
        summary
    });
    // Whatever the outcome, the parts stop in an order where none waits on another: sources
    // waiting for room give up, receipts still queued are dropped (their HTTP requests are
    // answered 503, their Pub/Sub messages nacked for redelivery), and the endpoint gives the
    // requests in flight its grace period.
    stop.store(true, Ordering::SeqCst);
    budget.close();
    drop(received);
    let pulled = puller.map(|puller| puller.join());
    drop(service);
    let summary = summary?;
    match pulled {
        Some(Ok(Err(error))) => bail!(error),
        Some(Err(_)) => bail!("the Pub/Sub puller panicked"),
        Some(Ok(Ok(()))) | None => {}
    }
    write_ingest_summary(
        &mut std::io::stdout().lock(),
        &summary.ingest(),
        Some(summary.late),
    )?;
    Ok(())
}

/// What `--detect-every` and `--drift-every` run beside the ingest.
fn in_process_runs<'a>(
    session: &Session,
    args: &'a FollowArgs,
) -> anyhow::Result<Vec<follow::Cadence<'a>>> {
    let Some(every) = args.detect_every else {
        return Ok(Vec::new());
    };
    session.project.pipeline(&args.detect_pipeline)?;
    let mut cadences = vec![follow::Cadence {
        pipeline: &args.detect_pipeline,
        every,
    }];
    if args.drift_every.is_zero() {
        return Ok(cadences);
    }
    if session.project.pipeline(&args.drift_pipeline).is_ok() {
        cadences.push(follow::Cadence {
            pipeline: &args.drift_pipeline,
            every: args.drift_every,
        });
    } else {
        tracing::warn!(
            pipeline = %args.drift_pipeline,
            "pipelines.yaml has no such pipeline: drift is not measured in-process"
        );
    }
    Ok(cadences)
}

/// One in-process run; a failed one is logged and counted, and the next tries again.
fn run_in_process(
    runner: &Runner<'_>,
    warehouse: &mut dyn Warehouse,
    pipeline: &str,
    metrics: &Metrics,
) {
    match runner.run_pipeline(warehouse, pipeline) {
        Ok(report) => metrics.run_succeeded(&report, Utc::now()),
        // Shutting down between steps is no failure: the run is recorded and resumes next time.
        Err(error @ RunError::Interrupted { .. }) => tracing::info!(pipeline, %error),
        Err(error) => {
            metrics.run_failed(pipeline);
            tracing::error!(pipeline, %error, "in-process run failed; trying again next time");
        }
    }
}

/// Receipts waiting for the committer, besides their bound in bytes (`--queue-bytes`); beyond
/// either, sources wait (HTTP answers 503).
const RECEIPT_QUEUE: usize = 4096;
