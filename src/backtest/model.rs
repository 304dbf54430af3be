//! The statistical model alone: at what likelihood-ratio threshold would
//! it catch a given share of one attack kind, and what would that cost
//! legitimate users? (The question Wiefling et al. answer for RBA: block
//! rate of targeted attackers against re-authentication rate of users.)

use std::collections::HashMap;

use serde::Serialize;

use crate::event::HistoryState;

/// One login's S (None: no history, the model says nothing).
struct Sample {
    s: Option<f64>,
    attack: bool,
    kind: Option<u32>,
    history: HistoryState,
    user: u32,
}

#[derive(Default)]
pub struct ModelCurve {
    samples: Vec<Sample>,
    kinds: HashMap<String, u32>,
    users: HashMap<String, u32>,
}

#[derive(Debug, Serialize)]
pub struct ModelThreshold {
    pub kind: String,
    /// Attacks of that kind on users with history (the model's domain).
    pub attacks_with_history: u64,
    /// Attacks of that kind on users without history (not counted below).
    pub attacks_without_history: u64,
    /// Share of that kind's logins the threshold is meant to catch.
    pub target_catch: f64,
    /// None when the target is out of reach (too many of them have no history).
    pub threshold_s: Option<f64>,
    pub caught: f64,
    /// Legitimate logins with S at or above the threshold.
    pub friction: f64,
    pub friction_none: f64,
    pub friction_thin: f64,
    pub friction_established: f64,
    /// The median over users of each user's share of legitimate logins challenged.
    pub median_user_friction: f64,
}

impl ModelCurve {
    pub fn push(
        &mut self,
        s: Option<f64>,
        attack: bool,
        kind: Option<&str>,
        history: HistoryState,
        user_id: &str,
    ) {
        let kind = kind.map(|k| {
            let next = self.kinds.len() as u32;
            *self.kinds.entry(k.to_owned()).or_insert(next)
        });
        let next = self.users.len() as u32;
        let user = *self.users.entry(user_id.to_owned()).or_insert(next);
        self.samples.push(Sample {
            s,
            attack,
            kind,
            history,
            user,
        });
    }

    /// The threshold catching `target` of the attacks of `kind`, and its cost.
    pub fn threshold(&self, kind: &str, target: f64) -> ModelThreshold {
        let id = self.kinds.get(kind).copied();
        let of_kind = || {
            self.samples
                .iter()
                .filter(|x| x.attack && x.kind == id && id.is_some())
        };
        // The model speaks only for users with history; attacks on users
        // without any are outside its reach and reported apart.
        let without_history = of_kind().filter(|x| x.s.is_none()).count() as u64;
        let mut scores: Vec<f64> = of_kind().filter_map(|x| x.s).collect();
        scores.sort_by(f64::total_cmp);
        // Catch at least `target`: the largest t with share(S >= t) >= target.
        // (The epsilon keeps 0.1 * 10 from flooring to 0.)
        let missed_max = ((1.0 - target) * scores.len() as f64 + 1e-9).floor() as usize;
        let threshold_s = scores.get(missed_max).copied().filter(|t| t.is_finite());
        let caught_by =
            |t: f64| scores.iter().filter(|&&s| s >= t).count() as f64 / scores.len().max(1) as f64;
        let t = threshold_s.unwrap_or(f64::INFINITY);
        let legit = |history: Option<HistoryState>| {
            let group: Vec<&Sample> = self
                .samples
                .iter()
                .filter(|x| !x.attack && history.is_none_or(|h| x.history == h))
                .collect();
            let hit = group.iter().filter(|x| x.s.is_some_and(|s| s >= t)).count();
            hit as f64 / group.len().max(1) as f64
        };
        let mut per_user: HashMap<u32, (u32, u32)> = HashMap::new();
        for x in self.samples.iter().filter(|x| !x.attack) {
            let entry = per_user.entry(x.user).or_default();
            entry.0 += 1;
            entry.1 += u32::from(x.s.is_some_and(|s| s >= t));
        }
        let mut shares: Vec<f64> = per_user
            .values()
            .map(|&(n, hit)| f64::from(hit) / f64::from(n))
            .collect();
        shares.sort_by(f64::total_cmp);
        ModelThreshold {
            kind: kind.to_owned(),
            attacks_with_history: scores.len() as u64,
            attacks_without_history: without_history,
            target_catch: target,
            threshold_s,
            caught: threshold_s.map_or(0.0, caught_by),
            friction: legit(None),
            friction_none: legit(Some(HistoryState::None)),
            friction_thin: legit(Some(HistoryState::Thin)),
            friction_established: legit(Some(HistoryState::Established)),
            median_user_friction: shares.get(shares.len() / 2).copied().unwrap_or(0.0),
        }
    }
}

impl std::fmt::Display for ModelThreshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let threshold = self
            .threshold_s
            .map_or("unreachable".to_owned(), |t| format!("S >= {t:.4}"));
        writeln!(
            f,
            "model alone, {:.1}% of {} on users with history caught ({} attacks; {} more on users without history): {threshold}",
            self.target_catch * 100.0,
            self.kind,
            self.attacks_with_history,
            self.attacks_without_history
        )?;
        writeln!(
            f,
            "  caught                     {:6.1}%",
            self.caught * 100.0
        )?;
        writeln!(
            f,
            "  legit challenged           {:6.1}%",
            self.friction * 100.0
        )?;
        writeln!(
            f,
            "    history none             {:6.1}%",
            self.friction_none * 100.0
        )?;
        writeln!(
            f,
            "    history thin             {:6.1}%",
            self.friction_thin * 100.0
        )?;
        writeln!(
            f,
            "    history established      {:6.1}%",
            self.friction_established * 100.0
        )?;
        writeln!(
            f,
            "  median user's friction     {:6.1}%",
            self.median_user_friction * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_catch_the_target_share_and_price_it_in_friction() {
        let mut curve = ModelCurve::default();
        for s in [1.0, 2.0, 5.0, 10.0, 100.0, 1000.0, 50.0, 20.0, 8.0, 3.0] {
            curve.push(
                Some(s),
                true,
                Some("targeted"),
                HistoryState::Established,
                "victim",
            );
        }
        for (i, s) in [0.1, 0.2, 0.5, 4.0].into_iter().enumerate() {
            curve.push(
                Some(s),
                false,
                None,
                HistoryState::Established,
                &format!("u{i}"),
            );
        }
        curve.push(None, false, None, HistoryState::None, "new");
        let t = curve.threshold("targeted", 0.9);
        assert_eq!(t.threshold_s, Some(2.0));
        assert!((t.caught - 0.9).abs() < 1e-12);
        // One of five legitimate logins (S = 4) is at or above S = 2.
        assert!((t.friction - 0.2).abs() < 1e-12);
        assert_eq!(t.friction_none, 0.0);
    }

    #[test]
    fn attacks_on_users_without_history_are_outside_the_model_and_counted_apart() {
        let mut curve = ModelCurve::default();
        curve.push(None, true, Some("targeted"), HistoryState::None, "v");
        curve.push(Some(9.0), true, Some("targeted"), HistoryState::Thin, "w");
        let t = curve.threshold("targeted", 0.99);
        assert_eq!(
            (
                t.threshold_s,
                t.attacks_with_history,
                t.attacks_without_history
            ),
            (Some(9.0), 1, 1)
        );
        assert_eq!(
            curve.threshold("nothing-of-this-kind", 0.99).threshold_s,
            None
        );
    }
}
