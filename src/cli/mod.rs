//! The `netsentinel` command line: `args` is what clap parses, `commands` holds one module per
//! subcommand, `print` what they print. Errors reach `main` as `anyhow` errors.

mod args;
mod commands;
mod print;

pub use args::{Cli, GlobalArgs, LogFormat};

use netsentinel::config::TargetConfig;
use netsentinel::project::Project;
use netsentinel::runner::Runner;
use netsentinel::vars::Vars;
use netsentinel_core::Warehouse;

use args::Command;

/// A loaded project with the target and vars of this invocation.
struct Session {
    project: Project,
    target: String,
    target_config: TargetConfig,
    vars: Vars,
}

impl Session {
    fn load(global: &GlobalArgs) -> anyhow::Result<Self> {
        let project = Project::load(&global.project_dir)?;
        let (target, target_config) = project.config.target(global.target.as_deref())?;
        let (target, target_config) = (target.to_string(), target_config.clone());
        let vars = project
            .config
            .default_vars()
            .with_overrides(&project.config.var_types(), &global.vars)?;
        Ok(Session {
            project,
            target,
            target_config,
            vars,
        })
    }

    fn open_warehouse(&self) -> Result<Box<dyn Warehouse>, netsentinel_core::EngineError> {
        self.target_config.open(&self.project.root, &self.target)
    }

    fn runner(&self) -> Runner<'_> {
        Runner {
            project: &self.project,
            vars: &self.vars,
            target: &self.target,
            stop: None,
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => commands::demo::demo_command(&cli.global, &args),
        Command::Generate(args) => commands::generate::generate_command(&cli.global, &args),
        Command::Ingest(args) => commands::ingest::ingest_command(&cli.global, &args),
        Command::Compile(args) => commands::compile::compile_command(&cli.global, &args),
        Command::Run(args) => commands::run::run_command(&cli.global, &args),
        Command::Plan(args) => commands::run::plan_command(&cli.global, &args),
        Command::Query(args) => commands::query::query_command(&cli.global, &args),
        Command::Test(args) => commands::test::test_command(&cli.global, &args),
        Command::Schedule(args) => commands::schedule::schedule_command(&cli.global, &args),
        Command::Env(args) => commands::env::env_command(&cli.global, &args),
        Command::Models(args) => commands::models::models_command(&cli.global, &args),
        Command::Eval(args) => commands::eval::eval_command(&cli.global, &args),
    }
}
