//! `netsentinel test`: the SQL unit tests and assertions, with an optional JUnit report, or
//! with `--mutants` whether those tests catch a broken step.

use anyhow::{Context, bail};

use netsentinel::sqltest;

use crate::cli::Session;
use crate::cli::args::{GlobalArgs, TestArgs};

pub fn test_command(global: &GlobalArgs, args: &TestArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    if args.mutants {
        return mutants_command(&session, args);
    }
    let report = sqltest::run_tests(&session.project, &session.vars, args.selector.as_deref())?;
    print!("{}", report.render());
    if let Some(path) = &args.junit {
        std::fs::write(path, sqltest::junit::to_junit(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if report.cases.is_empty() {
        bail!(
            "no SQL tests matched{} under {}",
            args.selector
                .as_deref()
                .map(|s| format!(" `{s}`"))
                .unwrap_or_default(),
            sqltest::assertions::TESTS_DIR
        );
    }
    if !report.success() {
        bail!("{} SQL test(s) failed", report.failures());
    }
    Ok(())
}

fn mutants_command(session: &Session, args: &TestArgs) -> anyhow::Result<()> {
    let report = sqltest::run_mutants(
        &session.project,
        &session.vars,
        args.selector.as_deref(),
        |step| print!("{}", step.render()),
    )?;
    print!("{}", report.render_totals());
    if !report.success() {
        bail!(
            "{} mutant(s) survived the unit tests and {} equivalent declaration(s) are out of date: add tests that fail on them, or declare a mutant that cannot change any result in {}",
            report.count(sqltest::mutants::MutantStatus::Survived),
            report.stale.len(),
            sqltest::mutants::EQUIVALENT_MUTANTS_FILE
        );
    }
    Ok(())
}
