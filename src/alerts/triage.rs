//! Storm control: which of a run's new anomalies go out. A repeat for the same subscriber and
//! subnet inside the suppression window is suppressed; past the per-run cap the least severe
//! are held, so a storm of marginal windows cannot crowd out the attack. Both are recorded in
//! the outbox with the reason, never dropped.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::message::{Alert, timestamp};
use super::outbox::Disposition;

/// Decides each alert's fate (alerts come oldest window first). `last_sent` holds the latest
/// window already sent per (subscriber, subnet).
pub fn triage(
    alerts: &[Alert],
    last_sent: Vec<(String, String, DateTime<Utc>)>,
    suppress_for: Duration,
    max_per_run: usize,
) -> Vec<Disposition> {
    let incidents = suppress_repeats(alerts, last_sent, suppress_for);
    hold_past_the_cap(alerts, incidents, max_per_run)
}

/// An alert's part in an incident: the alert that opens it, or a repeat within the suppression
/// window of the alert `opened_by` (None when that alert went out in an earlier run).
enum Part {
    Opens,
    Repeats {
        opened_by: Option<usize>,
        reason: String,
    },
}

/// In window order: an alert for a subscriber and subnet that had one within `suppress_for`
/// before it repeats that incident; the others open one.
fn suppress_repeats(
    alerts: &[Alert],
    last_sent: Vec<(String, String, DateTime<Utc>)>,
    suppress_for: Duration,
) -> Vec<Part> {
    let window = chrono::Duration::from_std(suppress_for).unwrap_or(chrono::Duration::MAX);
    let mut last: HashMap<(String, String), (DateTime<Utc>, Option<usize>)> = last_sent
        .into_iter()
        .map(|(subscriber, subnet, at)| ((subscriber, subnet), (at, None)))
        .collect();
    alerts
        .iter()
        .enumerate()
        .map(|(index, alert)| {
            let w = &alert.window;
            let key = (w.subscriber.clone(), w.subnet.clone());
            if let Some(&(previous, opened_by)) = last.get(&key)
                && w.window_start >= previous
                && w.window_start - previous < window
            {
                return Part::Repeats {
                    opened_by,
                    reason: format!(
                        "an alert for this subscriber and subnet was raised for the window at {}, within the suppression window of {}",
                        timestamp(previous),
                        humantime::format_duration(suppress_for)
                    ),
                };
            }
            last.insert(key, (w.window_start, Some(index)));
            Part::Opens
        })
        .collect()
}

/// Sends the `max_per_run` most severe incidents (an incident is as severe as its worst window;
/// the oldest first among equals) and holds the rest; repeats stay suppressed.
fn hold_past_the_cap(alerts: &[Alert], parts: Vec<Part>, max_per_run: usize) -> Vec<Disposition> {
    let mut severity: Vec<f64> = alerts.iter().map(|a| a.excess).collect();
    for (index, part) in parts.iter().enumerate() {
        if let Part::Repeats {
            opened_by: Some(opener),
            ..
        } = part
        {
            severity[*opener] = severity[*opener].max(alerts[index].excess);
        }
    }
    let mut openers: Vec<usize> = (0..alerts.len())
        .filter(|&i| matches!(parts[i], Part::Opens))
        .collect();
    openers.sort_by(|&a, &b| severity[b].total_cmp(&severity[a]).then(a.cmp(&b)));
    let least_kept = openers
        .get(max_per_run.saturating_sub(1))
        .map(|&i| severity[i]);
    let held: std::collections::HashSet<usize> =
        openers.iter().skip(max_per_run).copied().collect();
    parts
        .into_iter()
        .enumerate()
        .map(|(index, part)| match part {
            Part::Repeats { reason, .. } => Disposition::Suppressed(reason),
            Part::Opens if held.contains(&index) => Disposition::Held(format!(
                "the per-run cap of {max_per_run} alerts kept the most severe incidents (down to \
                 {:.2}× the threshold; this one reaches {:.2}×); counted in this run's summary alert",
                least_kept.unwrap_or(f64::INFINITY),
                severity[index]
            )),
            Part::Opens => Disposition::Send,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::message::{Origin, ScoredWindow};
    use chrono::TimeZone;

    fn alert(subscriber: &str, minute: u32) -> Alert {
        severe_alert(subscriber, minute, 2.0)
    }

    fn severe_alert(subscriber: &str, minute: u32, normalized_distance: f64) -> Alert {
        let window = ScoredWindow {
            model_version: 1,
            subscriber: subscriber.into(),
            subnet: "net".into(),
            window_start: Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0).unwrap(),
            window_end: None,
            normalized_distance,
            centroid_id: 1,
            features: Vec::new(),
        };
        let origin = Origin {
            pipeline: "detect",
            target: "local",
            run_id: "r",
            model: "m",
        };
        Alert::new(window, 1.0, &Default::default(), &[], &origin)
    }

    fn kinds(dispositions: &[Disposition]) -> Vec<&'static str> {
        dispositions
            .iter()
            .map(|d| match d {
                Disposition::Send => "send",
                Disposition::Suppressed(_) => "suppressed",
                Disposition::Held(_) => "held",
            })
            .collect()
    }

    #[test]
    fn repeats_inside_the_window_are_suppressed_and_the_window_restarts_after_it() {
        let alerts = [alert("a", 0), alert("a", 5), alert("a", 10), alert("b", 5)];
        let d = triage(&alerts, Vec::new(), Duration::from_secs(600), 100);
        assert_eq!(kinds(&d), ["send", "suppressed", "send", "send"]);
        let Disposition::Suppressed(reason) = &d[1] else {
            unreachable!()
        };
        assert!(
            reason.contains("2026-01-01T00:00:00Z") && reason.contains("10m"),
            "{reason}"
        );
    }

    #[test]
    fn alerts_sent_by_earlier_runs_suppress_too() {
        let earlier = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let d = triage(
            &[alert("a", 3)],
            vec![("a".into(), "net".into(), earlier)],
            Duration::from_secs(300),
            100,
        );
        assert_eq!(kinds(&d), ["suppressed"]);
    }

    #[test]
    fn past_the_cap_the_least_severe_incidents_are_held_and_repeats_stay_suppressed() {
        let alerts = [
            severe_alert("a", 0, 1.5),
            severe_alert("b", 0, 9.0),
            severe_alert("a", 1, 50.0),
            severe_alert("c", 0, 3.0),
            severe_alert("d", 0, 1.2),
        ];
        let d = triage(&alerts, Vec::new(), Duration::from_secs(300), 2);
        // a's incident reaches 50× in its repeat, so it goes out before b's and c's.
        assert_eq!(kinds(&d), ["send", "send", "suppressed", "held", "held"]);
        let Disposition::Held(reason) = &d[3] else {
            unreachable!()
        };
        assert!(
            reason.contains("down to 9.00×") && reason.contains("reaches 3.00×"),
            "{reason}"
        );
    }

    #[test]
    fn under_the_cap_nothing_is_held() {
        let alerts = [severe_alert("a", 0, 1.1), severe_alert("b", 0, 30.0)];
        let d = triage(&alerts, Vec::new(), Duration::from_secs(300), 2);
        assert_eq!(kinds(&d), ["send", "send"]);
    }

    #[test]
    fn zero_suppression_sends_every_alert() {
        let alerts = [alert("a", 0), alert("a", 1)];
        let d = triage(&alerts, Vec::new(), Duration::ZERO, 100);
        assert_eq!(kinds(&d), ["send", "send"]);
    }
}
