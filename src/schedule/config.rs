//! The `scheduler:` section of pipelines.yaml: the time zone the pipelines' cron schedules are
//! read in, what to do about runs missed while no scheduler ran, how failed runs are retried,
//! and where `/healthz` and `/metrics` are served.

use std::net::SocketAddr;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

use crate::config_values::human_duration;

/// The longest wait between retries of a failed run, however many attempts there were.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// IANA name (`Europe/Paris`); `0 3 * * *` then means 03:00 there, daylight saving included.
    #[serde(default = "default_timezone")]
    pub timezone: Tz,
    #[serde(default)]
    pub misfire: Misfire,
    /// Retries of a failed run before the pipeline waits for its next tick.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Delay before the first retry; each next one doubles, up to ten minutes.
    #[serde(default = "default_retry_backoff", deserialize_with = "human_duration")]
    pub retry_backoff: Duration,
    /// `/healthz` and `/metrics`; loopback unless you choose otherwise.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

/// What a scheduler that starts after downtime does about the ticks it missed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// Run each pipeline that missed a tick once, right away, then follow the schedule.
    #[default]
    RunOnce,
    /// Wait for the next tick.
    Skip,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            timezone: default_timezone(),
            misfire: Misfire::default(),
            retries: default_retries(),
            retry_backoff: default_retry_backoff(),
            listen: default_listen(),
        }
    }
}

impl SchedulerConfig {
    /// How long to wait before retry number `attempt` (1 for the first).
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.retry_backoff
            .saturating_mul(factor)
            .min(MAX_RETRY_DELAY)
    }
}

fn default_timezone() -> Tz {
    Tz::UTC
}

fn default_retries() -> u32 {
    3
}

fn default_retry_backoff() -> Duration {
    Duration::from_secs(30)
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_retry_delays() {
        let config: SchedulerConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(config.timezone, Tz::UTC);
        assert_eq!(config.misfire, Misfire::RunOnce);
        assert!(config.listen.ip().is_loopback());
        let delays: Vec<u64> = (1..=6).map(|a| config.retry_delay(a).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 600]);
    }

    #[test]
    fn time_zones_and_policies_are_checked() {
        let config: SchedulerConfig =
            serde_yaml::from_str("{timezone: Europe/Paris, misfire: skip, retry_backoff: 2s}")
                .unwrap();
        assert_eq!(config.timezone, chrono_tz::Europe::Paris);
        assert_eq!(config.misfire, Misfire::Skip);
        assert_eq!(config.retry_delay(2), Duration::from_secs(4));
        let error = serde_yaml::from_str::<SchedulerConfig>("{timezone: Mars/Olympus}")
            .unwrap_err()
            .to_string();
        assert!(error.contains("Mars/Olympus"), "{error}");
        let error = serde_yaml::from_str::<SchedulerConfig>("{misfire: twice}")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("run_once") && error.contains("skip"),
            "{error}"
        );
    }
}
