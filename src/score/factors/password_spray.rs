//! `password_spray`: many accounts, few attempts each, from one IP address
//! in a window: one common password tried against many accounts, slowly
//! enough to stay under per-account lockouts. Counts the accounts with at
//! most a couple of failures from the address, so hammering one extra
//! account does not hide the spray.

use crate::config::ruleset::PasswordSprayRules;
use crate::score::{Contribution, Factor, FactorInput};

pub struct PasswordSpray {
    pub weight: f64,
    pub window_ms: i64,
    pub accounts_min: u32,
    pub failures_per_account_max: u32,
}

impl From<&PasswordSprayRules> for PasswordSpray {
    fn from(r: &PasswordSprayRules) -> Self {
        PasswordSpray {
            weight: r.weight,
            window_ms: super::seconds_to_ms(r.window_s),
            accounts_min: r.accounts_min,
            failures_per_account_max: r.failures_per_account_max,
        }
    }
}

impl Factor for PasswordSpray {
    fn code(&self) -> &'static str {
        "password_spray"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let keys = input.keys;
        let source = keys.sources.ip;
        let stats = input.global.velocity.stats(
            source,
            keys.timestamp_ms,
            self.window_ms,
            self.failures_per_account_max,
        );
        let sprayed = stats.accounts_with_few_failures;
        if sprayed < self.accounts_min {
            return None;
        }
        Some(Contribution {
            logit: self.weight,
            value: Some(f64::from(sprayed)),
            detail: format!(
                "{sprayed} accounts failed at most {} times each from IP address {} in the last {} s",
                self.failures_per_account_max,
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

    fn factor() -> PasswordSpray {
        PasswordSpray {
            weight: 3.0,
            window_ms: 86_400_000,
            accounts_min: 8,
            failures_per_account_max: 2,
        }
    }

    #[test]
    fn few_failures_on_many_accounts_is_a_spray_even_beside_a_hammered_one() {
        let mut fx = Fixture::new();
        for i in 0..8 {
            let attempt = fx
                .for_user(&format!("v{i}"))
                .attempt("x", "198.51.100.66", "SE", 64501);
            fx.apply(&attempt, Outcome::Failure);
        }
        let c = fx
            .evaluate(&factor(), "d", "198.51.100.66", "SE", 64501)
            .unwrap();
        assert_eq!(c.value, Some(8.0));
        // A burst on one of them (a targeted guess) is another pattern.
        for _ in 0..3 {
            let attempt = fx.for_user("v0").attempt("x", "198.51.100.66", "SE", 64501);
            fx.apply(&attempt, Outcome::Failure);
        }
        assert_eq!(
            fx.evaluate(&factor(), "d", "198.51.100.66", "SE", 64501),
            None
        );
    }
}
