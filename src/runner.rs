//! Running pipelines: each step of a pipeline, in dependency order, rendered for the warehouse's
//! naming and executed as one script, with its status, timing and row count recorded in
//! `ops.step_runs`. The runner drives any `Warehouse` and never asks which engine it is.

// Errors here carry the failing step's SQL error with its statement text; they are returned
// once per run, so their size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::alerts::{AlertStep, AlertsError, AlertsOutcome};
use crate::engine::{EngineError, JobContext, ScriptOutcome, Warehouse};
use crate::project::{BuiltinStep, Materialization, Project, ProjectError, Step};
use crate::render::{self, RenderContext, RenderError};
use crate::sqltest::assertions::{self, AssertionError, AssertionResult, StandaloneAssertions};
use crate::state::{RunRecord, Status};
use crate::vars::Vars;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("step {step} ({file}) failed: {source}")]
    Step {
        step: String,
        file: String,
        #[source]
        source: EngineError,
    },
    #[error(transparent)]
    Assertion(#[from] AssertionError),
    #[error("step {step} failed: {source}")]
    Alerts {
        step: String,
        #[source]
        source: AlertsError,
    },
    #[error(
        "blocking assertion(s) failed after step {step}; its dependants did not run:\n{details}"
    )]
    AssertionFailed { step: String, details: String },
    #[error(
        "run {run_id} of {pipeline} stopped before step {next_step} (asked to stop); the next run of {pipeline} resumes it"
    )]
    Interrupted {
        pipeline: String,
        run_id: String,
        next_step: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    Ran {
        duration: Duration,
        rows_affected: u64,
    },
    /// Already done by the interrupted run this run resumes.
    Skipped,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub step: String,
    pub outcome: StepOutcome,
    /// The step's assertions, run right after it.
    pub assertions: Vec<AssertionResult>,
    /// What a built-in step wants the reader to know (alerts sent, deliveries pending).
    pub notes: Vec<String>,
    /// What the alerts step did, when this is it.
    pub alerts: Option<AlertsOutcome>,
}

impl StepReport {
    fn skipped(step: &str) -> Self {
        StepReport {
            step: step.to_string(),
            outcome: StepOutcome::Skipped,
            assertions: Vec::new(),
            notes: Vec::new(),
            alerts: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    pub pipeline: String,
    pub run_id: String,
    pub resumed: bool,
    pub steps: Vec<StepReport>,
}

pub struct Runner<'a> {
    pub project: &'a Project,
    pub vars: &'a Vars,
    pub target: &'a str,
    /// When set (a signal arrived), the run stops before its next step, recorded as
    /// interrupted; the step under way finishes first.
    pub stop: Option<&'a AtomicBool>,
}

impl Runner<'_> {
    fn stop_requested(&self) -> bool {
        self.stop.is_some_and(|stop| stop.load(Ordering::SeqCst))
    }

    /// Records the run as interrupted before `next_step` when a stop was requested.
    fn check_stop(
        &self,
        warehouse: &mut dyn Warehouse,
        record: &RunRecord,
        next_step: &str,
    ) -> Result<(), RunError> {
        if !self.stop_requested() {
            return Ok(());
        }
        record.finish(warehouse, Status::Interrupted, None)?;
        tracing::warn!(pipeline = %record.pipeline, run_id = %record.run_id, next_step, "run stopped on request");
        Err(RunError::Interrupted {
            pipeline: record.pipeline.clone(),
            run_id: record.run_id.clone(),
            next_step: next_step.to_string(),
        })
    }

    pub fn run_pipeline(
        &self,
        warehouse: &mut dyn Warehouse,
        pipeline: &str,
    ) -> Result<RunReport, RunError> {
        let plan = self.project.plan(&[pipeline.to_string()])?;
        warehouse.ensure_datasets()?;
        let record = RunRecord::start(warehouse, pipeline, self.target)?;
        if record.resumed {
            tracing::info!(pipeline, run_id = %record.run_id, "resuming interrupted run");
        } else {
            tracing::info!(pipeline, run_id = %record.run_id, steps = plan.len(), "run started");
        }
        let standalone = StandaloneAssertions::load(self.project)?;
        let mut steps = Vec::with_capacity(plan.len());
        for step in plan {
            if record.already_completed(&step.name) {
                tracing::info!(step = %step.name, "already done by the interrupted run; skipped");
                steps.push(StepReport::skipped(&step.name));
                continue;
            }
            self.check_stop(warehouse, &record, &step.name)?;
            warehouse.set_job_context(Some(JobContext {
                pipeline: pipeline.to_string(),
                step: step.name.clone(),
                run_id: record.run_id.clone(),
                target: self.target.to_string(),
                maximum_bytes_billed: step.config.maximum_bytes_billed,
            }));
            let checked = self.run_step(warehouse, &record, step).and_then(|outcome| {
                let assertions = self.check_step(warehouse, &record, &standalone, step)?;
                Ok(StepReport {
                    step: step.name.clone(),
                    outcome,
                    assertions,
                    notes: Vec::new(),
                    alerts: None,
                })
            });
            warehouse.set_job_context(None);
            match checked {
                Ok(report) => steps.push(report),
                Err(error) => {
                    record.finish(warehouse, Status::Failed, Some(&error.to_string()))?;
                    return Err(error);
                }
            }
        }
        for builtin in self.project.builtin_steps(pipeline) {
            if record.already_completed(builtin.name()) {
                steps.push(StepReport::skipped(builtin.name()));
                continue;
            }
            self.check_stop(warehouse, &record, builtin.name())?;
            warehouse.set_job_context(Some(JobContext {
                pipeline: pipeline.to_string(),
                step: builtin.name().to_string(),
                run_id: record.run_id.clone(),
                target: self.target.to_string(),
                maximum_bytes_billed: None,
            }));
            let report = self.run_builtin(warehouse, &record, builtin);
            warehouse.set_job_context(None);
            match report {
                Ok(report) => steps.push(report),
                Err(error) => {
                    record.finish(warehouse, Status::Failed, Some(&error.to_string()))?;
                    return Err(error);
                }
            }
        }
        record.finish(warehouse, Status::Success, None)?;
        tracing::info!(pipeline, run_id = %record.run_id, "run finished");
        Ok(RunReport {
            pipeline: pipeline.to_string(),
            run_id: record.run_id.clone(),
            resumed: record.resumed,
            steps,
        })
    }

    fn run_builtin(
        &self,
        warehouse: &mut dyn Warehouse,
        record: &RunRecord,
        builtin: BuiltinStep,
    ) -> Result<StepReport, RunError> {
        let name = builtin.name();
        record.step_started(warehouse, name)?;
        tracing::info!(step = name, "step started");
        let started = Instant::now();
        let result =
            match builtin {
                BuiltinStep::Alerts => {
                    let config =
                        self.project.config.alerts.as_ref().expect(
                            "project load checks that a pipeline with `alerts` has a config",
                        );
                    AlertStep {
                        project: self.project,
                        config,
                        target: self.target,
                        pipeline: &record.pipeline,
                        run_id: &record.run_id,
                    }
                    .run(warehouse)
                }
            };
        let duration = started.elapsed();
        let duration_ms = duration.as_millis() as u64;
        match result {
            Ok(alerts) => {
                let rows_affected = alerts.new_anomalies as u64;
                let outcome = ScriptOutcome {
                    rows_affected,
                    ..warehouse.context_outcome()
                };
                record.step_succeeded(warehouse, name, duration_ms, &outcome)?;
                tracing::info!(
                    step = name,
                    duration_ms,
                    rows = rows_affected,
                    "step finished"
                );
                Ok(StepReport {
                    step: name.to_string(),
                    outcome: StepOutcome::Ran {
                        duration,
                        rows_affected,
                    },
                    assertions: Vec::new(),
                    notes: alerts.notes(),
                    alerts: Some(alerts),
                })
            }
            Err(source) => {
                let message = source.to_string();
                record.step_finished(
                    warehouse,
                    name,
                    Status::Failed,
                    duration_ms,
                    None,
                    Some(&message),
                )?;
                Err(RunError::Alerts {
                    step: name.to_string(),
                    source,
                })
            }
        }
    }

    /// Runs and records the step's assertions; a blocking failure stops the run here.
    fn check_step(
        &self,
        warehouse: &mut dyn Warehouse,
        record: &RunRecord,
        standalone: &StandaloneAssertions,
        step: &Step,
    ) -> Result<Vec<AssertionResult>, RunError> {
        let naming = warehouse.naming().clone();
        let context = RenderContext {
            project: self.project,
            naming: &naming,
            vars: self.vars,
            run_id: &record.run_id,
        };
        let results = assertions::run_for_step(&context, warehouse, standalone, step, |_| true)?;
        assertions::record(warehouse, &naming, &record.run_id, &results)?;
        for warning in results.iter().filter(|r| r.failed() && !r.blocks()) {
            tracing::warn!("{}", warning.describe());
        }
        let blocking: Vec<String> = results
            .iter()
            .filter(|r| r.blocks())
            .map(AssertionResult::describe)
            .collect();
        if blocking.is_empty() {
            Ok(results)
        } else {
            Err(RunError::AssertionFailed {
                step: step.name.clone(),
                details: blocking.join("\n"),
            })
        }
    }

    fn run_step(
        &self,
        warehouse: &mut dyn Warehouse,
        record: &RunRecord,
        step: &Step,
    ) -> Result<StepOutcome, RunError> {
        let incremental = step.config.materialized == Materialization::Incremental
            && warehouse.relation_exists(&step.relation)?;
        let naming = warehouse.naming().clone();
        let context = RenderContext {
            project: self.project,
            naming: &naming,
            vars: self.vars,
            run_id: &record.run_id,
        };
        let rendered = render::render_step(&context, step, incremental)?;
        record.step_started(warehouse, &step.name)?;
        tracing::info!(step = %step.name, incremental, "step started");
        let started = Instant::now();
        let result = warehouse.execute_script(&rendered.script);
        let duration = started.elapsed();
        let duration_ms = duration.as_millis() as u64;
        match result {
            Ok(outcome) => {
                record.step_succeeded(warehouse, &step.name, duration_ms, &outcome)?;
                tracing::info!(step = %step.name, duration_ms, rows = outcome.rows_affected, "step finished");
                Ok(StepOutcome::Ran {
                    duration,
                    rows_affected: outcome.rows_affected,
                })
            }
            Err(source) => {
                let message = source.to_string();
                record.step_finished(
                    warehouse,
                    &step.name,
                    Status::Failed,
                    duration_ms,
                    None,
                    Some(&message),
                )?;
                Err(RunError::Step {
                    step: step.name.clone(),
                    file: step.file.clone(),
                    source,
                })
            }
        }
    }
}
