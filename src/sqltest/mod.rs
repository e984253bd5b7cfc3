//! SQL tests: assertions on step outputs (`assertions`) and YAML unit tests of single steps
//! with fixture rows (`unit`), compared order-insensitively (`compare`) and reported as a
//! summary or JUnit XML (`junit`). `run_tests` is what `netsentinel test` runs: everything in
//! throwaway in-memory databases, offline.

// Errors carry an engine error with its statement text and end the whole test command, so their
// size costs nothing worth boxing for (as in `runner`).
#![allow(clippy::result_large_err)]

pub mod assertions;
pub mod compare;
pub mod junit;
pub mod mutants;
pub mod unit;

use std::time::Duration;

use crate::project::Project;
use crate::vars::Vars;

use assertions::{AssertionError, StandaloneAssertions, TESTS_DIR};
use unit::{UnitTestError, UnitTestFile};

#[derive(Debug, thiserror::Error)]
pub enum SqlTestError {
    #[error(transparent)]
    Assertion(#[from] AssertionError),
    #[error(transparent)]
    Unit(#[from] UnitTestError),
    #[error(transparent)]
    Mutants(#[from] mutants::MutantError),
}

#[derive(Debug, Clone, PartialEq)]
pub enum CaseOutcome {
    Passed,
    /// A non-blocking assertion found rows.
    Warned(String),
    /// The rows differ, or a blocking assertion found rows.
    Failed(String),
    /// The test could not run (bad fixture, SQL error).
    Errored(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// The YAML file that holds the test.
    pub file: String,
    pub step: String,
    pub name: String,
    pub outcome: CaseOutcome,
    pub duration: Duration,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestReport {
    pub cases: Vec<CaseResult>,
}

impl TestReport {
    fn count(&self, f: impl Fn(&CaseOutcome) -> bool) -> usize {
        self.cases.iter().filter(|c| f(&c.outcome)).count()
    }

    pub fn failures(&self) -> usize {
        self.count(|o| matches!(o, CaseOutcome::Failed(_) | CaseOutcome::Errored(_)))
    }

    pub fn success(&self) -> bool {
        self.failures() == 0
    }

    /// One line per case, the diff or offending rows under each failure, then the totals.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for case in &self.cases {
            let (label, detail) = match &case.outcome {
                CaseOutcome::Passed => ("PASS", None),
                CaseOutcome::Warned(d) => ("WARN", Some(d)),
                CaseOutcome::Failed(d) => ("FAIL", Some(d)),
                CaseOutcome::Errored(d) => ("ERROR", Some(d)),
            };
            out.push_str(&format!("{label:<5} {} › {}\n", case.step, case.name));
            if let Some(detail) = detail {
                for line in detail.lines() {
                    out.push_str(&format!("        {line}\n"));
                }
            }
        }
        out.push_str(&format!(
            "\n{} test(s): {} passed, {} warned, {} failed, {} errored\n",
            self.cases.len(),
            self.count(|o| *o == CaseOutcome::Passed),
            self.count(|o| matches!(o, CaseOutcome::Warned(_))),
            self.count(|o| matches!(o, CaseOutcome::Failed(_))),
            self.count(|o| matches!(o, CaseOutcome::Errored(_))),
        ));
        out
    }
}

/// Runs the unit tests under `tests/sql/` that `selector` picks (a step name like
/// `features/netlog_windows`, a relation name, a dataset, a test name or a file; all when
/// `None`), each followed by its step's assertions on the fixture output.
pub fn run_tests(
    project: &Project,
    vars: &Vars,
    selector: Option<&str>,
) -> Result<TestReport, SqlTestError> {
    let standalone = StandaloneAssertions::load(project)?;
    let mut report = TestReport::default();
    for file in unit_test_files(project)? {
        report
            .cases
            .extend(file.run(project, vars, &standalone, selector)?);
    }
    Ok(report)
}

/// Runs `netsentinel test --mutants`: the mutants of the steps `selector` picks (a step name,
/// relation name or dataset; all when `None`) against each step's unit tests, each step's
/// result passed to `on_step` as it is known.
pub fn run_mutants(
    project: &Project,
    vars: &Vars,
    selector: Option<&str>,
    on_step: impl FnMut(&mutants::StepMutants),
) -> Result<mutants::MutantReport, SqlTestError> {
    let files = unit_test_files(project)?;
    let equivalents = mutants::load_equivalents(project)?;
    let run = mutants::MutantRun {
        project,
        vars,
        files: &files,
        equivalents: &equivalents,
    };
    Ok(run.run(selector, on_step)?)
}

/// The unit test files under `tests/sql/` (every YAML file but the equivalent mutants), in
/// path order.
fn unit_test_files(project: &Project) -> Result<Vec<UnitTestFile>, SqlTestError> {
    let mut paths = Vec::new();
    for extension in ["yml", "yaml"] {
        assertions::collect_files(&project.root.join(TESTS_DIR), extension, &mut paths)?;
    }
    paths.sort();
    let equivalents = project.root.join(mutants::EQUIVALENT_MUTANTS_FILE);
    paths
        .into_iter()
        .filter(|path| *path != equivalents)
        .map(|path| Ok(UnitTestFile::load(&project.root, &path)?))
        .collect()
}
