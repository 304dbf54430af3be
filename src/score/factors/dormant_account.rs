//! `dormant_account`: a long gap since the last successful login (event
//! time). Dormant accounts are favourite takeover targets: nobody notices.

use crate::config::ruleset::DormantAccountRules;
use crate::score::{Contribution, Factor, FactorInput};

const DAY_MS: i64 = 86_400_000;

pub struct DormantAccount {
    pub weight: f64,
    pub after_days: u32,
}

impl From<&DormantAccountRules> for DormantAccount {
    fn from(r: &DormantAccountRules) -> Self {
        DormantAccount {
            weight: r.weight,
            after_days: r.after_days,
        }
    }
}

impl Factor for DormantAccount {
    fn code(&self) -> &'static str {
        "dormant_account"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let last = input.user?.last_success.as_ref()?;
        let days = (input.keys.timestamp_ms - last.at_ms) / DAY_MS;
        if days <= i64::from(self.after_days) {
            return None;
        }
        Some(Contribution {
            logit: self.weight,
            value: Some(days as f64),
            detail: format!("no successful login for {days} days"),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::factors::test_support::Fixture;

    #[test]
    fn fires_after_the_gap_only() {
        let factor = DormantAccount {
            weight: 1.0,
            after_days: 180,
        };
        let mut fx = Fixture::new();
        fx.learn("d", "192.0.2.1", "NO", 64500);
        fx.advance_ms(100 * DAY_MS);
        assert_eq!(fx.evaluate(&factor, "d", "192.0.2.1", "NO", 64500), None);
        fx.advance_ms(100 * DAY_MS);
        assert_eq!(
            fx.evaluate(&factor, "d", "192.0.2.1", "NO", 64500)
                .unwrap()
                .value,
            Some(200.0)
        );
    }
}
