//! Table definitions for the engines' generic table operations. Each owner of a table (ingest
//! the raw tables, state, alerts, drift… theirs) declares it once as a `TableDef`; an engine
//! creates it and inserts into it without knowing what it holds.

use crate::naming::Naming;
use crate::relation::TableRef;

/// A column type, by its GoogleSQL name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Int64,
    Float64,
    Bool,
    Timestamp,
    Date,
}

impl ColumnType {
    pub fn as_sql(self) -> &'static str {
        match self {
            ColumnType::String => "STRING",
            ColumnType::Int64 => "INT64",
            ColumnType::Float64 => "FLOAT64",
            ColumnType::Bool => "BOOL",
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::Date => "DATE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
}

impl Column {
    pub const fn new(name: &'static str, ty: ColumnType) -> Self {
        Column { name, ty }
    }

    pub const fn string(name: &'static str) -> Self {
        Column::new(name, ColumnType::String)
    }

    pub const fn int64(name: &'static str) -> Self {
        Column::new(name, ColumnType::Int64)
    }

    pub const fn float64(name: &'static str) -> Self {
        Column::new(name, ColumnType::Float64)
    }

    pub const fn timestamp(name: &'static str) -> Self {
        Column::new(name, ColumnType::Timestamp)
    }
}

/// A table: its columns, the key that identifies a row, and how it is stored where storage
/// has a layout (BigQuery partitions and clusters; the local engine ignores both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub table: TableRef,
    pub columns: &'static [Column],
    /// Columns whose values identify a row: [`crate::Warehouse::insert_new_rows`] adds a row only
    /// when no stored row has the same key.
    pub key: &'static [&'static str],
    /// Column whose day partitions the table, if any. Its value must follow from the key (as a
    /// flow's start time is part of what its id hashes), so that
    /// [`crate::Warehouse::insert_new_rows`] may look for stored keys only in the partitions the
    /// new rows fall in.
    pub partition_day: Option<&'static str>,
    pub cluster_by: &'static [&'static str],
}

impl TableDef {
    /// A table without storage layout: small, or read whole.
    pub fn plain(
        table: TableRef,
        columns: &'static [Column],
        key: &'static [&'static str],
    ) -> Self {
        TableDef {
            table,
            columns,
            key,
            partition_day: None,
            cluster_by: &[],
        }
    }

    pub fn column_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().map(|c| c.name)
    }

    /// `CREATE TABLE IF NOT EXISTS` in GoogleSQL, without storage layout.
    pub fn create_sql(&self, naming: &Naming) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.ty.as_sql()))
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({})",
            naming.qualify(&self.table),
            columns.join(", ")
        )
    }
}

/// A row an engine would not store, by its position among the rows offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRow {
    pub index: usize,
    pub reason: String,
}

/// What [`crate::Warehouse::insert_new_rows`] did with the rows it was offered: those not
/// inserted and not refused were stored already (or repeated a key earlier in the same rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    pub inserted: u64,
    pub refused: Vec<RefusedRow>,
}

impl InsertOutcome {
    /// Rows skipped because their key was stored already, out of `offered`.
    pub fn already_stored(&self, offered: usize) -> u64 {
        (offered as u64)
            .saturating_sub(self.inserted)
            .saturating_sub(self.refused.len() as u64)
    }
}
