//! `riskd load` as a library call against a real riskd on port 0: the
//! paced rate is met, scores and outcomes both go out and are accepted, the
//! histograms are filled and ordered. Latency values are never asserted:
//! the machine is shared and noisy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::Duration;

use riskd::load::{
    ErrorCounts, LatencySummary, LoadConfig, LoadError, LoadGenerator, SaturationConfig,
};

/// A small, quick configuration for a test server.
fn config(target: &str, rate_per_s: f64, duration: Duration) -> LoadConfig {
    LoadConfig {
        warmup: Duration::from_millis(500),
        connections: 8,
        users: 200,
        pool_logins: 2_000,
        ..LoadConfig::new(target, rate_per_s, duration)
    }
}

fn assert_ordered(name: &str, s: &LatencySummary) {
    assert!(s.count > 0, "{name}: empty");
    assert!(
        s.p50_us <= s.p90_us && s.p90_us <= s.p99_us && s.p99_us <= s.p99_9_us,
        "{name}: {s:?}"
    );
    assert!(s.p99_9_us <= s.max_us, "{name}: {s:?}");
}

#[test]
fn a_paced_run_sends_scores_and_outcomes_at_the_target_rate() {
    let app = helpers::spawn_app();
    let generator =
        LoadGenerator::new(config(&app.address, 300.0, Duration::from_secs(2))).unwrap();
    let report = generator.run().unwrap();

    // 300/s for 2 s after the warmup: exactly 600 requests on the schedule.
    assert_eq!(report.requests, 600, "{report}");
    assert_eq!(report.errors, ErrorCounts::default(), "{report}");
    assert_eq!(report.responses, report.requests, "{report}");
    assert!(
        (report.rate_achieved_per_s - 300.0).abs() <= 0.2 * 300.0,
        "{report}"
    );
    assert_eq!(
        report.score_requests + report.outcome_requests,
        report.requests
    );
    assert!(report.outcome_requests > 0, "{report}");
    assert_eq!(report.latency_us.all.count, report.responses);
    assert_eq!(report.latency_us.score.count, report.score_requests);
    assert_eq!(report.latency_us.outcome.count, report.outcome_requests);
    for (name, summary) in [
        ("latency", &report.latency_us.all),
        ("latency score", &report.latency_us.score),
        ("latency outcome", &report.latency_us.outcome),
        ("service", &report.service_us.all),
    ] {
        assert_ordered(name, summary);
    }
    // Latency counts from the intended time, so it is never below the
    // service time at the same percentile... up to the histogram's bucket
    // width (3 significant digits).
    assert!(report.latency_us.all.max_us * 1001 / 1000 >= report.service_us.all.max_us);

    // The server saw the outcomes and accepted them.
    let metrics = app.get("/metrics").text;
    let accepted = helpers::metric(
        &metrics,
        r#"riskd_http_requests_total{route="/v1/outcomes",status="202"}"#,
    );
    assert!(accepted > 0.0, "{metrics}");
    let scored = helpers::metric(
        &metrics,
        r#"riskd_http_requests_total{route="/v1/score",status="200"}"#,
    );
    assert!(scored >= report.score_requests as f64, "{metrics}");
    app.stop();
}

#[test]
fn a_saturation_search_reports_each_step_and_the_best_passing_rate() {
    let app = helpers::spawn_app();
    let generator =
        LoadGenerator::new(config(&app.address, 100.0, Duration::from_secs(1))).unwrap();
    let search = SaturationConfig {
        rate_min_per_s: 100.0,
        rate_max_per_s: 200.0,
        // Loose: this checks the search's wiring, not the server's speed.
        p99_max: Duration::from_secs(10),
        p99_of: riskd::load::Judged::Score,
        step_duration: Duration::from_secs(1),
        step_warmup: Duration::from_millis(200),
    };
    let mut seen = Vec::new();
    let report = generator
        .saturate(&search, |step| seen.push(step.rate_target_per_s))
        .unwrap();
    assert!(!report.steps.is_empty());
    assert_eq!(report.steps[0].rate_target_per_s, 100.0);
    assert_eq!(report.steps[0].report.requests, 100);
    assert_eq!(
        seen,
        report
            .steps
            .iter()
            .map(|s| s.rate_target_per_s)
            .collect::<Vec<_>>()
    );
    let best_passed = report
        .steps
        .iter()
        .filter(|s| s.passed)
        .map(|s| s.rate_target_per_s)
        .reduce(f64::max);
    assert_eq!(report.best_rate_per_s, best_passed, "{report}");
    app.stop();
}

#[test]
fn an_unreachable_target_is_an_error_not_a_panic() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target = format!("http://127.0.0.1:{port}");
    let generator = LoadGenerator::new(config(&target, 100.0, Duration::from_secs(1))).unwrap();
    match generator.run() {
        Err(LoadError::Connect { .. }) => {}
        other => panic!("expected a connect error, got {other:?}"),
    }
}
