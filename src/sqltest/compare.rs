//! Expected rows (from a unit test's YAML or CSV) against a query's actual rows: order-insensitive,
//! numbers within a tolerance, timestamps by instant, STRUCTs by field and ARRAYs by element; and
//! the readable diff shown when they differ.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_yaml::Value;

use netsentinel_core::{Cell, ResultSet};

/// One expected row: the columns it names, in order. Columns it leaves out are not compared.
pub type ExpectedRow = Vec<(String, Value)>;

/// `None` when the rows match; otherwise the diff.
pub fn compare(expected: &[ExpectedRow], actual: &ResultSet, tolerance: f64) -> Option<String> {
    let mut missing_columns: Vec<&str> = expected
        .iter()
        .flatten()
        .map(|(c, _)| c.as_str())
        .filter(|c| !actual.columns.iter().any(|a| a == c))
        .collect();
    missing_columns.dedup();
    if !missing_columns.is_empty() {
        return Some(format!(
            "expected column(s) {} not in the output; it has: {}",
            missing_columns.join(", "),
            actual.columns.join(", ")
        ));
    }
    let mut used = vec![false; actual.rows.len()];
    let mut missing = Vec::new();
    for row in expected {
        let found = (0..actual.rows.len())
            .find(|&i| !used[i] && differences(row, actual, i, tolerance).is_empty());
        match found {
            Some(i) => used[i] = true,
            None => missing.push(row),
        }
    }
    let mut unexpected: Vec<usize> = (0..actual.rows.len()).filter(|&i| !used[i]).collect();
    if missing.is_empty() && unexpected.is_empty() {
        return None;
    }
    let shown = shown_columns(expected, actual);
    let mut diff = format!(
        "{} expected row(s) not found, {} actual row(s) not expected ({} expected, {} actual):\n",
        missing.len(),
        unexpected.len(),
        expected.len(),
        actual.rows.len()
    );
    for row in missing {
        // Pair each missing row with the unexpected row closest to it, so a wrong value shows
        // as the one column that differs.
        let closest = unexpected
            .iter()
            .enumerate()
            .min_by_key(|(_, i)| differences(row, actual, **i, tolerance).len())
            .map(|(at, i)| (at, *i));
        diff.push_str(&format!("  - expected {}\n", show_expected(row)));
        if let Some((at, index)) = closest {
            unexpected.remove(at);
            diff.push_str(&format!(
                "  + actual   {}\n",
                show_actual(actual, index, &shown)
            ));
            for column in differences(row, actual, index, tolerance) {
                let expected_value = row.iter().find(|(c, _)| c == column).map(|(_, v)| v);
                let position = actual.columns.iter().position(|c| c == column);
                diff.push_str(&format!(
                    "      {column}: expected {}, got {}\n",
                    expected_value.map(show_value).unwrap_or_default(),
                    position
                        .map(|p| show_cell(&actual.rows[index][p]))
                        .unwrap_or_default()
                ));
            }
        }
    }
    for index in unexpected {
        diff.push_str(&format!(
            "  + actual   {}\n",
            show_actual(actual, index, &shown)
        ));
    }
    Some(diff)
}

/// The columns of `row` whose expected value the actual row `index` does not match.
fn differences<'a>(
    row: &'a ExpectedRow,
    actual: &ResultSet,
    index: usize,
    tolerance: f64,
) -> Vec<&'a str> {
    row.iter()
        .filter(|(column, value)| {
            let cell = actual
                .columns
                .iter()
                .position(|c| c == column)
                .map(|p| &actual.rows[index][p]);
            !cell.is_some_and(|cell| value_matches(value, cell, tolerance))
        })
        .map(|(c, _)| c.as_str())
        .collect()
}

pub fn value_matches(expected: &Value, actual: &Cell, tolerance: f64) -> bool {
    match (expected, actual) {
        (Value::Null, Cell::Null) => true,
        (Value::Bool(e), Cell::Bool(a)) => e == a,
        (Value::Number(n), Cell::Int(_) | Cell::Float(_)) => match (n.as_f64(), actual.as_f64()) {
            (Some(e), Some(a)) => close(e, a, tolerance),
            _ => false,
        },
        (Value::String(s), Cell::Text(t)) => s == t,
        (Value::String(s), Cell::Timestamp(t)) => parse_timestamp(s).is_some_and(|e| e == *t),
        (Value::String(s), Cell::Int(_) | Cell::Float(_)) => s
            .parse::<f64>()
            .ok()
            .zip(actual.as_f64())
            .is_some_and(|(e, a)| close(e, a, tolerance)),
        (Value::Sequence(items), Cell::List(cells)) => {
            items.len() == cells.len()
                && items
                    .iter()
                    .zip(cells)
                    .all(|(e, a)| value_matches(e, a, tolerance))
        }
        (Value::Mapping(map), Cell::Struct(fields)) => map.iter().all(|(key, value)| {
            let key = key.as_str().unwrap_or_default();
            fields
                .iter()
                .find(|(name, _)| name == key)
                .is_some_and(|(_, cell)| value_matches(value, cell, tolerance))
        }),
        _ => false,
    }
}

fn close(expected: f64, actual: f64, tolerance: f64) -> bool {
    if expected.is_nan() || actual.is_nan() {
        return expected.is_nan() && actual.is_nan();
    }
    (expected - actual).abs() <= tolerance.max(1e-12 * expected.abs().max(actual.abs()))
}

/// RFC 3339, or `YYYY-MM-DD HH:MM:SS[.fff]` read as UTC.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
}

fn shown_columns(expected: &[ExpectedRow], actual: &ResultSet) -> Vec<usize> {
    let mut shown: Vec<usize> = Vec::new();
    for (column, _) in expected.iter().flatten() {
        if let Some(p) = actual.columns.iter().position(|c| c == column)
            && !shown.contains(&p)
        {
            shown.push(p);
        }
    }
    if shown.is_empty() {
        shown = (0..actual.columns.len()).collect();
    }
    shown
}

fn show_expected(row: &ExpectedRow) -> String {
    let parts: Vec<String> = row
        .iter()
        .map(|(c, v)| format!("{c}: {}", show_value(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn show_actual(actual: &ResultSet, index: usize, shown: &[usize]) -> String {
    let parts: Vec<String> = shown
        .iter()
        .map(|&p| {
            format!(
                "{}: {}",
                actual.columns[p],
                show_cell(&actual.rows[index][p])
            )
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn show_value(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::String(s) => format!("{s:?}"),
        other => serde_json::to_string(other).unwrap_or_else(|_| format!("{other:?}")),
    }
}

fn show_cell(cell: &Cell) -> String {
    match cell {
        Cell::Null => "NULL".into(),
        Cell::Text(s) => format!("{s:?}"),
        Cell::Timestamp(_) => format!("{:?}", cell.to_string()),
        other => other.to_json().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actual() -> ResultSet {
        ResultSet {
            columns: vec!["id".into(), "x".into(), "s".into()],
            rows: vec![
                vec![
                    Cell::Text("b".into()),
                    Cell::Float(2.0000000001),
                    Cell::Struct(vec![("k".into(), Cell::Null)]),
                ],
                vec![
                    Cell::Text("a".into()),
                    Cell::Int(1),
                    Cell::Struct(vec![("k".into(), Cell::Int(5))]),
                ],
            ],
        }
    }

    fn row(yaml: &str) -> ExpectedRow {
        let map: serde_yaml::Mapping = serde_yaml::from_str(yaml).unwrap();
        map.into_iter()
            .map(|(k, v)| (k.as_str().unwrap().to_string(), v))
            .collect()
    }

    #[test]
    fn rows_match_in_any_order_within_tolerance_with_nulls_and_structs() {
        let expected = [
            row("{id: a, x: 1, s: {k: 5}}"),
            row("{id: b, x: 2.0, s: {k: null}}"),
        ];
        assert_eq!(compare(&expected, &actual(), 1e-6), None);
    }

    #[test]
    fn a_wrong_value_is_shown_next_to_its_closest_row() {
        let expected = [row("{id: a, x: 3}"), row("{id: b, x: 2}")];
        let diff = compare(&expected, &actual(), 1e-6).unwrap();
        assert!(diff.contains("- expected {id: \"a\", x: 3}"), "{diff}");
        assert!(diff.contains("+ actual   {id: \"a\", x: 1}"), "{diff}");
        assert!(diff.contains("x: expected 3, got 1"), "{diff}");
    }

    #[test]
    fn timestamps_compare_by_instant() {
        let t = parse_timestamp("2026-01-01T00:01:00Z").unwrap();
        assert!(value_matches(
            &Value::String("2026-01-01 00:01:00".into()),
            &Cell::Timestamp(t),
            0.0
        ));
    }
}
