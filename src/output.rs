//! Printing query results as a table, CSV or JSON.

use std::io::{self, Write};

use netsentinel_core::{Cell, ResultSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

pub fn write(result: &ResultSet, format: OutputFormat, out: &mut impl Write) -> io::Result<()> {
    match format {
        OutputFormat::Table => writeln!(out, "{}", table(result)),
        OutputFormat::Csv => write_csv(result, out),
        OutputFormat::Json => write_json(result, out),
    }
}

pub fn table(result: &ResultSet) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(&result.columns);
    for row in &result.rows {
        table.add_row(row.iter().map(display_cell));
    }
    table
}

fn display_cell(cell: &Cell) -> String {
    match cell {
        Cell::Null => "NULL".to_string(),
        Cell::Float(v) => format_float(*v),
        other => other.to_string(),
    }
}

/// Floats at a readable precision for tables; CSV and JSON keep every digit.
fn format_float(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.1}")
    } else if v.abs() >= 1e-4 && v.abs() < 1e9 {
        let text = format!("{v:.6}");
        text.trim_end_matches('0').to_string()
    } else {
        format!("{v:.6e}")
    }
}

fn write_csv(result: &ResultSet, out: &mut impl Write) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(&result.columns)?;
    for row in &result.rows {
        writer.write_record(row.iter().map(|c| c.to_string()))?;
    }
    writer.flush()
}

fn write_json(result: &ResultSet, out: &mut impl Write) -> io::Result<()> {
    let rows: Vec<serde_json::Value> = result
        .rows
        .iter()
        .map(|row| {
            result
                .columns
                .iter()
                .cloned()
                .zip(row.iter().map(Cell::to_json))
                .collect::<serde_json::Map<_, _>>()
                .into()
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &rows)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ResultSet {
        ResultSet {
            columns: vec!["n".into(), "name".into(), "score".into()],
            rows: vec![
                vec![Cell::Int(1), Cell::Text("a,b".into()), Cell::Float(0.5)],
                vec![Cell::Int(2), Cell::Null, Cell::Float(2.25)],
            ],
        }
    }

    #[test]
    fn csv_quotes_and_leaves_nulls_empty() {
        let mut out = Vec::new();
        write(&sample(), OutputFormat::Csv, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "n,name,score\n1,\"a,b\",0.5\n2,,2.25\n"
        );
    }

    #[test]
    fn json_is_an_array_of_objects() {
        let mut out = Vec::new();
        write(&sample(), OutputFormat::Json, &mut out).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed[0]["name"], "a,b");
        assert!(parsed[1]["name"].is_null());
        assert_eq!(parsed[1]["score"], 2.25);
    }
}
