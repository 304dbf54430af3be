//! `hostile_context`: the device or IP address took part in a confirmed
//! fraud (an outcome `fraud_confirmed`): the device for this user, the IP
//! address for any user. A forcing rule: it denies whatever the risk.

use crate::event::Decision;
use crate::score::{Contribution, Factor, FactorInput};

pub struct HostileContext {
    pub weight: f64,
}

impl Factor for HostileContext {
    fn code(&self) -> &'static str {
        "hostile_context"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let keys = input.keys;
        let device = keys
            .device
            .as_ref()
            .is_some_and(|d| input.user.is_some_and(|u| u.hostile_devices.contains(d)));
        let ip = input.global.is_hostile_ip(&keys.ip);
        let what = match (device, ip) {
            (true, true) => "device and IP address",
            (true, false) => "device",
            (false, true) => "IP address",
            (false, false) => return None,
        };
        Some(Contribution {
            logit: self.weight,
            value: Some(1.0),
            detail: format!("{what} involved in a confirmed fraud; rule forces deny"),
            forces: Some(Decision::Deny),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Outcome;
    use crate::score::factors::test_support::Fixture;

    #[test]
    fn a_fraud_confirmed_ip_is_denied_for_every_user() {
        let factor = HostileContext { weight: 4.0 };
        let mut fx = Fixture::new();
        fx.learn("d", "203.0.113.5", "US", 64502);
        assert_eq!(fx.evaluate(&factor, "d", "203.0.113.5", "US", 64502), None);
        fx.outcome(Outcome::FraudConfirmed);
        let c = fx
            .evaluate(&factor, "d", "203.0.113.5", "US", 64502)
            .unwrap();
        assert_eq!(c.forces, Some(Decision::Deny));
        let other = fx.for_user("someone-else");
        assert!(other
            .evaluate(&factor, "d2", "203.0.113.5", "US", 64502)
            .is_some());
    }
}
