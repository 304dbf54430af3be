//! What a run reports: plain data, printed as a table (`Display`) or as
//! JSON (`Serialize`). All latencies are in microseconds.

use std::collections::BTreeMap;
use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Percentiles of one histogram, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p99_9_us: u64,
    pub max_us: u64,
}

impl LatencySummary {
    pub fn of(histogram: &Histogram<u64>) -> LatencySummary {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: histogram.len(),
            p50_us: histogram.value_at_quantile(0.5),
            p90_us: histogram.value_at_quantile(0.9),
            p99_us: histogram.value_at_quantile(0.99),
            p99_9_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        }
    }
}

/// One summary per request kind and one over both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Latencies {
    pub all: LatencySummary,
    pub score: LatencySummary,
    pub outcome: LatencySummary,
}

/// Failed requests by kind. A failed request's latency is not in the
/// histograms: it is counted here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    pub total: u64,
    /// Answers outside 2xx, by status code.
    pub status: BTreeMap<u16, u64>,
    /// No connection could be opened (or reopened) for the request.
    pub connect: u64,
    /// The connection failed while the request was out.
    pub connection: u64,
    /// No complete answer within the request timeout.
    pub timeout: u64,
    /// Due, but never sent: the run's drain limit passed first.
    pub not_sent: u64,
}

impl ErrorCounts {
    /// `status 429 ×3, timeout 1`, or `none`.
    fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .status
            .iter()
            .map(|(code, n)| format!("status {code} ×{n}"))
            .collect();
        for (name, n) in [
            ("connect", self.connect),
            ("connection", self.connection),
            ("timeout", self.timeout),
            ("not sent", self.not_sent),
        ] {
            if n > 0 {
                parts.push(format!("{name} {n}"));
            }
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One paced run (after its warmup).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunReport {
    pub target: String,
    pub rate_target_per_s: f64,
    /// Answers (any status) over the measured window, which ends with the
    /// last answer if that came after the schedule's end.
    pub rate_achieved_per_s: f64,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub connections: usize,
    /// Requests the schedule held for the measured window.
    pub requests: u64,
    pub score_requests: u64,
    pub outcome_requests: u64,
    /// Requests answered, whatever the status.
    pub responses: u64,
    pub errors: ErrorCounts,
    /// From the intended send time to the end of the answer: what a caller
    /// arriving on schedule waits (corrected for coordinated omission).
    pub latency_us: Latencies,
    /// From the actual send to the end of the answer: the server's and the
    /// network's part alone.
    pub service_us: Latencies,
    /// How late requests went out: waiting for a free connection, and the
    /// generator's own wake-up delay.
    pub send_lag_us: LatencySummary,
    /// Outcomes not reported because too many were waiting for a slot.
    pub outcomes_skipped: u64,
    /// CPU the generator used over the run, in % of one core (Linux only).
    pub generator_cpu_percent: Option<f64>,
}

/// One step of a saturation search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SaturationStep {
    pub rate_target_per_s: f64,
    pub passed: bool,
    pub report: RunReport,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SaturationReport {
    pub target: String,
    pub p99_max_us: u64,
    pub p99_of: super::saturate::Judged,
    pub rate_min_per_s: f64,
    pub rate_max_per_s: f64,
    /// A step passes with p99 (from intended time) within `p99_max_us`, no
    /// errors, and at least this share of its target rate achieved.
    pub achieved_share_min: f64,
    pub steps: Vec<SaturationStep>,
    /// The highest target rate that passed, if any did.
    pub best_rate_per_s: Option<f64>,
}

impl SaturationReport {
    pub fn best(&self) -> Option<&SaturationStep> {
        let best = self.best_rate_per_s?;
        self.steps
            .iter()
            .find(|step| step.passed && step.rate_target_per_s == best)
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {:.0}/s target, {:.0}/s achieved, {:.1} s measured after {:.1} s warmup, {} connections",
            self.target,
            self.rate_target_per_s,
            self.rate_achieved_per_s,
            self.duration_s,
            self.warmup_s,
            self.connections
        )?;
        write!(
            f,
            "requests {} (score {}, outcome {}), responses {}, errors {}",
            self.requests,
            self.score_requests,
            self.outcome_requests,
            self.responses,
            self.errors.total
        )?;
        match self.generator_cpu_percent {
            Some(cpu) => writeln!(f, "; generator CPU {cpu:.0}% of a core")?,
            None => writeln!(f)?,
        }
        writeln!(
            f,
            "latency from intended send time, µs                     service time, µs"
        )?;
        writeln!(
            f,
            "{:<8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7}   {:>7} {:>7}",
            "", "count", "p50", "p90", "p99", "p99.9", "max", "p50", "p99"
        )?;
        for (name, latency, service) in [
            ("all", &self.latency_us.all, &self.service_us.all),
            ("score", &self.latency_us.score, &self.service_us.score),
            (
                "outcome",
                &self.latency_us.outcome,
                &self.service_us.outcome,
            ),
        ] {
            writeln!(
                f,
                "{name:<8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7}   {:>7} {:>7}",
                latency.count,
                latency.p50_us,
                latency.p90_us,
                latency.p99_us,
                latency.p99_9_us,
                latency.max_us,
                service.p50_us,
                service.p99_us
            )?;
        }
        writeln!(
            f,
            "send lag behind schedule, µs: p50 {}, p99 {}, max {}",
            self.send_lag_us.p50_us, self.send_lag_us.p99_us, self.send_lag_us.max_us
        )?;
        if self.outcomes_skipped > 0 {
            writeln!(f, "outcomes skipped: {}", self.outcomes_skipped)?;
        }
        writeln!(f, "errors: {}", self.errors.describe())
    }
}

impl fmt::Display for SaturationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "saturation search on {}: highest rate with p99 ({}) <= {} µs, no errors, >= {:.0}% of the target achieved",
            self.target,
            match self.p99_of {
                super::saturate::Judged::All => "all requests",
                super::saturate::Judged::Score => "scores",
            },
            self.p99_max_us,
            self.achieved_share_min * 100.0
        )?;
        writeln!(f, "{}", SaturationStep::HEADER)?;
        for (n, step) in self.steps.iter().enumerate() {
            writeln!(f, "{}", step.row(n + 1))?;
        }
        match self.best_rate_per_s {
            Some(rate) => writeln!(f, "answer: {rate:.0} requests/s"),
            None => writeln!(
                f,
                "answer: none; no rate between {:.0} and {:.0}/s met the bound",
                self.rate_min_per_s, self.rate_max_per_s
            ),
        }
    }
}

impl SaturationStep {
    pub const HEADER: &'static str =
        "step  target/s achieved/s  requests  errors     p50     p99   p99.9     max  verdict";

    /// The step as a row under [`SaturationStep::HEADER`].
    pub fn row(&self, number: usize) -> String {
        let r = &self.report;
        let l = &r.latency_us.all;
        format!(
            "{number:>4} {:>9.0} {:>10.0} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7}  {}",
            self.rate_target_per_s,
            r.rate_achieved_per_s,
            r.requests,
            r.errors.total,
            l.p50_us,
            l.p99_us,
            l.p99_9_us,
            l.max_us,
            if self.passed { "pass" } else { "fail" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> RunReport {
        let summary = LatencySummary {
            count: 600,
            p50_us: 90,
            p90_us: 120,
            p99_us: 400,
            p99_9_us: 1_800,
            max_us: 4_200,
        };
        let mut errors = ErrorCounts {
            total: 4,
            timeout: 1,
            ..ErrorCounts::default()
        };
        errors.status.insert(429, 3);
        RunReport {
            target: "http://127.0.0.1:8080".into(),
            rate_target_per_s: 300.0,
            rate_achieved_per_s: 299.5,
            warmup_s: 0.5,
            duration_s: 2.0,
            connections: 8,
            requests: 604,
            score_requests: 400,
            outcome_requests: 204,
            responses: 603,
            errors,
            latency_us: Latencies {
                all: summary,
                score: summary,
                outcome: LatencySummary::default(),
            },
            service_us: Latencies::default(),
            send_lag_us: summary,
            outcomes_skipped: 0,
            generator_cpu_percent: Some(3.2),
        }
    }

    #[test]
    fn a_saturation_step_is_judged_by_the_p99_asked_for() {
        use crate::load::{passes, Judged};
        let mut report = sample();
        report.errors = ErrorCounts::default();
        report.latency_us.all.p99_us = 6_000;
        report.latency_us.score.p99_us = 3_000;
        assert!(!passes(&report, 5_000, Judged::All));
        assert!(passes(&report, 5_000, Judged::Score));
        // Errors and a missed rate fail a step however the p99 is judged.
        report.errors.total = 1;
        assert!(!passes(&report, 5_000, Judged::Score));
        report.errors.total = 0;
        report.rate_achieved_per_s = 0.9 * report.rate_target_per_s;
        assert!(!passes(&report, 5_000, Judged::Score));
    }

    #[test]
    fn summaries_read_the_histogram() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for us in 1..=1000 {
            histogram.record(us).unwrap();
        }
        let summary = LatencySummary::of(&histogram);
        assert_eq!(summary.count, 1000);
        assert_eq!(summary.p50_us, 500);
        assert_eq!(summary.p90_us, 900);
        assert_eq!(summary.p99_us, 990);
        assert_eq!(summary.p99_9_us, 999);
        assert_eq!(summary.max_us, 1000);
        let empty = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        assert_eq!(LatencySummary::of(&empty), LatencySummary::default());
    }

    #[test]
    fn the_table_shows_rates_percentiles_and_errors() {
        let text = sample().to_string();
        assert!(text.contains("300/s target, 300/s achieved"), "{text}");
        assert!(text.contains("generator CPU 3% of a core"), "{text}");
        assert!(
            text.lines().any(|l| l.starts_with("score")
                && l.split_whitespace().collect::<Vec<_>>()[1..7]
                    == ["600", "90", "120", "400", "1800", "4200"]),
            "{text}"
        );
        assert!(text.contains("errors: status 429 ×3, timeout 1"), "{text}");
    }

    #[test]
    fn the_json_has_the_same_figures() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["rate_target_per_s"], 300.0);
        assert_eq!(json["latency_us"]["score"]["p99_9_us"], 1800);
        assert_eq!(json["errors"]["status"]["429"], 3);
        assert_eq!(json["errors"]["total"], 4);
        assert_eq!(json["generator_cpu_percent"], 3.2);
    }

    #[test]
    fn a_saturation_report_names_its_answer() {
        let step = |rate: f64, passed| SaturationStep {
            rate_target_per_s: rate,
            passed,
            report: sample(),
        };
        let report = SaturationReport {
            target: "http://127.0.0.1:8080".into(),
            p99_max_us: 5_000,
            p99_of: super::super::saturate::Judged::All,
            rate_min_per_s: 1_000.0,
            rate_max_per_s: 100_000.0,
            achieved_share_min: 0.95,
            steps: vec![step(1_000.0, true), step(2_000.0, false)],
            best_rate_per_s: Some(1_000.0),
        };
        assert_eq!(report.best().map(|s| s.rate_target_per_s), Some(1_000.0));
        let text = report.to_string();
        assert!(text.contains("answer: 1000 requests/s"), "{text}");
        assert_eq!(text.lines().filter(|l| l.ends_with("pass")).count(), 1);
        assert_eq!(text.lines().filter(|l| l.ends_with("fail")).count(), 1);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["steps"][1]["passed"], false);
        assert_eq!(json["best_rate_per_s"], 1000.0);
    }
}
