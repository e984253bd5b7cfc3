//! How a target spells table names: the logical `dataset.table` of a `TableRef` becomes the
//! text an engine's SQL needs.

use std::collections::BTreeMap;

use crate::relation::{Dataset, TableRef};

/// How a target spells table names. Names are validated identifiers, so no quoting is needed
/// locally; BigQuery names are fully qualified and backtick-quoted.
#[derive(Debug, Clone, PartialEq)]
pub enum Naming {
    Local,
    BigQuery {
        project: String,
        datasets: BTreeMap<Dataset, String>,
    },
}

impl Naming {
    pub fn qualify(&self, table: &TableRef) -> String {
        match self {
            Naming::Local => table.to_string(),
            Naming::BigQuery { project, datasets } => {
                let dataset = datasets
                    .get(&table.dataset)
                    .map(String::as_str)
                    .unwrap_or(table.dataset.as_str());
                format!("`{project}.{dataset}.{}`", table.name)
            }
        }
    }

    /// BigQuery bills a statement by the partitions it reads and prunes them only on constant
    /// filters, which script variables are and subqueries are not: its incremental scripts
    /// compute their bounds into variables first.
    pub fn prunes_with_script_variables(&self) -> bool {
        matches!(self, Naming::BigQuery { .. })
    }

    /// How long after ingest stamps a batch its rows may still be invisible to a query, so a
    /// step reading "ingested since" its high-water mark looks back this far. DuckDB commits
    /// one writer's batch at once; a BigQuery batch lands through a staged DML job that can
    /// commit minutes after the stamp, and two ingesters can commit out of order.
    pub fn commit_settle_seconds(&self) -> u32 {
        match self {
            Naming::Local => 0,
            Naming::BigQuery { .. } => 600,
        }
    }
}
