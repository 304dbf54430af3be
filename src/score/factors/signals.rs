//! `signals`: flags from other systems in the request (`signals`), e.g. a
//! threat-intelligence `attack_ip` or a vendor's `vendor_risk` score, each
//! with a configured weight (log-odds per unit; true = 1). Signals the
//! ruleset does not name are ignored here (the HTTP layer counts them).

use std::collections::BTreeMap;

use crate::score::{Contribution, Factor, FactorInput};

/// Most log-odds all signals together may add.
pub const SIGNALS_LOGIT_RAISE_MAX: f64 = 10.0;
/// Most log-odds all signals together may subtract.
pub const SIGNALS_LOGIT_LOWER_MAX: f64 = 2.0;

pub struct Signals {
    pub weights: BTreeMap<String, f64>,
}

impl Signals {
    pub fn is_known(&self, name: &str) -> bool {
        self.weights.contains_key(name)
    }
}

impl Factor for Signals {
    fn code(&self) -> &'static str {
        "signals"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let mut logit = 0.0;
        let mut named = Vec::new();
        for signal in &input.attempt.signals {
            if let Some(weight) = self.weights.get(&signal.name) {
                if signal.value != 0.0 {
                    logit += weight * signal.value;
                    named.push(format!("{}={}", signal.name, signal.value));
                }
            }
        }
        if named.is_empty() {
            return None;
        }
        // However many signals and whatever their values, they are one
        // factor among others: bounded, and a "trust" signal may lower the
        // risk only a little.
        let logit = logit.clamp(-SIGNALS_LOGIT_LOWER_MAX, SIGNALS_LOGIT_RAISE_MAX);
        Some(Contribution {
            logit,
            value: Some(logit),
            detail: format!("signals from other systems: {}", named.join(", ")),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Signal;
    use crate::score::factors::test_support::Fixture;

    #[test]
    fn known_signals_weigh_unknown_ones_do_not() {
        let factor = Signals {
            weights: [
                ("attack_ip".to_owned(), 3.0),
                ("vendor_risk".to_owned(), 4.0),
            ]
            .into(),
        };
        let fx = Fixture::new();
        let mut a = fx.attempt("d", "192.0.2.1", "NO", 64500);
        a.signals = vec![Signal {
            name: "mystery".into(),
            value: 1.0,
        }];
        assert_eq!(fx.evaluate_attempt(&factor, &a), None);
        a.signals.push(Signal {
            name: "attack_ip".into(),
            value: 1.0,
        });
        a.signals.push(Signal {
            name: "vendor_risk".into(),
            value: 0.5,
        });
        let c = fx.evaluate_attempt(&factor, &a).unwrap();
        assert_eq!(c.logit, 5.0);
        assert!(!c.detail.contains("mystery"));
    }

    #[test]
    fn extreme_values_are_bounded() {
        let factor = Signals {
            weights: [("vendor_risk".to_owned(), 4.0)].into(),
        };
        let fx = Fixture::new();
        let mut a = fx.attempt("d", "192.0.2.1", "NO", 64500);
        a.signals = vec![Signal {
            name: "vendor_risk".into(),
            value: 1e6,
        }];
        assert_eq!(
            fx.evaluate_attempt(&factor, &a).unwrap().logit,
            SIGNALS_LOGIT_RAISE_MAX
        );
        a.signals = vec![Signal {
            name: "vendor_risk".into(),
            value: -1e6,
        }];
        assert_eq!(
            fx.evaluate_attempt(&factor, &a).unwrap().logit,
            -SIGNALS_LOGIT_LOWER_MAX
        );
    }
}
