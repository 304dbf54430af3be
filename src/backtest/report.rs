//! A backtest's report: what the replay counted, as plain data (serialised
//! with `--json`) and as the table `riskd backtest` prints.

use std::fmt;

use serde::Serialize;

use super::{decision_index, Backtest, Hits};
use crate::dataset::Label;
use crate::event::{Assessment, Decision, LoginAttempt, Outcome};

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub logins: u64,
    pub users: usize,
    /// Logins pushed with a timestamp before an earlier login's.
    pub out_of_order: u64,
    /// Whether the input had labels; the label sections exist only then.
    pub labelled: bool,
    /// The live ruleset first, then the candidate.
    pub rulesets: Vec<RulesetReport>,
    pub comparison: Option<ComparisonReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RulesetReport {
    pub ruleset: String,
    pub decisions: DecisionShares,
    pub labels: Option<LabelReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DecisionShares {
    pub allow: Rate,
    pub challenge: Rate,
    pub deny: Rate,
}

/// `hits` of `logins`, and their share (0 when there are no logins).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rate {
    pub logins: u64,
    pub hits: u64,
    pub share: f64,
}

impl Rate {
    fn new(hits: u64, logins: u64) -> Rate {
        Rate {
            logins,
            hits,
            share: if logins == 0 {
                0.0
            } else {
                hits as f64 / logins as f64
            },
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LabelReport {
    /// Attack logins (label.attack) challenged or denied.
    pub attacks_challenged_or_denied: Rate,
    pub attacks_denied: Rate,
    /// Account takeovers (the attacker's successful logins) challenged or denied.
    pub takeovers_challenged_or_denied: Rate,
    /// Friction: legitimate logins challenged or denied.
    pub legit_challenged_or_denied: Rate,
    pub legit_challenged_or_denied_by_history: HistoryRates,
    /// The median over users (with a legitimate login) of each user's share
    /// of legitimate logins challenged or denied: the re-authentication rate
    /// a typical user sees (as Wiefling et al. report it).
    pub median_user_legit_challenged_share: f64,
    pub users_with_legit_logins: u64,
    pub kinds: Vec<KindRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryRates {
    pub none: Rate,
    pub thin: Rate,
    pub established: Rate,
}

/// Logins of one label kind (None: the source named none), attacks and
/// legitimate logins apart.
#[derive(Clone, Debug, Serialize)]
pub struct KindRow {
    pub kind: Option<String>,
    pub attack: bool,
    pub challenged_or_denied: Rate,
    pub denied: Rate,
}

#[derive(Clone, Debug, Serialize)]
pub struct ComparisonReport {
    pub live: String,
    pub candidate: String,
    /// Rows: the live decision; columns: the candidate's.
    pub matrix: Vec<MatrixRow>,
    pub differing: u64,
    pub by_kind: Vec<KindDifferences>,
    /// Up to `EXAMPLES_MAX` differing logins, in event-time order.
    pub examples: Vec<Example>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MatrixRow {
    pub live: &'static str,
    pub allow: u64,
    pub challenge: u64,
    pub deny: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct KindDifferences {
    pub kind: Option<String>,
    pub attack: bool,
    pub differing: u64,
    /// The candidate decided more strictly (allow < challenge < deny).
    pub stricter: u64,
    pub laxer: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Example {
    pub attempt_id: String,
    pub user_id: String,
    pub timestamp: String,
    pub outcome: &'static str,
    pub label: Label,
    /// Live first, then the candidate.
    pub verdicts: Vec<Verdict>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub ruleset: String,
    pub decision: &'static str,
    pub risk: f64,
    pub history: &'static str,
    pub reasons: Vec<ReasonBrief>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReasonBrief {
    pub code: String,
    pub score: f64,
}

impl Example {
    pub(super) fn of(
        attempt: &LoginAttempt,
        outcome: Outcome,
        label: &Label,
        assessments: &[Assessment],
    ) -> Example {
        Example {
            attempt_id: attempt.attempt_id.clone(),
            user_id: attempt.user_id.clone(),
            timestamp: crate::http::request::format_timestamp(attempt.timestamp_ms),
            outcome: outcome.as_str(),
            label: label.clone(),
            verdicts: assessments
                .iter()
                .map(|a| Verdict {
                    ruleset: a.ruleset.clone(),
                    decision: a.decision.as_str(),
                    risk: a.risk,
                    history: a.history.as_str(),
                    reasons: a
                        .reasons
                        .iter()
                        .map(|r| ReasonBrief {
                            code: r.code.to_string(),
                            score: r.score,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn flagged(hits: &Hits) -> Rate {
    Rate::new(hits.challenged_or_denied, hits.logins)
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Kinds sorted: named kinds first by name, legitimate before attacks.
fn kind_order(kind: &Option<String>, attack: bool) -> (bool, String, bool) {
    (kind.is_none(), kind.clone().unwrap_or_default(), attack)
}

pub(super) fn build(backtest: &Backtest) -> Report {
    let rulesets = backtest
        .tallies
        .iter()
        .enumerate()
        .map(|(i, tally)| {
            let total = backtest.logins;
            let labels = backtest.labelled.then(|| {
                let mut shares: Vec<f64> = backtest
                    .users
                    .values()
                    .filter(|u| u.legit > 0)
                    .map(|u| f64::from(u.challenged[i]) / f64::from(u.legit))
                    .collect();
                let mut kinds: Vec<KindRow> = tally
                    .kinds
                    .iter()
                    .flat_map(|(kind, hits)| {
                        [false, true].into_iter().filter_map(move |attack| {
                            let hits = &hits[usize::from(attack)];
                            (hits.logins > 0).then(|| KindRow {
                                kind: kind.clone(),
                                attack,
                                challenged_or_denied: flagged(hits),
                                denied: Rate::new(hits.denied, hits.logins),
                            })
                        })
                    })
                    .collect();
                kinds.sort_by_key(|row| kind_order(&row.kind, row.attack));
                LabelReport {
                    attacks_challenged_or_denied: flagged(&tally.attacks),
                    attacks_denied: Rate::new(tally.attacks.denied, tally.attacks.logins),
                    takeovers_challenged_or_denied: flagged(&tally.takeovers),
                    legit_challenged_or_denied: flagged(&tally.legit),
                    legit_challenged_or_denied_by_history: HistoryRates {
                        none: flagged(&tally.legit_by_history[0]),
                        thin: flagged(&tally.legit_by_history[1]),
                        established: flagged(&tally.legit_by_history[2]),
                    },
                    users_with_legit_logins: shares.len() as u64,
                    median_user_legit_challenged_share: median(&mut shares),
                    kinds,
                }
            });
            RulesetReport {
                ruleset: backtest.scorers[i].ruleset().label(),
                decisions: DecisionShares {
                    allow: Rate::new(tally.decisions[0], total),
                    challenge: Rate::new(tally.decisions[1], total),
                    deny: Rate::new(tally.decisions[2], total),
                },
                labels,
            }
        })
        .collect::<Vec<_>>();
    let comparison = backtest.comparison.as_ref().map(|c| {
        let decisions = [Decision::Allow, Decision::Challenge, Decision::Deny];
        let mut by_kind: Vec<KindDifferences> = c
            .kinds
            .iter()
            .flat_map(|(kind, counts)| {
                [false, true].into_iter().filter_map(move |attack| {
                    let (differing, stricter) = counts[usize::from(attack)];
                    (differing > 0).then(|| KindDifferences {
                        kind: kind.clone(),
                        attack,
                        differing,
                        stricter,
                        laxer: differing - stricter,
                    })
                })
            })
            .collect();
        by_kind.sort_by_key(|row| kind_order(&row.kind, row.attack));
        ComparisonReport {
            live: rulesets[0].ruleset.clone(),
            candidate: rulesets[1].ruleset.clone(),
            matrix: decisions
                .into_iter()
                .map(|live| {
                    let row = c.matrix[decision_index(live)];
                    MatrixRow {
                        live: live.as_str(),
                        allow: row[0],
                        challenge: row[1],
                        deny: row[2],
                    }
                })
                .collect(),
            differing: (0..3)
                .flat_map(|l| (0..3).filter(move |&k| k != l).map(move |k| (l, k)))
                .map(|(l, k)| c.matrix[l][k])
                .sum(),
            by_kind,
            examples: c.examples.clone(),
        }
    });
    Report {
        logins: backtest.logins,
        users: backtest.projection.users_len(),
        out_of_order: backtest.out_of_order,
        labelled: backtest.labelled,
        rulesets,
        comparison,
    }
}

/// `1234567` -> `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A label kind for a table: its name, or `-`, with `(attack)` for attackers.
fn kind_name(kind: &Option<String>, attack: bool) -> String {
    let name = kind.as_deref().unwrap_or("-");
    if attack {
        format!("{name} (attack)")
    } else {
        name.to_owned()
    }
}

/// Picks one rate of a report section, for a table row.
type Pick<T> = fn(&T) -> Rate;

/// Width of a table's first column.
const LABEL_WIDTH: usize = 40;
/// Width of a count column, and of a share column.
const COUNT_WIDTH: usize = 10;
const SHARE_WIDTH: usize = 12;
/// Width of a decision column: count and share.
const DECISION_WIDTH: usize = 20;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.rulesets.iter().map(|r| r.ruleset.as_str()).collect();
        writeln!(
            f,
            "backtest: {} logins of {} users; ruleset {}",
            thousands(self.logins),
            thousands(self.users as u64),
            names.join(" (live) vs ") + if names.len() > 1 { " (candidate)" } else { "" }
        )?;
        if self.out_of_order > 0 {
            writeln!(
                f,
                "warning: {} logins were pushed out of event-time order",
                thousands(self.out_of_order)
            )?;
        }
        // One share column per ruleset, headed by its name.
        let header = |f: &mut fmt::Formatter<'_>, title: &str, second: &str| -> fmt::Result {
            write!(f, "\n{title:<LABEL_WIDTH$}{second:>COUNT_WIDTH$}")?;
            for name in &names {
                write!(f, "{name:>SHARE_WIDTH$}")?;
            }
            writeln!(f)
        };
        let row =
            |f: &mut fmt::Formatter<'_>, label: &str, count: u64, shares: &[f64]| -> fmt::Result {
                write!(
                    f,
                    "  {label:<w$}{:>COUNT_WIDTH$}",
                    thousands(count),
                    w = LABEL_WIDTH - 2
                )?;
                for share in shares {
                    write!(f, "{:>SHARE_WIDTH$}", percent(*share))?;
                }
                writeln!(f)
            };

        write!(f, "\n{:<LABEL_WIDTH$}", "decisions")?;
        for name in &names {
            write!(f, "{name:>DECISION_WIDTH$}")?;
        }
        writeln!(f)?;
        let decisions: [(&str, Pick<DecisionShares>); 3] = [
            ("allow", |d| d.allow),
            ("challenge", |d| d.challenge),
            ("deny", |d| d.deny),
        ];
        for (name, pick) in decisions {
            write!(f, "  {name:<w$}", w = LABEL_WIDTH - 2)?;
            for r in &self.rulesets {
                let rate = pick(&r.decisions);
                let cell = format!("{:>10} {:>7}", thousands(rate.hits), percent(rate.share));
                write!(f, "{cell:>DECISION_WIDTH$}")?;
            }
            writeln!(f)?;
        }

        let labels: Vec<&LabelReport> = self
            .rulesets
            .iter()
            .filter_map(|r| r.labels.as_ref())
            .collect();
        if let Some(first) = labels.first() {
            header(f, "challenged or denied", "logins")?;
            let lines: [(&str, Pick<LabelReport>); 7] = [
                ("attacks", |l| l.attacks_challenged_or_denied),
                ("attacks denied", |l| l.attacks_denied),
                ("takeovers", |l| l.takeovers_challenged_or_denied),
                ("legit logins (friction)", |l| l.legit_challenged_or_denied),
                ("  history none", |l| {
                    l.legit_challenged_or_denied_by_history.none
                }),
                ("  history thin", |l| {
                    l.legit_challenged_or_denied_by_history.thin
                }),
                ("  history established", |l| {
                    l.legit_challenged_or_denied_by_history.established
                }),
            ];
            for (name, pick) in lines {
                let shares: Vec<f64> = labels.iter().map(|l| pick(l).share).collect();
                row(f, name, pick(first).logins, &shares)?;
            }
            let shares: Vec<f64> = labels
                .iter()
                .map(|l| l.median_user_legit_challenged_share)
                .collect();
            row(
                f,
                "median user's legit friction",
                first.users_with_legit_logins,
                &shares,
            )?;

            header(f, "by label kind: challenged or denied", "logins")?;
            for (i, kind) in first.kinds.iter().enumerate() {
                let shares: Vec<f64> = labels
                    .iter()
                    .map(|l| l.kinds.get(i).map_or(0.0, |k| k.challenged_or_denied.share))
                    .collect();
                row(
                    f,
                    &kind_name(&kind.kind, kind.attack),
                    kind.challenged_or_denied.logins,
                    &shares,
                )?;
            }
            header(f, "by label kind: denied", "logins")?;
            for (i, kind) in first.kinds.iter().enumerate() {
                let shares: Vec<f64> = labels
                    .iter()
                    .map(|l| l.kinds.get(i).map_or(0.0, |k| k.denied.share))
                    .collect();
                row(
                    f,
                    &kind_name(&kind.kind, kind.attack),
                    kind.denied.logins,
                    &shares,
                )?;
            }
        }

        if let Some(c) = &self.comparison {
            writeln!(
                f,
                "\ndecisions, live {} (rows) x candidate {} (columns); {} differ",
                c.live,
                c.candidate,
                thousands(c.differing)
            )?;
            writeln!(
                f,
                "  {:<12}{:>12}{:>12}{:>12}",
                "", "allow", "challenge", "deny"
            )?;
            for m in &c.matrix {
                writeln!(
                    f,
                    "  {:<12}{:>12}{:>12}{:>12}",
                    m.live,
                    thousands(m.allow),
                    thousands(m.challenge),
                    thousands(m.deny)
                )?;
            }
            if !c.by_kind.is_empty() {
                writeln!(
                    f,
                    "\n{:<LABEL_WIDTH$}{:>COUNT_WIDTH$}{:>COUNT_WIDTH$}{:>COUNT_WIDTH$}",
                    "differences by label kind", "differ", "stricter", "laxer"
                )?;
                for k in &c.by_kind {
                    writeln!(
                        f,
                        "  {:<w$}{:>COUNT_WIDTH$}{:>COUNT_WIDTH$}{:>COUNT_WIDTH$}",
                        kind_name(&k.kind, k.attack),
                        thousands(k.differing),
                        thousands(k.stricter),
                        thousands(k.laxer),
                        w = LABEL_WIDTH - 2
                    )?;
                }
            }
            if !c.examples.is_empty() {
                writeln!(f, "\nexamples of differing logins")?;
            }
            for e in &c.examples {
                writeln!(
                    f,
                    "  {} user {} at {} ({}, {}):",
                    e.attempt_id,
                    e.user_id,
                    e.timestamp,
                    kind_name(&e.label.kind, e.label.attack),
                    e.outcome
                )?;
                for v in &e.verdicts {
                    let reasons: Vec<String> = v
                        .reasons
                        .iter()
                        .map(|r| format!("{} {:+.3}", r.code, r.score))
                        .collect();
                    writeln!(
                        f,
                        "    {:<20} {:<9} risk {:.3} history {:<11} {}",
                        v.ruleset,
                        v.decision,
                        v.risk,
                        v.history,
                        reasons.join(", ")
                    )?;
                }
            }
        }
        Ok(())
    }
}
