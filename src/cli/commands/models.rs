//! `netsentinel models`: the model registry's versions and champions.

use std::io::Write;

use netsentinel::output::{self};
use netsentinel::registry;

use crate::cli::Session;
use crate::cli::args::{GlobalArgs, ModelsAction, ModelsArgs};

pub fn models_command(global: &GlobalArgs, args: &ModelsArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    let mut warehouse = session.open_warehouse()?;
    let mut out = std::io::stdout().lock();
    match &args.action {
        None => {
            let versions = registry::list(warehouse.as_mut())?;
            output::write(&versions, args.format, &mut out)?;
        }
        Some(ModelsAction::Promote { version }) => {
            let promoted = registry::promote(warehouse.as_mut(), &session.project, version)?;
            writeln!(
                out,
                "{}_v{} is the champion ({})",
                promoted.model.name, promoted.version, promoted.reason
            )?;
        }
    }
    Ok(())
}
