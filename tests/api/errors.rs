//! Every error of the contract: status, `{"error": {code, message, field?}}`,
//! the offending field named, Retry-After on 429/503, and never a 5xx
//! other than the specified 503.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{launch, post_with, spawn_app, spawn_app_with, Reply};

/// A valid /v1/score body with `patch` merged in (`null` removes a key).
fn attempt_with(patch: Value) -> Value {
    let mut body = json!({"user_id": "err-user", "ip": "192.0.2.1"});
    for (key, value) in patch.as_object().unwrap() {
        if value.is_null() {
            body.as_object_mut().unwrap().remove(key);
        } else {
            body[key] = value.clone();
        }
    }
    body
}

#[test]
fn each_invalid_score_field_is_a_400_naming_the_field() {
    let app = spawn_app();
    let long = |n: usize| "x".repeat(n);
    let too_many_signals: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("s{i}"), json!(true))).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("missing user_id", json!({"user_id": null}), "user_id"),
        ("empty user_id", json!({"user_id": ""}), "user_id"),
        ("257-byte user_id", json!({"user_id": long(257)}), "user_id"),
        ("numeric user_id", json!({"user_id": 42}), "user_id"),
        ("missing ip", json!({"ip": null}), "ip"),
        ("bad ip", json!({"ip": "192.0.2.300"}), "ip"),
        ("ip as a number", json!({"ip": 3232235777_u64}), "ip"),
        (
            "bad timestamp",
            json!({"timestamp": "yesterday"}),
            "timestamp",
        ),
        (
            "timestamp without offset",
            json!({"timestamp": "2025-06-02T00:09:12"}),
            "timestamp",
        ),
        ("empty event_id", json!({"event_id": ""}), "event_id"),
        (
            "129-byte event_id",
            json!({"event_id": long(129)}),
            "event_id",
        ),
        (
            "257-byte device_id",
            json!({"device_id": long(257)}),
            "device_id",
        ),
        (
            "1025-byte user_agent",
            json!({"user_agent": long(1025)}),
            "user_agent",
        ),
        (
            "device_type toaster",
            json!({"client": {"device_type": "toaster"}}),
            "client.device_type",
        ),
        (
            "client not an object",
            json!({"client": "Chrome"}),
            "client",
        ),
        (
            "geo.country SWE",
            json!({"geo": {"country": "SWE"}}),
            "geo.country",
        ),
        (
            "latitude 91",
            json!({"geo": {"latitude": 91.0}}),
            "geo.latitude",
        ),
        (
            "longitude -181",
            json!({"geo": {"longitude": -181.0}}),
            "geo.longitude",
        ),
        ("asn -1", json!({"geo": {"asn": -1}}), "geo.asn"),
        ("asn x", json!({"geo": {"asn": "x"}}), "geo.asn"),
        (
            "asn over u32",
            json!({"geo": {"asn": 4294967296_u64}}),
            "geo.asn",
        ),
        (
            "signal value str",
            json!({"signals": {"x": "str"}}),
            "signals.x",
        ),
        (
            "signal value object",
            json!({"signals": {"x": {}}}),
            "signals.x",
        ),
        (
            "33 signals",
            json!({ "signals": too_many_signals }),
            "signals",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, patch, field) in cases {
        let reply = app.score(&attempt_with(patch));
        if reply.status != 400 || reply.body["error"]["field"] != field {
            wrong.push(format!(
                "{what}: want 400 field {field}, got {} {}",
                reply.status, reply.text
            ));
            continue;
        }
        reply.expect_error(400, "invalid_request");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn each_invalid_outcome_field_is_a_400_naming_the_field() {
    let app = spawn_app();
    app.score(&attempt_with(json!({"event_id": "err-attempt"})))
        .expect(200);
    let valid = json!({"attempt_id": "err-attempt", "user_id": "err-user", "outcome": "success"});
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("outcome maybe", "outcome", json!("maybe"), "outcome"),
        ("missing outcome", "outcome", Value::Null, "outcome"),
        (
            "missing attempt_id",
            "attempt_id",
            Value::Null,
            "attempt_id",
        ),
        ("empty attempt_id", "attempt_id", json!(""), "attempt_id"),
        ("missing user_id", "user_id", Value::Null, "user_id"),
        ("bad timestamp", "timestamp", json!("noon"), "timestamp"),
        ("numeric outcome", "outcome", json!(1), "outcome"),
    ];
    let mut wrong = Vec::new();
    for (what, key, value, field) in cases {
        let mut body = valid.clone();
        if value.is_null() {
            body.as_object_mut().unwrap().remove(key);
        } else {
            body[key] = value;
        }
        let reply = app.outcome(&body);
        if reply.status != 400 || reply.body["error"]["field"] != field {
            wrong.push(format!(
                "{what}: want 400 field {field}, got {} {}",
                reply.status, reply.text
            ));
            continue;
        }
        reply.expect_error(400, "invalid_request");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_body_that_is_not_json_is_a_400_without_a_field() {
    let app = spawn_app();
    for (path, body) in [
        ("/v1/score", &b"{\"user_id\": "[..]),
        ("/v1/score", b"not json"),
        ("/v1/score", b""),
        ("/v1/score", b"[]"),
        (
            "/v1/score",
            b"{\"user_id\":\"u\",\"ip\":\"192.0.2.1\"} trailing",
        ),
        ("/v1/outcomes", b"{]"),
        ("/v1/score", b"\xff\xfe"),
    ] {
        let reply = app.post_raw(path, "application/json", body);
        let field = reply.expect_error(400, "invalid_request");
        assert_eq!(field, None, "{path} {body:?}: {}", reply.text);
    }
}

#[test]
fn an_unknown_route_is_a_404() {
    let app = spawn_app();
    for (method, path) in [("GET", "/v2/score"), ("POST", "/v1/nothing"), ("GET", "/")] {
        let reply = app.request(method, path);
        reply.expect_error(404, "not_found");
    }
}

#[test]
fn an_unknown_user_context_is_a_404() {
    let app = spawn_app();
    let reply = app.context("nobody-ever");
    assert_eq!(reply.expect_error(404, "not_found"), Some("user_id"));
}

#[test]
fn an_outcome_for_an_unknown_attempt_or_another_users_attempt_is_a_404() {
    let app = spawn_app();
    let reply =
        app.outcome(&json!({"attempt_id": "never-scored", "user_id": "u", "outcome": "success"}));
    assert_eq!(reply.expect_error(404, "not_found"), Some("attempt_id"));

    app.score(&attempt_with(
        json!({"event_id": "mine", "user_id": "owner"}),
    ))
    .expect(200);
    let reply =
        app.outcome(&json!({"attempt_id": "mine", "user_id": "stranger", "outcome": "success"}));
    assert_eq!(reply.expect_error(404, "not_found"), Some("attempt_id"));
    // The owner's own outcome is accepted.
    app.outcome(&json!({"attempt_id": "mine", "user_id": "owner", "outcome": "success"}))
        .expect(202);
}

#[test]
fn a_wrong_method_is_a_405() {
    let app = spawn_app();
    for (method, path) in [
        ("GET", "/v1/score"),
        ("PUT", "/v1/outcomes"),
        ("GET", "/v1/events"),
        ("POST", "/v1/users/u/context"),
        ("GET", "/v1/users/u"),
        ("POST", "/healthz"),
        ("DELETE", "/metrics"),
    ] {
        let reply = app.request(method, path);
        reply.expect_error(405, "invalid_request");
    }
}

#[test]
fn a_json_body_over_64_kib_is_a_413() {
    let app = spawn_app();
    let padding = "p".repeat(65_536);
    let reply = app.score(&attempt_with(json!({"padding": padding})));
    reply.expect_error(413, "payload_too_large");
    let reply = app.outcome(
        &json!({"attempt_id": "a", "user_id": "u", "outcome": "success", "padding": padding}),
    );
    reply.expect_error(413, "payload_too_large");
    // Just under the limit is parsed (and then judged on its fields).
    let mut body = attempt_with(json!({"padding": ""}));
    let room = 65_536 - body.to_string().len();
    body["padding"] = json!("p".repeat(room));
    assert_eq!(body.to_string().len(), 65_536);
    app.score(&body).expect(200);
}

#[test]
fn a_saturated_partition_answers_429_overloaded_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.log.partitions = 1;
        c.partition.threads = 1;
        c.partition.mailbox_capacity = 1;
        c.partition.retry_after_s = 7;
    });
    const CLIENTS: usize = 32;
    const PER_CLIENT: usize = 20;
    const ROUNDS: usize = 5;
    let url = app.url("/v1/score");
    let mut overloaded = None;
    for round in 0..ROUNDS {
        let counter = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let agent = app.agent();
                let url = url.clone();
                let counter = counter.clone();
                std::thread::spawn(move || {
                    (0..PER_CLIENT)
                        .map(|i| {
                            counter.fetch_add(1, Ordering::Relaxed);
                            let body = json!({
                                "user_id": format!("load-{client}"),
                                "ip": "192.0.2.1",
                                "event_id": format!("load-{round}-{client}-{i}"),
                            });
                            post_with(
                                &agent,
                                &url,
                                "application/json",
                                body.to_string().as_bytes(),
                            )
                        })
                        .collect::<Vec<Reply>>()
                })
            })
            .collect();
        let replies: Vec<Reply> = clients
            .into_iter()
            .flat_map(|c| c.join().expect("client thread"))
            .collect();
        for reply in &replies {
            assert!(
                reply.status == 200 || reply.status == 429,
                "under load only 200 or 429, got {} {}",
                reply.status,
                reply.text
            );
        }
        if let Some(reply) = replies.into_iter().find(|r| r.status == 429) {
            overloaded = Some(reply);
            break;
        }
    }
    let reply = overloaded.unwrap_or_else(|| {
        panic!("{ROUNDS} rounds of {CLIENTS} concurrent clients never saw a 429 with mailbox_capacity = 1")
    });
    reply.expect_error(429, "overloaded");
    assert_eq!(
        reply.retry_after.as_deref(),
        Some("7"),
        "partition.retry_after_s"
    );
    // Shed load is counted.
    let metrics = app.get("/metrics").text;
    assert!(
        crate::helpers::metric(&metrics, r#"riskd_shed_total{reason="overloaded"}"#) >= 1.0,
        "{metrics}"
    );
}

#[test]
fn a_recovering_server_answers_503_unavailable_with_retry_after_until_ready() {
    const EVENTS: usize = 20_000;
    let single = |c: &mut riskd::config::Config| {
        c.log.partitions = 1;
        c.partition.threads = 1;
    };
    let app = spawn_app_with(single);
    let ndjson: String = (0..EVENTS)
        .map(|i| {
            format!(
                "{}\n",
                json!({
                    "user_id": format!("replayed-{}", i % 500), "ip": "192.0.2.1",
                    "device_id": format!("d{}", i % 7), "outcome": "success",
                })
            )
        })
        .collect();
    let reply = app.events(&ndjson);
    assert_eq!(reply.expect(200)["accepted"], EVENTS, "{}", reply.text);
    let dir = app.stop();
    // Without its snapshot the partition replays the whole log, one record per step.
    std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();

    let app = launch(dir, |c| {
        single(c);
        c.partition.replay_batch_records = 1;
    })
    .expect("riskd restarts");
    let started = Instant::now();
    let readyz = app.get("/readyz");
    let score = app.score(&json!({"user_id": "replayed-1", "ip": "192.0.2.1"}));
    let events = app.events(&format!(
        "{}\n",
        json!({"user_id": "replayed-1", "ip": "192.0.2.1", "outcome": "success"})
    ));
    let context = app.context("replayed-1");
    let healthz = app.get("/healthz");
    let early = started.elapsed();
    assert_eq!(
        readyz.status, 503,
        "/readyz must be 503 while 20k records replay one per step ({early:?} after start): {}",
        readyz.text
    );
    readyz.expect_error(503, "unavailable");
    healthz.expect(200);
    for reply in [&score, &events, &context] {
        // Requests that raced the end of recovery may have been served.
        if reply.status != 200 {
            reply.expect_error(503, "unavailable");
        }
    }
    assert_eq!(score.status, 503, "score during recovery: {}", score.text);

    app.wait_ready();
    app.get("/readyz").expect(200);
    app.score(&json!({"user_id": "replayed-1", "ip": "192.0.2.1"}))
        .expect(200);
    assert_eq!(
        app.context("replayed-1").expect(200)["history_size"],
        EVENTS / 500
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn an_outcome_for_a_forgotten_attempt_is_a_404() {
    let app = spawn_app_with(|c| c.partition.attempts_max = 2);
    let user = "forgetful";
    for i in 0..3 {
        app.score(&attempt_with(
            json!({"user_id": user, "event_id": format!("fa-{i}")}),
        ))
        .expect(200);
    }
    // Only the two most recent attempts of the partition are remembered.
    let reply = app.outcome(&json!({"attempt_id": "fa-0", "user_id": user, "outcome": "success"}));
    assert_eq!(reply.expect_error(404, "not_found"), Some("attempt_id"));
    app.outcome(&json!({"attempt_id": "fa-2", "user_id": user, "outcome": "success"}))
        .expect(202);
}

#[test]
fn signal_values_out_of_range_are_a_400_and_extreme_ones_cannot_force_allow() {
    let app = spawn_app();
    for value in [json!(1e308), json!(-1e308), json!(1e7)] {
        let body = attempt_with(json!({"signals": {"vendor_risk": value}}));
        let reply = app.score(&body);
        assert_eq!(
            reply.expect_error(400, "invalid_request"),
            Some("signals.vendor_risk"),
            "{}",
            reply.text
        );
    }
    // The largest accepted values still give a finite risk, and a hostile
    // context plus a "trusting" signal is not talked down to allow.
    let bot = json!({"user_id": "sig", "ip": "203.0.113.200", "user_agent": "curl/8.5.0",
                     "signals": {"vendor_risk": -1_000_000.0}});
    let reply = app.score(&bot);
    let risk = reply.expect(200)["risk"].as_f64().expect("a finite risk");
    assert!(risk.is_finite() && risk > 0.5, "{}", reply.text);
    assert_ne!(reply.body["decision"], "allow", "{}", reply.text);
}

#[test]
fn a_timestamp_more_than_a_year_ahead_is_a_400() {
    let app = spawn_app();
    let reply = app.score(&attempt_with(json!({"timestamp": "9999-12-31T00:00:00Z"})));
    assert_eq!(
        reply.expect_error(400, "invalid_request"),
        Some("timestamp"),
        "{}",
        reply.text
    );
    let line = r#"{"user_id":"f","ip":"192.0.2.1","timestamp":"9999-12-31T00:00:00Z","outcome":"failure"}"#;
    let events = app.events(line);
    assert_eq!(
        events.expect(200)["rejected"][0]["line"],
        1,
        "{}",
        events.text
    );
}
