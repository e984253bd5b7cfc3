//! DuckDB values to and from engine-independent `Cell`s.

use chrono::{DateTime, Utc};
use duckdb::ToSql;
use duckdb::types::{TimeUnit, ToSqlOutput, Value, ValueRef};
use netsentinel_core::Cell;

fn decimal_to_f64(d: duckdb::types::Decimal) -> f64 {
    d.value() as f64 / 10f64.powi(i32::from(d.scale()))
}

fn timestamp_cell(unit: TimeUnit, value: i64) -> Cell {
    DateTime::<Utc>::from_timestamp_micros(unit.to_micros(value))
        .map(Cell::Timestamp)
        .unwrap_or(Cell::Int(value))
}

pub fn to_cell(value: Value) -> Cell {
    match value {
        Value::Null => Cell::Null,
        Value::Boolean(b) => Cell::Bool(b),
        Value::TinyInt(v) => Cell::Int(v.into()),
        Value::SmallInt(v) => Cell::Int(v.into()),
        Value::Int(v) => Cell::Int(v.into()),
        Value::BigInt(v) => Cell::Int(v),
        Value::UTinyInt(v) => Cell::Int(v.into()),
        Value::USmallInt(v) => Cell::Int(v.into()),
        Value::UInt(v) => Cell::Int(v.into()),
        Value::UBigInt(v) => i64::try_from(v).map_or(Cell::Float(v as f64), Cell::Int),
        Value::HugeInt(v) => i64::try_from(v).map_or(Cell::Float(v as f64), Cell::Int),
        Value::UHugeInt(v) => i64::try_from(v).map_or(Cell::Float(v as f64), Cell::Int),
        Value::Float(v) => Cell::Float(v.into()),
        Value::Double(v) => Cell::Float(v),
        Value::Decimal(d) => Cell::Float(decimal_to_f64(d)),
        Value::Timestamp(unit, v) => timestamp_cell(unit, v),
        Value::Text(s) | Value::Enum(s) => Cell::Text(s),
        Value::Blob(b) | Value::Geometry(b) => Cell::Text(String::from_utf8_lossy(&b).into_owned()),
        Value::Date32(days) => chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
            .map_or(Cell::Int(days.into()), |d| Cell::Text(d.to_string())),
        Value::Time64(unit, v) => Cell::Int(unit.to_micros(v)),
        Value::Interval {
            months,
            days,
            nanos,
        } => Cell::Text(format!("{months} months {days} days {} µs", nanos / 1000)),
        Value::List(items) | Value::Array(items) => {
            Cell::List(items.into_iter().map(to_cell).collect())
        }
        Value::Struct(fields) => Cell::Struct(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_cell(v.clone())))
                .collect(),
        ),
        Value::Map(entries) => Cell::List(
            entries
                .iter()
                .map(|(k, v)| {
                    Cell::Struct(vec![
                        ("key".into(), to_cell(k.clone())),
                        ("value".into(), to_cell(v.clone())),
                    ])
                })
                .collect(),
        ),
        Value::Union(inner) => to_cell(*inner),
        other => Cell::Text(format!("{other:?}")),
    }
}

/// A cell as DuckDB's appender takes it, text borrowed. Lists and structs never reach the
/// appender: the tables netsentinel writes in bulk hold scalars only.
pub struct SqlCell<'a>(pub &'a Cell);

impl ToSql for SqlCell<'_> {
    fn to_sql(&self) -> duckdb::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Cell::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Cell::Null | Cell::List(_) | Cell::Struct(_) => ToSqlOutput::Owned(Value::Null),
            Cell::Bool(b) => ToSqlOutput::Owned(Value::Boolean(*b)),
            Cell::Int(i) => ToSqlOutput::Owned(Value::BigInt(*i)),
            Cell::Float(f) => ToSqlOutput::Owned(Value::Double(*f)),
            Cell::Timestamp(t) => ToSqlOutput::Owned(Value::Timestamp(
                TimeUnit::Microsecond,
                t.timestamp_micros(),
            )),
        })
    }
}
