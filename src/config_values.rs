//! Value types that several sections of pipelines.yaml share: strings with `${ENV_VAR}`
//! references resolved only when used, and durations written for humans. A leaf: it knows no
//! section.

use serde::{Deserialize, Deserializer};

/// The project's configuration file, at the project root.
pub const CONFIG_FILE: &str = "pipelines.yaml";

/// A `${VAR}` reference whose variable is not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "target `{target}` needs the environment variable {var} (referenced as ${{{var}}} in {})",
    CONFIG_FILE
)]
pub struct MissingEnv {
    pub target: String,
    pub var: String,
}

/// A string that may hold `${ENV_VAR}` references, resolved only when the value is used, so that
/// a project without cloud settings still loads and runs locally.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct EnvString(String);

impl EnvString {
    /// The text as written, `${VAR}` references unresolved.
    pub fn unresolved(&self) -> &str {
        &self.0
    }

    /// The environment variables the text references, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.0.split("${").skip(1).filter_map(|rest| {
            let var = &rest[..rest.find('}').unwrap_or(rest.len())];
            (!var.is_empty()).then_some(var)
        })
    }

    pub fn resolve(&self, target: &str) -> Result<String, MissingEnv> {
        self.resolve_with(target, |var| std::env::var(var).ok())
    }

    fn resolve_with(
        &self,
        target: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<String, MissingEnv> {
        let mut out = String::new();
        let mut rest = self.0.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').unwrap_or(after.len());
            let var = &after[..end];
            let value = lookup(var).ok_or_else(|| MissingEnv {
                target: target.to_string(),
                var: var.to_string(),
            })?;
            out.push_str(&value);
            rest = after.get(end + 1..).unwrap_or("");
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A duration written for humans in pipelines.yaml: `30s`, `15m`, `1h`.
pub fn human_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<std::time::Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}); write e.g. 30s, 15m, 1h"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_strings_resolve_lazily_and_name_the_missing_variable() {
        let s = EnvString("proj-${ENV_A}-x".into());
        let ok = s.resolve_with("bq", |v| (v == "ENV_A").then(|| "1".to_string()));
        assert_eq!(ok.unwrap(), "proj-1-x");
        let err = s.resolve_with("bq", |_| None).unwrap_err().to_string();
        assert!(err.contains("ENV_A"), "{err}");
        let two = EnvString("projects/${P}/topics/t-${ENV}".into());
        assert_eq!(two.variables().collect::<Vec<_>>(), ["P", "ENV"]);
    }
}
