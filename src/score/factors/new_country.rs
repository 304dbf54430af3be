//! `new_country`: the attempt's country never appeared in this user's
//! successful logins. Unknown locations (private addresses, no GeoIP data)
//! never fire it.

use super::Novelty;
use crate::score::{Contribution, Factor, FactorInput};

pub struct NewCountry {
    pub weight: f64,
    pub novelty: Novelty,
}

impl Factor for NewCountry {
    fn code(&self) -> &'static str {
        "new_country"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let country = input.keys.country?;
        if input.user.is_some_and(|u| u.countries.contains(&country)) {
            return None;
        }
        Some(Contribution {
            logit: self.weight * self.novelty.scale(input.history),
            value: Some(1.0),
            detail: format!("first login from {country} for this user"),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::factors::test_support::Fixture;

    fn factor() -> NewCountry {
        NewCountry {
            weight: 2.5,
            novelty: Novelty {
                scale_none: 0.3,
                scale_thin: 1.0,
            },
        }
    }

    #[test]
    fn fires_for_a_new_country_only() {
        let mut fx = Fixture::new();
        fx.learn("d", "192.0.2.1", "NO", 64500);
        assert_eq!(fx.evaluate(&factor(), "d", "192.0.2.1", "NO", 64500), None);
        let c = fx
            .evaluate(&factor(), "d", "198.51.100.1", "SE", 64501)
            .unwrap();
        assert_eq!(c.logit, 2.5);
        assert!(c.detail.contains("SE"));
    }

    #[test]
    fn an_unknown_country_never_fires() {
        let mut fx = Fixture::new();
        fx.learn("d", "192.0.2.1", "NO", 64500);
        assert_eq!(fx.evaluate(&factor(), "d", "10.0.0.1", "", 0), None);
    }
}
