//! GET /healthz, /readyz, /metrics.

use serde_json::json;

use crate::helpers::{metric_sum, spawn_app};

#[test]
fn healthz_is_200_while_the_process_runs() {
    let app = spawn_app();
    let reply = app.get("/healthz");
    reply.expect(200);
}

#[test]
fn readyz_is_200_once_every_partition_has_caught_up() {
    let app = spawn_app();
    let reply = app.get("/readyz");
    let body = reply.expect(200);
    assert_eq!(body["status"], "ready", "{}", reply.text);
    let ready = crate::helpers::metric(&app.get("/metrics").text, "riskd_partitions_ready");
    assert_eq!(
        body["partitions"].as_f64(),
        Some(ready),
        "every partition counted as caught up"
    );
}

#[test]
fn metrics_are_prometheus_text_with_decisions_and_http_requests() {
    let app = spawn_app();
    app.score(&json!({"user_id": "metrics-user", "ip": "192.0.2.1"}))
        .expect(200);
    let reply = app.get("/metrics");
    reply.expect(200);
    let content_type = reply.content_type.as_deref().unwrap_or("");
    assert!(
        content_type.starts_with("text/plain"),
        "Prometheus text format, got {content_type}"
    );
    assert!(
        reply.text.contains("# TYPE riskd_decisions_total counter"),
        "{}",
        reply.text
    );
    assert_eq!(metric_sum(&reply.text, "riskd_decisions_total"), 1.0);
    assert!(
        reply
            .text
            .contains("# TYPE riskd_http_requests_total counter"),
        "{}",
        reply.text
    );
    assert!(
        metric_sum(&reply.text, "riskd_http_requests_total") >= 1.0,
        "{}",
        reply.text
    );
}
