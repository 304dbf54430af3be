//! `new_device`: the device (device_id, else the User-Agent fingerprint)
//! never completed a successful login for this user.

use super::Novelty;
use crate::score::{Contribution, Factor, FactorInput};

pub struct NewDevice {
    pub weight: f64,
    pub novelty: Novelty,
}

impl Factor for NewDevice {
    fn code(&self) -> &'static str {
        "new_device"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        // Without a device_id or a User-Agent there is nothing to compare.
        let device = input.keys.device.as_ref()?;
        if input.user.is_some_and(|u| u.devices.contains(device)) {
            return None;
        }
        let what = if input.attempt.device_id.is_some() {
            "device"
        } else {
            "user agent"
        };
        Some(Contribution {
            logit: self.weight * self.novelty.scale(input.history),
            value: Some(1.0),
            detail: format!("first login from this {what} for this user"),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::HistoryState;
    use crate::score::factors::test_support::Fixture;

    fn factor() -> NewDevice {
        NewDevice {
            weight: 2.0,
            novelty: Novelty {
                scale_none: 0.5,
                scale_thin: 1.0,
            },
        }
    }

    #[test]
    fn fires_for_an_unknown_device_and_not_for_a_known_one() {
        let mut fx = Fixture::new();
        fx.learn("d-home", "192.0.2.1", "NO", 64500);
        let known = fx.evaluate(&factor(), "d-home", "192.0.2.1", "NO", 64500);
        assert_eq!(known, None);
        let new = fx
            .evaluate(&factor(), "d-new", "192.0.2.1", "NO", 64500)
            .unwrap();
        assert_eq!(new.logit, 2.0);
        assert_eq!(new.value, Some(1.0));
    }

    #[test]
    fn a_first_login_weighs_less() {
        let fx = Fixture::new();
        let c = fx
            .evaluate(&factor(), "d-1", "192.0.2.1", "NO", 64500)
            .unwrap();
        assert_eq!(fx.history(), HistoryState::None);
        assert_eq!(c.logit, 1.0);
    }
}
