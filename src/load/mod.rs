//! `riskd load`: an open-loop load generator for a running riskd (or
//! anything that speaks `POST /v1/score` and `POST /v1/outcomes`).
//!
//! ```text
//!  workload.rs  logins from the scenario generator, rendered to bodies before the run
//!  schedule.rs  request k is due at start + k / rate (open loop)
//!  alarm.rs     a thread that wakes the dispatcher on time, to the microsecond
//!  engine.rs    one tokio thread: N keep-alive HTTP/1.1 connections (hyper,
//!               TCP_NODELAY), a dispatcher handing due requests to idle ones
//!  record.rs    HDR histograms: latency from the intended send time
//!               (coordinated omission corrected), service time, send lag
//!  report.rs    the report: a table and JSON
//!  saturate.rs  the search for the highest rate meeting a p99 bound
//! ```
//!
//! The mix is realistic: each score request is a simulated login (known
//! devices, travel, attackers); after a score answer, with probability
//! `outcome_share`, the login's outcome is reported as a paced request of
//! its own, with the attempt id from the answer.

mod alarm;
mod duration;
mod engine;
mod record;
mod report;
mod saturate;
mod schedule;
mod target;
mod workload;

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

pub use duration::{parse_duration, InvalidDuration};
pub use record::{Failure, Recorder, RequestKind, RunInfo};
pub use report::{
    ErrorCounts, Latencies, LatencySummary, RunReport, SaturationReport, SaturationStep,
};
pub use saturate::{passes, Judged, SaturationSearch, ACHIEVED_SHARE_MIN};
pub use schedule::Schedule;
pub use target::{InvalidTarget, Target};
pub use workload::{Workload, WorkloadError};

/// Most connections a run may open.
pub const CONNECTIONS_MAX: usize = 4_096;
/// Highest rate a run may ask for, in requests per second.
pub const RATE_PER_S_MAX: f64 = 1_000_000.0;
/// Logins rendered before the run; the run cycles through them.
pub const POOL_LOGINS_DEFAULT: usize = 100_000;
/// Most logins rendered before the run (about 600 bytes each).
pub const POOL_LOGINS_MAX: usize = 10_000_000;
/// Pause between saturation steps, so one step's backlog on the server
/// does not spill into the next.
const STEP_PAUSE: Duration = Duration::from_secs(1);
/// Characters of a random UUID used as the default run id.
const RUN_ID_DEFAULT_CHARS: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid load configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Target(#[from] InvalidTarget),
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        source: std::io::Error,
    },
    #[error("cannot start the load generator's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot start a load generator thread: {0}")]
    Thread(std::io::Error),
    #[error("latency histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
    #[error("latency histogram: {0}")]
    HistogramAdd(#[from] hdrhistogram::AdditionError),
}

/// A paced run: what to send, where, how fast, for how long.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub target: String,
    pub rate_per_s: f64,
    /// Recorded time, after the warmup.
    pub duration: Duration,
    /// Paced like the run but not recorded (connections, caches, the
    /// server's allocator settle).
    pub warmup: Duration,
    pub connections: usize,
    /// Users of the simulated population.
    pub users: u32,
    /// Seeds the population and the outcome draws.
    pub seed: u64,
    /// Share of scored logins whose outcome is reported, in [0, 1].
    pub outcome_share: f64,
    /// A request with no complete answer by then is a timeout error.
    pub request_timeout: Duration,
    /// Logins rendered before the run.
    pub pool_logins: usize,
    /// Prefix of every event id (default: random), so runs never collide.
    pub run_id: Option<String>,
}

impl LoadConfig {
    /// The defaults of `riskd load` for a target, rate and duration.
    pub fn new(target: impl Into<String>, rate_per_s: f64, duration: Duration) -> LoadConfig {
        LoadConfig {
            target: target.into(),
            rate_per_s,
            duration,
            warmup: Duration::from_secs(5),
            connections: 64,
            users: 10_000,
            seed: 1,
            outcome_share: 0.5,
            request_timeout: Duration::from_secs(10),
            pool_logins: POOL_LOGINS_DEFAULT,
            run_id: None,
        }
    }

    fn validate(&self) -> Result<(), LoadError> {
        check_rate(self.rate_per_s)?;
        let fail = |why: String| Err(LoadError::Config(why));
        if self.duration.is_zero() {
            return fail("the duration must be above zero".into());
        }
        if !(1..=CONNECTIONS_MAX).contains(&self.connections) {
            return fail(format!("connections must be 1..={CONNECTIONS_MAX}"));
        }
        if self.users == 0 {
            return fail("users must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.outcome_share) {
            return fail("the outcome share must be within [0, 1]".into());
        }
        if self.request_timeout.is_zero() {
            return fail("the request timeout must be above zero".into());
        }
        if !(1..=POOL_LOGINS_MAX).contains(&self.pool_logins) {
            return fail(format!("the pool must hold 1..={POOL_LOGINS_MAX} logins"));
        }
        if let Some(run_id) = &self.run_id {
            workload::check_run_id(run_id)?;
        }
        Ok(())
    }
}

fn check_rate(rate_per_s: f64) -> Result<(), LoadError> {
    if rate_per_s.is_finite() && rate_per_s > 0.0 && rate_per_s <= RATE_PER_S_MAX {
        Ok(())
    } else {
        Err(LoadError::Config(format!(
            "a rate must be above 0 and at most {RATE_PER_S_MAX} requests/s, not {rate_per_s}"
        )))
    }
}

/// The saturation search: short paced steps between two rates.
#[derive(Clone, Debug)]
pub struct SaturationConfig {
    pub rate_min_per_s: f64,
    pub rate_max_per_s: f64,
    /// The bound on p99 latency (from the intended send time).
    pub p99_max: Duration,
    /// Whose p99 the bound applies to.
    pub p99_of: Judged,
    /// Recorded time of each step.
    pub step_duration: Duration,
    /// Unrecorded time at the start of each step.
    pub step_warmup: Duration,
}

impl SaturationConfig {
    fn validate(&self) -> Result<(), LoadError> {
        check_rate(self.rate_min_per_s)?;
        check_rate(self.rate_max_per_s)?;
        if self.rate_min_per_s > self.rate_max_per_s {
            return Err(LoadError::Config(
                "the lowest rate is above the highest".into(),
            ));
        }
        if self.step_duration.is_zero() || self.p99_max.is_zero() {
            return Err(LoadError::Config(
                "the step duration and the p99 bound must be above zero".into(),
            ));
        }
        Ok(())
    }
}

/// A configured generator: the target resolved, the pool rendered, the
/// runtime built. Runs and searches reuse all three.
pub struct LoadGenerator {
    config: LoadConfig,
    run_id: String,
    target: Arc<Target>,
    workload: Workload,
    /// The workload index the next run starts at.
    next_score: Cell<u64>,
    runtime: tokio::runtime::Runtime,
}

impl LoadGenerator {
    pub fn new(config: LoadConfig) -> Result<LoadGenerator, LoadError> {
        config.validate()?;
        let target = Arc::new(Target::parse(&config.target)?);
        let workload = Workload::generate(
            config.users,
            config.seed,
            config.pool_logins,
            crate::clock::now_ms(),
        )?;
        let run_id = config.run_id.clone().unwrap_or_else(|| {
            let mut id = uuid::Uuid::new_v4().simple().to_string();
            id.truncate(RUN_ID_DEFAULT_CHARS);
            id
        });
        // One thread (plus the alarm's): the generator shares the machine
        // with the server.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(LoadError::Runtime)?;
        Ok(LoadGenerator {
            config,
            run_id,
            target,
            workload,
            next_score: Cell::new(0),
            runtime,
        })
    }

    /// Event ids of this generator's requests start with this.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Logins in the pool.
    pub fn pool_len(&self) -> usize {
        self.workload.len()
    }

    /// The configured run: warmup, then the recorded duration.
    pub fn run(&self) -> Result<RunReport, LoadError> {
        self.run_phase(
            &self.run_id,
            self.config.rate_per_s,
            self.config.warmup,
            self.config.duration,
        )
    }

    fn run_phase(
        &self,
        run_id: &str,
        rate_per_s: f64,
        warmup: Duration,
        duration: Duration,
    ) -> Result<RunReport, LoadError> {
        let settings = engine::Settings {
            connections: self.config.connections,
            outcome_share: self.config.outcome_share,
            request_timeout: self.config.request_timeout,
            seed: self.config.seed,
        };
        let phase = engine::Phase {
            run_id,
            first_score: self.next_score.get(),
            rate_per_s,
            warmup,
            duration,
        };
        let (target, workload, runtime) = (&self.target, &self.workload, &self.runtime);
        let (report, next_score) = std::thread::scope(|scope| {
            // A thread of its own, so that lowering its timer slack leaves
            // the caller's thread as it was.
            let runner = std::thread::Builder::new()
                .name("load-runtime".into())
                .spawn_scoped(scope, move || {
                    alarm::reduce_timer_slack();
                    runtime.block_on(engine::run(target, workload, &settings, &phase))
                })
                .map_err(LoadError::Thread)?;
            match runner.join() {
                Ok(outcome) => outcome,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })?;
        self.next_score.set(next_score);
        Ok(report)
    }

    /// Searches for the highest rate meeting `search`'s bound; `on_step`
    /// sees each step as it ends.
    pub fn saturate(
        &self,
        search: &SaturationConfig,
        mut on_step: impl FnMut(&SaturationStep),
    ) -> Result<SaturationReport, LoadError> {
        search.validate()?;
        let p99_max_us = u64::try_from(search.p99_max.as_micros()).unwrap_or(u64::MAX);
        let mut state = SaturationSearch::new(search.rate_min_per_s, search.rate_max_per_s);
        let mut steps = Vec::new();
        while let Some(rate) = state.next_rate() {
            if !steps.is_empty() {
                std::thread::sleep(STEP_PAUSE);
            }
            let run_id = format!("{}s{}", self.run_id, steps.len() + 1);
            let report = self.run_phase(&run_id, rate, search.step_warmup, search.step_duration)?;
            let passed = passes(&report, p99_max_us, search.p99_of);
            state.record(rate, passed);
            let step = SaturationStep {
                rate_target_per_s: rate,
                passed,
                report,
            };
            on_step(&step);
            steps.push(step);
        }
        Ok(SaturationReport {
            target: self.target.url.clone(),
            p99_max_us,
            p99_of: search.p99_of,
            rate_min_per_s: search.rate_min_per_s,
            rate_max_per_s: search.rate_max_per_s,
            achieved_share_min: ACHIEVED_SHARE_MIN,
            steps,
            best_rate_per_s: state.best(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_are_checked() {
        let ok = LoadConfig::new("http://127.0.0.1:1", 100.0, Duration::from_secs(1));
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.rate_per_s = 0.0;
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.rate_per_s = f64::NAN;
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.connections = 0;
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.outcome_share = 1.5;
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.run_id = Some("no spaces".into());
        assert!(bad.validate().is_err());
        let search = SaturationConfig {
            rate_min_per_s: 2_000.0,
            rate_max_per_s: 1_000.0,
            p99_max: Duration::from_millis(5),
            p99_of: Judged::All,
            step_duration: Duration::from_secs(10),
            step_warmup: Duration::from_secs(2),
        };
        assert!(search.validate().is_err());
    }
}
