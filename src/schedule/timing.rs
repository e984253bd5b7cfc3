//! When a pipeline is due: the next tick of its cron schedule in the scheduler's time zone, the
//! ticks that passed while a run was still going, and the tick downtime made it miss.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::CronSchedule;

/// Counting stops here: a per-second schedule after weeks of downtime is "many", not a number
/// worth iterating to.
const MAX_COUNTED_TICKS: usize = 100_000;

/// The first tick strictly after `after`.
pub fn next_tick(schedule: &CronSchedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .schedule
        .after(&after.with_timezone(&tz))
        .next()
        .map(|t| t.with_timezone(&Utc))
}

/// Ticks in `(from, to]`: the ones a run that went from `from` to `to` overran.
pub fn ticks_between(
    schedule: &CronSchedule,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> u64 {
    schedule
        .schedule
        .after(&from.with_timezone(&tz))
        .take_while(|t| t.with_timezone(&Utc) <= to)
        .take(MAX_COUNTED_TICKS)
        .count() as u64
}

/// The first tick after the pipeline's last run started, if it is already past: a run the
/// schedule asked for and nobody made.
pub fn missed_tick(
    schedule: &CronSchedule,
    tz: Tz,
    last_started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    next_tick(schedule, tz, last_started).filter(|tick| *tick <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(expression: &str) -> CronSchedule {
        expression.parse().unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn schedules_are_read_in_the_configured_time_zone() {
        let daily = cron("0 3 * * *");
        let after = at("2026-07-01T12:00:00Z");
        assert_eq!(
            next_tick(&daily, Tz::UTC, after),
            Some(at("2026-07-02T03:00:00Z"))
        );
        // 03:00 in Paris is 01:00 UTC in summer and 02:00 UTC in winter.
        let paris = chrono_tz::Europe::Paris;
        assert_eq!(
            next_tick(&daily, paris, after),
            Some(at("2026-07-02T01:00:00Z"))
        );
        let winter = at("2026-12-01T12:00:00Z");
        assert_eq!(
            next_tick(&daily, paris, winter),
            Some(at("2026-12-02T02:00:00Z"))
        );
    }

    #[test]
    fn a_seconds_field_makes_sub_minute_schedules() {
        let every_second = cron("* * * * * *");
        let from = at("2026-01-01T00:00:00Z");
        assert_eq!(
            next_tick(&every_second, Tz::UTC, from),
            Some(at("2026-01-01T00:00:01Z"))
        );
        assert_eq!(
            ticks_between(&every_second, Tz::UTC, from, at("2026-01-01T00:00:03.5Z")),
            3
        );
        let five_minutes = cron("*/5 * * * *");
        assert_eq!(
            ticks_between(&five_minutes, Tz::UTC, from, at("2026-01-01T00:04:59Z")),
            0
        );
        assert_eq!(
            ticks_between(&five_minutes, Tz::UTC, from, at("2026-01-01T00:05:00Z")),
            1
        );
        let long_downtime = ticks_between(&every_second, Tz::UTC, from, at("2026-03-01T00:00:00Z"));
        assert_eq!(long_downtime, MAX_COUNTED_TICKS as u64);
    }

    #[test]
    fn downtime_misses_a_tick_only_when_one_fell_in_it() {
        let hourly = cron("0 * * * *");
        let last = at("2026-01-01T10:00:00Z");
        assert_eq!(
            missed_tick(&hourly, Tz::UTC, last, at("2026-01-01T10:59:00Z")),
            None
        );
        assert_eq!(
            missed_tick(&hourly, Tz::UTC, last, at("2026-01-01T13:30:00Z")),
            Some(at("2026-01-01T11:00:00Z"))
        );
    }
}
