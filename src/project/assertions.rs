//! Assertions a step declares in its `config()` (`unique`, `not_null`, `accepted_values`,
//! `expression`…, as errors or warnings), parsed when the project loads; `sqltest` runs them.

use std::fmt;

use netsentinel_core::relation::Identifier;
use netsentinel_core::sql::quote_string;

use super::scan::Literal;

/// Whether a failing assertion stops what depends on its step or only warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warn,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
        }
    }
}

/// One declared check on a step's relation.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    NotNull(Identifier),
    Unique(Vec<Identifier>),
    /// The column's non-NULL values are among these SQL literals.
    AcceptedValues {
        column: Identifier,
        values: Vec<String>,
    },
    /// A boolean GoogleSQL expression every row satisfies (NULL counts as satisfied, as in dbt).
    RowCondition(String),
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |ids: &[Identifier]| {
            ids.iter()
                .map(Identifier::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Check::NotNull(c) => write!(f, "not_null({c})"),
            Check::Unique(cols) => write!(f, "unique({})", join(cols)),
            Check::AcceptedValues { column, values } => {
                write!(f, "accepted_values({column}: {})", values.join(", "))
            }
            Check::RowCondition(e) => write!(f, "row_condition({e})"),
        }
    }
}

/// Which rows of a step's table its declared assertions check.
#[derive(Debug, Clone, Copy)]
pub enum Checked<'a> {
    /// All of them (a full build, or a step that is not incremental).
    Table,
    /// The rows an incremental run wrote, in its staging table (qualified), merged into the
    /// table on `unique_key`. The rows it did not touch were checked by the runs that wrote
    /// them, so checking only the new ones keeps a run's cost independent of the table's size.
    Written {
        staging: &'a str,
        unique_key: &'a [Identifier],
    },
}

impl Check {
    /// The offending rows of `relation` (already qualified for the target).
    pub fn offending_rows_sql(&self, relation: &str, checked: Checked<'_>) -> String {
        let rows = match checked {
            Checked::Table => relation,
            Checked::Written { staging, .. } => staging,
        };
        match self {
            Check::NotNull(c) => format!("SELECT * FROM {rows} WHERE {c} IS NULL"),
            Check::Unique(cols) => {
                let list = cols
                    .iter()
                    .map(Identifier::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let among = match checked {
                    Checked::Written {
                        staging,
                        unique_key,
                    } if !unique_key.is_empty() && unique_key.iter().all(|k| cols.contains(k)) => {
                        // The merge replaced every row whose key equals a new row's, so a
                        // duplicate on columns that include the whole key lies among the new
                        // rows, unless the key has a NULL (which equals nothing): those rows
                        // come from the whole table. This relies on what the merge relies on:
                        // a partition-pruned merge (BigQuery) replaces rows only in the new
                        // rows' partitions, so the partition must follow from the key.
                        let null_key = unique_key
                            .iter()
                            .map(|k| format!("{k} IS NULL"))
                            .collect::<Vec<_>>()
                            .join(" OR ");
                        format!(
                            "(SELECT {list} FROM {staging} WHERE NOT ({null_key}) \
                             UNION ALL SELECT {list} FROM {relation} WHERE {null_key})"
                        )
                    }
                    _ => relation.to_string(),
                };
                format!(
                    "SELECT {list}, COUNT(*) AS duplicates FROM {among} AS checked GROUP BY {list} HAVING COUNT(*) > 1"
                )
            }
            Check::AcceptedValues { column, values } => format!(
                "SELECT * FROM {rows} WHERE {column} IS NOT NULL AND {column} NOT IN ({})",
                values.join(", ")
            ),
            Check::RowCondition(e) => format!("SELECT * FROM {rows} WHERE NOT ({e})"),
        }
    }
}

/// A check from a step's `config()`, with the line that declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredAssertion {
    pub check: Check,
    pub severity: Severity,
    pub line: usize,
}

/// Reads `assertions={'not_null': […], 'unique': [[…]], 'accepted_values': {col: […]},
/// 'row_condition': '…' | […]}`.
pub fn parse_config(
    value: &Literal,
    severity: Severity,
    line: usize,
) -> Result<Vec<DeclaredAssertion>, String> {
    let Literal::Map(entries) = value else {
        return Err(format!(
            "assertions must be a map like {{'not_null': ['col'], 'unique': [['a', 'b']], 'accepted_values': {{'col': ['x']}}, 'row_condition': 'expr'}}, got {value}"
        ));
    };
    let mut checks = Vec::new();
    for (key, value) in entries {
        let field = |message: String| format!("assertions.{key}: {message}");
        match key.as_str() {
            "not_null" => {
                for column in value.identifiers().map_err(field)? {
                    checks.push(Check::NotNull(column));
                }
            }
            "unique" => {
                let Literal::List(items) = value else {
                    return Err(field(format!(
                        "expected a list of column lists, got {value}"
                    )));
                };
                for item in items {
                    checks.push(Check::Unique(item.identifiers().map_err(field)?));
                }
            }
            "accepted_values" => {
                let Literal::Map(columns) = value else {
                    return Err(field(format!(
                        "expected a map {{'column': [values]}}, got {value}"
                    )));
                };
                for (column, values) in columns {
                    let column = Identifier::new(column).map_err(|e| field(e.to_string()))?;
                    let Literal::List(values) = values else {
                        return Err(field(format!("expected a list of values, got {values}")));
                    };
                    let values = values
                        .iter()
                        .map(sql_literal)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(field)?;
                    checks.push(Check::AcceptedValues { column, values });
                }
            }
            "row_condition" => {
                let conditions = match value {
                    Literal::List(items) => items.clone(),
                    single => vec![single.clone()],
                };
                for condition in conditions {
                    let Literal::String(expression) = condition else {
                        return Err(field(format!(
                            "expected a quoted SQL expression, got {condition}"
                        )));
                    };
                    checks.push(Check::RowCondition(expression));
                }
            }
            other => {
                return Err(format!(
                    "assertions.{other} is not an assertion: use not_null, unique, accepted_values, row_condition"
                ));
            }
        }
    }
    Ok(checks
        .into_iter()
        .map(|check| DeclaredAssertion {
            check,
            severity,
            line,
        })
        .collect())
}

fn sql_literal(value: &Literal) -> Result<String, String> {
    match value {
        Literal::String(s) => Ok(quote_string(s)),
        Literal::Number(n) => Ok(n.to_string()),
        Literal::Bool(b) => Ok(if *b { "TRUE" } else { "FALSE" }.to_string()),
        other => Err(format!(
            "accepted values are quoted strings, numbers or booleans, got {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::scan;

    fn config(text: &str) -> Literal {
        let scanned = scan::scan(&format!("{{{{ config(assertions={text}) }}}}")).unwrap();
        scanned.calls[0].arg("assertions").unwrap().clone()
    }

    #[test]
    fn config_maps_become_checks_with_sql_over_the_relation() {
        let parsed = parse_config(
            &config(
                "{'not_null': ['a', 'b'], 'unique': [['a', 'b']], 'accepted_values': {'p': ['tcp', 1]}, 'row_condition': 'x >= 0'}",
            ),
            Severity::Error,
            3,
        )
        .unwrap();
        let sql: Vec<String> = parsed
            .iter()
            .map(|d| d.check.offending_rows_sql("features.t", Checked::Table))
            .collect();
        assert_eq!(
            sql,
            [
                "SELECT * FROM features.t WHERE a IS NULL",
                "SELECT * FROM features.t WHERE b IS NULL",
                "SELECT a, b, COUNT(*) AS duplicates FROM features.t AS checked GROUP BY a, b HAVING COUNT(*) > 1",
                "SELECT * FROM features.t WHERE p IS NOT NULL AND p NOT IN ('tcp', 1)",
                "SELECT * FROM features.t WHERE NOT (x >= 0)",
            ]
        );
    }

    /// Offending rows of `check` after an incremental run merged `new` into a table holding
    /// `old` (queries of rows `(k, v)`) on unique key `k`, checking what the run wrote.
    fn offending_after_merge(check: Check, old: &str, new: &str) -> i64 {
        use netsentinel_core::{Cell, Warehouse};
        use netsentinel_duckdb::DuckDbWarehouse;
        let mut warehouse = DuckDbWarehouse::open_in_memory().unwrap();
        warehouse
            .execute_script(&format!(
                "CREATE TABLE features.t AS {old};\n\
                 CREATE TABLE features.t__ns_stage AS {new};\n\
                 DELETE FROM features.t AS t WHERE EXISTS (SELECT 1 FROM features.t__ns_stage AS s WHERE s.k = t.k);\n\
                 INSERT INTO features.t SELECT * FROM features.t__ns_stage"
            ))
            .unwrap();
        let key = [Identifier::new("k").unwrap()];
        let written = Checked::Written {
            staging: "features.t__ns_stage",
            unique_key: &key,
        };
        let sql = check.offending_rows_sql("features.t", written);
        warehouse
            .query(&format!("SELECT COUNT(*) FROM ({sql}) AS offending"))
            .unwrap()
            .scalar()
            .and_then(Cell::as_i64)
            .unwrap()
    }

    fn rows(rows: &[(Option<i64>, Option<i64>)]) -> String {
        let value = |v: Option<i64>| v.map_or("NULL".to_string(), |v| v.to_string());
        rows.iter()
            .map(|(k, v)| {
                format!(
                    "SELECT CAST({} AS INT64) AS k, CAST({} AS INT64) AS v",
                    value(*k),
                    value(*v)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    #[test]
    fn an_incremental_run_is_checked_on_the_rows_it_wrote() {
        let id = |name: &str| Identifier::new(name).unwrap();
        let old = rows(&[(Some(1), None), (Some(2), Some(20))]);
        // A NULL left by an earlier run is not this run's to report; a new one is.
        let not_null = Check::NotNull(id("v"));
        let replace_2 = rows(&[(Some(2), Some(21))]);
        assert_eq!(offending_after_merge(not_null.clone(), &old, &replace_2), 0);
        let new_null = rows(&[(Some(3), None)]);
        assert_eq!(offending_after_merge(not_null, &old, &new_null), 1);
        // A replaced key is no duplicate; two new rows with one key are, and so are two rows
        // with a NULL key (the merge's equality never matches a NULL, so the old one stays).
        let unique_key = Check::Unique(vec![id("k")]);
        let replacing = rows(&[(Some(2), Some(21)), (Some(3), Some(30))]);
        assert_eq!(
            offending_after_merge(unique_key.clone(), &old, &replacing),
            0
        );
        let twice = rows(&[(Some(3), Some(30)), (Some(3), Some(31))]);
        assert_eq!(offending_after_merge(unique_key.clone(), &old, &twice), 1);
        let null_key = rows(&[(Some(1), Some(1)), (None, Some(2))]);
        let another_null_key = rows(&[(None, Some(3))]);
        assert_eq!(
            offending_after_merge(unique_key, &null_key, &another_null_key),
            1
        );
        // Columns without the whole key: a new row can duplicate an old one it did not replace.
        let unique_v = Check::Unique(vec![id("v")]);
        let same_v = rows(&[(Some(3), Some(20))]);
        assert_eq!(offending_after_merge(unique_v, &old, &same_v), 1);
    }

    #[test]
    fn bad_assertions_name_the_field() {
        let err = parse_config(&config("{'not_null': ['a b']}"), Severity::Error, 1).unwrap_err();
        assert!(err.starts_with("assertions.not_null:"), "{err}");
        let err = parse_config(&config("{'nonsense': 1}"), Severity::Warn, 1).unwrap_err();
        assert!(err.contains("not_null, unique"), "{err}");
    }
}
