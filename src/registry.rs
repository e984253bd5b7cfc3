//! The model registry for versioned models (`ops.model_registry`): the model named in
//! `drift.model` is trained as `<name>_v<N>`, each version is registered with its training rows,
//! window range and holdout metrics, and it becomes the champion only if it passes the
//! promotion gate (Davies–Bouldin on the holdout no worse than the champion's, within a
//! tolerance); otherwise it stays a challenger with the reason. `model("<name>")` renders the
//! champion. Other model steps keep one name and the plain registration of `state`.

use std::collections::BTreeMap;

use crate::drift::config::PromotionConfig;
use crate::project::{Materialization, Project};
use crate::state;
use netsentinel_core::Naming;
use netsentinel_core::relation::TableRef;
use netsentinel_core::sql::quote_string;
use netsentinel_core::{Cell, EngineError, ResultSet, Warehouse};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(
        "drift.promotion.training_set names `{0}`, but no step under sql/ builds a table or view of that name"
    )]
    UnknownTrainingSet(String),
    #[error(
        "`{0}` is not a registered version: `netsentinel models` lists them (e.g. netlog_kmeans_v3)"
    )]
    UnknownVersion(String),
    #[error("`{0}` is already the champion")]
    AlreadyChampion(String),
}

pub const CHAMPION: &str = "champion";
pub const CHALLENGER: &str = "challenger";
pub const RETIRED: &str = "retired";

/// The model that is versioned: the one the drift policy watches.
pub fn is_versioned(project: &Project, model: &TableRef) -> bool {
    project
        .config
        .drift
        .as_ref()
        .is_some_and(|d| d.model == model.name)
        && project
            .step_for(model)
            .is_some_and(|s| s.config.materialized == Materialization::Model)
}

/// `models.netlog_kmeans` version 3 is the model `models.netlog_kmeans_v3`.
pub fn versioned(model: &TableRef, version: i64) -> TableRef {
    model
        .with_suffix(&format!("_v{version}"))
        .expect("a model name with a version suffix is an identifier")
}

/// Versions of a versioned model that a render needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub champion: Option<i64>,
    /// The version a model step run now builds.
    pub training: i64,
}

impl Versions {
    /// What `model()` reads: the champion, or before any, the version being trained.
    pub fn serving(self) -> i64 {
        self.champion.unwrap_or(self.training)
    }
}

/// The versions of every versioned model, by model name, for rendering.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelVersions(BTreeMap<String, Versions>);

impl ModelVersions {
    /// Version 1 of each versioned model, as a first run creates it: what `compile` writes and
    /// the SQL unit tests (fresh databases) run.
    pub fn first(project: &Project) -> Self {
        ModelVersions(
            versioned_models(project)
                .map(|m| {
                    (
                        m.name.to_string(),
                        Versions {
                            champion: None,
                            training: 1,
                        },
                    )
                })
                .collect(),
        )
    }

    /// The registry's champions; a model step of run `run_id` builds the version that run
    /// registered already (a resumed run), else the next one.
    pub fn load(
        warehouse: &mut dyn Warehouse,
        project: &Project,
        run_id: &str,
    ) -> Result<Self, EngineError> {
        let models: Vec<TableRef> = versioned_models(project).collect();
        if models.is_empty() {
            return Ok(ModelVersions::default());
        }
        let naming = warehouse.naming().clone();
        let rows = warehouse.query(&format!(
            "SELECT model_name, version, status, run_id FROM {} WHERE model_name IN ({})",
            naming.qualify(&state::model_registry()),
            models
                .iter()
                .map(|m| quote_string(m.name.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
        let mut versions = BTreeMap::new();
        for model in &models {
            let mine = rows
                .rows
                .iter()
                .filter(|r| matches!(&r[0], Cell::Text(n) if n == model.name.as_str()));
            let (mut champion, mut latest, mut this_run) = (None, 0, None);
            for row in mine {
                let version = row[1].as_i64().unwrap_or(0);
                latest = latest.max(version);
                if matches!(&row[2], Cell::Text(s) if s == CHAMPION) {
                    champion = Some(version);
                }
                if matches!(&row[3], Cell::Text(r) if r == run_id) {
                    this_run = Some(version);
                }
            }
            versions.insert(
                model.name.to_string(),
                Versions {
                    champion,
                    training: this_run.unwrap_or(latest + 1),
                },
            );
        }
        Ok(ModelVersions(versions))
    }

    pub fn get(&self, model: &str) -> Option<Versions> {
        self.0.get(model).copied()
    }

    /// True when the project versions no model.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn versioned_models(project: &Project) -> impl Iterator<Item = TableRef> + '_ {
    project
        .steps
        .values()
        .map(|s| s.relation.clone())
        .filter(|r| is_versioned(project, r))
}

/// The relation and version scoring reads for `model`: the champion of a versioned model, the
/// model itself (and its latest registered version) otherwise.
pub fn serving(
    warehouse: &mut dyn Warehouse,
    project: &Project,
    model: &TableRef,
) -> Result<(TableRef, i64), EngineError> {
    let naming = warehouse.naming().clone();
    let registry = naming.qualify(&state::model_registry());
    let name = quote_string(model.name.as_str());
    if is_versioned(project, model) {
        let champion = warehouse
            .query(&format!(
                "SELECT MAX(version) FROM {registry} WHERE model_name = {name} AND status = '{CHAMPION}'"
            ))?
            .scalar()
            .and_then(Cell::as_i64)
            .unwrap_or(0);
        return Ok((versioned(model, champion), champion));
    }
    let latest = warehouse
        .query(&format!(
            "SELECT MAX(version) FROM {registry} WHERE model_name = {name}"
        ))?
        .scalar()
        .and_then(Cell::as_i64)
        .unwrap_or(0);
    Ok((model.clone(), latest))
}

/// Where a new version ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Champion,
    Challenger,
}

impl Verdict {
    pub fn status(self) -> &'static str {
        match self {
            Verdict::Champion => CHAMPION,
            Verdict::Challenger => CHALLENGER,
        }
    }
}

/// A model's quality on the holdout (ML.EVALUATE); NaN or missing when undefined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub davies_bouldin_index: Option<f64>,
    pub mean_squared_distance: Option<f64>,
}

/// The promotion gate: a new version replaces the champion only if its Davies–Bouldin index on
/// the holdout is no worse than the champion's on the same rows, by at most `tolerance`
/// (relative). Lower Davies–Bouldin is better.
pub fn gate(
    challenger: Option<f64>,
    champion: Option<(i64, Option<f64>)>,
    tolerance: f64,
    holdout_rows: i64,
) -> (Verdict, String) {
    let Some((champion_version, champion_db)) = champion else {
        return (
            Verdict::Champion,
            "first version: there is no champion to compare with".into(),
        );
    };
    let Some(challenger) = challenger.filter(|v| v.is_finite()) else {
        return (
            Verdict::Challenger,
            format!(
                "Davies–Bouldin is undefined on the holdout ({holdout_rows} rows), so nothing shows it is no worse than champion v{champion_version}"
            ),
        );
    };
    let Some(champion_db) = champion_db.filter(|v| v.is_finite()) else {
        return (
            Verdict::Champion,
            format!(
                "Davies–Bouldin {challenger:.4} on {holdout_rows} holdout rows; champion v{champion_version}'s is undefined there"
            ),
        );
    };
    let limit = champion_db * (1.0 + tolerance);
    if challenger <= limit {
        (
            Verdict::Champion,
            format!(
                "Davies–Bouldin {challenger:.4} on {holdout_rows} holdout rows is no worse than champion v{champion_version}'s {champion_db:.4} (tolerance {tolerance})"
            ),
        )
    } else {
        (
            Verdict::Challenger,
            format!(
                "Davies–Bouldin {challenger:.4} on {holdout_rows} holdout rows is worse than champion v{champion_version}'s {champion_db:.4} by more than the tolerance {tolerance} (limit {limit:.4})"
            ),
        )
    }
}

/// What registering a new version decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    pub model: TableRef,
    pub version: i64,
    pub verdict: Verdict,
    pub reason: String,
}

impl Registered {
    pub fn note(&self) -> String {
        format!(
            "{} v{}: {} — {}",
            self.model.name,
            self.version,
            self.verdict.status(),
            self.reason
        )
    }
}

/// Registers version `version` of `model`, which the model step of `run_id` just built: its
/// training rows and range from the training set, its holdout metrics, and the gate's verdict.
/// A resumed run that registered it already gets the recorded verdict back.
pub fn register(
    warehouse: &mut dyn Warehouse,
    project: &Project,
    promotion: &PromotionConfig,
    model: &TableRef,
    version: i64,
    run_id: &str,
) -> Result<Registered, RegistryError> {
    let naming = warehouse.naming().clone();
    let registry = naming.qualify(&state::model_registry());
    let name = quote_string(model.name.as_str());
    let run = quote_string(run_id);
    let recorded = warehouse.query(&format!(
        "SELECT status, reason FROM {registry} WHERE model_name = {name} AND run_id = {run}"
    ))?;
    if let Some([Cell::Text(status), reason]) = recorded.rows.first().map(Vec::as_slice) {
        return Ok(Registered {
            model: model.clone(),
            version,
            verdict: if status == CHAMPION {
                Verdict::Champion
            } else {
                Verdict::Challenger
            },
            reason: match reason {
                Cell::Text(r) => r.clone(),
                _ => String::new(),
            },
        });
    }
    let training_set = project
        .steps
        .values()
        .find(|s| {
            s.relation.name == promotion.training_set
                && s.config.materialized != Materialization::Model
        })
        .map(|s| naming.qualify(&s.relation))
        .ok_or_else(|| RegistryError::UnknownTrainingSet(promotion.training_set.to_string()))?;
    let stats = warehouse.query(&format!(
        "SELECT COUNTIF(NOT holdout), COUNTIF(holdout), MIN(window_start), MAX(window_end) FROM {training_set}"
    ))?;
    let stats = stats.rows.first().cloned().unwrap_or_default();
    let cell = |i: usize| stats.get(i).cloned().unwrap_or(Cell::Null);
    let holdout_rows = cell(1).as_i64().unwrap_or(0);
    let challenger = versioned(model, version);
    let evaluation = evaluate(warehouse, &naming, &challenger, &training_set, holdout_rows)?;
    let champion = warehouse
        .query(&format!(
            "SELECT MAX(version) FROM {registry} WHERE model_name = {name} AND status = '{CHAMPION}'"
        ))?
        .scalar()
        .and_then(Cell::as_i64);
    let champion_evaluation = match champion {
        Some(v) => Some(evaluate(
            warehouse,
            &naming,
            &versioned(model, v),
            &training_set,
            holdout_rows,
        )?),
        None => None,
    };
    let (verdict, reason) = gate(
        evaluation.davies_bouldin_index,
        champion.map(|v| (v, champion_evaluation.and_then(|e| e.davies_bouldin_index))),
        promotion.tolerance,
        holdout_rows,
    );
    let float = |v: Option<f64>| Cell::Float(v.unwrap_or(f64::NAN)).to_sql_literal();
    let retire = if verdict == Verdict::Champion {
        format!(
            "UPDATE {registry} SET status = '{RETIRED}', status_changed_at = CURRENT_TIMESTAMP() WHERE model_name = {name} AND status = '{CHAMPION}';\n"
        )
    } else {
        String::new()
    };
    warehouse.execute_script(&format!(
        "{retire}INSERT INTO {registry} (model_name, version, relation, run_id, trained_at, status, training_rows, holdout_rows, training_from, training_to, davies_bouldin_index, mean_squared_distance, compared_with, champion_davies_bouldin_index, reason, status_changed_at)\n\
         VALUES ({name}, {version}, {relation}, {run}, CURRENT_TIMESTAMP(), '{status}', {training_rows}, {holdout_rows}, {from}, {to}, {db}, {msd}, {compared}, {champion_db}, {reason}, CURRENT_TIMESTAMP())",
        relation = quote_string(&challenger.to_string()),
        status = verdict.status(),
        training_rows = cell(0).to_sql_literal(),
        from = timestamp_literal(&cell(2)),
        to = timestamp_literal(&cell(3)),
        db = float(evaluation.davies_bouldin_index),
        msd = float(evaluation.mean_squared_distance),
        compared = champion.map_or("CAST(NULL AS INT64)".to_string(), |v| v.to_string()),
        champion_db = float(champion_evaluation.and_then(|e| e.davies_bouldin_index)),
        reason = quote_string(&reason),
    ))?;
    tracing::info!(model = %model.name, version, verdict = verdict.status(), %reason, "model registered");
    Ok(Registered {
        model: model.clone(),
        version,
        verdict,
        reason,
    })
}

fn timestamp_literal(cell: &Cell) -> String {
    match cell {
        Cell::Timestamp(_) => cell.to_sql_literal(),
        _ => "CAST(NULL AS TIMESTAMP)".to_string(),
    }
}

/// ML.EVALUATE of `model` on the training set's holdout rows, given exactly the model's input
/// columns (ML.FEATURE_INFO), so the holdout's keys and flags never reach the model.
fn evaluate(
    warehouse: &mut dyn Warehouse,
    naming: &Naming,
    model: &TableRef,
    training_set: &str,
    holdout_rows: i64,
) -> Result<Evaluation, EngineError> {
    if holdout_rows == 0 {
        return Ok(Evaluation {
            davies_bouldin_index: None,
            mean_squared_distance: None,
        });
    }
    let qualified = naming.qualify(model);
    let features: Vec<String> = warehouse
        .query(&format!(
            "SELECT input FROM ML.FEATURE_INFO(MODEL {qualified})"
        ))?
        .rows
        .into_iter()
        .filter_map(|r| match r.into_iter().next() {
            Some(Cell::Text(input)) => netsentinel_core::relation::Identifier::new(&input).ok(),
            _ => None,
        })
        .map(|i| i.to_string())
        .collect();
    let result = warehouse.query(&format!(
        "SELECT davies_bouldin_index, mean_squared_distance FROM ML.EVALUATE(MODEL {qualified}, (SELECT {} FROM {training_set} WHERE holdout))",
        features.join(", ")
    ))?;
    let row = result.rows.first().cloned().unwrap_or_default();
    let metric = |i: usize| row.get(i).and_then(Cell::as_f64).filter(|v| v.is_finite());
    Ok(Evaluation {
        davies_bouldin_index: metric(0),
        mean_squared_distance: metric(1),
    })
}

/// Every registered version, for `netsentinel models`.
pub fn list(warehouse: &mut dyn Warehouse) -> Result<ResultSet, EngineError> {
    state::create_tables(warehouse)?;
    let naming = warehouse.naming().clone();
    warehouse.query(&format!(
        "SELECT relation AS model, version, status, trained_at, training_rows, training_from, training_to, \
         ROUND(davies_bouldin_index, 4) AS davies_bouldin, ROUND(mean_squared_distance, 4) AS mean_sq_distance, reason \
         FROM {} ORDER BY model_name, version",
        naming.qualify(&state::model_registry())
    ))
}

/// Makes a registered version the champion by hand (a rollback or a roll forward); the
/// champion it replaces is retired. `version` is `netlog_kmeans_v3`, `models.netlog_kmeans_v3`
/// or `3` (of the versioned model).
pub fn promote(
    warehouse: &mut dyn Warehouse,
    project: &Project,
    version: &str,
) -> Result<Registered, RegistryError> {
    let unknown = || RegistryError::UnknownVersion(version.to_string());
    let (model, number) = parse_version(project, version).ok_or_else(unknown)?;
    let naming = warehouse.naming().clone();
    let registry = naming.qualify(&state::model_registry());
    let name = quote_string(model.name.as_str());
    let status = warehouse
        .query(&format!(
            "SELECT status FROM {registry} WHERE model_name = {name} AND version = {number}"
        ))?
        .scalar()
        .cloned();
    let previous = match status {
        Some(Cell::Text(s)) if s == CHAMPION => {
            return Err(RegistryError::AlreadyChampion(
                versioned(&model, number).name.to_string(),
            ));
        }
        Some(Cell::Text(s)) => s,
        _ => return Err(unknown()),
    };
    let reason = format!("promoted by hand (was {previous})");
    warehouse.execute_script(&format!(
        "UPDATE {registry} SET status = '{RETIRED}', status_changed_at = CURRENT_TIMESTAMP() WHERE model_name = {name} AND status = '{CHAMPION}';\n\
         UPDATE {registry} SET status = '{CHAMPION}', reason = {reason}, status_changed_at = CURRENT_TIMESTAMP() WHERE model_name = {name} AND version = {number}",
        reason = quote_string(&reason),
    ))?;
    Ok(Registered {
        model,
        version: number,
        verdict: Verdict::Champion,
        reason,
    })
}

fn parse_version(project: &Project, text: &str) -> Option<(TableRef, i64)> {
    let text = text.strip_prefix("models.").unwrap_or(text);
    let models: Vec<TableRef> = versioned_models(project).collect();
    if let Ok(number) = text.parse::<i64>() {
        return match models.as_slice() {
            [only] => Some((only.clone(), number)),
            _ => None,
        };
    }
    let (base, number) = text.rsplit_once("_v")?;
    let number = number.parse::<i64>().ok()?;
    models
        .into_iter()
        .find(|m| m.name.as_str() == base)
        .map(|m| (m, number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_version_is_champion_without_comparison() {
        let (verdict, reason) = gate(Some(1.2), None, 0.05, 100);
        assert_eq!(verdict, Verdict::Champion);
        assert!(reason.contains("first version"), "{reason}");
    }

    #[test]
    fn a_worse_challenger_beyond_the_tolerance_stays_a_challenger() {
        let (verdict, reason) = gate(Some(1.2), Some((3, Some(1.0))), 0.1, 250);
        assert_eq!(verdict, Verdict::Challenger);
        assert!(
            reason.contains("1.2000") && reason.contains("v3") && reason.contains("1.0000"),
            "{reason}"
        );
        let (within, _) = gate(Some(1.09), Some((3, Some(1.0))), 0.1, 250);
        assert_eq!(within, Verdict::Champion);
        let (better, _) = gate(Some(0.7), Some((3, Some(1.0))), 0.0, 250);
        assert_eq!(better, Verdict::Champion);
    }

    #[test]
    fn undefined_metrics_never_promote_blindly() {
        assert_eq!(
            gate(Some(f64::NAN), Some((1, Some(1.0))), 0.1, 0).0,
            Verdict::Challenger
        );
        assert_eq!(
            gate(None, Some((1, Some(1.0))), 0.1, 0).0,
            Verdict::Challenger
        );
        assert_eq!(
            gate(Some(1.0), Some((1, None)), 0.1, 10).0,
            Verdict::Champion
        );
    }

    #[test]
    fn versions_are_suffixed_names() {
        let model: TableRef = "models.netlog_kmeans".parse().unwrap();
        assert_eq!(versioned(&model, 3).to_string(), "models.netlog_kmeans_v3");
        let v = Versions {
            champion: None,
            training: 1,
        };
        assert_eq!(v.serving(), 1);
        let v = Versions {
            champion: Some(2),
            training: 4,
        };
        assert_eq!(v.serving(), 2);
    }
}
