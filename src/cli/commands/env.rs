//! `netsentinel env`: the environment a target needs, checked or printed for deployment.

use std::path::Path;

use anyhow::Context;

use netsentinel::deploy::{self, RequiredEnv};
use netsentinel::project::Project;

use crate::cli::args::{EnvArgs, GlobalArgs};

/// Checks the terraform outputs against what pipelines.yaml needs (on `--target`, else on every
/// target) before printing anything, so a partial environment is never exported.
pub fn env_command(global: &GlobalArgs, args: &EnvArgs) -> anyhow::Result<()> {
    let project = Project::load(&global.project_dir)?;
    let required = RequiredEnv::of(&project.config, global.target.as_deref())?;
    let path = &args.from_terraform;
    let json = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let env = deploy::env_from_terraform_output(&json, args.include_sensitive)
        .with_context(|| format!("reading terraform outputs from {}", path.display()))?;
    required.check(&env)?;
    print!("{}", deploy::shell_exports(&env, &required));
    Ok(())
}
