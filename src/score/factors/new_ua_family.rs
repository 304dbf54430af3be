//! `new_ua_family`: the browser family and OS family (versions ignored)
//! never appeared in a successful login: a switch from Chrome on Windows to
//! a script or another platform, not a browser update.

use super::Novelty;
use crate::score::{Contribution, Factor, FactorInput};

pub struct NewUaFamily {
    pub weight: f64,
    pub novelty: Novelty,
}

impl Factor for NewUaFamily {
    fn code(&self) -> &'static str {
        "new_ua_family"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let family = input.keys.ua_family?;
        if input.user.is_some_and(|u| u.ua_families.contains(&family)) {
            return None;
        }
        let client = &input.attempt.client;
        Some(Contribution {
            logit: self.weight * self.novelty.scale(input.history),
            value: Some(1.0),
            detail: format!(
                "first login with {} on {} for this user",
                client.browser.as_deref().unwrap_or("an unknown browser"),
                client.os.as_deref().unwrap_or("an unknown OS")
            ),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::factors::test_support::Fixture;

    #[test]
    fn a_version_update_is_not_a_new_family_but_another_browser_is() {
        let factor = NewUaFamily {
            weight: 0.8,
            novelty: Novelty {
                scale_none: 1.0,
                scale_thin: 1.0,
            },
        };
        let mut fx = Fixture::new();
        fx.learn("d", "192.0.2.1", "NO", 64500);
        let mut updated = fx.attempt("d", "192.0.2.1", "NO", 64500);
        updated.client.browser = Some("Firefox 127.0".into());
        assert_eq!(fx.evaluate_attempt(&factor, &updated), None);
        let mut other = fx.attempt("d", "192.0.2.1", "NO", 64500);
        other.client.browser = Some("curl 8.5".into());
        assert!(fx.evaluate_attempt(&factor, &other).is_some());
    }
}
