//! Storm control: which of a run's new anomalies go out. A repeat for the same subscriber and
//! subnet inside the suppression window is suppressed; past the per-run cap the rest are held.
//! Both are recorded in the outbox with the reason, never dropped.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::message::{Alert, timestamp};
use super::outbox::Disposition;

/// Decides each alert's fate, in order (alerts come oldest window first). `last_sent` holds
/// the latest window already sent per (subscriber, subnet).
pub fn triage(
    alerts: &[Alert],
    last_sent: Vec<(String, String, DateTime<Utc>)>,
    suppress_for: Duration,
    max_per_run: usize,
) -> Vec<Disposition> {
    let window = chrono::Duration::from_std(suppress_for).unwrap_or(chrono::Duration::MAX);
    let mut last: HashMap<(String, String), DateTime<Utc>> = last_sent
        .into_iter()
        .map(|(subscriber, subnet, at)| ((subscriber, subnet), at))
        .collect();
    let mut sent = 0;
    alerts
        .iter()
        .map(|alert| {
            let w = &alert.window;
            let key = (w.subscriber.clone(), w.subnet.clone());
            if let Some(previous) = last.get(&key)
                && w.window_start >= *previous
                && w.window_start - *previous < window
            {
                return Disposition::Suppressed(format!(
                    "an alert for this subscriber and subnet went out for the window at {}, within the suppression window of {}",
                    timestamp(*previous),
                    humantime::format_duration(suppress_for)
                ));
            }
            if sent >= max_per_run {
                return Disposition::Held(format!(
                    "the per-run cap of {max_per_run} alerts was reached; counted in this run's summary alert"
                ));
            }
            sent += 1;
            last.insert(key, w.window_start);
            Disposition::Send
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::message::{Origin, ScoredWindow};
    use chrono::TimeZone;

    fn alert(subscriber: &str, minute: u32) -> Alert {
        let window = ScoredWindow {
            model_version: 1,
            subscriber: subscriber.into(),
            subnet: "net".into(),
            window_start: Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0).unwrap(),
            window_end: None,
            normalized_distance: 2.0,
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
    fn past_the_cap_alerts_are_held_and_suppression_still_applies_first() {
        let alerts = [alert("a", 0), alert("b", 0), alert("a", 1), alert("c", 0)];
        let d = triage(&alerts, Vec::new(), Duration::from_secs(300), 2);
        assert_eq!(kinds(&d), ["send", "send", "suppressed", "held"]);
    }

    #[test]
    fn zero_suppression_sends_every_alert() {
        let alerts = [alert("a", 0), alert("a", 1)];
        let d = triage(&alerts, Vec::new(), Duration::ZERO, 100);
        assert_eq!(kinds(&d), ["send", "send"]);
    }
}
