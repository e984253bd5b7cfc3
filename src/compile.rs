//! `netsentinel compile`: writes the SQL each step would run to
//! `target/compiled/<target>/<dataset>/<name>.sql`, without connecting anywhere. Incremental
//! steps also get `<name>.incremental.sql`, the script of a run that finds the table present.

use std::path::{Path, PathBuf};

use crate::project::{Materialization, Project};
use crate::registry::ModelVersions;
use crate::render::{self, RenderContext, RenderError};
use crate::vars::Vars;
use netsentinel_core::Naming;

/// The run id compiled scripts record; real runs put their own.
pub const COMPILE_RUN_ID: &str = "compile";

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn compiled_dir(project_root: &Path, target: &str) -> PathBuf {
    project_root.join("target").join("compiled").join(target)
}

/// Renders every step; returns the files written.
pub fn compile(
    project: &Project,
    naming: &Naming,
    vars: &Vars,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, CompileError> {
    // Without a warehouse the registry is unknown: render what a first run builds.
    let models = ModelVersions::first(project);
    let context = RenderContext {
        project,
        naming,
        vars,
        run_id: COMPILE_RUN_ID,
        models: &models,
    };
    let mut written = Vec::new();
    for step in project.steps.values() {
        let mut variants = vec![("sql", false)];
        if step.config.materialized == Materialization::Incremental {
            variants.push(("incremental.sql", true));
        }
        for (extension, incremental) in variants {
            let rendered = render::render_step(&context, step, incremental)?;
            let path = out_dir.join(format!("{}.{extension}", step.name));
            write_file(&path, &format!("{};\n", rendered.self_contained_script()))?;
            written.push(path);
        }
    }
    Ok(written)
}

fn write_file(path: &Path, text: &str) -> Result<(), CompileError> {
    let write_error = |source| CompileError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    std::fs::write(path, text).map_err(write_error)
}
