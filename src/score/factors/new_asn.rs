//! `new_asn`: the attempt's network (autonomous system) never appeared in
//! this user's successful logins.

use super::Novelty;
use crate::score::{Contribution, Factor, FactorInput};

pub struct NewAsn {
    pub weight: f64,
    pub novelty: Novelty,
}

impl Factor for NewAsn {
    fn code(&self) -> &'static str {
        "new_asn"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let asn = input.keys.asn?;
        if input.user.is_some_and(|u| u.asns.contains(&asn)) {
            return None;
        }
        Some(Contribution {
            logit: self.weight * self.novelty.scale(input.history),
            value: Some(f64::from(asn)),
            detail: format!("first login from network AS{asn} for this user"),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::factors::test_support::Fixture;

    fn factor() -> NewAsn {
        NewAsn {
            weight: 1.0,
            novelty: Novelty {
                scale_none: 0.3,
                scale_thin: 1.0,
            },
        }
    }

    #[test]
    fn fires_for_a_new_network_with_the_asn_as_value() {
        let mut fx = Fixture::new();
        fx.learn("d", "192.0.2.1", "NO", 64500);
        assert_eq!(fx.evaluate(&factor(), "d", "192.0.2.9", "NO", 64500), None);
        let c = fx
            .evaluate(&factor(), "d", "192.0.2.9", "NO", 64999)
            .unwrap();
        assert_eq!(c.value, Some(64999.0));
    }
}
