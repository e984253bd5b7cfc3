//! `netsentinel compile`: writes the SQL each step would run under target/compiled/.

use netsentinel::compile;

use crate::cli::Session;
use crate::cli::args::{CompileArgs, GlobalArgs};
use crate::cli::print::display_relative;

pub fn compile_command(global: &GlobalArgs, args: &CompileArgs) -> anyhow::Result<()> {
    let session = Session::load(global)?;
    let (name, target) = session.project.config.target(Some(&session.target))?;
    let naming = target.naming(name)?;
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| compile::compiled_dir(&session.project.root, name));
    let written = compile::compile(&session.project, &naming, &session.vars, &out_dir)?;
    println!(
        "compiled {} file(s) for target `{name}` into {}",
        written.len(),
        display_relative(&out_dir, &session.project.root)
    );
    Ok(())
}
