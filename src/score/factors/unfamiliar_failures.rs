//! `unfamiliar_failures`: this account recently failed to log in from this
//! very IP address, and the address's network is new for the user:
//! password guessing from an unfamiliar place, the prelude of a takeover.
//! A forgotten password fails from the user's own, known network and is
//! not counted.

use super::Novelty;
use crate::config::ruleset::UnfamiliarFailuresRules;
use crate::score::{Contribution, Factor, FactorInput};

pub struct UnfamiliarFailures {
    pub weight_per_failure: f64,
    pub failures_counted_max: u32,
    pub window_ms: i64,
    pub novelty: Novelty,
}

impl UnfamiliarFailures {
    pub fn new(rules: &UnfamiliarFailuresRules, novelty: Novelty) -> Self {
        UnfamiliarFailures {
            weight_per_failure: rules.weight_per_failure,
            failures_counted_max: rules.failures_counted_max,
            window_ms: super::seconds_to_ms(rules.window_s),
            novelty,
        }
    }
}

impl Factor for UnfamiliarFailures {
    fn code(&self) -> &'static str {
        "unfamiliar_failures"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let user = input.user?;
        let keys = input.keys;
        if user.ip_prefixes.contains(&keys.prefix) {
            return None;
        }
        let failures = user
            .failures_within(keys.timestamp_ms, self.window_ms)
            .filter(|f| f.ip == keys.ip)
            .count();
        if failures == 0 {
            return None;
        }
        let counted = failures.min(self.failures_counted_max as usize) as f64;
        Some(Contribution {
            logit: self.weight_per_failure * counted * self.novelty.scale(input.history),
            value: Some(failures as f64),
            detail: format!(
                "{failures} failed logins from {} (a network new for this user) in the last {} s",
                keys.ip,
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

    fn factor() -> UnfamiliarFailures {
        UnfamiliarFailures {
            weight_per_failure: 1.0,
            failures_counted_max: 3,
            window_ms: 3_600_000,
            novelty: Novelty {
                scale_none: 0.5,
                scale_thin: 1.0,
            },
        }
    }

    #[test]
    fn failures_from_a_new_network_count_failures_from_home_do_not() {
        let mut fx = Fixture::new();
        fx.learn("d", "192.0.2.1", "NO", 64500);
        // Forgot the password at home: known network, nothing.
        let home = fx.attempt("d", "192.0.2.1", "NO", 64500);
        fx.apply(&home, Outcome::Failure);
        assert_eq!(fx.evaluate(&factor(), "d", "192.0.2.1", "NO", 64500), None);
        // Guessing from elsewhere: each failure there counts, up to the cap.
        for _ in 0..5 {
            let away = fx.attempt("x", "198.51.100.7", "SE", 64501);
            fx.apply(&away, Outcome::Failure);
        }
        let c = fx
            .evaluate(&factor(), "x", "198.51.100.7", "SE", 64501)
            .unwrap();
        assert_eq!((c.logit, c.value), (3.0, Some(5.0)));
        // Another new address without failures of its own: nothing.
        assert_eq!(
            fx.evaluate(&factor(), "x", "203.0.113.9", "US", 64502),
            None
        );
    }
}
