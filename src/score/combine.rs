//! From contributions to a risk and a decision.
//!
//! risk = σ(bias + Σ cᵢ), σ the logistic function. A reason's `score` is its
//! share of the risk above the base risk σ(bias): scoreᵢ = (risk − σ(bias))
//! · cᵢ / Σ cⱼ. The shares add up to risk − base, each has the sign of its
//! contribution (σ is increasing, so risk − base has the sign of Σ c), and
//! the factor with the largest log-odds has the largest share.

use crate::config::ruleset::DecisionRules;
use crate::event::{Assessment, Decision, HistoryState, Reason};

use super::Contribution;

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

pub fn combine(
    rules: &DecisionRules,
    verdicts: impl Iterator<Item = (&'static str, Contribution)>,
    history: HistoryState,
    ruleset_label: &str,
) -> Assessment {
    // A factor that computed a non-finite contribution (it should not: they
    // are bounded) contributes nothing rather than poisoning the risk.
    let verdicts: Vec<(&str, Contribution)> = verdicts
        .map(|(code, mut c)| {
            debug_assert!(c.logit.is_finite(), "{code} contributed {}", c.logit);
            if !c.logit.is_finite() {
                c.logit = 0.0;
            }
            (code, c)
        })
        .collect();
    let total: f64 = verdicts.iter().map(|(_, c)| c.logit).sum();
    let base = sigmoid(rules.bias);
    let risk = sigmoid(rules.bias + total).clamp(0.0, 1.0);
    let share = if total.abs() > f64::EPSILON {
        (risk - base) / total
    } else {
        0.0
    };

    let mut forced: Option<Decision> = None;
    let mut reasons: Vec<Reason> = verdicts
        .into_iter()
        .map(|(code, c)| {
            if let Some(decision) = c.forces {
                forced = Some(forced.map_or(decision, |f| most_severe(f, decision)));
            }
            Reason {
                code: code.into(),
                score: c.logit * share,
                value: c.value,
                detail: c.detail,
            }
        })
        .collect();
    reasons.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.code.cmp(&b.code))
    });

    let by_risk = if risk >= rules.deny_at {
        Decision::Deny
    } else if risk >= rules.challenge_at {
        Decision::Challenge
    } else {
        Decision::Allow
    };
    let decision = forced.map_or(by_risk, |f| most_severe(f, by_risk));
    Assessment {
        decision,
        risk,
        reasons,
        history,
        ruleset: ruleset_label.to_owned(),
    }
}

fn severity(decision: Decision) -> u8 {
    match decision {
        Decision::Allow => 0,
        Decision::Challenge => 1,
        Decision::Deny => 2,
    }
}

fn most_severe(a: Decision, b: Decision) -> Decision {
    if severity(a) >= severity(b) {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> DecisionRules {
        DecisionRules {
            challenge_at: 0.5,
            deny_at: 0.9,
            bias: -4.0,
        }
    }

    fn c(logit: f64) -> Contribution {
        Contribution {
            logit,
            value: None,
            detail: String::new(),
            forces: None,
        }
    }

    #[test]
    fn no_factor_gives_the_base_risk() {
        let a = combine(&rules(), std::iter::empty(), HistoryState::None, "r");
        assert!((a.risk - sigmoid(-4.0)).abs() < 1e-12);
        assert_eq!(a.decision, Decision::Allow);
        assert!(a.reasons.is_empty());
    }

    #[test]
    fn shares_add_up_to_risk_above_base_and_keep_their_sign() {
        let a = combine(
            &rules(),
            [("x", c(3.0)), ("y", c(2.0)), ("z", c(-1.0))].into_iter(),
            HistoryState::Established,
            "r",
        );
        let sum: f64 = a.reasons.iter().map(|r| r.score).sum();
        assert!((sum - (a.risk - sigmoid(-4.0))).abs() < 1e-12);
        assert_eq!(a.reasons[0].code, "x");
        assert!(a.reasons[2].score < 0.0);
        assert!((a.risk - sigmoid(0.0)).abs() < 1e-12);
        assert_eq!(a.decision, Decision::Challenge);
    }

    #[test]
    fn thresholds_decide() {
        let deny = combine(
            &rules(),
            [("x", c(8.0))].into_iter(),
            HistoryState::Thin,
            "r",
        );
        assert_eq!(deny.decision, Decision::Deny);
        let allow = combine(
            &rules(),
            [("x", c(1.0))].into_iter(),
            HistoryState::Thin,
            "r",
        );
        assert_eq!(allow.decision, Decision::Allow);
    }

    #[test]
    fn a_forcing_rule_overrides_a_low_risk() {
        let mut forcing = c(0.5);
        forcing.forces = Some(Decision::Deny);
        let a = combine(
            &rules(),
            [("hostile", forcing)].into_iter(),
            HistoryState::Thin,
            "r",
        );
        assert!(a.risk < 0.5);
        assert_eq!(a.decision, Decision::Deny);
    }
}
