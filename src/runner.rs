//! Running pipelines: each step of a pipeline, in dependency order, rendered for the warehouse's
//! naming and executed as one script, with its status, timing and row count recorded in
//! `ops.step_runs`. The runner drives any `Warehouse` and never asks which engine it is.

// Errors here carry the failing step's SQL error with its statement text; they are returned
// once per run, so their size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::alerts::{AlertStep, AlertsError, AlertsOutcome};
use crate::drift::{self, DriftError, DriftStep};
use crate::heartbeat::Heartbeat;
use crate::ingest::schema::create_raw_tables;
use crate::project::assertions::Checked;
use crate::project::{BuiltinStep, Materialization, Project, ProjectError, Step};
use crate::registry::{self, ModelVersions, Registered, RegistryError};
use crate::render::{self, RenderContext, RenderError, RenderedStep};
use crate::run_lease::{RunLease, RunLeaseError};
use crate::sqltest::assertions::{self, AssertionError, AssertionResult, StandaloneAssertions};
use crate::state::{RunRecord, Status};
use crate::vars::Vars;
use netsentinel_core::relation::Identifier;
use netsentinel_core::{EngineError, JobContext, ScriptOutcome, Warehouse};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Busy(#[from] RunLeaseError),
    #[error(
        "run {run_id} of {pipeline} stopped before step {next_step}: its lease was taken over by {holder} \
         (this process could not renew it in time), which now carries the run on"
    )]
    LeaseLost {
        pipeline: String,
        run_id: String,
        next_step: String,
        holder: String,
    },
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
    #[error("step {step} ({file}) built the model, but registering it failed: {source}")]
    Registry {
        step: String,
        file: String,
        #[source]
        source: RegistryError,
    },
    #[error("step {step} failed: {source}")]
    Drift {
        step: String,
        #[source]
        source: DriftError,
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
    /// The pipeline this run's drift decision started (a retrain), run right after it.
    pub triggered: Option<Box<RunReport>>,
}

/// What a built-in step did.
struct BuiltinOutcome {
    rows_affected: u64,
    notes: Vec<String>,
    alerts: Option<AlertsOutcome>,
    /// A pipeline the step asks to run next (the drift policy's retrain).
    then: Option<Identifier>,
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

    /// Records the run as interrupted before `next_step` when a stop was requested. A run
    /// whose lease was taken over stops without a word to the run record: the new holder
    /// resumed that record and owns it now.
    fn check_stop(
        &self,
        warehouse: &mut dyn Warehouse,
        record: &RunRecord,
        heartbeat: &Heartbeat,
        next_step: &str,
    ) -> Result<(), RunError> {
        if let Some(holder) = heartbeat.lost_to() {
            return Err(RunError::LeaseLost {
                pipeline: record.pipeline.clone(),
                run_id: record.run_id.clone(),
                next_step: next_step.to_string(),
                holder,
            });
        }
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

    /// Runs the pipeline under its run lease: a run of the same pipeline already under way
    /// makes this one return [`RunError::Busy`] before it does anything.
    pub fn run_pipeline(
        &self,
        warehouse: &mut dyn Warehouse,
        pipeline: &str,
    ) -> Result<RunReport, RunError> {
        let plan = self.project.plan(&[pipeline.to_string()])?;
        create_raw_tables(warehouse)?;
        let lease = RunLease::acquire(warehouse, pipeline)?;
        let heartbeat = match warehouse.another_session() {
            Ok(session) => lease.keep_alive(session),
            Err(error) => {
                lease.release(warehouse)?;
                return Err(error.into());
            }
        };
        let report = self.run_leased(warehouse, pipeline, plan, &heartbeat);
        drop(heartbeat);
        if let Err(error) = lease.release(warehouse) {
            tracing::warn!(pipeline, %error, "could not release the run lease; it expires by itself");
        }
        report
    }

    fn run_leased(
        &self,
        warehouse: &mut dyn Warehouse,
        pipeline: &str,
        plan: Vec<&Step>,
        heartbeat: &Heartbeat,
    ) -> Result<RunReport, RunError> {
        let record = RunRecord::start(warehouse, pipeline, self.target)?;
        if record.resumed {
            tracing::info!(pipeline, run_id = %record.run_id, "resuming interrupted run");
        } else {
            tracing::info!(pipeline, run_id = %record.run_id, steps = plan.len(), "run started");
        }
        let standalone = StandaloneAssertions::load(self.project)?;
        // Champions change only when this run registers a model, which reloads them.
        let mut models = ModelVersions::load(warehouse, self.project, &record.run_id)?;
        let mut steps = Vec::with_capacity(plan.len());
        for step in plan {
            if record.already_completed(&step.name) {
                tracing::info!(step = %step.name, "already done by the interrupted run; skipped");
                steps.push(StepReport::skipped(&step.name));
                continue;
            }
            self.check_stop(warehouse, &record, heartbeat, &step.name)?;
            warehouse.set_job_context(Some(JobContext {
                pipeline: pipeline.to_string(),
                step: step.name.clone(),
                run_id: record.run_id.clone(),
                target: self.target.to_string(),
                maximum_bytes_billed: step.config.maximum_bytes_billed,
            }));
            let checked = self.run_step(warehouse, &record, &models, step).and_then(
                |(outcome, registered, rendered)| {
                    if registered.is_some() {
                        models = ModelVersions::load(warehouse, self.project, &record.run_id)?;
                    }
                    let rows = match &rendered.staging {
                        Some(staging) => Checked::Written {
                            staging,
                            unique_key: &step.config.unique_key,
                        },
                        None => Checked::Table,
                    };
                    let assertions =
                        self.check_step(warehouse, &record, &models, &standalone, step, rows);
                    // The stage goes whatever the assertions found, and their error, if any,
                    // is the one worth reporting.
                    let dropped = match rendered.drop_staging() {
                        Some(drop) => warehouse.execute_script(&drop).map(|_| ()),
                        None => Ok(()),
                    };
                    let assertions = assertions?;
                    dropped?;
                    Ok(StepReport {
                        step: step.name.clone(),
                        outcome,
                        assertions,
                        notes: registered.iter().map(Registered::note).collect(),
                        alerts: None,
                    })
                },
            );
            warehouse.set_job_context(None);
            match checked {
                Ok(report) => steps.push(report),
                Err(error) => {
                    record.finish(warehouse, Status::Failed, Some(&error.to_string()))?;
                    return Err(error);
                }
            }
        }
        let mut retrain = None;
        for builtin in self.project.builtin_steps(pipeline) {
            if record.already_completed(builtin.name()) {
                steps.push(StepReport::skipped(builtin.name()));
                continue;
            }
            self.check_stop(warehouse, &record, heartbeat, builtin.name())?;
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
                Ok((report, then)) => {
                    retrain = retrain.or(then);
                    steps.push(report)
                }
                Err(error) => {
                    record.finish(warehouse, Status::Failed, Some(&error.to_string()))?;
                    return Err(error);
                }
            }
        }
        record.finish(warehouse, Status::Success, None)?;
        tracing::info!(pipeline, run_id = %record.run_id, "run finished");
        let triggered = match retrain.filter(|then| then.as_str() != pipeline) {
            Some(then) => Some(Box::new(self.retrain(warehouse, &record.run_id, &then)?)),
            None => None,
        };
        Ok(RunReport {
            pipeline: pipeline.to_string(),
            run_id: record.run_id.clone(),
            resumed: record.resumed,
            steps,
            triggered,
        })
    }

    /// Runs the pipeline a drift decision asked for and writes what it came to onto the
    /// decision. A failed retrain is recorded and returned; the next breach streak tries again.
    fn retrain(
        &self,
        warehouse: &mut dyn Warehouse,
        decision_run_id: &str,
        then: &Identifier,
    ) -> Result<RunReport, RunError> {
        tracing::info!(pipeline = %then, "drift policy fired: retraining");
        match self.run_pipeline(warehouse, then.as_str()) {
            Ok(report) => {
                let outcome: Vec<&str> = report
                    .steps
                    .iter()
                    .flat_map(|s| &s.notes)
                    .map(String::as_str)
                    .collect();
                let outcome = if outcome.is_empty() {
                    format!("pipeline {then} ran; it registered no model version")
                } else {
                    outcome.join("; ")
                };
                drift::record_outcome(warehouse, decision_run_id, Some(&report.run_id), &outcome)?;
                Ok(report)
            }
            Err(error) => {
                drift::record_outcome(
                    warehouse,
                    decision_run_id,
                    None,
                    &format!("pipeline {then} failed: {error}"),
                )?;
                Err(error)
            }
        }
    }

    /// Runs a built-in step; also returns the pipeline a drift decision wants run next.
    fn run_builtin(
        &self,
        warehouse: &mut dyn Warehouse,
        record: &RunRecord,
        builtin: BuiltinStep,
    ) -> Result<(StepReport, Option<Identifier>), RunError> {
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
                    .map(|outcome| BuiltinOutcome {
                        rows_affected: outcome.new_anomalies as u64,
                        notes: outcome.notes(),
                        alerts: Some(outcome),
                        then: None,
                    })
                    .map_err(|source| RunError::Alerts {
                        step: name.to_string(),
                        source,
                    })
                }
                BuiltinStep::Drift => {
                    let config =
                        self.project.config.drift.as_ref().expect(
                            "project load checks that a pipeline with `drift` has a config",
                        );
                    DriftStep {
                        project: self.project,
                        config,
                        run_id: &record.run_id,
                    }
                    .run(warehouse)
                    .map(|outcome| BuiltinOutcome {
                        rows_affected: 1,
                        notes: outcome.notes(config),
                        alerts: None,
                        then: outcome.retrain,
                    })
                    .map_err(|source| RunError::Drift {
                        step: name.to_string(),
                        source,
                    })
                }
            };
        let duration = started.elapsed();
        let duration_ms = duration.as_millis() as u64;
        match result {
            Ok(done) => {
                let rows_affected = done.rows_affected;
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
                let report = StepReport {
                    step: name.to_string(),
                    outcome: StepOutcome::Ran {
                        duration,
                        rows_affected,
                    },
                    assertions: Vec::new(),
                    notes: done.notes,
                    alerts: done.alerts,
                };
                Ok((report, done.then))
            }
            Err(error) => {
                let message = error.to_string();
                record.step_finished(
                    warehouse,
                    name,
                    Status::Failed,
                    duration_ms,
                    None,
                    Some(&message),
                )?;
                Err(error)
            }
        }
    }

    /// Runs and records the step's assertions; a blocking failure stops the run here.
    fn check_step(
        &self,
        warehouse: &mut dyn Warehouse,
        record: &RunRecord,
        models: &ModelVersions,
        standalone: &StandaloneAssertions,
        step: &Step,
        rows: Checked<'_>,
    ) -> Result<Vec<AssertionResult>, RunError> {
        let naming = warehouse.naming().clone();
        let context = RenderContext {
            project: self.project,
            naming: &naming,
            vars: self.vars,
            run_id: &record.run_id,
            models,
        };
        let results =
            assertions::run_for_step(&context, warehouse, standalone, step, rows, |_| true)?;
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

    /// Runs one SQL step; a step that builds the versioned model also registers the version
    /// through the promotion gate before the step counts as done.
    fn run_step(
        &self,
        warehouse: &mut dyn Warehouse,
        record: &RunRecord,
        models: &ModelVersions,
        step: &Step,
    ) -> Result<(StepOutcome, Option<Registered>, RenderedStep), RunError> {
        let incremental = step.config.materialized == Materialization::Incremental
            && warehouse.relation_exists(&step.relation)?;
        let naming = warehouse.naming().clone();
        let context = RenderContext {
            project: self.project,
            naming: &naming,
            vars: self.vars,
            run_id: &record.run_id,
            models,
        };
        let rendered = render::render_step(&context, step, incremental)?;
        record.step_started(warehouse, &step.name)?;
        tracing::info!(step = %step.name, incremental, "step started");
        let started = Instant::now();
        let result = warehouse
            .execute_script(&rendered.script)
            .map_err(|source| RunError::Step {
                step: step.name.clone(),
                file: step.file.clone(),
                source,
            })
            .and_then(|outcome| {
                let registered = self.register(warehouse, record, models, step)?;
                Ok((outcome, registered))
            });
        let duration = started.elapsed();
        let duration_ms = duration.as_millis() as u64;
        match result {
            Ok((outcome, registered)) => {
                record.step_succeeded(warehouse, &step.name, duration_ms, &outcome)?;
                tracing::info!(step = %step.name, duration_ms, rows = outcome.rows_affected, "step finished");
                Ok((
                    StepOutcome::Ran {
                        duration,
                        rows_affected: outcome.rows_affected,
                    },
                    registered,
                    rendered,
                ))
            }
            Err(error) => {
                let message = error.to_string();
                record.step_finished(
                    warehouse,
                    &step.name,
                    Status::Failed,
                    duration_ms,
                    None,
                    Some(&message),
                )?;
                Err(error)
            }
        }
    }

    /// Registers the version the versioned model's step just built, through the gate.
    fn register(
        &self,
        warehouse: &mut dyn Warehouse,
        record: &RunRecord,
        models: &ModelVersions,
        step: &Step,
    ) -> Result<Option<Registered>, RunError> {
        let (Some(drift), Some(versions)) = (
            self.project.config.drift.as_ref(),
            models.get(step.relation.name.as_str()),
        ) else {
            return Ok(None);
        };
        if step.config.materialized != Materialization::Model {
            return Ok(None);
        }
        registry::register(
            warehouse,
            self.project,
            &drift.promotion,
            &step.relation,
            versions.training,
            &record.run_id,
        )
        .map(Some)
        .map_err(|source| RunError::Registry {
            step: step.name.clone(),
            file: step.file.clone(),
            source,
        })
    }
}
