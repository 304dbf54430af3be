//! Scoring: a plain struct that reads a user's projection and the global
//! state and returns an [`Assessment`]. No I/O, no clock, no actor: the
//! partition actor calls it with what it owns.
//!
//! Each factor (one file under `factors/`) looks at the attempt and returns
//! a contribution in log-odds, its raw measurement and a human detail; it
//! may also force a decision. [`combine`] adds the contributions to the
//! ruleset's bias, squashes the sum to a risk in [0, 1] and applies the
//! thresholds.

pub mod combine;
pub mod factors;
pub mod handle;
pub mod shadow;

pub use handle::Scoring;

use crate::config::Ruleset;
use crate::event::{Assessment, Decision, HistoryState, LoginAttempt};
use crate::projection::{AttemptKeys, GlobalState, UserContext};

/// Everything a factor may look at.
pub struct FactorInput<'a> {
    pub attempt: &'a LoginAttempt,
    pub keys: &'a AttemptKeys,
    /// The user's context; None for a user the engine has never seen.
    pub user: Option<&'a UserContext>,
    pub history: HistoryState,
    pub global: &'a GlobalState,
}

/// One factor's verdict on an attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Contribution {
    /// Log-odds added to the risk (negative lowers it).
    pub logit: f64,
    /// The raw measurement (count, km/h, likelihood ratio), if the factor has one.
    pub value: Option<f64>,
    pub detail: String,
    /// A rule that decides regardless of the risk (its detail says so).
    pub forces: Option<Decision>,
}

/// `prefix` then `value` with three decimals, as `format!("{value:.3}")`
/// writes it up to a tie in the last digit. Formatting a float to a given
/// precision takes the standard library's exact decimal expansion, whose
/// bignum fallback was ~8% of scoring an attempt; values in a sane range
/// are rounded in integers instead.
pub fn three_decimals(prefix: &str, value: f64) -> String {
    use std::fmt::Write as _;
    const EXACT_ABOVE: f64 = 1e15;
    let mut out = String::with_capacity(prefix.len() + 24);
    out.push_str(prefix);
    if !value.is_finite() || value.abs() >= EXACT_ABOVE {
        let _ = write!(out, "{value:.3}");
        return out;
    }
    let milli = (value.abs() * 1000.0).round() as u64;
    if value.is_sign_negative() && milli > 0 {
        out.push('-');
    }
    let _ = write!(out, "{}.{:03}", milli / 1000, milli % 1000);
    out
}

pub trait Factor: Send + Sync {
    /// Stable snake_case reason code.
    fn code(&self) -> &'static str;
    /// None when the factor has nothing to say about this attempt.
    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution>;
}

pub struct Scorer {
    ruleset: Ruleset,
    label: String,
    factors: Vec<Box<dyn Factor>>,
}

impl Scorer {
    pub fn new(ruleset: Ruleset) -> Scorer {
        let factors = factors::from_ruleset(&ruleset);
        Scorer {
            label: ruleset.label(),
            ruleset,
            factors,
        }
    }

    pub fn ruleset(&self) -> &Ruleset {
        &self.ruleset
    }

    pub fn history_state(&self, user: Option<&UserContext>) -> HistoryState {
        match user.map_or(0, |u| u.successes) {
            0 => HistoryState::None,
            n if n < u64::from(self.ruleset.history.established_at) => HistoryState::Thin,
            _ => HistoryState::Established,
        }
    }

    pub fn score(
        &self,
        attempt: &LoginAttempt,
        keys: &AttemptKeys,
        user: Option<&UserContext>,
        global: &GlobalState,
    ) -> Assessment {
        let history = self.history_state(user);
        let input = FactorInput {
            attempt,
            keys,
            user,
            history,
            global,
        };
        let verdicts = self
            .factors
            .iter()
            .filter_map(|factor| factor.evaluate(&input).map(|c| (factor.code(), c)));
        combine::combine(&self.ruleset.decision, verdicts, history, &self.label)
    }
}

#[cfg(test)]
mod tests;
