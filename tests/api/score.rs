//! POST /v1/score (with POST /v1/outcomes teaching the engine).

use serde_json::{json, Value};

use crate::helpers::{at, metric, metric_sum, spawn_app, Reply, TestApp, TEST_PARTITIONS};

const HOME_IP: &str = "192.0.2.10"; // NO, Oslo, AS64500
const SE_IP: &str = "198.51.100.7"; // SE, Stockholm, AS64501
const US_IP: &str = "203.0.113.77"; // US, AS64502
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/80.0.3987.149";

/// A login attempt at `t` seconds of event time.
fn login(user: &str, event_id: &str, ip: &str, device: &str, t: i64) -> Value {
    json!({
        "user_id": user,
        "event_id": event_id,
        "ip": ip,
        "device_id": device,
        "user_agent": CHROME,
        "timestamp": at(t),
    })
}

fn outcome(user: &str, attempt_id: &str, outcome: &str) -> Value {
    json!({"attempt_id": attempt_id, "user_id": user, "outcome": outcome})
}

/// Scores an attempt, checks the answer's shape, and reports `outcome` for it.
fn login_with_outcome(app: &TestApp, attempt: &Value, result: &str) -> Reply {
    let reply = app.score(attempt);
    assert_score_shape(&reply);
    let user = attempt["user_id"].as_str().unwrap();
    let id = reply.body["attempt_id"].as_str().unwrap();
    app.outcome(&outcome(user, id, result)).expect(202);
    reply
}

/// `n` successful logins from the home context, at t = 0, 60, 120, ...
fn establish(app: &TestApp, user: &str, n: usize) {
    for i in 0..n {
        let attempt = login(
            user,
            &format!("{user}-home-{i}"),
            HOME_IP,
            "d-home",
            i as i64 * 60,
        );
        login_with_outcome(app, &attempt, "success");
    }
}

/// The contract's answer shape, `risk` in [0, 1], reasons sorted by score.
#[track_caller]
fn assert_score_shape(reply: &Reply) {
    let body = reply.expect(200);
    assert!(body["attempt_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(
        ["allow", "challenge", "deny"].contains(&body["decision"].as_str().unwrap_or("")),
        "{}",
        reply.text
    );
    let risk = reply.risk();
    assert!((0.0..=1.0).contains(&risk), "risk {risk} outside [0, 1]");
    assert!(
        ["none", "thin", "established"].contains(&body["history"].as_str().unwrap_or("")),
        "{}",
        reply.text
    );
    assert!(body["ruleset"].as_str().is_some_and(|r| !r.is_empty()));
    let reasons = body["reasons"].as_array().expect("reasons is an array");
    for reason in reasons {
        assert!(reason["code"].as_str().is_some_and(|c| !c.is_empty()));
        assert!(
            reason["score"].is_f64() || reason["score"].is_i64(),
            "{reason}"
        );
        assert!(
            reason["value"].is_number() || reason["value"].is_null(),
            "{reason}"
        );
        assert!(reason["detail"].is_string(), "{reason}");
    }
    let scores: Vec<f64> = reasons
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "reasons not sorted by score, highest first: {scores:?}"
    );
}

#[test]
fn a_device_becomes_known_only_after_a_successful_login() {
    let app = spawn_app();
    let user = "device-learner";
    let first = login_with_outcome(&app, &login(user, "dl-1", HOME_IP, "d1", 0), "failure");
    assert!(first.has_reason("new_device"), "{}", first.text);

    let after_failure =
        login_with_outcome(&app, &login(user, "dl-2", HOME_IP, "d1", 60), "success");
    assert!(
        after_failure.has_reason("new_device"),
        "a failed login must not teach the device: {}",
        after_failure.text
    );

    let known = app.score(&login(user, "dl-3", HOME_IP, "d1", 120));
    assert_score_shape(&known);
    assert!(!known.has_reason("new_device"), "{}", known.text);
    let other = app.score(&login(user, "dl-4", HOME_IP, "d2", 180));
    assert_score_shape(&other);
    assert!(other.has_reason("new_device"), "{}", other.text);
}

#[test]
fn a_passed_challenge_teaches_the_device_and_a_failed_one_does_not() {
    let app = spawn_app();
    let user = "challenged";
    login_with_outcome(
        &app,
        &login(user, "ch-1", HOME_IP, "d1", 0),
        "challenge_failed",
    );
    let still_new = app.score(&login(user, "ch-2", HOME_IP, "d1", 60));
    assert!(still_new.has_reason("new_device"), "{}", still_new.text);
    app.outcome(&outcome(user, "ch-2", "challenge_passed"))
        .expect(202);
    let known = app.score(&login(user, "ch-3", HOME_IP, "d1", 120));
    assert_score_shape(&known);
    assert!(!known.has_reason("new_device"), "{}", known.text);
}

#[test]
fn failures_raise_the_risk_with_a_failure_burst_reason() {
    let app = spawn_app();
    let user = "hammered";
    establish(&app, user, 5);
    let before = app.score(&login(user, "fb-before", HOME_IP, "d-home", 1000));
    assert_score_shape(&before);
    assert!(!before.has_reason("failure_burst"), "{}", before.text);

    for i in 0..5 {
        let attempt = login(
            user,
            &format!("fb-fail-{i}"),
            HOME_IP,
            "d-home",
            1010 + i * 10,
        );
        login_with_outcome(&app, &attempt, "failure");
    }
    let after = app.score(&login(user, "fb-after", HOME_IP, "d-home", 1100));
    assert_score_shape(&after);
    let burst = after
        .reason("failure_burst")
        .unwrap_or_else(|| panic!("no failure_burst after 5 failures: {}", after.text));
    assert_eq!(burst["value"].as_f64(), Some(5.0), "{burst}");
    assert!(burst["score"].as_f64().unwrap() > 0.0, "{burst}");
    assert!(
        after.risk() > before.risk(),
        "5 failures must raise the risk: {} -> {}",
        before.risk(),
        after.risk()
    );
}

#[test]
fn a_failure_burst_counts_only_failures_within_its_window_of_event_time() {
    // The shipped ruleset's window and threshold, whatever they are tuned to.
    let rules = riskd::config::Ruleset::embedded()
        .unwrap()
        .factors
        .failure_burst;
    let (threshold, window_s) = (i64::from(rules.threshold), rules.window_s as i64);
    assert!(
        rules.long_threshold as i64 > threshold,
        "the long window must not mask the short one here"
    );
    let app = spawn_app();
    let user = "slow-typist";
    establish(&app, user, 2);
    for i in 0..threshold - 1 {
        let attempt = login(user, &format!("w-old-{i}"), HOME_IP, "d-home", 1000 + i);
        login_with_outcome(&app, &attempt, "failure");
    }
    // One failure below the threshold.
    let below = app.score(&login(user, "w-below", HOME_IP, "d-home", 1010));
    assert!(!below.has_reason("failure_burst"), "{}", below.text);
    login_with_outcome(
        &app,
        &login(user, "w-last", HOME_IP, "d-home", 1020),
        "failure",
    );
    let at = app.score(&login(user, "w-at", HOME_IP, "d-home", 1030));
    assert_eq!(
        at.reason("failure_burst").map(|r| r["value"].clone()),
        Some(json!(threshold as f64)),
        "{}",
        at.text
    );
    // A window after the last failure, every failure has left the window.
    let later = app.score(&login(
        user,
        "w-later",
        HOME_IP,
        "d-home",
        1020 + window_s + 1,
    ));
    assert!(!later.has_reason("failure_burst"), "{}", later.text);
}

#[test]
fn a_new_country_after_an_established_history_raises_the_risk() {
    let app = spawn_app();
    let user = "oslo-resident";
    establish(&app, user, 6);
    let home = app.score(&login(user, "nc-home", HOME_IP, "d-home", 3600));
    assert_score_shape(&home);
    assert_eq!(home.body["history"], "established", "{}", home.text);
    assert!(!home.has_reason("new_country"), "{}", home.text);

    let abroad = app.score(&login(user, "nc-se", SE_IP, "d-home", 3700));
    assert_score_shape(&abroad);
    let reason = abroad
        .reason("new_country")
        .unwrap_or_else(|| panic!("no new_country from SE: {}", abroad.text));
    let detail = reason["detail"].as_str().unwrap();
    assert!(
        detail.contains("SE"),
        "detail should name the country: {detail}"
    );
    assert!(reason["score"].as_f64().unwrap() > 0.0, "{reason}");
    assert!(
        abroad.risk() > home.risk(),
        "SE {} should be riskier than home {}",
        abroad.risk(),
        home.risk()
    );
}

#[test]
fn history_goes_from_none_to_thin_to_established() {
    let app = spawn_app();
    let user = "newcomer";
    let probe = |i: usize| {
        let reply = app.score(&login(
            user,
            &format!("h-probe-{i}"),
            HOME_IP,
            "d-home",
            10_000,
        ));
        assert_score_shape(&reply);
        reply.body["history"].as_str().unwrap().to_owned()
    };
    assert_eq!(probe(0), "none");
    establish(&app, user, 1);
    assert_eq!(probe(1), "thin");
    let context = app.context(user);
    assert_eq!(context.expect(200)["history"], "thin");
    for i in 1..5 {
        let attempt = login(user, &format!("h-more-{i}"), HOME_IP, "d-home", i * 60);
        login_with_outcome(&app, &attempt, "success");
    }
    assert_eq!(probe(2), "established");
}

#[test]
fn a_first_login_has_novelty_reasons_at_a_reduced_weight() {
    let app = spawn_app();
    let first = app.score(&login("first-timer", "fl-1", SE_IP, "d-new", 0));
    assert_score_shape(&first);
    assert_eq!(first.body["history"], "none");
    for code in ["new_device", "new_country", "new_asn"] {
        assert!(first.has_reason(code), "{code} missing: {}", first.text);
    }
    assert!(
        !first.has_reason("freeman"),
        "no model without history: {}",
        first.text
    );
    assert_eq!(first.body["decision"], "allow", "{}", first.text);

    // The same novelties for an established user weigh their full weight.
    establish(&app, "regular", 6);
    let away = app.score(&login("regular", "fl-2", SE_IP, "d-new", 3600));
    assert_score_shape(&away);
    for code in ["new_device", "new_country", "new_asn"] {
        assert!(away.has_reason(code), "{code} missing: {}", away.text);
    }
    assert!(
        first.risk() < away.risk(),
        "a first login ({}) must weigh less than an established user's new context ({})",
        first.risk(),
        away.risk()
    );
}

#[test]
fn risk_is_always_between_zero_and_one_and_reasons_are_sorted() {
    let app = spawn_app();
    let user = "all-sorts";
    establish(&app, user, 8);
    // Familiar, foreign, failing, hostile: every answer keeps the contract.
    let mut replies = vec![
        app.score(&login(user, "r-home", HOME_IP, "d-home", 5000)),
        app.score(&login(user, "r-se", SE_IP, "d-other", 5010)),
        app.score(&login(user, "r-private", "10.9.8.7", "d-home", 5020)),
    ];
    for i in 0..12 {
        let attempt = login(user, &format!("r-fail-{i}"), US_IP, "d-evil", 5100 + i);
        replies.push(login_with_outcome(&app, &attempt, "failure"));
    }
    replies.push(login_with_outcome(
        &app,
        &login(user, "r-fraud", US_IP, "d-evil", 5200),
        "fraud_confirmed",
    ));
    replies.push(app.score(&login(user, "r-after-fraud", US_IP, "d-evil", 5300)));
    replies.push(app.score(&json!({"user_id": "bare", "ip": "2001:db8:1::5"})));
    for reply in &replies {
        assert_score_shape(reply);
    }
    assert!(
        replies
            .iter()
            .any(|r| r.body["reasons"].as_array().unwrap().len() >= 3),
        "some answer should have several reasons to sort"
    );
}

#[test]
fn a_repeated_event_id_returns_the_first_answer_and_records_nothing() {
    let app = spawn_app();
    let user = "retrying-gateway";
    // A context to compare, and to make a fresh score of the repeat differ.
    login_with_outcome(&app, &login(user, "idem-0", SE_IP, "d-other", 0), "success");
    let attempt = login(user, "idem-1", HOME_IP, "d-home", 60);
    let first = app.score(&attempt);
    assert_score_shape(&first);
    assert_eq!(first.body["attempt_id"], "idem-1");
    login_with_outcome(
        &app,
        &login(user, "idem-2", HOME_IP, "d-home", 120),
        "success",
    );

    let context_before = app.context(user).expect(200).clone();
    let metrics_before = app.get("/metrics").text;
    let again = app.score(&attempt);
    assert_score_shape(&again);
    for key in [
        "attempt_id",
        "decision",
        "risk",
        "reasons",
        "history",
        "ruleset",
    ] {
        assert_eq!(again.body[key], first.body[key], "{key} differs on repeat");
    }
    let context_after = app.context(user).expect(200).clone();
    assert_eq!(
        context_after, context_before,
        "a repeat must record nothing"
    );

    let metrics_after = app.get("/metrics").text;
    assert_eq!(
        metric_sum(&metrics_after, "riskd_decisions_total"),
        metric_sum(&metrics_before, "riskd_decisions_total"),
        "a repeat is not a new decision"
    );
    assert_eq!(
        metric(&metrics_after, r#"riskd_duplicates_total{kind="score"}"#),
        1.0,
        "{metrics_after}"
    );

    // The one recorded attempt takes one outcome; the repeat added no second attempt.
    app.outcome(&outcome(user, "idem-1", "success")).expect(202);
    assert_eq!(
        app.context(user).expect(200)["history_size"],
        context_before["history_size"].as_u64().unwrap() + 1
    );
}

/// A user in the same partition as `user` (`same`) or in another one.
fn neighbour(user: &str, same: bool) -> String {
    let home = riskd::hash::partition_of(user, TEST_PARTITIONS);
    (0..)
        .map(|i| format!("{user}-neighbour-{i}"))
        .find(|candidate| (riskd::hash::partition_of(candidate, TEST_PARTITIONS) == home) == same)
        .unwrap()
}

#[test]
fn an_event_id_reused_for_another_user_is_rejected() {
    let app = spawn_app();
    let owner = "event-owner";
    for (same_partition, event_id) in [(true, "shared-1"), (false, "shared-2")] {
        app.score(&login(owner, event_id, HOME_IP, "d1", 0))
            .expect(200);
        let intruder = neighbour(owner, same_partition);
        let reply = app.score(&login(&intruder, event_id, HOME_IP, "d1", 0));
        let where_ = if same_partition { "same" } else { "another" };
        assert_eq!(
            reply.status, 400,
            "event_id reused by a user in {where_} partition must be 400 (field event_id): {}",
            reply.text
        );
        assert_eq!(reply.expect_error(400, "invalid_request"), Some("event_id"));
    }
}

#[test]
fn the_request_geo_overrides_the_geoip_lookup() {
    let app = spawn_app();
    let user = "traveller-fr";
    let attempt = json!({
        "user_id": user, "event_id": "geo-1", "ip": "192.0.2.5",
        "geo": {"country": "FR"}, "timestamp": at(0),
    });
    login_with_outcome(&app, &attempt, "success");
    let context = app.context(user);
    let context = context.expect(200);
    let countries: Vec<&str> = context["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["country"].as_str().unwrap())
        .collect();
    assert_eq!(countries, ["FR"], "{context}");
    assert_eq!(context["last_success"]["country"], "FR");
    // Fields the request leaves out still come from GeoIP.
    assert_eq!(context["asns"][0]["asn"], 64500, "{context}");
    assert_eq!(context["last_success"]["city"], "Oslo", "{context}");
}

#[test]
fn a_private_address_never_counts_as_a_new_country() {
    let app = spawn_app();
    let user = "office-worker";
    establish(&app, user, 3);
    let private = app.score(&login(user, "pv-1", "10.1.2.3", "d-home", 1000));
    assert_score_shape(&private);
    assert!(!private.has_reason("new_country"), "{}", private.text);
    assert!(!private.has_reason("new_asn"), "{}", private.text);
    let fresh = app.score(&login("fresh-private", "pv-2", "10.1.2.3", "d-x", 0));
    assert!(!fresh.has_reason("new_country"), "{}", fresh.text);
}

#[test]
fn an_ipv4_mapped_address_is_the_ipv4_client() {
    let app = spawn_app();
    let user = "dual-stack";
    login_with_outcome(
        &app,
        &login(user, "v4m-1", "::ffff:192.0.2.1", "d1", 0),
        "success",
    );
    let context = app.context(user);
    let context = context.expect(200);
    assert_eq!(context["last_success"]["ip"], "192.0.2.1", "{context}");
    assert_eq!(context["last_success"]["country"], "NO", "{context}");
}

#[test]
fn a_fraud_confirmed_address_is_denied_for_every_user() {
    let app = spawn_app();
    let victim = "victim";
    establish(&app, victim, 2);
    login_with_outcome(
        &app,
        &login(victim, "hx-1", US_IP, "d-evil", 500),
        "fraud_confirmed",
    );
    for other in [neighbour(victim, true), neighbour(victim, false)] {
        let reply = app.score(&login(&other, &format!("hx-{other}"), US_IP, "d-any", 600));
        assert_score_shape(&reply);
        assert_eq!(reply.body["decision"], "deny", "{}", reply.text);
        let reason = reply
            .reason("hostile_context")
            .unwrap_or_else(|| panic!("no hostile_context: {}", reply.text));
        assert!(
            reason["detail"].as_str().unwrap().contains("IP"),
            "{reason}"
        );
    }
    // A clean address is not affected.
    let clean = app.score(&login("bystander", "hx-clean", SE_IP, "d-any", 600));
    assert!(!clean.has_reason("hostile_context"), "{}", clean.text);
}

#[test]
fn timestamps_may_be_absent_or_carry_any_offset() {
    let app = spawn_app();
    let absent = app.score(&json!({"user_id": "clockless", "ip": HOME_IP}));
    assert_score_shape(&absent);

    let user = "east-of-utc";
    let attempt = json!({
        "user_id": user, "event_id": "ts-1", "ip": HOME_IP,
        "timestamp": "2025-06-02T02:09:12.904+02:00",
    });
    login_with_outcome(&app, &attempt, "success");
    let context = app.context(user);
    assert_eq!(
        context.expect(200)["last_success"]["timestamp"],
        "2025-06-02T00:09:12.904Z",
        "{}",
        context.text
    );
}

#[test]
fn unknown_request_fields_are_ignored() {
    let app = spawn_app();
    let reply = app.score(&json!({
        "user_id": "future-gateway", "ip": HOME_IP,
        "risk_hint": {"nested": [1, 2, 3]}, "client": {"browser": "Chrome 80", "engine": "Blink"},
    }));
    assert_score_shape(&reply);
}

#[test]
fn a_repeated_outcome_is_accepted_and_recorded_once() {
    let app = spawn_app();
    let user = "double-reporter";
    app.score(&login(user, "ro-1", HOME_IP, "d1", 0))
        .expect(200);
    for _ in 0..3 {
        let reply = app.outcome(&outcome(user, "ro-1", "success"));
        assert_eq!(reply.expect(202), &json!({"accepted": true}));
    }
    let context = app.context(user);
    let context = context.expect(200);
    assert_eq!(context["history_size"], 1, "{context}");
    assert_eq!(context["devices"][0]["logins"], 1, "{context}");
    let metrics = app.get("/metrics").text;
    assert_eq!(
        metric(&metrics, r#"riskd_duplicates_total{kind="outcome"}"#),
        2.0,
        "{metrics}"
    );
}

#[test]
fn the_user_context_has_the_documented_shape() {
    let app = spawn_app();
    let user = "shaped";
    login_with_outcome(&app, &login(user, "cs-1", HOME_IP, "d1", 0), "success");
    login_with_outcome(&app, &login(user, "cs-2", SE_IP, "d2", 60), "failure");
    let reply = app.context(user);
    let c = reply.expect(200);
    assert_eq!(c["user_id"], user);
    assert_eq!(c["history"], "thin");
    assert_eq!(c["history_size"], 1);
    assert_eq!(c["devices"].as_array().unwrap().len(), 1, "{c}");
    let device = &c["devices"][0];
    assert_eq!(device["device_id"], "d1");
    assert_eq!(device["kind"], "device_id");
    assert_eq!(device["first_seen"], at(0));
    assert_eq!(device["last_seen"], at(0));
    assert_eq!(device["logins"], 1);
    assert_eq!(c["countries"][0]["country"], "NO", "{c}");
    assert_eq!(c["asns"][0]["asn"], 64500, "{c}");
    assert_eq!(c["ip_prefixes"][0]["prefix"], "192.0.2.0/24", "{c}");
    let last = &c["last_success"];
    assert_eq!(last["timestamp"], at(0));
    assert_eq!(last["ip"], HOME_IP);
    assert_eq!(last["country"], "NO");
    assert_eq!(last["city"], "Oslo");
    assert!(
        (last["latitude"].as_f64().unwrap() - 59.9127).abs() < 1e-9,
        "{c}"
    );
    assert!(
        (last["longitude"].as_f64().unwrap() - 10.7461).abs() < 1e-9,
        "{c}"
    );
    assert_eq!(last["accuracy_radius_km"], 20);
    assert_eq!(c["recent_failures"]["count"], 1, "{c}");
    assert_eq!(c["recent_failures"]["timestamps"], json!([at(60)]), "{c}");
    assert_eq!(c["failures_total"], 1);
    assert_eq!(c["hostile"], json!({"devices": [], "ips": []}), "{c}");
    assert_eq!(c["model_history_entries"], 1, "{c}");
    assert_eq!(c["first_seen"], at(0));
    assert_eq!(c["last_seen"], at(60));
    // A device without device_id is the User-Agent's fingerprint.
    let ua_only = json!({"user_id": user, "event_id": "cs-3", "ip": HOME_IP, "user_agent": CHROME, "timestamp": at(120)});
    login_with_outcome(&app, &ua_only, "success");
    let reply = app.context(user);
    let devices = reply.expect(200)["devices"].as_array().unwrap();
    assert!(
        devices
            .iter()
            .any(|d| d["kind"] == "user_agent_fingerprint" && d["device_id"].is_string()),
        "{}",
        reply.text
    );
}

#[test]
fn an_erased_user_is_forgotten_and_starts_over() {
    let app = spawn_app();
    let user = "right-to-erasure";
    establish(&app, user, 5);
    app.context(user).expect(200);

    let reply = app.erase(user);
    assert_eq!(
        reply.expect(202),
        &json!({"accepted": true, "user_id": user, "existed": true})
    );
    app.context(user).expect_error(404, "not_found");
    // Their earlier attempts are forgotten too: no outcome can resurrect them.
    app.outcome(&outcome(user, &format!("{user}-home-0"), "success"))
        .expect_error(404, "not_found");
    let fresh = app.score(&login(user, "after-erasure", HOME_IP, "d-home", 10_000));
    assert_score_shape(&fresh);
    assert_eq!(fresh.body["history"], "none", "{}", fresh.text);
    assert!(fresh.has_reason("new_device"), "{}", fresh.text);

    let unknown = app.erase("never-existed");
    assert_eq!(unknown.expect(202)["existed"], false, "{}", unknown.text);
}

#[test]
fn user_ids_with_spaces_unicode_and_slashes_are_addressable() {
    let app = spawn_app();
    for (user, encoded) in [
        ("Åse Ødegård", "%C3%85se%20%C3%98deg%C3%A5rd"),
        ("tenant/alice", "tenant%2Falice"),
        ("a+b@example.com", "a%2Bb%40example.com"),
    ] {
        let attempt = json!({"user_id": user, "event_id": format!("enc-{encoded}"), "ip": HOME_IP});
        login_with_outcome(&app, &attempt, "success");
        let reply = app.context(encoded);
        assert_eq!(
            reply.status, 200,
            "context of {user:?} as {encoded}: {}",
            reply.text
        );
        assert_eq!(reply.body["user_id"], user);
        let erased = app.erase(encoded);
        assert_eq!(erased.expect(202)["user_id"], user, "{}", erased.text);
        assert_eq!(erased.body["existed"], true, "{}", erased.text);
    }
}

#[test]
fn an_old_attempt_scored_late_ignores_failures_that_came_after_it() {
    let app = spawn_app();
    let user = "time-traveller";
    establish(&app, user, 2);
    for i in 0..5 {
        let attempt = login(user, &format!("tt-fail-{i}"), HOME_IP, "d-home", 5000 + i);
        login_with_outcome(&app, &attempt, "failure");
    }
    let now = app.score(&login(user, "tt-now", HOME_IP, "d-home", 5010));
    assert!(now.has_reason("failure_burst"), "{}", now.text);
    // Replayed at its own event time, an earlier attempt gets the answer it would have got then.
    let then = app.score(&login(user, "tt-then", HOME_IP, "d-home", 4990));
    assert!(!then.has_reason("failure_burst"), "{}", then.text);
}
