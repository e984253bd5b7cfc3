//! Names of things in the warehouse: the five logical datasets, validated identifiers and the
//! `TableRef` that every module passes around instead of strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The logical datasets of a project. Locally they are DuckDB schemas of the same name; on
/// BigQuery each maps to the dataset named in the target's `datasets:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dataset {
    Raw,
    Features,
    Models,
    Inferenced,
    Ops,
}

impl Dataset {
    pub const ALL: [Dataset; 5] = [
        Dataset::Raw,
        Dataset::Features,
        Dataset::Models,
        Dataset::Inferenced,
        Dataset::Ops,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Raw => "raw",
            Dataset::Features => "features",
            Dataset::Models => "models",
            Dataset::Inferenced => "inferenced",
            Dataset::Ops => "ops",
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("unknown dataset `{0}`: expected one of raw, features, models, inferenced, ops")]
    UnknownDataset(String),
    #[error(
        "`{0}` is not a valid identifier: use letters, digits and underscores, starting with a letter or underscore (at most 128 characters)"
    )]
    InvalidIdentifier(String),
    #[error("`{0}` is not a table reference: expected `dataset.table`")]
    InvalidTableRef(String),
}

impl FromStr for Dataset {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dataset::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| NameError::UnknownDataset(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for Dataset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dataset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A SQL identifier that is safe to paste into SQL on every engine: `[A-Za-z_][A-Za-z0-9_]*`.
/// Anything that reaches SQL text as a name goes through this type, so no name can carry SQL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier(String);

impl Identifier {
    pub fn new(text: &str) -> Result<Self, NameError> {
        let mut chars = text.chars();
        let valid_start = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid_start && valid_rest && text.len() <= 128 {
            Ok(Identifier(text.to_string()))
        } else {
            Err(NameError::InvalidIdentifier(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Identifier {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Identifier::new(s)
    }
}

impl<'de> Deserialize<'de> for Identifier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Identifier::new(&text).map_err(serde::de::Error::custom)
    }
}

/// A table or model in one of the logical datasets, e.g. `features.netlog_windows`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableRef {
    pub dataset: Dataset,
    pub name: Identifier,
}

impl TableRef {
    pub fn new(dataset: Dataset, name: &str) -> Result<Self, NameError> {
        Ok(TableRef {
            dataset,
            name: Identifier::new(name)?,
        })
    }

    /// A companion table next to this one (staging tables of incremental steps).
    pub fn with_suffix(&self, suffix: &str) -> Result<Self, NameError> {
        TableRef::new(self.dataset, &format!("{}{suffix}", self.name))
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.dataset, self.name)
    }
}

impl FromStr for TableRef {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (dataset, name) = s
            .split_once('.')
            .ok_or_else(|| NameError::InvalidTableRef(s.to_string()))?;
        TableRef::new(dataset.parse()?, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_reject_anything_that_could_carry_sql() {
        for bad in [
            "", "1abc", "a b", "a;drop", "a`b", "a'b", "a.b", "a-b", "naïve",
        ] {
            assert!(Identifier::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "_a", "netlog_events", "A1_b2"] {
            assert_eq!(Identifier::new(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn table_refs_parse_and_print() {
        let t: TableRef = "features.netlog_windows".parse().unwrap();
        assert_eq!(t.dataset, Dataset::Features);
        assert_eq!(t.to_string(), "features.netlog_windows");
        assert!("nowhere.t".parse::<TableRef>().is_err());
        assert!("features".parse::<TableRef>().is_err());
    }
}
