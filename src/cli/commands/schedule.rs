//! `netsentinel schedule`: runs the pipelines on their cron schedules until stopped.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use netsentinel::metrics::Metrics;
use netsentinel::schedule::Scheduler;
use netsentinel::service::{ConnectionLimits, Service, ServiceOptions};

use crate::cli::Session;
use crate::cli::args::{GlobalArgs, ScheduleArgs};

pub fn schedule_command(global: &GlobalArgs, args: &ScheduleArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    let config = &session.project.config.scheduler;
    let metrics = Arc::new(Metrics::default());
    let stop = Arc::new(AtomicBool::new(false));
    let service = Service::start(ServiceOptions {
        listen: args.listen.unwrap_or(config.listen),
        metrics: metrics.clone(),
        stop: stop.clone(),
        limits: ConnectionLimits::default(),
        events: None,
    })?;
    println!("scheduler serving http://{}/metrics", service.addr);
    let open = || session.open_warehouse();
    Scheduler {
        project: &session.project,
        vars: &session.vars,
        target: &session.target,
        config,
        open: &open,
        metrics: &metrics,
        stop: &stop,
    }
    .run(&args.pipelines)?;
    Ok(())
}
