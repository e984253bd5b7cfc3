//! Deployment wiring: the environment variables a project needs on a target (every `${VAR}` of
//! pipelines.yaml that applies there) and how the terraform environment provides them — its
//! `netsentinel_env` output (terraform/outputs.tf), which `netsentinel env --from-terraform`
//! prints as shell exports.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Deserialize;

use crate::alerts::config::SinkKind;
use crate::config::{CONFIG_FILE, ConfigError, ProjectConfig, TargetConfig};

/// The terraform output holding the runner's environment, variable name => value.
pub const ENV_OUTPUT: &str = "netsentinel_env";

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(
        "not the JSON of `terraform output -json` ({0}); produce it with `terraform -chdir=terraform output -json`"
    )]
    Json(#[source] serde_json::Error),
    #[error(
        "terraform has no `{ENV_OUTPUT}` output (it has: {found}): run `terraform apply` in terraform/ first"
    )]
    MissingOutput { found: String },
    #[error(
        "terraform output `{ENV_OUTPUT}` must map variable names to strings; `{key}` is {kind}"
    )]
    NotAString { key: String, kind: &'static str },
    #[error("terraform output `{ENV_OUTPUT}` has `{0}`, which is not an environment variable name")]
    BadName(String),
    #[error(
        "terraform output `{ENV_OUTPUT}` is marked sensitive, so its values are not printed; pass --include-sensitive to print them anyway"
    )]
    Sensitive,
    #[error(
        "{CONFIG_FILE} references {} but terraform output `{ENV_OUTPUT}` does not set it: add it to local.netsentinel_env in terraform/main.tf and apply",
        .0.join(", ")
    )]
    Missing(Vec<String>),
}

/// The environment variables pipelines.yaml reads on some target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequiredEnv {
    /// Referenced as `${VAR}`: project ids, topics, URLs.
    pub values: BTreeSet<String>,
    /// Named by `secret_env:`; they belong in a secret store, never in a terraform output.
    pub secrets: BTreeSet<String>,
}

impl RequiredEnv {
    /// What `target` needs, or every target when `None`.
    pub fn of(config: &ProjectConfig, target: Option<&str>) -> Result<Self, ConfigError> {
        let names: Vec<String> = match target {
            Some(name) => vec![config.target(Some(name))?.0.to_string()],
            None => config.targets.keys().cloned().collect(),
        };
        let mut required = RequiredEnv::default();
        for name in &names {
            let (name, target) = config.target(Some(name))?;
            if let TargetConfig::Bigquery(bq) = target {
                required.add_values(bq.project.variables());
                // A key file is a credential: where it lives is the deployment's secret store's
                // business (Cloud Run uses the job's service account instead).
                let key_file = bq.key_file.iter().flat_map(|k| k.variables());
                required.secrets.extend(key_file.map(str::to_string));
            }
            for sink in config.alerts.iter().flat_map(|a| a.sinks_for(name)) {
                match &sink.kind {
                    SinkKind::Pubsub(pubsub) => required.add_values(pubsub.topic.variables()),
                    SinkKind::Webhook(webhook) => {
                        required.add_values(webhook.url.variables());
                        if let Some(secret) = &webhook.secret_env {
                            required.secrets.insert(secret.var().to_string());
                        }
                    }
                    SinkKind::File(_) | SinkKind::Stdout => {}
                }
            }
        }
        Ok(required)
    }

    fn add_values<'a>(&mut self, vars: impl Iterator<Item = &'a str>) {
        self.values.extend(vars.map(str::to_string));
    }

    /// Fails naming the variables `provided` lacks (secrets are not expected there).
    pub fn check(&self, provided: &BTreeMap<String, String>) -> Result<(), DeployError> {
        let missing: Vec<String> = self
            .values
            .iter()
            .filter(|v| !provided.contains_key(*v))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DeployError::Missing(missing))
        }
    }
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    sensitive: bool,
    value: serde_json::Value,
}

/// The `netsentinel_env` map of `terraform output -json`. Its values are returned, never logged:
/// a sensitive output is refused unless `include_sensitive`.
pub fn env_from_terraform_output(
    json: &str,
    include_sensitive: bool,
) -> Result<BTreeMap<String, String>, DeployError> {
    let outputs: BTreeMap<String, Output> =
        serde_json::from_str(json).map_err(DeployError::Json)?;
    let Some(output) = outputs.get(ENV_OUTPUT) else {
        let found: Vec<&str> = outputs.keys().map(String::as_str).collect();
        return Err(DeployError::MissingOutput {
            found: if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            },
        });
    };
    if output.sensitive && !include_sensitive {
        return Err(DeployError::Sensitive);
    }
    let serde_json::Value::Object(map) = &output.value else {
        return Err(DeployError::NotAString {
            key: ENV_OUTPUT.to_string(),
            kind: json_kind(&output.value),
        });
    };
    map.iter()
        .map(|(key, value)| {
            if !is_env_name(key) {
                return Err(DeployError::BadName(key.clone()));
            }
            match value {
                serde_json::Value::String(s) => Ok((key.clone(), s.clone())),
                other => Err(DeployError::NotAString {
                    key: key.clone(),
                    kind: json_kind(other),
                }),
            }
        })
        .collect()
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Names a POSIX shell can export; anything else would break the `eval` the exports are for.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `export NAME='value'` lines for `eval`, then a comment per secret the user must set alone.
pub fn shell_exports(env: &BTreeMap<String, String>, required: &RequiredEnv) -> String {
    let mut out = String::new();
    for (name, value) in env {
        let _ = writeln!(out, "export {name}={}", shell_quote(value));
    }
    for secret in &required.secrets {
        if !env.contains_key(secret) {
            let _ = writeln!(
                out,
                "# {secret} is a secret: set it from your secret store (not a terraform output)"
            );
        }
    }
    out
}

/// Single quotes keep every character literal in POSIX shells; a quote inside ends the string,
/// adds an escaped quote and reopens it.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> ProjectConfig {
        ProjectConfig::parse(std::path::Path::new("pipelines.yaml"), text).unwrap()
    }

    const PROJECT: &str = "project: p\ndefault_target: local\ntargets:\n  local: { engine: duckdb }\n  bigquery: { engine: bigquery, project: '${GCP_PROJECT}', datasets: {}, key_file: '${BQ_KEY_FILE}' }\nalerts:\n  sinks:\n    - { kind: pubsub, topic: 'projects/${ALERTS_PROJECT}/topics/a', targets: [bigquery] }\n    - { kind: webhook, url: '${HOOK_URL}', secret_env: HOOK_SECRET }\n";

    #[test]
    fn required_env_follows_the_target_and_its_sinks() {
        let config = config(PROJECT);
        let local = RequiredEnv::of(&config, Some("local")).unwrap();
        assert_eq!(local.values, BTreeSet::from(["HOOK_URL".to_string()]));
        assert_eq!(local.secrets, BTreeSet::from(["HOOK_SECRET".to_string()]));
        let bigquery = RequiredEnv::of(&config, Some("bigquery")).unwrap();
        let expected = ["ALERTS_PROJECT", "GCP_PROJECT", "HOOK_URL"].map(String::from);
        assert_eq!(bigquery.values, BTreeSet::from(expected));
        let secrets = ["BQ_KEY_FILE", "HOOK_SECRET"].map(String::from);
        assert_eq!(bigquery.secrets, BTreeSet::from(secrets));
        assert_eq!(RequiredEnv::of(&config, None).unwrap(), bigquery);
        assert!(RequiredEnv::of(&config, Some("staging")).is_err());
    }

    #[test]
    fn missing_variables_are_named() {
        let required = RequiredEnv::of(&config(PROJECT), Some("bigquery")).unwrap();
        let provided = BTreeMap::from([("GCP_PROJECT".to_string(), "p".to_string())]);
        let err = required.check(&provided).unwrap_err().to_string();
        assert!(err.contains("ALERTS_PROJECT, HOOK_URL"), "{err}");
        assert!(err.contains("local.netsentinel_env"), "{err}");
    }

    #[test]
    fn sensitive_output_is_refused_without_showing_values() {
        let json = r#"{"netsentinel_env": {"sensitive": true, "type": ["map", "string"], "value": {"TOKEN": "s3cr3t"}}}"#;
        let err = env_from_terraform_output(json, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sensitive") && !err.contains("s3cr3t"),
            "{err}"
        );
        let env = env_from_terraform_output(json, true).unwrap();
        assert_eq!(env["TOKEN"], "s3cr3t");
    }

    #[test]
    fn malformed_outputs_say_what_is_wrong() {
        let err = env_from_terraform_output("{}", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `netsentinel_env` output"), "{err}");
        let err = env_from_terraform_output("not json", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("terraform output -json"), "{err}");
        let json = r#"{"netsentinel_env": {"value": {"A": 1}}}"#;
        let err = env_from_terraform_output(json, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`A` is a number"), "{err}");
        let json = r#"{"netsentinel_env": {"value": {"A B": "x"}}}"#;
        assert!(matches!(
            env_from_terraform_output(json, false),
            Err(DeployError::BadName(name)) if name == "A B"
        ));
    }

    #[test]
    fn exports_survive_shell_metacharacters() {
        let env = BTreeMap::from([("V".to_string(), "it's $HOME `x`".to_string())]);
        let required = RequiredEnv {
            secrets: BTreeSet::from(["HOOK_SECRET".to_string()]),
            ..RequiredEnv::default()
        };
        let out = shell_exports(&env, &required);
        assert_eq!(
            out,
            "export V='it'\\''s $HOME `x`'\n# HOOK_SECRET is a secret: set it from your secret store (not a terraform output)\n"
        );
    }
}
