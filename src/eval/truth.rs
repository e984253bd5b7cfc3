//! Ground truth that does not travel with the events: a labels CSV (attacks by subscriber,
//! window or destination) and a host-classes CSV (what each subscriber is), read and checked
//! here and handed to the queries as literal relations, so eval still writes nothing.

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Utc};

use netsentinel_core::Cell;
use netsentinel_core::sql::quote_string;
use netsentinel_core::timestamp::parse_event_time;

/// Rows a truth file may hold: they are inlined into the queries, and BigQuery caps a query's
/// text at 1 MB.
pub const MAX_TRUTH_ROWS: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum TruthError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: csv::Error },
    #[error("{path}: the header has no `{column}` column")]
    MissingColumn { path: PathBuf, column: &'static str },
    #[error("{path}:{line}: field `{field}`: {reason}")]
    Field {
        path: PathBuf,
        line: u64,
        field: &'static str,
        reason: String,
    },
    #[error("{path}: more than {MAX_TRUTH_ROWS} rows; eval inlines them into its queries")]
    TooManyRows { path: PathBuf },
}

/// One row of a labels CSV. Which columns are set says what it labels:
/// `dst_subnet` and/or `window_start` — windows; `destination` — a subscriber × destination
/// pair and its windows; neither — every window and pair of the subscriber. `from`/`to` bound
/// any of them in time.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRow {
    pub subscriber: String,
    pub dst_subnet: Option<String>,
    pub window_start: Option<DateTime<Utc>>,
    pub destination: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostClassRow {
    pub subscriber: String,
    pub class: String,
}

/// Labels and host classes from files, beside the labels ingest kept on the events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Truth {
    pub labels: Vec<LabelRow>,
    pub host_classes: Vec<HostClassRow>,
}

impl Truth {
    pub fn read(labels: Option<&Path>, hosts: Option<&Path>) -> Result<Self, TruthError> {
        Ok(Self {
            labels: labels.map(read_labels).transpose()?.unwrap_or_default(),
            host_classes: hosts
                .map(read_host_classes)
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// The labels as a relation (subscriberId, dst_subnet, window_start, destination, starts,
    /// ends, label); `dst_subnet` of a destination row is its subnet by `subnet_of`.
    pub fn labels_relation(&self, subnet_of: impl Fn(&str) -> String) -> String {
        let rows = self.labels.iter().map(|row| {
            let subnet = match (&row.dst_subnet, &row.destination) {
                (Some(subnet), _) => quote_string(subnet),
                (None, Some(destination)) => subnet_of(&quote_string(destination)),
                (None, None) => "CAST(NULL AS STRING)".into(),
            };
            format!(
                "SELECT {} AS subscriberId, {subnet} AS dst_subnet, {} AS window_start, {} AS destination, \
                 {} AS starts, {} AS ends, {} AS label",
                quote_string(&row.subscriber),
                time(row.window_start),
                optional_text(&row.destination),
                time(row.from),
                time(row.to),
                quote_string(&row.label),
            )
        });
        union_or_empty(
            rows,
            "SELECT CAST(NULL AS STRING) AS subscriberId, CAST(NULL AS STRING) AS dst_subnet, \
             CAST(NULL AS TIMESTAMP) AS window_start, CAST(NULL AS STRING) AS destination, \
             CAST(NULL AS TIMESTAMP) AS starts, CAST(NULL AS TIMESTAMP) AS ends, \
             CAST(NULL AS STRING) AS label",
        )
    }

    /// The host classes as a relation (subscriberId, host_class).
    pub fn host_classes_relation(&self) -> String {
        let rows = self.host_classes.iter().map(|row| {
            format!(
                "SELECT {} AS subscriberId, {} AS host_class",
                quote_string(&row.subscriber),
                quote_string(&row.class)
            )
        });
        union_or_empty(
            rows,
            "SELECT CAST(NULL AS STRING) AS subscriberId, CAST(NULL AS STRING) AS host_class",
        )
    }
}

fn union_or_empty(rows: impl Iterator<Item = String>, empty: &str) -> String {
    let rows: Vec<String> = rows.collect();
    if rows.is_empty() {
        format!("{empty} FROM (SELECT 1) WHERE FALSE")
    } else {
        rows.join("\nUNION ALL ")
    }
}

fn optional_text(value: &Option<String>) -> String {
    value
        .as_deref()
        .map_or("CAST(NULL AS STRING)".into(), quote_string)
}

fn time(value: Option<DateTime<Utc>>) -> String {
    value.map_or("CAST(NULL AS TIMESTAMP)".into(), |t| {
        Cell::Timestamp(t).to_sql_literal()
    })
}

/// A CSV's records with their line numbers and a lookup of its columns by name.
struct Table {
    path: PathBuf,
    header: csv::StringRecord,
    records: Vec<(u64, csv::StringRecord)>,
}

impl Table {
    fn read(path: &Path) -> Result<Self, TruthError> {
        let read_error = |source| TruthError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(read_error)?;
        let header = reader.headers().map_err(read_error)?.clone();
        let mut records = Vec::new();
        for record in reader.records() {
            let record = record.map_err(read_error)?;
            let line = record.position().map_or(0, |p| p.line());
            records.push((line, record));
            if records.len() > MAX_TRUTH_ROWS {
                return Err(TruthError::TooManyRows {
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            header,
            records,
        })
    }

    fn column(&self, name: &'static str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    fn required_column(&self, name: &'static str) -> Result<usize, TruthError> {
        self.column(name).ok_or(TruthError::MissingColumn {
            path: self.path.clone(),
            column: name,
        })
    }

    fn field_error(&self, line: u64, field: &'static str, reason: impl Into<String>) -> TruthError {
        TruthError::Field {
            path: self.path.clone(),
            line,
            field,
            reason: reason.into(),
        }
    }
}

/// The non-empty value of an optional column.
fn cell(record: &csv::StringRecord, column: Option<usize>) -> Option<&str> {
    column.and_then(|c| record.get(c)).filter(|v| !v.is_empty())
}

fn read_labels(path: &Path) -> Result<Vec<LabelRow>, TruthError> {
    let table = Table::read(path)?;
    let subscriber = table.required_column("subscriberId")?;
    let label = table.required_column("label")?;
    let [dst_subnet, window_start, destination, from, to] =
        ["dst_subnet", "window_start", "destination", "from", "to"].map(|c| table.column(c));
    let mut rows = Vec::with_capacity(table.records.len());
    for (line, record) in &table.records {
        let line = *line;
        let required = |column: usize, field: &'static str| {
            cell(record, Some(column))
                .map(str::to_string)
                .ok_or_else(|| table.field_error(line, field, "empty"))
        };
        let timestamp = |column: Option<usize>, field: &'static str| {
            cell(record, column)
                .map(|value| {
                    parse_event_time(value, FixedOffset::east_opt(0).expect("UTC"))
                        .map_err(|reason| table.field_error(line, field, reason.to_string()))
                })
                .transpose()
        };
        let row = LabelRow {
            subscriber: required(subscriber, "subscriberId")?,
            label: required(label, "label")?,
            dst_subnet: cell(record, dst_subnet).map(str::to_string),
            window_start: timestamp(window_start, "window_start")?,
            destination: cell(record, destination).map(str::to_string),
            from: timestamp(from, "from")?,
            to: timestamp(to, "to")?,
        };
        if let Some(destination) = &row.destination
            && destination.parse::<std::net::IpAddr>().is_err()
        {
            return Err(table.field_error(
                line,
                "destination",
                format!("`{destination}` is not an IP address"),
            ));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn read_host_classes(path: &Path) -> Result<Vec<HostClassRow>, TruthError> {
    let table = Table::read(path)?;
    let subscriber = table.required_column("subscriberId")?;
    let class = table.required_column("host_class")?;
    table
        .records
        .iter()
        .map(|(line, record)| {
            let value = |column: usize, field: &'static str| {
                cell(record, Some(column))
                    .map(str::to_string)
                    .ok_or_else(|| table.field_error(*line, field, "empty"))
            };
            Ok(HostClassRow {
                subscriber: value(subscriber, "subscriberId")?,
                class: value(class, "host_class")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), contents).unwrap();
        file
    }

    #[test]
    fn a_labels_file_holds_window_pair_and_subscriber_rows() {
        let labels = file(
            "subscriberId,dst_subnet,window_start,destination,from,to,label\n\
             s1,203.0.112.0,2026-01-01T00:01:00Z,,,,exfiltration\n\
             s2,,,198.51.100.7,,,beaconing\n\
             s3,,,,2026-01-01 00:00:00 UTC,2026-01-01T01:00:00Z,compromised\n",
        );
        let truth = Truth::read(Some(labels.path()), None).unwrap();
        assert_eq!(truth.labels.len(), 3);
        assert_eq!(truth.labels[0].dst_subnet.as_deref(), Some("203.0.112.0"));
        assert!(truth.labels[0].window_start.is_some() && truth.labels[0].destination.is_none());
        assert_eq!(truth.labels[1].destination.as_deref(), Some("198.51.100.7"));
        assert!(truth.labels[2].from.is_some() && truth.labels[2].to.is_some());
        let relation = truth.labels_relation(|d| format!("SUBNET({d})"));
        assert!(
            relation.contains("SUBNET('198.51.100.7') AS dst_subnet"),
            "{relation}"
        );
        assert_eq!(relation.matches("UNION ALL").count(), 2);
    }

    #[test]
    fn a_bad_row_is_named_by_file_line_and_field() {
        let labels = file(
            "subscriberId,destination,label\ns1,198.51.100.7,beaconing\ns2,not-an-ip,beaconing\n",
        );
        let error = Truth::read(Some(labels.path()), None)
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with(":3: field `destination`: `not-an-ip` is not an IP address"),
            "{error}"
        );
        let labels = file("subscriberId,from,label\ns1,yesterday,beaconing\n");
        let error = Truth::read(Some(labels.path()), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains(":2: field `from`: "), "{error}");
        let hosts = file("subscriberId,class\ns1,client\n");
        let error = Truth::read(None, Some(hosts.path()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no `host_class` column"), "{error}");
    }

    #[test]
    fn no_file_is_an_empty_relation_of_the_same_columns() {
        let truth = Truth::default();
        assert!(
            truth
                .labels_relation(|d| d.to_string())
                .ends_with("WHERE FALSE")
        );
        assert!(truth.host_classes_relation().contains("AS host_class"));
    }
}
