//! The saturation search: the highest paced rate whose p99 (from the
//! intended send time) stays within a bound with no errors. It doubles from
//! the lowest rate until a step fails (or the highest rate passes), then
//! bisects between the last pass and the first failure until they are
//! within [`PRECISION`] of each other. A failing step is run once more at
//! the same rate before it counts: on a shared machine one host stall of
//! 20 ms puts a 10 s step's p99 over a 5 ms bound at any rate, and a
//! single unconfirmed failure would cap every later step of the search
//! below it. A plain struct: the engine runs the steps it asks for.

use super::report::RunReport;

/// Bisection stops when the failing rate is within this factor of the passing one.
pub const PRECISION: f64 = 1.05;
/// At most this many steps, whatever the range (retries included).
pub const STEPS_MAX: usize = 20;
/// A step must achieve this share of its target rate: a server (or a
/// generator) that cannot keep up has not met the rate, however fast the
/// answers it does give.
pub const ACHIEVED_SHARE_MIN: f64 = 0.95;

/// Whose p99 the bound applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Judged {
    /// Every request, scores and outcomes.
    All,
    /// `/v1/score` only, the login's critical path. An outcome's reply
    /// waits for a durability barrier by contract, so its latency has the
    /// disk's fdatasync and the group commit interval under it, whatever
    /// the rate; with outcomes a third of the requests, their tail is the
    /// all-request p99.
    Score,
}

/// Whether a step met the bound: errors and the achieved rate always
/// count; the p99 is `judged`'s.
pub fn passes(report: &RunReport, p99_max_us: u64, judged: Judged) -> bool {
    let p99_us = match judged {
        Judged::All => report.latency_us.all.p99_us,
        Judged::Score => report.latency_us.score.p99_us,
    };
    report.requests > 0
        && report.errors.total == 0
        && p99_us <= p99_max_us
        && report.rate_achieved_per_s >= ACHIEVED_SHARE_MIN * report.rate_target_per_s
}

#[derive(Clone, Debug)]
pub struct SaturationSearch {
    rate_min_per_s: f64,
    rate_max_per_s: f64,
    /// The highest rate that passed.
    passed: Option<f64>,
    /// The lowest rate that failed twice in a row.
    failed: Option<f64>,
    /// A rate that failed once and is run again before it counts.
    retry: Option<f64>,
    steps: usize,
}

impl SaturationSearch {
    /// `0 < rate_min_per_s <= rate_max_per_s` (checked by the caller's configuration).
    pub fn new(rate_min_per_s: f64, rate_max_per_s: f64) -> SaturationSearch {
        SaturationSearch {
            rate_min_per_s,
            rate_max_per_s,
            passed: None,
            failed: None,
            retry: None,
            steps: 0,
        }
    }

    /// The next rate to try, or `None` when the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        if self.steps >= STEPS_MAX {
            return None;
        }
        if let Some(rate) = self.retry {
            return Some(rate);
        }
        match (self.passed, self.failed) {
            (None, None) => Some(self.rate_min_per_s),
            // Even the lowest rate failed.
            (None, Some(_)) => None,
            (Some(passed), None) if passed >= self.rate_max_per_s => None,
            (Some(passed), None) => Some((passed * 2.0).min(self.rate_max_per_s)),
            (Some(passed), Some(failed)) if failed <= passed * PRECISION => None,
            (Some(passed), Some(failed)) => Some(((passed + failed) / 2.0).round()),
        }
    }

    pub fn record(&mut self, rate_per_s: f64, passed: bool) {
        self.steps += 1;
        let confirmed = self.retry.take() == Some(rate_per_s);
        if passed {
            self.passed = Some(self.passed.map_or(rate_per_s, |p| p.max(rate_per_s)));
        } else if confirmed {
            self.failed = Some(self.failed.map_or(rate_per_s, |f| f.min(rate_per_s)));
        } else {
            self.retry = Some(rate_per_s);
        }
    }

    /// The highest rate that passed so far.
    pub fn best(&self) -> Option<f64> {
        self.passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a server that holds up to `capacity`.
    fn search(min: f64, max: f64, capacity: f64) -> (Option<f64>, Vec<f64>) {
        let mut search = SaturationSearch::new(min, max);
        let mut tried = Vec::new();
        while let Some(rate) = search.next_rate() {
            tried.push(rate);
            search.record(rate, rate <= capacity);
        }
        (search.best(), tried)
    }

    #[test]
    fn it_ramps_then_bisects_to_within_the_precision() {
        let (best, tried) = search(1_000.0, 100_000.0, 37_000.0);
        // 64,000/s fails, and fails again before the bisection starts.
        assert_eq!(&tried[..8], &[1e3, 2e3, 4e3, 8e3, 16e3, 32e3, 64e3, 64e3]);
        let best = best.unwrap();
        assert!(
            best <= 37_000.0 && best * PRECISION >= 37_000.0,
            "{best} {tried:?}"
        );
        assert!(tried.len() <= STEPS_MAX);
    }

    #[test]
    fn the_ends_of_the_range() {
        // Everything passes: the answer is the highest rate.
        let (best, tried) = search(1_000.0, 100_000.0, f64::INFINITY);
        assert_eq!(best, Some(100_000.0));
        assert_eq!(tried.last(), Some(&100_000.0));
        // Nothing passes: the lowest rate twice, no answer.
        let (best, tried) = search(1_000.0, 100_000.0, 10.0);
        assert_eq!(best, None);
        assert_eq!(tried, vec![1_000.0, 1_000.0]);
        // A single-rate range.
        let (best, tried) = search(500.0, 500.0, 1e9);
        assert_eq!((best, tried), (Some(500.0), vec![500.0]));
    }

    #[test]
    fn one_failure_is_run_again_before_it_caps_the_search() {
        // A server that holds 37,000/s but stalls once, during the 2,000/s step.
        let mut search = SaturationSearch::new(1_000.0, 100_000.0);
        let mut tried = Vec::new();
        let mut stalled = false;
        while let Some(rate) = search.next_rate() {
            tried.push(rate);
            let stall = rate == 2_000.0 && !stalled;
            stalled |= stall;
            search.record(rate, rate <= 37_000.0 && !stall);
        }
        assert_eq!(&tried[..3], &[1e3, 2e3, 2e3], "{tried:?}");
        let best = search.best().unwrap();
        assert!(best * PRECISION >= 37_000.0, "{best} {tried:?}");
    }

    #[test]
    fn the_step_count_is_bounded() {
        let (_, tried) = search(1.0, 1e12, 123_456_789.0);
        assert_eq!(tried.len(), STEPS_MAX);
    }
}
