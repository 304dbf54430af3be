//! `new_ip_prefix`: the attempt's network (/24 for IPv4, /48 for IPv6:
//! a household, an office) never appeared in a successful login.

use super::Novelty;
use crate::score::{Contribution, Factor, FactorInput};

pub struct NewIpPrefix {
    pub weight: f64,
    pub novelty: Novelty,
}

impl Factor for NewIpPrefix {
    fn code(&self) -> &'static str {
        "new_ip_prefix"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let prefix = input.keys.prefix;
        if input.user.is_some_and(|u| u.ip_prefixes.contains(&prefix)) {
            return None;
        }
        Some(Contribution {
            logit: self.weight * self.novelty.scale(input.history),
            value: Some(1.0),
            detail: format!("first login from network {prefix} for this user"),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::factors::test_support::Fixture;

    #[test]
    fn fires_for_a_new_network_not_a_new_address_in_a_known_one() {
        let factor = NewIpPrefix {
            weight: 0.5,
            novelty: Novelty {
                scale_none: 1.0,
                scale_thin: 1.0,
            },
        };
        let mut fx = Fixture::new();
        fx.learn("d", "192.0.2.1", "NO", 64500);
        assert_eq!(fx.evaluate(&factor, "d", "192.0.2.200", "NO", 64500), None);
        let c = fx
            .evaluate(&factor, "d", "198.51.100.1", "NO", 64500)
            .unwrap();
        assert!(c.detail.contains("198.51.100.0/24"));
    }
}
