//! Backtests: replay labelled logins through fresh projections, the way the
//! server would have seen them, and count what a ruleset decided.
//!
//! For each login, in event-time order, exactly what a partition does
//! (`partition::core`): the scorer reads the user's projection and the
//! global state *before* the login's outcome is known, then the outcome is
//! folded in (`Projection::apply` of an `Event::Login`, as a replay of
//! `POST /v1/events` would). With a candidate ruleset both score the same
//! state, so differences come from the rules alone.
//!
//! One projection holds every user. The server splits users over
//! partitions, but a user's state lives in one partition and the global
//! state is a sum over users, so for a single-threaded replay in event-time
//! order the partitioning changes nothing.

pub mod model;
mod report;

use std::collections::HashMap;

pub use report::{
    ComparisonReport, DecisionShares, Example, HistoryRates, KindDifferences, KindRow, LabelReport,
    MatrixRow, Rate, ReasonBrief, Report, RulesetReport, Verdict,
};

use crate::config::{Config, Ruleset};
use crate::dataset::{Label, LabelledLogin};
use crate::event::{Assessment, Decision, Event, HistoryState, LoginAttempt, Outcome};
use crate::projection::{AttemptKeys, GlobalState, Projection};
use crate::score::Scorer;

/// Differing logins kept as examples in a comparison.
pub const EXAMPLES_MAX: usize = 20;
/// Examples kept per label kind, so one kind does not fill them all.
pub const EXAMPLES_PER_KIND_MAX: usize = 5;

/// Sorts logins into event-time order; logins with the same timestamp keep
/// their input order (a stable sort, cheap on input that is already sorted).
pub fn sort_by_event_time(logins: &mut [LabelledLogin]) {
    logins.sort_by_key(|login| login.attempt.timestamp_ms);
}

/// The replay engine: push logins in event-time order, then ask for the report.
pub struct Backtest {
    scorers: Vec<Scorer>,
    projection: Projection,
    global: GlobalState,
    tallies: Vec<Tally>,
    users: HashMap<String, UserTally>,
    comparison: Option<ComparisonTally>,
    /// The assessments of the last login, one per ruleset.
    assessments: Vec<Assessment>,
    logins: u64,
    last_timestamp_ms: i64,
    out_of_order: u64,
    labelled: bool,
    /// The statistical model's S for every login, for `model_threshold`.
    model: model::ModelCurve,
}

/// Logins of one group, and how many of them a ruleset challenged or denied.
#[derive(Clone, Copy, Debug, Default)]
struct Hits {
    logins: u64,
    challenged_or_denied: u64,
    denied: u64,
}

impl Hits {
    fn add(&mut self, decision: Decision) {
        self.logins += 1;
        self.challenged_or_denied += u64::from(decision != Decision::Allow);
        self.denied += u64::from(decision == Decision::Deny);
    }
}

/// What one ruleset decided, grouped by label.
#[derive(Debug, Default)]
struct Tally {
    decisions: [u64; 3],
    attacks: Hits,
    takeovers: Hits,
    legit: Hits,
    legit_by_history: [Hits; 3],
    /// By label kind, then [legit, attack].
    kinds: HashMap<Option<String>, [Hits; 2]>,
}

/// One user's legitimate logins and, per ruleset, how many were challenged or denied.
#[derive(Debug)]
struct UserTally {
    legit: u32,
    challenged: Vec<u32>,
}

#[derive(Debug, Default)]
struct ComparisonTally {
    matrix: [[u64; 3]; 3],
    /// By label kind, then [legit, attack]: (differing, stricter).
    kinds: HashMap<Option<String>, [(u64, u64); 2]>,
    examples: Vec<Example>,
    examples_per_kind: HashMap<Option<String>, usize>,
}

fn decision_index(decision: Decision) -> usize {
    match decision {
        Decision::Allow => 0,
        Decision::Challenge => 1,
        Decision::Deny => 2,
    }
}

fn history_index(history: HistoryState) -> usize {
    match history {
        HistoryState::None => 0,
        HistoryState::Thin => 1,
        HistoryState::Established => 2,
    }
}

impl Backtest {
    /// A replay with fresh projections (the configuration's caps), scoring
    /// with `live` and, when given, with `candidate` as well.
    pub fn new(config: &Config, live: Ruleset, candidate: Option<Ruleset>) -> Backtest {
        let scorers: Vec<Scorer> = std::iter::once(live)
            .chain(candidate)
            .map(Scorer::new)
            .collect();
        Backtest {
            tallies: scorers.iter().map(|_| Tally::default()).collect(),
            comparison: (scorers.len() > 1).then(ComparisonTally::default),
            assessments: Vec::with_capacity(scorers.len()),
            scorers,
            projection: Projection::new(config.projection.clone(), config.partition.attempts_max),
            global: GlobalState::for_config(&config.projection),
            users: HashMap::new(),
            logins: 0,
            last_timestamp_ms: i64::MIN,
            out_of_order: 0,
            labelled: false,
            model: model::ModelCurve::default(),
        }
    }

    /// The input carries labels even if none of its logins is an attack
    /// (the report then shows friction); set by a reader's `labelled()`.
    pub fn mark_labelled(&mut self) {
        self.labelled = true;
    }

    /// Scores one login with every ruleset, then folds in its outcome.
    /// Returns the assessments (live first). Logins should come in
    /// event-time order ([`sort_by_event_time`]); one that does not is
    /// still replayed, and counted in the report.
    pub fn push(&mut self, login: LabelledLogin) -> &[Assessment] {
        let LabelledLogin {
            attempt,
            outcome,
            label,
        } = login;
        if attempt.timestamp_ms < self.last_timestamp_ms {
            self.out_of_order += 1;
        }
        self.last_timestamp_ms = self.last_timestamp_ms.max(attempt.timestamp_ms);
        self.logins += 1;
        self.labelled |= label.attack || label.takeover || label.kind.is_some();

        let keys = AttemptKeys::of(&attempt);
        let user = self.projection.user(&attempt.user_id);
        let s = user.and_then(|u| {
            self.global
                .model
                .likelihood_ratio(&u.model, &keys.observation)
        });
        let history = self
            .scorers
            .first()
            .map_or(HistoryState::None, |scorer| scorer.history_state(user));
        self.model.push(
            s,
            label.attack,
            label.kind.as_deref(),
            history,
            &attempt.user_id,
        );
        self.assessments.clear();
        for scorer in &self.scorers {
            self.assessments
                .push(scorer.score(&attempt, &keys, user, &self.global));
        }

        for (tally, assessment) in self.tallies.iter_mut().zip(&self.assessments) {
            let decision = assessment.decision;
            tally.decisions[decision_index(decision)] += 1;
            if label.attack {
                tally.attacks.add(decision);
            } else {
                tally.legit.add(decision);
                tally.legit_by_history[history_index(assessment.history)].add(decision);
            }
            if label.takeover {
                tally.takeovers.add(decision);
            }
            match tally.kinds.get_mut(&label.kind) {
                Some(kind) => kind[usize::from(label.attack)].add(decision),
                None => {
                    let mut kind = [Hits::default(); 2];
                    kind[usize::from(label.attack)].add(decision);
                    tally.kinds.insert(label.kind.clone(), kind);
                }
            }
        }
        if !label.attack {
            let scorers = self.scorers.len();
            let user = match self.users.get_mut(attempt.user_id.as_str()) {
                Some(user) => user,
                None => self
                    .users
                    .entry(attempt.user_id.clone())
                    .or_insert_with(|| UserTally {
                        legit: 0,
                        challenged: vec![0; scorers],
                    }),
            };
            user.legit += 1;
            for (challenged, assessment) in user.challenged.iter_mut().zip(&self.assessments) {
                *challenged += u32::from(assessment.decision != Decision::Allow);
            }
        }
        if let Some(comparison) = &mut self.comparison {
            comparison.add(&attempt, outcome, &label, &self.assessments);
        }

        self.projection
            .apply_keyed(&Event::Login { attempt, outcome }, Some(keys), &self.global);
        // Offline: stale failure sources are swept right here.
        if self.global.velocity.take_sweep_due() {
            self.global.velocity.sweep();
        }
        &self.assessments
    }

    /// What the replay so far shows.
    pub fn report(&self) -> Report {
        report::build(self)
    }

    /// The statistical model alone: the S threshold catching `target` of
    /// the attacks labelled `kind`, and what it costs legitimate users.
    pub fn model_threshold(&self, kind: &str, target: f64) -> model::ModelThreshold {
        self.model.threshold(kind, target)
    }
}

impl ComparisonTally {
    fn add(
        &mut self,
        attempt: &LoginAttempt,
        outcome: Outcome,
        label: &Label,
        assessments: &[Assessment],
    ) {
        let (live, candidate) = (&assessments[0], &assessments[1]);
        let (l, c) = (
            decision_index(live.decision),
            decision_index(candidate.decision),
        );
        self.matrix[l][c] += 1;
        if l == c {
            return;
        }
        let counts =
            &mut self.kinds.entry(label.kind.clone()).or_default()[usize::from(label.attack)];
        counts.0 += 1;
        counts.1 += u64::from(c > l);
        let per_kind = self
            .examples_per_kind
            .entry(label.kind.clone())
            .or_default();
        if self.examples.len() < EXAMPLES_MAX && *per_kind < EXAMPLES_PER_KIND_MAX {
            *per_kind += 1;
            self.examples
                .push(Example::of(attempt, outcome, label, assessments));
        }
    }
}

#[cfg(test)]
mod tests;
