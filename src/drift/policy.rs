//! The retrain policy as a pure function: from the policy metric's measurements of the champion
//! (newest first) and the last retrain, decide whether to retrain now. No I/O, so every rule is
//! unit tested here.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// One measurement of the policy metric on one scored batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    /// NaN when the metric is undefined for the batch (e.g. a zero training median).
    pub value: f64,
    pub scored_rows: u64,
}

/// The policy's settings (from `drift:` in pipelines.yaml).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub threshold: f64,
    pub consecutive: u32,
    pub cooldown: Duration,
    pub min_rows: u64,
}

/// What the policy decided, with the reason a reader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing measured since the last retrain.
    NoMeasurement,
    /// The newest batch has fewer scored windows than `min_rows`.
    InsufficientRows,
    /// Fewer than `consecutive` breaches in a row.
    Watch,
    /// Enough breaches, but the last retrain was less than `cooldown` ago.
    Cooldown,
    Retrain,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::NoMeasurement => "no_measurement",
            Action::InsufficientRows => "insufficient_rows",
            Action::Watch => "watch",
            Action::Cooldown => "cooldown",
            Action::Retrain => "retrain",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub action: Action,
    /// Breaches in a row ending with the newest batch (batches under `min_rows` skipped).
    pub streak: u32,
    /// The newest measurement the decision looked at.
    pub latest: Option<Measurement>,
    /// When the cooldown that blocked a retrain ends.
    pub cooldown_until: Option<DateTime<Utc>>,
    pub reason: String,
}

impl Policy {
    /// A breach is a value strictly above the threshold; an undefined value never breaches.
    pub fn breached(&self, value: f64) -> bool {
        value > self.threshold
    }

    /// `measurements` are the champion's, newest first, each from its own batch, and only
    /// those after the last retrain's batch (a retrain starts the count again).
    pub fn decide(
        &self,
        measurements: &[Measurement],
        last_retrain_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Decision {
        let Some(latest) = measurements.first() else {
            return Decision {
                action: Action::NoMeasurement,
                streak: 0,
                latest: None,
                cooldown_until: None,
                reason: "no batch has been measured since the last retrain".into(),
            };
        };
        let decision = |action, streak, cooldown_until, reason| Decision {
            action,
            streak,
            latest: Some(latest.clone()),
            cooldown_until,
            reason,
        };
        if latest.scored_rows < self.min_rows {
            return decision(
                Action::InsufficientRows,
                0,
                None,
                format!(
                    "the newest batch has {} scored windows, fewer than min_rows {}",
                    latest.scored_rows, self.min_rows
                ),
            );
        }
        let streak = measurements
            .iter()
            .filter(|m| m.scored_rows >= self.min_rows)
            .take_while(|m| self.breached(m.value))
            .count() as u32;
        if streak < self.consecutive {
            return decision(
                Action::Watch,
                streak,
                None,
                format!(
                    "value {:.4} vs threshold {}: {streak} breach(es) in a row of the {} that retrain",
                    latest.value, self.threshold, self.consecutive
                ),
            );
        }
        let cooldown = chrono::Duration::from_std(self.cooldown).unwrap_or(chrono::Duration::MAX);
        if let Some(until) = last_retrain_at
            .and_then(|at| at.checked_add_signed(cooldown))
            .filter(|until| *until > now)
        {
            return decision(
                Action::Cooldown,
                streak,
                Some(until),
                format!(
                    "{streak} breaches in a row, but the last retrain was less than {} ago (cooldown until {})",
                    humantime::format_duration(self.cooldown),
                    until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            );
        }
        decision(
            Action::Retrain,
            streak,
            None,
            format!(
                "{streak} breaches in a row (value {:.4} > threshold {})",
                latest.value, self.threshold
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0).unwrap()
    }

    /// Newest first: `values[0]` is the latest batch.
    fn batches(values: &[(f64, u64)]) -> Vec<Measurement> {
        let n = values.len() as u32;
        values
            .iter()
            .enumerate()
            .map(|(i, &(value, scored_rows))| {
                let slot = (n - i as u32) * 5;
                Measurement {
                    window_from: at(slot),
                    window_to: at(slot + 5),
                    value,
                    scored_rows,
                }
            })
            .collect()
    }

    const POLICY: Policy = Policy {
        threshold: 1.5,
        consecutive: 3,
        cooldown: Duration::from_secs(3600),
        min_rows: 100,
    };

    #[test]
    fn retrains_on_exactly_the_nth_breach_in_a_row() {
        let now = at(59);
        let two = POLICY.decide(&batches(&[(2.0, 500), (1.9, 500), (1.0, 500)]), None, now);
        assert_eq!((two.action, two.streak), (Action::Watch, 2));
        let three = POLICY.decide(
            &batches(&[(2.0, 500), (1.9, 500), (1.6, 500), (1.0, 500)]),
            None,
            now,
        );
        assert_eq!((three.action, three.streak), (Action::Retrain, 3));
    }

    #[test]
    fn a_clear_batch_breaks_the_streak_and_the_threshold_itself_is_not_a_breach() {
        let d = POLICY.decide(
            &batches(&[(2.0, 500), (1.5, 500), (2.0, 500), (2.0, 500)]),
            None,
            at(59),
        );
        assert_eq!((d.action, d.streak), (Action::Watch, 1));
        let nan = POLICY.decide(&batches(&[(f64::NAN, 500); 3]), None, at(59));
        assert_eq!(nan.streak, 0);
    }

    #[test]
    fn small_batches_neither_breach_nor_clear() {
        let latest_small =
            POLICY.decide(&batches(&[(9.0, 10), (2.0, 500), (2.0, 500)]), None, at(59));
        assert_eq!(latest_small.action, Action::InsufficientRows);
        let small_between = POLICY.decide(
            &batches(&[(2.0, 500), (0.1, 10), (2.0, 500), (2.0, 500)]),
            None,
            at(59),
        );
        assert_eq!(
            (small_between.action, small_between.streak),
            (Action::Retrain, 3)
        );
    }

    #[test]
    fn cooldown_blocks_a_second_retrain_until_it_ends() {
        let streak = batches(&[(2.0, 500); 3]);
        let last = at(10);
        let inside = POLICY.decide(&streak, Some(last), at(40));
        assert_eq!(inside.action, Action::Cooldown);
        assert_eq!(
            inside.cooldown_until,
            Some(last + chrono::Duration::hours(1))
        );
        let after = POLICY.decide(&streak, Some(last), last + chrono::Duration::minutes(61));
        assert_eq!(after.action, Action::Retrain);
    }

    #[test]
    fn nothing_measured_is_said_so() {
        assert_eq!(
            POLICY.decide(&[], None, at(0)).action,
            Action::NoMeasurement
        );
    }
}
