//! `netsentinel test --mutants`: whether a step's unit tests would catch a broken step. For each
//! selected step it makes the mutants of the step's SQL template (`generate`: an aggregate
//! swapped, a comparison flipped, a condition dropped…), runs that step's unit tests on each,
//! in process, and reports the mutants every test still passes on. A mutant that cannot change
//! any result is declared, with its reason, in `tests/sql/equivalent_mutants.yml`. Each test's
//! fixtures are loaded once per step (`unit::PreparedTest`); a mutant only re-runs the step.

mod generate;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

pub use generate::{Mutant, MutationOperator, mutants_of};

use super::unit::{PreparedTest, UnitTestError, UnitTestFile};
use crate::project::scan::scan;
use crate::project::{Project, Step};
use crate::vars::Vars;

/// Mutants declared equivalent, relative to the project root.
pub const EQUIVALENT_MUTANTS_FILE: &str = "tests/sql/equivalent_mutants.yml";

#[derive(Debug, thiserror::Error)]
pub enum MutantError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{EQUIVALENT_MUTANTS_FILE}:{line}: {field}: {message}")]
    Equivalents {
        line: usize,
        field: String,
        message: String,
    },
    #[error("no step matches `{selector}`; steps are: {steps}")]
    NoStep { selector: String, steps: String },
    #[error(
        "the unit tests of {step} fail without any mutant: fix them first (netsentinel test {step})"
    )]
    TestsFail { step: String },
    #[error("{file}:{line}: the mutant `{original}` → `{mutated}` does not scan ({message})")]
    Unscannable {
        file: String,
        line: usize,
        original: String,
        mutated: String,
        message: String,
    },
    #[error(transparent)]
    Unit(#[from] UnitTestError),
}

/// A mutant no test can kill because it cannot change the step's result.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EquivalentMutant {
    pub step: String,
    pub line: usize,
    pub original: String,
    pub mutated: String,
    /// Why the change cannot alter the result; required.
    pub reason: String,
}

impl EquivalentMutant {
    fn matches(&self, step: &str, mutant: &Mutant) -> bool {
        self.step == step
            && self.line == mutant.line
            && squeeze(&self.original) == squeeze(&mutant.original)
            && squeeze(&self.mutated) == squeeze(&mutant.mutated)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EquivalentsFile {
    equivalent: Vec<EquivalentMutant>,
}

/// The declared equivalent mutants; none when the file does not exist.
pub fn load_equivalents(project: &Project) -> Result<Vec<EquivalentMutant>, MutantError> {
    let path = project.root.join(EQUIVALENT_MUTANTS_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).map_err(|source| MutantError::Read {
        path: path.clone(),
        source,
    })?;
    let parsed: EquivalentsFile = serde_path_to_error::deserialize(
        serde_yaml::Deserializer::from_str(&text),
    )
    .map_err(|e| MutantError::Equivalents {
        line: e.inner().location().map_or(0, |l| l.line()),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    if let Some(index) = parsed
        .equivalent
        .iter()
        .position(|e| e.reason.trim().is_empty())
    {
        return Err(MutantError::Equivalents {
            line: 0,
            field: format!("equivalent[{index}].reason"),
            message: "say why the mutant cannot change the result".into(),
        });
    }
    Ok(parsed.equivalent)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MutantStatus {
    /// A test failed, or the mutated step did not run.
    Killed,
    /// Every test passed, and the mutant is declared equivalent.
    Equivalent,
    /// Every test passed: the tests would not notice this change.
    Survived,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MutantResult {
    pub mutant: Mutant,
    pub status: MutantStatus,
    /// The source line the mutant starts on, trimmed, for the report.
    pub source_line: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepMutants {
    pub step: String,
    pub file: String,
    /// The step's unit tests that each mutant ran against.
    pub tests: usize,
    pub results: Vec<MutantResult>,
    pub duration: Duration,
}

impl StepMutants {
    pub fn count(&self, status: MutantStatus) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    /// The step's line, then each survivor: where, which change, and the source line.
    pub fn render(&self) -> String {
        let tests = match self.tests {
            0 => "no unit tests".to_string(),
            1 => "1 unit test".to_string(),
            n => format!("{n} unit tests"),
        };
        let mut out = format!(
            "{:<9}{} ({}, {tests}): {} mutants, {} killed, {} equivalent, {} survived [{:.1} s]\n",
            if self.count(MutantStatus::Survived) == 0 {
                "OK"
            } else {
                "SURVIVED"
            },
            self.step,
            self.file,
            self.results.len(),
            self.count(MutantStatus::Killed),
            self.count(MutantStatus::Equivalent),
            self.count(MutantStatus::Survived),
            self.duration.as_secs_f64(),
        );
        for result in self
            .results
            .iter()
            .filter(|r| r.status == MutantStatus::Survived)
        {
            let mutant = &result.mutant;
            out.push_str(&format!(
                "  {}:{}  {}: `{}` → `{}`\n      {}\n",
                self.file,
                mutant.line,
                mutant.operator,
                squeeze(&mutant.original),
                mutant.mutated,
                result.source_line,
            ));
        }
        out
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MutantReport {
    pub steps: Vec<StepMutants>,
    /// Declared equivalents of the checked steps that no surviving mutant matches: the code
    /// moved or a test now kills them, so the declaration is out of date.
    pub stale: Vec<EquivalentMutant>,
    pub duration: Duration,
}

impl MutantReport {
    pub fn count(&self, status: MutantStatus) -> usize {
        self.steps.iter().map(|s| s.count(status)).sum()
    }

    pub fn mutants(&self) -> usize {
        self.steps.iter().map(|s| s.results.len()).sum()
    }

    pub fn success(&self) -> bool {
        self.count(MutantStatus::Survived) == 0 && self.stale.is_empty()
    }

    /// Each step's lines (`StepMutants::render`), then `render_totals`.
    pub fn render(&self) -> String {
        let steps: String = self.steps.iter().map(StepMutants::render).collect();
        steps + &self.render_totals()
    }

    /// The out-of-date declarations, then the totals.
    pub fn render_totals(&self) -> String {
        let mut out = String::new();
        for stale in &self.stale {
            out.push_str(&format!(
                "STALE    {EQUIVALENT_MUTANTS_FILE}: {} line {} `{}` → `{}` is declared equivalent, but no surviving mutant matches it (a test kills it, or the line moved)\n",
                stale.step, stale.line, stale.original, stale.mutated
            ));
        }
        out.push_str(&format!(
            "\n{} mutant(s) of {} step(s): {} killed, {} equivalent, {} survived ({:.1} s)\n",
            self.mutants(),
            self.steps.len(),
            self.count(MutantStatus::Killed),
            self.count(MutantStatus::Equivalent),
            self.count(MutantStatus::Survived),
            self.duration.as_secs_f64(),
        ));
        out
    }
}

/// What a mutant run reads: the project, its vars, the unit tests and the declared equivalents.
pub struct MutantRun<'a> {
    pub project: &'a Project,
    pub vars: &'a Vars,
    pub files: &'a [UnitTestFile],
    pub equivalents: &'a [EquivalentMutant],
}

impl<'a> MutantRun<'a> {
    /// Checks the steps `selector` picks (a step name, relation name or dataset; every step
    /// when `None`).
    /// `on_step` sees each step's result as soon as it is known (the whole run takes minutes).
    pub fn run(
        &self,
        selector: Option<&str>,
        mut on_step: impl FnMut(&StepMutants),
    ) -> Result<MutantReport, MutantError> {
        let started = Instant::now();
        let steps: Vec<&Step> = self
            .project
            .steps
            .values()
            .filter(|step| selector.is_none_or(|s| step_selected(step, s)))
            .collect();
        if let (Some(selector), true) = (selector, steps.is_empty()) {
            return Err(MutantError::NoStep {
                selector: selector.to_string(),
                steps: self
                    .project
                    .steps
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut report = MutantReport::default();
        for step in steps {
            let checked = self.check_step(step)?;
            on_step(&checked);
            report.steps.push(checked);
        }
        report.stale = self
            .equivalents
            .iter()
            .filter(|e| {
                report.steps.iter().any(|s| s.step == e.step)
                    && !report.steps.iter().any(|s| {
                        s.results.iter().any(|r| {
                            r.status == MutantStatus::Equivalent && e.matches(&s.step, &r.mutant)
                        })
                    })
            })
            .cloned()
            .collect();
        report.duration = started.elapsed();
        Ok(report)
    }

    fn check_step(&self, step: &Step) -> Result<StepMutants, MutantError> {
        let started = Instant::now();
        let path = self.project.root.join(&step.file);
        let source =
            std::fs::read_to_string(&path).map_err(|source| MutantError::Read { path, source })?;
        let mutants = mutants_of(&source);
        let (tests, killed) = self.kill_in_parallel(step, &source, &mutants)?;
        let results = mutants
            .into_iter()
            .zip(killed)
            .map(|(mutant, killed)| self.judge(&step.name, &source, mutant, killed))
            .collect();
        Ok(StepMutants {
            step: step.name.clone(),
            file: step.file.clone(),
            tests,
            results,
            duration: started.elapsed(),
        })
    }

    /// A mutant's status: killed, else declared equivalent, else a survivor.
    fn judge(&self, step: &str, source: &str, mutant: Mutant, killed: bool) -> MutantResult {
        let status = if killed {
            MutantStatus::Killed
        } else if self.equivalents.iter().any(|e| e.matches(step, &mutant)) {
            MutantStatus::Equivalent
        } else {
            MutantStatus::Survived
        };
        let source_line = source
            .lines()
            .nth(mutant.line - 1)
            .unwrap_or_default()
            .trim()
            .to_string();
        MutantResult {
            mutant,
            status,
            source_line,
        }
    }

    /// The number of unit tests of `step` and, for each mutant in order, whether one of them
    /// kills it. The mutants are shared out among one worker per core, each with its own
    /// prepared copy of the tests (a database runs one statement at a time).
    fn kill_in_parallel(
        &self,
        step: &Step,
        source: &str,
        mutants: &[Mutant],
    ) -> Result<(usize, Vec<bool>), MutantError> {
        let workers = std::thread::available_parallelism()
            .map_or(1, NonZeroUsize::get)
            .clamp(1, mutants.len().max(1));
        let next = AtomicUsize::new(0);
        let outcomes = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| scope.spawn(|| self.kill_some(step, source, mutants, &next)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        let tests = outcomes.first().map_or(0, |(tests, _)| *tests);
        let mut killed = vec![false; mutants.len()];
        for (index, kills) in outcomes.into_iter().flat_map(|(_, killed)| killed) {
            killed[index] = kills;
        }
        Ok((tests, killed))
    }

    /// One worker: prepares the tests of `step`, checks they pass unmutated, then takes the
    /// next unchecked mutant until none is left. Returns the number of tests and, per mutant
    /// it took (by index), whether a test killed it.
    fn kill_some(
        &self,
        step: &Step,
        source: &str,
        mutants: &[Mutant],
        next: &AtomicUsize,
    ) -> Result<(usize, Vec<(usize, bool)>), MutantError> {
        let mut tests = self.prepare_tests(&step.name)?;
        if !all_pass(&mut tests, self.project)? {
            return Err(MutantError::TestsFail {
                step: step.name.clone(),
            });
        }
        let mut killed = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(mutant) = mutants.get(index) else {
                return Ok((tests.len(), killed));
            };
            let kills = !tests.is_empty() && self.kills(step, source, mutant, &mut tests)?;
            killed.push((index, kills));
        }
    }

    /// The unit tests of `step`, their fixtures loaded once for all its mutants.
    fn prepare_tests(&self, step: &str) -> Result<Vec<PreparedTest<'a>>, MutantError> {
        let mut tests = Vec::new();
        for file in self.files {
            tests.extend(file.prepare_step(self.project, self.vars, step)?);
        }
        Ok(tests)
    }

    /// Whether some test of `step` fails (or errors) with `mutant` in its template.
    fn kills(
        &self,
        step: &Step,
        source: &str,
        mutant: &Mutant,
        tests: &mut [PreparedTest<'_>],
    ) -> Result<bool, MutantError> {
        let template = scan(&mutant.apply(source)).map_err(|e| MutantError::Unscannable {
            file: step.file.clone(),
            line: mutant.line,
            original: mutant.original.clone(),
            mutated: mutant.mutated.clone(),
            message: e.to_string(),
        })?;
        let mut mutated = self.project.clone();
        mutated.steps.insert(
            step.name.clone(),
            Step {
                template,
                ..step.clone()
            },
        );
        Ok(!all_pass(tests, &mutated)?)
    }
}

/// Whether every test passes on `project`'s version of its step. Stops at the first failure
/// and moves that test first: mutants of one line come one after another, and the test that
/// kills one usually kills the next.
fn all_pass(tests: &mut [PreparedTest<'_>], project: &Project) -> Result<bool, MutantError> {
    for index in 0..tests.len() {
        if !tests[index].passes(project)? {
            tests[..=index].rotate_right(1);
            return Ok(false);
        }
    }
    Ok(true)
}

fn step_selected(step: &Step, selector: &str) -> bool {
    [
        step.name.as_str(),
        step.relation.name.as_str(),
        step.relation.dataset.as_str(),
    ]
    .contains(&selector)
}

/// Whitespace runs as one space, so a declaration matches a multi-line span however indented.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
