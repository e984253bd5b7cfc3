//! Typed project variables: declared in pipelines.yaml, overridden with `--var key=value`, and
//! rendered into SQL only as literals of their declared type, so a value can never become SQL.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use netsentinel_core::Identifier;
use netsentinel_core::sql::quote_string;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarType {
    Int,
    Float,
    Bool,
    String,
    /// A name rendered as a backtick-quoted identifier (validated, never quoted text).
    Identifier,
}

impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VarType::Int => "int",
            VarType::Float => "float",
            VarType::Bool => "bool",
            VarType::String => "string",
            VarType::Identifier => "identifier",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum VarValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    String(String),
    Identifier(Identifier),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VarError {
    #[error("var `{name}`: `{value}` is not a valid {expected}")]
    WrongType {
        name: String,
        value: String,
        expected: VarType,
    },
    #[error("unknown var `{name}`: declared vars are {declared}")]
    Unknown { name: String, declared: String },
    #[error("--var expects key=value, got `{0}`")]
    Malformed(String),
}

impl VarValue {
    /// Parses text (a `--var` override) as a value of `ty`.
    pub fn parse(name: &str, ty: VarType, text: &str) -> Result<Self, VarError> {
        let wrong = || VarError::WrongType {
            name: name.to_string(),
            value: text.to_string(),
            expected: ty,
        };
        match ty {
            VarType::Int => text.trim().parse().map(VarValue::Int).map_err(|_| wrong()),
            VarType::Float => match text.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(VarValue::Float(v)),
                _ => Err(wrong()),
            },
            VarType::Bool => match text.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(VarValue::Bool(true)),
                "false" => Ok(VarValue::Bool(false)),
                _ => Err(wrong()),
            },
            VarType::String => Ok(VarValue::String(text.to_string())),
            VarType::Identifier => Identifier::new(text)
                .map(VarValue::Identifier)
                .map_err(|_| wrong()),
        }
    }

    /// Converts a YAML default to a value of `ty`.
    pub fn from_yaml(name: &str, ty: VarType, value: &serde_yaml::Value) -> Result<Self, VarError> {
        let text = match value {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            other => serde_yaml::to_string(other).unwrap_or_default(),
        };
        if ty == VarType::Int && matches!(value, serde_yaml::Value::Number(n) if !n.is_i64()) {
            return Err(VarError::WrongType {
                name: name.to_string(),
                value: text,
                expected: ty,
            });
        }
        VarValue::parse(name, ty, &text)
    }

    /// The GoogleSQL literal for this value. Strings use backslash escapes, the form GoogleSQL
    /// defines; the local engine re-prints literals through its parser, so they stay literals.
    pub fn to_sql_literal(&self) -> String {
        match self {
            VarValue::Int(v) => v.to_string(),
            VarValue::Float(v) => {
                let text = format!("{v:?}");
                if text.contains(['.', 'e', 'E']) {
                    text
                } else {
                    format!("{text}.0")
                }
            }
            VarValue::Bool(v) => if *v { "TRUE" } else { "FALSE" }.to_string(),
            VarValue::String(s) => quote_string(s),
            VarValue::Identifier(id) => format!("`{id}`"),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            VarValue::Int(v) => (*v).into(),
            VarValue::Float(v) => (*v).into(),
            VarValue::Bool(v) => (*v).into(),
            VarValue::String(s) => s.clone().into(),
            VarValue::Identifier(id) => id.as_str().into(),
        }
    }
}

/// The values in force for one invocation: declared defaults overridden by `--var`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars(BTreeMap<String, VarValue>);

impl Vars {
    pub fn new(values: BTreeMap<String, VarValue>) -> Self {
        Vars(values)
    }

    pub fn get(&self, name: &str) -> Option<&VarValue> {
        self.0.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &VarValue)> {
        self.0.iter()
    }

    /// Applies `key=value` overrides, typed by the declarations.
    pub fn with_overrides(
        mut self,
        declared: &BTreeMap<String, VarType>,
        overrides: &[String],
    ) -> Result<Self, VarError> {
        for item in overrides {
            let (name, text) = item
                .split_once('=')
                .ok_or_else(|| VarError::Malformed(item.clone()))?;
            let name = name.trim();
            let ty = declared.get(name).ok_or_else(|| VarError::Unknown {
                name: name.to_string(),
                declared: declared.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
            self.0
                .insert(name.to_string(), VarValue::parse(name, *ty, text)?);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_render_as_one_literal_whatever_they_hold() {
        let hostile = "x'; DROP TABLE raw.netlog_events; --\\";
        let literal = VarValue::String(hostile.into()).to_sql_literal();
        assert_eq!(literal, r"'x\'; DROP TABLE raw.netlog_events; --\\'");
        let tokens =
            sqlparser::tokenizer::Tokenizer::new(&sqlparser::dialect::BigQueryDialect {}, &literal)
                .tokenize()
                .unwrap();
        assert_eq!(tokens.len(), 1, "{tokens:?}");
        match &tokens[0] {
            sqlparser::tokenizer::Token::SingleQuotedString(s) => assert_eq!(s, hostile),
            other => panic!("not a string literal: {other:?}"),
        }
    }

    #[test]
    fn typed_values_reject_text_of_another_type() {
        assert_eq!(
            VarValue::parse("n", VarType::Int, "60").unwrap(),
            VarValue::Int(60)
        );
        assert!(VarValue::parse("n", VarType::Int, "60; DROP").is_err());
        assert!(VarValue::parse("c", VarType::Float, "NaN").is_err());
        assert!(VarValue::parse("c", VarType::Float, "0.01 OR 1=1").is_err());
        assert!(VarValue::parse("t", VarType::Identifier, "a`; DROP").is_err());
        assert_eq!(VarValue::Float(1.0).to_sql_literal(), "1.0");
        assert_eq!(VarValue::Float(0.01).to_sql_literal(), "0.01");
        assert_eq!(VarValue::Bool(true).to_sql_literal(), "TRUE");
    }

    #[test]
    fn overrides_are_typed_by_declaration() {
        let declared = BTreeMap::from([("window_seconds".to_string(), VarType::Int)]);
        let vars = Vars::default()
            .with_overrides(&declared, &["window_seconds=30".into()])
            .unwrap();
        assert_eq!(vars.get("window_seconds"), Some(&VarValue::Int(30)));
        assert!(matches!(
            Vars::default().with_overrides(&declared, &["nope=1".into()]),
            Err(VarError::Unknown { .. })
        ));
        assert!(matches!(
            Vars::default().with_overrides(&declared, &["window_seconds".into()]),
            Err(VarError::Malformed(_))
        ));
    }
}
