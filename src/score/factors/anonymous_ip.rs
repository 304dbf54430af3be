//! `anonymous_ip`: the address is a Tor exit, VPN, public or residential
//! proxy, or a hosting provider, per the GeoIP2 Anonymous IP database (when
//! configured). The largest applicable weight counts.

use crate::config::ruleset::AnonymousIpRules;
use crate::score::{Contribution, Factor, FactorInput};

pub struct AnonymousIp {
    pub rules: AnonymousIpRules,
}

impl Factor for AnonymousIp {
    fn code(&self) -> &'static str {
        "anonymous_ip"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let flags = input.attempt.geo.anonymous;
        let r = &self.rules;
        let (weight, what) = [
            (flags.is_tor_exit_node, r.tor_exit_weight, "a Tor exit node"),
            (
                flags.is_public_proxy,
                r.public_proxy_weight,
                "a public proxy",
            ),
            (
                flags.is_residential_proxy,
                r.residential_proxy_weight,
                "a residential proxy",
            ),
            (
                flags.is_hosting_provider,
                r.hosting_provider_weight,
                "a hosting provider",
            ),
            (flags.is_anonymous_vpn, r.vpn_weight, "an anonymous VPN"),
        ]
        .into_iter()
        .filter(|(set, _, _)| *set)
        .map(|(_, weight, what)| (weight, what))
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
        Some(Contribution {
            logit: weight,
            value: Some(1.0),
            detail: format!("{} is {what}", input.keys.ip),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::factors::test_support::Fixture;

    #[test]
    fn the_strongest_flag_decides() {
        let factor = AnonymousIp {
            rules: AnonymousIpRules {
                enabled: true,
                tor_exit_weight: 3.0,
                vpn_weight: 1.0,
                public_proxy_weight: 2.0,
                residential_proxy_weight: 1.5,
                hosting_provider_weight: 1.2,
            },
        };
        let fx = Fixture::new();
        let mut a = fx.attempt("d", "203.0.113.200", "US", 64502);
        assert_eq!(fx.evaluate_attempt(&factor, &a), None);
        a.geo.anonymous.is_anonymous_vpn = true;
        a.geo.anonymous.is_tor_exit_node = true;
        let c = fx.evaluate_attempt(&factor, &a).unwrap();
        assert_eq!(c.logit, 3.0);
        assert!(c.detail.contains("Tor"));
    }
}
