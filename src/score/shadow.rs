//! Shadow mode: a candidate ruleset scores every request beside the live
//! one; the live one decides, the candidate's decision is recorded. This
//! keeps the agreement matrix (live × candidate decision counts) and the
//! most recent disagreements, so a team can compare before cutting over.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

use crate::event::{Assessment, Decision, TimestampMs};

/// Disagreements kept for inspection (oldest dropped first).
pub const DISAGREEMENTS_KEPT_MAX: usize = 200;

#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub ruleset: String,
    pub decision: &'static str,
    pub risk: f64,
    pub reasons: Vec<String>,
}

impl Verdict {
    fn of(assessment: &Assessment) -> Verdict {
        Verdict {
            ruleset: assessment.ruleset.clone(),
            decision: assessment.decision.as_str(),
            risk: assessment.risk,
            reasons: assessment
                .reasons
                .iter()
                .map(|r| r.code.to_string())
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Disagreement {
    pub attempt_id: String,
    pub user_id: String,
    pub timestamp_ms: TimestampMs,
    pub live: Verdict,
    pub candidate: Verdict,
}

#[derive(Default)]
pub struct Shadow {
    /// [live][candidate] counts, indexed allow, challenge, deny.
    matrix: [[AtomicU64; 3]; 3],
    recent: Mutex<VecDeque<Disagreement>>,
}

fn index(decision: Decision) -> usize {
    match decision {
        Decision::Allow => 0,
        Decision::Challenge => 1,
        Decision::Deny => 2,
    }
}

const DECISIONS: [&str; 3] = ["allow", "challenge", "deny"];

#[derive(Debug, Serialize)]
pub struct ShadowReport {
    /// matrix[live][candidate], each keyed by decision name.
    pub matrix:
        std::collections::BTreeMap<&'static str, std::collections::BTreeMap<&'static str, u64>>,
    pub total: u64,
    pub agreements: u64,
    pub recent_disagreements: Vec<Disagreement>,
}

impl Shadow {
    pub fn record(
        &self,
        attempt_id: &str,
        user_id: &str,
        timestamp_ms: TimestampMs,
        live: &Assessment,
        candidate: &Assessment,
    ) {
        self.matrix[index(live.decision)][index(candidate.decision)]
            .fetch_add(1, Ordering::Relaxed);
        if live.decision != candidate.decision {
            let mut recent = self.recent.lock();
            if recent.len() >= DISAGREEMENTS_KEPT_MAX {
                recent.pop_front();
            }
            recent.push_back(Disagreement {
                attempt_id: attempt_id.to_owned(),
                user_id: user_id.to_owned(),
                timestamp_ms,
                live: Verdict::of(live),
                candidate: Verdict::of(candidate),
            });
        }
    }

    pub fn report(&self) -> ShadowReport {
        let mut matrix = std::collections::BTreeMap::new();
        let (mut total, mut agreements) = (0, 0);
        for (l, live) in DECISIONS.iter().enumerate() {
            let mut row = std::collections::BTreeMap::new();
            for (c, candidate) in DECISIONS.iter().enumerate() {
                let n = self.matrix[l][c].load(Ordering::Relaxed);
                total += n;
                if l == c {
                    agreements += n;
                }
                row.insert(*candidate, n);
            }
            matrix.insert(*live, row);
        }
        let recent_disagreements = self.recent.lock().iter().rev().cloned().collect();
        ShadowReport {
            matrix,
            total,
            agreements,
            recent_disagreements,
        }
    }
}
