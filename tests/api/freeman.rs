//! The statistical model through the API, against the reference vectors of
//! `../shared/docs/rba-model.md`: ingest each scenario's history with
//! POST /v1/events on a fresh data directory, score its attempt, and
//! compare the `freeman` reason's value with the expected likelihood ratio.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Reply};

const VECTORS: &str = include_str!("../fixtures/freeman-vectors.json");
const RELATIVE_TOLERANCE: f64 = 1e-9;

/// A vector entry (`user`, `ip`, `asn`, `cc`, `ua`, `bv`, `osv`, `df`) as a
/// request: the model's features travel in `geo` and `client`.
fn request(entry: &Value) -> Value {
    json!({
        "user_id": entry["user"],
        "ip": entry["ip"],
        "user_agent": entry["ua"],
        "geo": {"asn": entry["asn"], "country": entry["cc"]},
        "client": {"browser": entry["bv"], "os": entry["osv"], "device_type": entry["df"]},
    })
}

/// Runs one scenario on its own server; returns the score answer.
fn run(scenario: &Value) -> Reply {
    let app = spawn_app();
    let history = scenario["history"].as_array().unwrap();
    let ndjson: String = history
        .iter()
        .map(|entry| {
            let mut line = request(entry);
            line["outcome"] = json!("success");
            format!("{line}\n")
        })
        .collect();
    let ingested = app.events(&ndjson);
    let body = ingested.expect(200);
    assert_eq!(body["accepted"], history.len(), "{}", ingested.text);
    assert_eq!(body["rejected"], json!([]), "{}", ingested.text);
    app.score(&request(&scenario["attempt"]))
}

#[test]
fn the_freeman_reason_carries_the_reference_likelihood_ratio() {
    let scenarios: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
    assert_eq!(scenarios.len(), 20);
    let mut mismatches = Vec::new();
    for scenario in &scenarios {
        let id = scenario["id"].as_str().unwrap();
        let expected = scenario["expected_likelihood_ratio"].as_f64().unwrap();
        let reply = run(scenario);
        assert_eq!(reply.status, 200, "{id}: {}", reply.text);
        let Some(reason) = reply.reason("freeman") else {
            mismatches.push(format!("{id}: no freeman reason in {}", reply.text));
            continue;
        };
        let Some(actual) = reason["value"].as_f64() else {
            mismatches.push(format!("{id}: freeman value is not a number: {reason}"));
            continue;
        };
        let error = (actual - expected).abs() / expected.abs();
        if error.is_nan() || error > RELATIVE_TOLERANCE {
            mismatches.push(format!(
                "{id}: S = {actual}, expected {expected} (relative error {error:e})"
            ));
        }
        // A familiar context lowers the risk, a foreign one raises it.
        let score = reason["score"].as_f64().unwrap();
        if expected < 1.0 && score >= 0.0 || expected > 1.0 && score <= 0.0 {
            mismatches.push(format!(
                "{id}: S = {expected} but the reason's score is {score}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} scenarios disagree with the reference:\n{}",
        mismatches.len(),
        scenarios.len(),
        mismatches.join("\n")
    );
}
