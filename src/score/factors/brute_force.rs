//! `brute_force`: one account failing from many places in a window (a
//! distributed guessing attack on one account; `failure_burst` counts the
//! failures, this counts their distinct sources).

use std::collections::HashSet;

use crate::config::ruleset::BruteForceRules;
use crate::score::{Contribution, Factor, FactorInput};

pub struct BruteForce {
    pub weight: f64,
    pub window_ms: i64,
    pub sources_min: u32,
}

impl From<&BruteForceRules> for BruteForce {
    fn from(r: &BruteForceRules) -> Self {
        BruteForce {
            weight: r.weight,
            window_ms: super::seconds_to_ms(r.window_s),
            sources_min: r.sources_min,
        }
    }
}

impl Factor for BruteForce {
    fn code(&self) -> &'static str {
        "brute_force"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let user = input.user?;
        let recent = user.failures_within(input.keys.timestamp_ms, self.window_ms);
        // At most failures_per_user_max entries: a small set.
        let sources: HashSet<_> = recent.map(|f| f.ip).collect();
        if (sources.len() as u32) < self.sources_min {
            return None;
        }
        Some(Contribution {
            logit: self.weight,
            value: Some(sources.len() as f64),
            detail: format!(
                "failed logins from {} different IP addresses in the last {} s",
                sources.len(),
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

    #[test]
    fn failures_from_many_addresses_fire_from_one_do_not() {
        let factor = BruteForce {
            weight: 3.0,
            window_ms: 3_600_000,
            sources_min: 4,
        };
        let mut fx = Fixture::new();
        for _ in 0..6 {
            let a = fx.attempt("x", "203.0.113.1", "US", 64502);
            fx.apply(&a, Outcome::Failure);
        }
        assert_eq!(fx.evaluate(&factor, "d", "192.0.2.1", "NO", 64500), None);
        for i in 2..5 {
            let a = fx.attempt("x", &format!("198.51.100.{i}"), "SE", 64501);
            fx.apply(&a, Outcome::Failure);
        }
        let c = fx.evaluate(&factor, "d", "192.0.2.1", "NO", 64500).unwrap();
        assert_eq!(c.value, Some(4.0));
    }
}
