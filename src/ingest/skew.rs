//! The wall-clock guard. An event dated further ahead of this machine's clock than the allowed
//! skew is quarantined as a reject with its reason, never stored: one exporter with a wrong clock
//! would otherwise move every event-time bound (follow mode's lateness watermark, the newest
//! window an incremental step starts from) into the future, and all real traffic after it would
//! look late or scored already. The raw line stays in the reject, to ingest again once the
//! sender's clock is fixed.

use std::time::Duration;

use chrono::{DateTime, Utc};

use netsentinel_core::event::NetlogEvent;

use super::parse::Rejection;
use crate::vars::{VarValue, Vars};

/// The project var that sets the allowed skew, in seconds.
pub const MAX_CLOCK_SKEW_VAR: &str = "max_clock_skew_seconds";

/// Used when the project does not declare the var: exporters' clocks drift by seconds, and a
/// flow is exported after it ends, so a few minutes ahead is already a broken clock.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockGuard {
    pub max_skew: Duration,
}

impl Default for ClockGuard {
    fn default() -> Self {
        ClockGuard {
            max_skew: DEFAULT_MAX_CLOCK_SKEW,
        }
    }
}

impl ClockGuard {
    /// The var `max_clock_skew_seconds` when declared (a negative value counts as zero).
    pub fn from_vars(vars: &Vars) -> Self {
        match vars.get(MAX_CLOCK_SKEW_VAR) {
            Some(VarValue::Int(seconds)) => ClockGuard {
                max_skew: Duration::from_secs((*seconds).max(0) as u64),
            },
            _ => ClockGuard::default(),
        }
    }

    /// The newest event time accepted at `now`, at most the largest TIMESTAMP BigQuery holds
    /// (so a huge skew, meaning "no check", still makes a valid SQL literal).
    pub fn latest_allowed(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let largest_timestamp =
            DateTime::from_timestamp(253_402_300_799, 0).expect("9999-12-31T23:59:59Z is valid");
        chrono::Duration::from_std(self.max_skew)
            .ok()
            .and_then(|skew| now.checked_add_signed(skew))
            .map_or(largest_timestamp, |latest| latest.min(largest_timestamp))
    }

    /// The event, or why it is quarantined: the first of its times that lies too far ahead.
    pub fn admit(&self, event: NetlogEvent, now: DateTime<Utc>) -> Result<NetlogEvent, Rejection> {
        let latest = self.latest_allowed(now);
        let ahead = [("startTime", event.start_time), ("endTime", event.end_time)]
            .into_iter()
            .find(|(_, time)| *time > latest);
        match ahead {
            None => Ok(event),
            Some((field, time)) => Err(Rejection::field(
                field,
                format!(
                    "{} is {} ahead of the clock here ({}), more than the {} s allowed \
                     ({MAX_CLOCK_SKEW_VAR}): quarantined so it cannot move event time forward; \
                     fix the sender's clock and ingest the line again",
                    time.to_rfc3339(),
                    humantime::format_duration(Duration::from_secs(
                        (time - now).num_seconds().max(0) as u64
                    )),
                    now.to_rfc3339(),
                    self.max_skew.as_secs()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::parse_json_line;

    fn event(start: &str, end: &str) -> NetlogEvent {
        parse_json_line(&format!(
            r#"{{"subscriberId":"s1","srcIP":"10.0.0.1","dstIP":"10.0.1.1","srcPort":1,"dstPort":2,
               "txBytes":1,"rxBytes":1,"startTime":"{start}","endTime":"{end}"}}"#
        ))
        .unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn events_up_to_the_allowed_skew_ahead_are_admitted() {
        let guard = ClockGuard {
            max_skew: Duration::from_secs(300),
        };
        let now = at("2026-12-07T12:00:00Z");
        for (start, end) in [
            ("2026-12-07T11:00:00Z", "2026-12-07T11:00:05Z"),
            ("2026-12-07T12:04:00Z", "2026-12-07T12:05:00Z"),
        ] {
            assert!(
                guard.admit(event(start, end), now).is_ok(),
                "{start}..{end}"
            );
        }
    }

    #[test]
    fn an_event_from_a_skewed_clock_is_quarantined_naming_the_field_and_the_skew() {
        let guard = ClockGuard::default();
        let now = at("2026-12-07T12:00:00Z");
        let rejection = guard
            .admit(event("2031-01-01T00:00:00Z", "2031-01-01T00:00:01Z"), now)
            .unwrap_err();
        assert_eq!(rejection.field, Some("startTime"));
        assert!(
            rejection.reason.contains("2031-01-01T00:00:00+00:00"),
            "{}",
            rejection.reason
        );
        assert!(
            rejection.reason.contains("max_clock_skew_seconds"),
            "{}",
            rejection.reason
        );

        let ends_ahead = guard
            .admit(event("2026-12-07T12:00:00Z", "2026-12-07T12:30:00Z"), now)
            .unwrap_err();
        assert_eq!(ends_ahead.field, Some("endTime"));
    }
}
