//! `freeman`: the statistical model of Freeman et al. (NDSS 2016), see
//! `../shared/docs/rba-model.md` and `projection::freeman`. S is the
//! likelihood ratio "attacker vs. this user" of the attempt's network and
//! client; the factor adds `weight · ln S` log-odds (clamped), so a
//! familiar context (S < 1) lowers the risk and a foreign one raises it.
//! Present for every user with history, whatever its contribution; silent
//! for a user without (the model says nothing).

use crate::score::{three_decimals, Contribution, Factor, FactorInput};

pub struct Freeman {
    pub weight: f64,
    /// Bound on |weight · ln S|: S is unbounded, one factor must not be.
    pub logit_abs_max: f64,
}

impl Factor for Freeman {
    fn code(&self) -> &'static str {
        "freeman"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let user = input.user?;
        let s = input
            .global
            .model
            .likelihood_ratio(&user.model, &input.keys.observation)?;
        let logit = (self.weight * s.ln()).clamp(-self.logit_abs_max, self.logit_abs_max);
        Some(Contribution {
            logit,
            value: Some(s),
            detail: three_decimals(
                "likelihood ratio attacker/user of this network and client: ",
                s,
            ),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::factors::test_support::Fixture;

    fn factor() -> Freeman {
        Freeman {
            weight: 1.0,
            logit_abs_max: 6.0,
        }
    }

    #[test]
    fn silent_without_history() {
        let fx = Fixture::new();
        assert_eq!(fx.evaluate(&factor(), "d", "192.0.2.1", "NO", 64500), None);
    }

    #[test]
    fn a_familiar_context_lowers_and_a_foreign_one_raises_the_risk() {
        let mut fx = Fixture::new();
        for _ in 0..5 {
            fx.learn("d", "192.0.2.1", "NO", 64500);
        }
        let mut other = fx.for_user("u2");
        for _ in 0..5 {
            other.learn("d2", "198.51.100.1", "SE", 64501);
        }
        let home = fx
            .evaluate(&factor(), "d", "192.0.2.1", "NO", 64500)
            .unwrap();
        assert!(home.value.unwrap() < 1.0 && home.logit < 0.0, "{home:?}");
        let away = fx
            .evaluate(&factor(), "d", "203.0.113.9", "US", 64502)
            .unwrap();
        assert!(away.value.unwrap() > 1.0 && away.logit > 0.0, "{away:?}");
        assert!((away.logit - away.value.unwrap().ln()).abs() < 1e-12);
    }
}
