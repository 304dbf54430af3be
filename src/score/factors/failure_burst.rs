//! `failure_burst`: many recent failures on this account (wrong passwords,
//! failed second factors) in a sliding window of event time.

use crate::config::ruleset::FailureBurstRules;
use crate::score::{Contribution, Factor, FactorInput};

pub struct FailureBurst {
    pub window_ms: i64,
    pub threshold: u32,
    pub weight_per_failure: f64,
}

impl From<&FailureBurstRules> for FailureBurst {
    fn from(rules: &FailureBurstRules) -> FailureBurst {
        FailureBurst {
            window_ms: i64::try_from(rules.window_s.saturating_mul(1000)).unwrap_or(i64::MAX),
            threshold: rules.threshold,
            weight_per_failure: rules.weight_per_failure,
        }
    }
}

impl Factor for FailureBurst {
    fn code(&self) -> &'static str {
        "failure_burst"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let user = input.user?;
        let failures = user
            .failures_within(input.keys.timestamp_ms, self.window_ms)
            .count();
        if failures < self.threshold as usize {
            return None;
        }
        // Counting from the threshold: the first failures are ordinary typos.
        let over = (failures + 1 - self.threshold as usize) as f64;
        Some(Contribution {
            logit: self.weight_per_failure * over,
            value: Some(failures as f64),
            detail: format!(
                "{failures} failed logins in the last {} s",
                self.window_ms / 1000
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
}
