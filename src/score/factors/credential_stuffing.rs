//! `credential_stuffing`: many accounts failing from one place in a window
//! of event time: the attempt's IP address, its /24 (/48) network or its
//! ASN (each with its own threshold). Reads the global per-source windows
//! (`projection::velocity`), so it sees failures of users in every partition.

use crate::config::ruleset::CredentialStuffingRules;
use crate::score::{Contribution, Factor, FactorInput};

pub struct CredentialStuffing {
    pub weight: f64,
    pub window_ms: i64,
    pub ip_accounts_min: u32,
    pub prefix_accounts_min: u32,
    pub asn_accounts_min: u32,
}

impl From<&CredentialStuffingRules> for CredentialStuffing {
    fn from(r: &CredentialStuffingRules) -> Self {
        CredentialStuffing {
            weight: r.weight,
            window_ms: super::seconds_to_ms(r.window_s),
            ip_accounts_min: r.ip_accounts_min,
            prefix_accounts_min: r.prefix_accounts_min,
            asn_accounts_min: r.asn_accounts_min,
        }
    }
}

impl Factor for CredentialStuffing {
    fn code(&self) -> &'static str {
        "credential_stuffing"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let keys = input.keys;
        let sources = keys.sources;
        let velocity = &input.global.velocity;
        let at = keys.timestamp_ms;
        let ip = velocity.stats(sources.ip, at, self.window_ms, 0).accounts;
        let prefix = velocity
            .stats(sources.prefix, at, self.window_ms, 0)
            .accounts;
        let asn = sources
            .asn
            .map_or(0, |asn| velocity.stats(asn, at, self.window_ms, 0).accounts);
        let (accounts, place) = if ip >= self.ip_accounts_min {
            (ip, format!("IP address {}", keys.ip))
        } else if prefix >= self.prefix_accounts_min {
            (prefix, format!("network {}", keys.prefix))
        } else if asn >= self.asn_accounts_min {
            (asn, format!("AS{}", keys.asn.unwrap_or_default()))
        } else {
            return None;
        };
        Some(Contribution {
            logit: self.weight,
            value: Some(f64::from(accounts)),
            detail: format!(
                "{accounts} accounts failed to log in from {place} in the last {} s",
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

    fn factor() -> CredentialStuffing {
        CredentialStuffing {
            weight: 4.0,
            window_ms: 3_600_000,
            ip_accounts_min: 5,
            prefix_accounts_min: 10,
            asn_accounts_min: 200,
        }
    }

    fn fail_from(fx: &mut Fixture, user: &str, ip: &str) {
        let other = fx.for_user(user);
        let attempt = other.attempt("x", ip, "US", 64502);
        fx.apply(&attempt, Outcome::Failure);
    }

    #[test]
    fn fires_once_enough_accounts_failed_from_the_ip() {
        let mut fx = Fixture::new();
        for i in 0..4 {
            fail_from(&mut fx, &format!("victim-{i}"), "203.0.113.9");
        }
        assert_eq!(
            fx.evaluate(&factor(), "d", "203.0.113.9", "US", 64502),
            None
        );
        fail_from(&mut fx, "victim-4", "203.0.113.9");
        let c = fx
            .evaluate(&factor(), "d", "203.0.113.9", "US", 64502)
            .unwrap();
        assert_eq!(c.value, Some(5.0));
        assert!(c.detail.contains("203.0.113.9"));
    }

    #[test]
    fn a_rotating_address_pool_is_caught_by_its_network() {
        let mut fx = Fixture::new();
        for i in 0..10 {
            fail_from(
                &mut fx,
                &format!("victim-{i}"),
                &format!("203.0.113.{}", 10 + i),
            );
        }
        let c = fx
            .evaluate(&factor(), "d", "203.0.113.99", "US", 64502)
            .unwrap();
        assert!(c.detail.contains("203.0.113.0/24"), "{c:?}");
    }

    #[test]
    fn one_account_failing_many_times_is_not_stuffing() {
        let mut fx = Fixture::new();
        for _ in 0..20 {
            fail_from(&mut fx, "same-victim", "203.0.113.9");
        }
        assert_eq!(
            fx.evaluate(&factor(), "d", "203.0.113.9", "US", 64502),
            None
        );
    }
}
