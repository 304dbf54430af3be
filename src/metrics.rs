//! Prometheus metrics. One registry per server instance (not a process
//! global), so several servers in one test process do not collide.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub score_seconds: Histogram,
    pub decisions: IntCounterVec,
    pub shed: IntCounterVec,
    pub partition_path: IntCounterVec,
    pub barrier_seconds: Histogram,
    pub barrier_events: Histogram,
    pub events_appended: IntCounterVec,
    pub outcomes_unknown: IntCounter,
    pub duplicates: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub replayed_records: IntCounter,
    pub snapshots: IntCounterVec,
    pub users: IntGaugeVec,
    pub partitions_ready: IntGauge,
    pub request_seconds: HistogramVec,
    pub shadow_decisions: IntCounterVec,
    pub signals_unknown: IntCounter,
    pub erasures_compacted: IntCounter,
}

/// Latency buckets from 10 µs to 1 s.
const LATENCY_BUCKETS_S: [f64; 14] = [
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 1.0,
];

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("riskd".into()), None)?;
        let latency = |name: &str, help: &str| {
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS_S.to_vec())
        };
        let metrics = Metrics {
            http_requests: IntCounterVec::new(
                Opts::new("http_requests_total", "HTTP requests by route and status"),
                &["route", "status"],
            )?,
            request_seconds: HistogramVec::new(
                latency("http_request_seconds", "Time from request to response, by route"),
                &["route"],
            )?,
            score_seconds: Histogram::with_opts(latency(
                "score_seconds",
                "Time a partition spends scoring one attempt once it holds the partition (projection read, factors, log append, fold)",
            ))?,
            decisions: IntCounterVec::new(Opts::new("decisions_total", "Score decisions"), &["decision"])?,
            partition_path: IntCounterVec::new(
                Opts::new(
                    "partition_path_total",
                    "Scores and outcomes run on the HTTP worker under the partition's lock (direct) or through the partition's mailbox because the lock was taken (mailbox)",
                ),
                &["path"],
            )?,
            shed: IntCounterVec::new(
                Opts::new("shed_total", "Requests refused because a partition was saturated or recovering"),
                &["reason"],
            )?,
            barrier_seconds: Histogram::with_opts(latency(
                "durability_barrier_seconds",
                "Duration of one durability barrier (sled flush + fdatasync)",
            ))?,
            barrier_events: Histogram::with_opts(
                HistogramOpts::new("durability_barrier_group_size", "Waiters completed by one barrier")
                    .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0]),
            )?,
            events_appended: IntCounterVec::new(
                Opts::new("log_events_appended_total", "Events appended to the log"),
                &["kind"],
            )?,
            outcomes_unknown: IntCounter::new("outcomes_unknown_attempt_total", "Outcomes for unknown attempts (404)")?,
            duplicates: IntCounterVec::new(
                Opts::new("duplicates_total", "Repeated event_ids and outcomes that recorded nothing new"),
                &["kind"],
            )?,
            dead_letters: IntCounterVec::new(Opts::new("dead_letters_total", "Input set aside"), &["source"])?,
            replayed_records: IntCounter::new("replayed_records_total", "Log records replayed at start")?,
            snapshots: IntCounterVec::new(Opts::new("snapshots_total", "Snapshots written"), &["result"])?,
            users: IntGaugeVec::new(Opts::new("users", "Users in each partition's projection"), &["partition"])?,
                        partitions_ready: IntGauge::new("partitions_ready", "Partitions that have caught up with their log")?,
            shadow_decisions: IntCounterVec::new(
                Opts::new("shadow_decisions_total", "Shadow mode: live x candidate decisions"),
                &["live", "candidate"],
            )?,
            erasures_compacted: IntCounter::new(
                "erasures_compacted_total",
                "Erased users whose records have left the log (compaction finished)",
            )?,
            signals_unknown: IntCounter::new(
                "signals_unknown_total",
                "Request signals the live ruleset does not know (ignored)",
            )?,

            registry,
        };
        let r = &metrics.registry;
        r.register(Box::new(metrics.http_requests.clone()))?;
        r.register(Box::new(metrics.request_seconds.clone()))?;
        r.register(Box::new(metrics.score_seconds.clone()))?;
        r.register(Box::new(metrics.decisions.clone()))?;
        r.register(Box::new(metrics.shed.clone()))?;
        r.register(Box::new(metrics.partition_path.clone()))?;
        r.register(Box::new(metrics.barrier_seconds.clone()))?;
        r.register(Box::new(metrics.barrier_events.clone()))?;
        r.register(Box::new(metrics.events_appended.clone()))?;
        r.register(Box::new(metrics.outcomes_unknown.clone()))?;
        r.register(Box::new(metrics.duplicates.clone()))?;
        r.register(Box::new(metrics.dead_letters.clone()))?;
        r.register(Box::new(metrics.replayed_records.clone()))?;
        r.register(Box::new(metrics.snapshots.clone()))?;
        r.register(Box::new(metrics.users.clone()))?;
        r.register(Box::new(metrics.partitions_ready.clone()))?;
        r.register(Box::new(metrics.shadow_decisions.clone()))?;
        r.register(Box::new(metrics.signals_unknown.clone()))?;
        r.register(Box::new(metrics.erasures_compacted.clone()))?;

        Ok(metrics)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }
}
