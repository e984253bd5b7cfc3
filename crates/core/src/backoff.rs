//! How long to wait before trying again something that failed: capped exponential backoff with
//! jitter, for the BigQuery client's request retries and continuous ingest's commit retries.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The pause after the first failure…
    pub initial: Duration,
    /// …doubling after each further one, up to this.
    pub max: Duration,
}

impl Backoff {
    /// The pause after failed attempt `attempt` (counting from 1): the capped exponential delay,
    /// of which a random part of up to half is dropped so that many clients do not retry in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponential = self
            .initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exponential.min(self.max);
        let jitter = rand::rng().random_range(0.0..=0.5);
        capped.mul_f64(1.0 - jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 1..=8 {
            let full =
                Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            for _ in 0..20 {
                let delay = backoff.delay(attempt);
                assert!(delay <= full && delay >= full / 2, "{attempt}: {delay:?}");
            }
        }
        let samples: Vec<Duration> = (0..20).map(|_| backoff.delay(3)).collect();
        assert!(samples.iter().any(|d| *d != samples[0]), "no jitter");
    }
}
