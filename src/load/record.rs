//! The recorder: HDR histograms (µs, 3 significant digits) of latency from
//! the intended send time, of service time from the actual send, and of
//! send lag, plus error counts. A plain struct, fed by the engine and
//! tested without a network.

use std::time::{Duration, Instant};

use hdrhistogram::{AdditionError, CreationError, Histogram};
use serde::Serialize;

use super::report::{ErrorCounts, Latencies, LatencySummary, RunReport};

/// Lowest and highest latency tracked; a slower answer is recorded as this.
const LATENCY_US_MIN: u64 = 1;
const LATENCY_US_MAX: u64 = 60_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Score,
    Outcome,
}

impl RequestKind {
    fn index(self) -> usize {
        match self {
            RequestKind::Score => 0,
            RequestKind::Outcome => 1,
        }
    }
}

/// Why a request got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Connect,
    Connection,
    Timeout,
}

/// What the report needs besides the recorded figures.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub target: String,
    pub rate_target_per_s: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub connections: usize,
    /// Requests the schedule held for the measured window.
    pub requests: u64,
    /// When the measured window began (the first measured intended time).
    pub measure_start: Instant,
    pub generator_cpu_percent: Option<f64>,
}

pub struct Recorder {
    /// Indexed by [`RequestKind::index`].
    latency: [Histogram<u64>; 2],
    service: [Histogram<u64>; 2],
    send_lag: Histogram<u64>,
    requests: [u64; 2],
    responses: u64,
    errors: ErrorCounts,
    outcomes_skipped: u64,
    last_answer: Option<Instant>,
}

fn histogram() -> Result<Histogram<u64>, CreationError> {
    Histogram::new_with_bounds(LATENCY_US_MIN, LATENCY_US_MAX, SIGNIFICANT_DIGITS)
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl Recorder {
    pub fn new() -> Result<Recorder, CreationError> {
        Ok(Recorder {
            latency: [histogram()?, histogram()?],
            service: [histogram()?, histogram()?],
            send_lag: histogram()?,
            requests: [0; 2],
            responses: 0,
            errors: ErrorCounts::default(),
            outcomes_skipped: 0,
            last_answer: None,
        })
    }

    /// A measured request went out (counted by kind).
    pub fn sent(&mut self, kind: RequestKind) {
        self.requests[kind.index()] += 1;
    }

    /// An answer to a measured request: intended send time, actual send
    /// time, end of the answer. Only 2xx answers enter the histograms; the
    /// others are errors by status.
    pub fn answer(
        &mut self,
        kind: RequestKind,
        status: u16,
        intended: Instant,
        sent: Instant,
        done: Instant,
    ) {
        self.responses += 1;
        self.last_answer = Some(self.last_answer.map_or(done, |last| last.max(done)));
        if !(200..300).contains(&status) {
            self.errors.total += 1;
            *self.errors.status.entry(status).or_default() += 1;
            return;
        }
        let k = kind.index();
        self.latency[k].saturating_record(micros(done.saturating_duration_since(intended)));
        self.service[k].saturating_record(micros(done.saturating_duration_since(sent)));
        self.send_lag
            .saturating_record(micros(sent.saturating_duration_since(intended)));
    }

    pub fn failure(&mut self, failure: Failure) {
        self.errors.total += 1;
        match failure {
            Failure::Connect => self.errors.connect += 1,
            Failure::Connection => self.errors.connection += 1,
            Failure::Timeout => self.errors.timeout += 1,
        }
    }

    /// Measured requests that were due but never went out.
    pub fn not_sent(&mut self, requests: u64) {
        self.errors.total += requests;
        self.errors.not_sent += requests;
    }

    pub fn outcome_skipped(&mut self) {
        self.outcomes_skipped += 1;
    }

    pub fn report(&self, run: RunInfo) -> Result<RunReport, AdditionError> {
        let combine = |histograms: &[Histogram<u64>; 2]| -> Result<Latencies, AdditionError> {
            let mut all = histograms[0].clone();
            all.add(&histograms[1])?;
            Ok(Latencies {
                all: LatencySummary::of(&all),
                score: LatencySummary::of(&histograms[0]),
                outcome: LatencySummary::of(&histograms[1]),
            })
        };
        // The window ends on schedule, or with the last answer if that came
        // later: a server that falls behind achieves less than the target.
        let answered_for = self
            .last_answer
            .map_or(Duration::ZERO, |last| {
                last.saturating_duration_since(run.measure_start)
            })
            .max(run.duration);
        let rate_achieved_per_s = if answered_for.is_zero() {
            0.0
        } else {
            self.responses as f64 / answered_for.as_secs_f64()
        };
        Ok(RunReport {
            target: run.target,
            rate_target_per_s: run.rate_target_per_s,
            rate_achieved_per_s,
            warmup_s: run.warmup.as_secs_f64(),
            duration_s: run.duration.as_secs_f64(),
            connections: run.connections,
            requests: run.requests,
            score_requests: self.requests[RequestKind::Score.index()],
            outcome_requests: self.requests[RequestKind::Outcome.index()],
            responses: self.responses,
            errors: self.errors.clone(),
            latency_us: combine(&self.latency)?,
            service_us: combine(&self.service)?,
            send_lag_us: LatencySummary::of(&self.send_lag),
            outcomes_skipped: self.outcomes_skipped,
            generator_cpu_percent: run.generator_cpu_percent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(start: Instant) -> RunInfo {
        RunInfo {
            target: "http://127.0.0.1:1".into(),
            rate_target_per_s: 10.0,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            connections: 2,
            requests: 10,
            measure_start: start,
            generator_cpu_percent: None,
        }
    }

    #[test]
    fn latency_counts_from_the_intended_time_and_service_from_the_send() {
        let start = Instant::now();
        let mut recorder = Recorder::new().unwrap();
        for k in 0..10u64 {
            let intended = start + Duration::from_millis(100 * k);
            // Every request waits 2 ms for a connection, then takes 1 ms.
            let sent = intended + Duration::from_millis(2);
            let kind = if k % 2 == 0 {
                RequestKind::Score
            } else {
                RequestKind::Outcome
            };
            recorder.sent(kind);
            recorder.answer(kind, 200, intended, sent, sent + Duration::from_millis(1));
        }
        let report = recorder.report(info(start)).unwrap();
        assert_eq!(report.responses, 10);
        assert_eq!((report.score_requests, report.outcome_requests), (5, 5));
        assert_eq!(report.latency_us.all.count, 10);
        assert_eq!(report.latency_us.score.count, 5);
        assert_eq!(report.latency_us.outcome.count, 5);
        // 3 ms within the histogram's precision (3 significant digits).
        assert!((2_997..=3_003).contains(&report.latency_us.all.p50_us));
        assert!((997..=1_003).contains(&report.service_us.all.p99_us));
        assert!((1_997..=2_003).contains(&report.send_lag_us.max_us));
        assert_eq!(report.errors.total, 0);
        // 10 answers within the 1 s window.
        assert!((report.rate_achieved_per_s - 10.0).abs() < 1e-9);
    }

    #[test]
    fn errors_are_counted_by_kind_and_kept_out_of_the_histograms() {
        let start = Instant::now();
        let mut recorder = Recorder::new().unwrap();
        let later = start + Duration::from_millis(1);
        recorder.answer(RequestKind::Score, 429, start, start, later);
        recorder.answer(RequestKind::Score, 429, start, start, later);
        recorder.answer(RequestKind::Outcome, 404, start, start, later);
        recorder.failure(Failure::Timeout);
        recorder.failure(Failure::Connect);
        recorder.failure(Failure::Connection);
        recorder.not_sent(4);
        let report = recorder.report(info(start)).unwrap();
        assert_eq!(report.errors.total, 10);
        assert_eq!(report.errors.status.get(&429), Some(&2));
        assert_eq!(report.errors.status.get(&404), Some(&1));
        assert_eq!(
            (
                report.errors.timeout,
                report.errors.connect,
                report.errors.connection,
                report.errors.not_sent
            ),
            (1, 1, 1, 4)
        );
        assert_eq!(report.latency_us.all.count, 0);
        assert_eq!(report.responses, 3);
    }

    #[test]
    fn a_server_that_falls_behind_achieves_less_than_the_target() {
        let start = Instant::now();
        let mut recorder = Recorder::new().unwrap();
        // 10 requests due within 1 s, the last answered after 2 s.
        for k in 0..10u64 {
            let intended = start + Duration::from_millis(100 * k);
            let done = start + Duration::from_millis(200 * (k + 1));
            recorder.answer(RequestKind::Score, 200, intended, intended, done);
        }
        let report = recorder.report(info(start)).unwrap();
        assert!((report.rate_achieved_per_s - 5.0).abs() < 1e-9);
        assert!(report.latency_us.all.max_us >= 1_000_000);
    }
}
