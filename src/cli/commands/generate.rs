//! `netsentinel generate`: labelled synthetic netlog to a file or straight into the warehouse.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;

use netsentinel::ingest::{self, Format};
use netsentinel_generate::{self as generate};

use crate::cli::Session;
use crate::cli::args::{GenerateArgs, GlobalArgs};
use crate::cli::print::write_ingest_summary;

pub fn generate_command(global: &GlobalArgs, args: &GenerateArgs) -> anyhow::Result<()> {
    let config = args.generator.config()?;
    let events = generate::generate(&config)?;
    if let Some(path) = &args.hosts_out {
        write_host_classes(&events, path)?;
    }
    if args.into_warehouse {
        let session = Session::load(global)?;
        let mut warehouse = session.open_warehouse()?;
        let source = format!("generate:seed={}", config.seed);
        let summary = ingest::ingest_events(
            warehouse.as_mut(),
            events,
            &source,
            None,
            ingest::DEFAULT_BATCH_ROWS,
        )?;
        write_ingest_summary(&mut std::io::stdout().lock(), &summary, None)?;
        return Ok(());
    }
    let format = args
        .format
        .or_else(|| args.out.as_deref().and_then(Format::from_path))
        .unwrap_or(Format::Jsonl);
    let (writer, destination): (Box<dyn Write>, String) = match &args.out {
        Some(path) => (
            Box::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ),
            path.display().to_string(),
        ),
        None => (Box::new(std::io::stdout().lock()), "standard output".into()),
    };
    let mut writer = BufWriter::with_capacity(1 << 20, writer);
    let written = match format {
        Format::Jsonl => generate::write_jsonl(events, &mut writer),
        Format::Csv => generate::write_csv(events, &mut writer),
    }
    .with_context(|| format!("writing to {destination}"))?;
    writer.flush()?;
    tracing::info!(events = written, destination, "generated");
    Ok(())
}

/// `subscriberId,host_class` for every subscriber: the classes `eval --hosts` counts false
/// alerts by.
fn write_host_classes(generator: &generate::Generator, path: &Path) -> anyhow::Result<()> {
    let mut out =
        csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    out.write_record(["subscriberId", "host_class"])?;
    for (subscriber, class) in generator.host_classes() {
        out.write_record([subscriber, class.as_label()])?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
