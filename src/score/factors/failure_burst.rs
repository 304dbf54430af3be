//! `failure_burst`: many recent failures on this account (wrong passwords,
//! failed second factors) in sliding windows of event time: a short window
//! for bursts (guessing, a takeover's last tries), a long one for slow,
//! persistent campaigns that stay under any short-window threshold.

use crate::config::ruleset::FailureBurstRules;
use crate::score::{Contribution, Factor, FactorInput};

pub struct FailureBurst {
    pub window_ms: i64,
    pub threshold: u32,
    pub weight_per_failure: f64,
    pub long_window_ms: i64,
    pub long_threshold: u32,
    pub long_weight: f64,
}

impl From<&FailureBurstRules> for FailureBurst {
    fn from(rules: &FailureBurstRules) -> FailureBurst {
        FailureBurst {
            window_ms: super::seconds_to_ms(rules.window_s),
            threshold: rules.threshold,
            weight_per_failure: rules.weight_per_failure,
            long_window_ms: super::seconds_to_ms(rules.long_window_s),
            long_threshold: rules.long_threshold,
            long_weight: rules.long_weight,
        }
    }
}

impl Factor for FailureBurst {
    fn code(&self) -> &'static str {
        "failure_burst"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let user = input.user?;
        let at = input.keys.timestamp_ms;
        let short = user.failures_within(at, self.window_ms).count();
        let long = user.failures_within(at, self.long_window_ms).count();
        // Counting from the threshold: the first failures are ordinary typos.
        let short_logit = (short >= self.threshold as usize)
            .then(|| self.weight_per_failure * (short + 1 - self.threshold as usize) as f64);
        let long_logit = (long >= self.long_threshold as usize).then_some(self.long_weight);
        let (logit, failures, window_ms) = match (short_logit, long_logit) {
            (Some(s), Some(l)) if l > s => (l, long, self.long_window_ms),
            (Some(s), _) => (s, short, self.window_ms),
            (None, Some(l)) => (l, long, self.long_window_ms),
            (None, None) => return None,
        };
        Some(Contribution {
            logit,
            value: Some(failures as f64),
            detail: format!(
                "{failures} failed logins in the last {} s",
                window_ms / 1000
            ),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Outcome;
    use crate::score::factors::test_support::Fixture;

    fn factor() -> FailureBurst {
        FailureBurst {
            window_ms: 900_000,
            threshold: 3,
            weight_per_failure: 0.5,
            long_window_ms: 7 * 86_400_000,
            long_threshold: 10,
            long_weight: 2.5,
        }
    }

    #[test]
    fn counts_failures_in_the_window_from_the_threshold_on() {
        let mut fx = Fixture::new();
        fx.learn("d", "192.0.2.1", "NO", 64500);
        for _ in 0..2 {
            fx.outcome(Outcome::Failure);
        }
        assert_eq!(fx.evaluate(&factor(), "d", "192.0.2.1", "NO", 64500), None);
        fx.outcome(Outcome::ChallengeFailed);
        fx.outcome(Outcome::Failure);
        let c = fx
            .evaluate(&factor(), "d", "192.0.2.1", "NO", 64500)
            .unwrap();
        assert_eq!(c.value, Some(4.0));
        assert_eq!(c.logit, 1.0);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut fx = Fixture::new();
        for _ in 0..5 {
            fx.outcome(Outcome::Failure);
        }
        fx.advance_ms(900_001);
        assert_eq!(fx.evaluate(&factor(), "d", "192.0.2.1", "NO", 64500), None);
    }

    #[test]
    fn a_slow_persistent_campaign_fires_the_long_window() {
        let mut fx = Fixture::new();
        for _ in 0..10 {
            fx.outcome(Outcome::Failure);
            fx.advance_ms(3_600_000);
        }
        let c = fx
            .evaluate(&factor(), "d", "192.0.2.1", "NO", 64500)
            .unwrap();
        assert_eq!((c.logit, c.value), (2.5, Some(10.0)));
        assert!(c.detail.contains("604800 s"));
    }
}
