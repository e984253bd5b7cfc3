//! `netsentinel plan`: every step of the selected pipelines rendered as a run would render it
//! and dry-run, so the cost of a run (BigQuery's estimate of the bytes each step scans, against
//! its byte cap) and any invalid SQL show before anything is spent.

// Errors carry the failing SQL with its statement text; returned once per plan.
#![allow(clippy::result_large_err)]

use std::fmt;

use crate::ingest::schema::create_raw_tables;
use crate::project::{Materialization, Project};
use crate::registry::ModelVersions;
use crate::render::{self, RenderContext};
use crate::runner::RunError;
use crate::state;
use crate::vars::Vars;
use netsentinel_core::{DryRun, JobContext, Warehouse};

/// The run id plans render with; nothing is recorded under it.
pub const PLAN_RUN_ID: &str = "plan";

#[derive(Debug, Clone, PartialEq)]
pub struct StepPlan {
    pub step: String,
    /// The dry run's findings, or why the step's SQL would fail.
    pub dry_run: Result<DryRun, String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanReport {
    pub steps: Vec<StepPlan>,
}

impl PlanReport {
    /// Estimated bytes of all steps; `None` when the engine gave no estimate.
    pub fn total_bytes(&self) -> Option<u64> {
        let estimates: Vec<u64> = self
            .steps
            .iter()
            .filter_map(|s| s.dry_run.as_ref().ok()?.bytes_processed)
            .collect();
        (!estimates.is_empty()).then(|| estimates.iter().sum())
    }

    /// Whether a run could go ahead: no invalid step and none over its byte cap.
    pub fn ok(&self) -> bool {
        self.steps
            .iter()
            .all(|s| s.dry_run.as_ref().is_ok_and(|d| !d.over_cap()))
    }
}

/// Renders and dry-runs the steps of `pipelines` (all steps when none is named), in
/// dependency order.
pub fn plan(
    project: &Project,
    vars: &Vars,
    target: &str,
    warehouse: &mut dyn Warehouse,
    pipelines: &[String],
) -> Result<PlanReport, RunError> {
    let steps = project.plan(pipelines)?;
    create_raw_tables(warehouse)?;
    let naming = warehouse.naming().clone();
    // Before any run there is no registry: plan what a first run builds.
    let first = ModelVersions::first(project);
    let models = if !first.is_empty() && warehouse.relation_exists(&state::model_registry())? {
        ModelVersions::load(warehouse, project, PLAN_RUN_ID)?
    } else {
        first
    };
    let context = RenderContext {
        project,
        naming: &naming,
        vars,
        run_id: PLAN_RUN_ID,
        models: &models,
    };
    let mut report = PlanReport::default();
    for step in steps {
        let incremental = step.config.materialized == Materialization::Incremental
            && warehouse.relation_exists(&step.relation)?;
        let rendered = render::render_step(&context, step, incremental)?;
        warehouse.set_job_context(Some(JobContext {
            pipeline: pipelines.join(","),
            step: step.name.clone(),
            run_id: PLAN_RUN_ID.to_string(),
            target: target.to_string(),
            maximum_bytes_billed: step.config.maximum_bytes_billed,
        }));
        let dry_run = warehouse
            .dry_run(&rendered.self_contained_script())
            .map_err(|e| e.to_string());
        warehouse.set_job_context(None);
        report.steps.push(StepPlan {
            step: step.name.clone(),
            dry_run,
        });
    }
    Ok(report)
}

/// Bytes in decimal units, as BigQuery's console shows them.
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
        if self.0 < 1000 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1000.0;
        let mut unit = 0;
        while value >= 1000.0 && unit < UNITS.len() - 1 {
            value /= 1000.0;
            unit += 1;
        }
        write!(f, "{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_print_in_decimal_units() {
        assert_eq!(Bytes(0).to_string(), "0 B");
        assert_eq!(Bytes(999).to_string(), "999 B");
        assert_eq!(Bytes(6_000_000_000).to_string(), "6.00 GB");
        assert_eq!(Bytes(1_234_567_890_123).to_string(), "1.23 TB");
    }

    #[test]
    fn a_plan_fails_on_invalid_sql_or_a_step_over_its_cap() {
        let estimate = |bytes, cap| DryRun {
            bytes_processed: Some(bytes),
            maximum_bytes_billed: cap,
        };
        let step = |dry_run| StepPlan {
            step: "s".into(),
            dry_run,
        };
        let fine = PlanReport {
            steps: vec![
                step(Ok(estimate(10, Some(10)))),
                step(Ok(estimate(5, None))),
            ],
        };
        assert!(fine.ok());
        assert_eq!(fine.total_bytes(), Some(15));
        let over = PlanReport {
            steps: vec![step(Ok(estimate(11, Some(10))))],
        };
        assert!(!over.ok());
        let invalid = PlanReport {
            steps: vec![step(Err("Syntax error".into()))],
        };
        assert!(!invalid.ok());
        assert_eq!(invalid.total_bytes(), None);
    }
}
