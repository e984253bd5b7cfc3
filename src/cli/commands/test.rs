//! `netsentinel test`: the SQL unit tests and assertions, with an optional JUnit report.

use anyhow::{Context, bail};

use netsentinel::sqltest;

use crate::cli::Session;
use crate::cli::args::{GlobalArgs, TestArgs};

pub fn test_command(global: &GlobalArgs, args: &TestArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
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
