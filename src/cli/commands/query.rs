//! `netsentinel query`: one GoogleSQL statement, its rows printed as a table, CSV or JSON.

use std::io::{IsTerminal, Write};

use anyhow::{Context, bail};

use netsentinel::output::{self, OutputFormat};

use crate::cli::Session;
use crate::cli::args::{GlobalArgs, QueryArgs};

pub fn query_command(global: &GlobalArgs, args: &QueryArgs) -> anyhow::Result<()> {
    let sql = match (&args.sql, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => bail!("give the SQL as an argument or with --file"),
    };
    let session = Session::load(global)?;
    let mut warehouse = session.open_warehouse()?;
    let result = warehouse.query(&sql)?;
    let mut out = std::io::stdout().lock();
    output::write(&result, args.format, &mut out)?;
    if args.format == OutputFormat::Table && std::io::stdout().is_terminal() {
        writeln!(out, "{} row(s)", result.rows.len())?;
    }
    Ok(())
}
