//! /v1/admin/*: ruleset reload and replacement without a restart, and
//! shadow mode (a candidate ruleset scored beside the live one).

use serde_json::json;

use crate::helpers::{metric, spawn_app, spawn_app_with};

const TOKEN: &str = "test-admin-token";
const DEFAULT_RULESET: &str = include_str!("../../config/ruleset.toml");

/// The default ruleset renamed, with a challenge threshold so low that
/// every new user is challenged.
fn strict_ruleset(name: &str) -> String {
    DEFAULT_RULESET
        .replace("name = \"default\"", &format!("name = \"{name}\""))
        .replace("challenge_at = 0.5", "challenge_at = 0.01")
}

fn attempt(user: &str) -> serde_json::Value {
    json!({"user_id": user, "ip": "198.51.100.20", "device_id": "d1", "timestamp": "2025-06-02T08:00:00Z"})
}

#[test]
fn the_admin_api_is_absent_without_a_token_and_refuses_a_wrong_one() {
    let app = spawn_app();
    app.admin("GET", "/v1/admin/ruleset", Some(TOKEN), None)
        .expect_error(404, "not_found");
    drop(app);
    let app = spawn_app_with(|c| c.admin.token = TOKEN.into());
    app.admin("GET", "/v1/admin/ruleset", None, None)
        .expect_error(401, "unauthorized");
    app.admin("GET", "/v1/admin/ruleset", Some("wrong"), None)
        .expect_error(401, "unauthorized");
    let labels = app.admin("GET", "/v1/admin/ruleset", Some(TOKEN), None);
    assert_eq!(labels.expect(200)["live"], "default@1");
}

#[test]
fn a_ruleset_put_at_runtime_decides_the_next_request() {
    let app = spawn_app_with(|c| c.admin.token = TOKEN.into());
    assert_eq!(app.score(&attempt("u1")).expect(200)["decision"], "allow");
    let reply = app.admin(
        "PUT",
        "/v1/admin/ruleset",
        Some(TOKEN),
        Some(&strict_ruleset("strict")),
    );
    assert_eq!(reply.expect(200)["live"], "strict@1");
    let scored = app.score(&attempt("u2"));
    assert_eq!(scored.expect(200)["decision"], "challenge");
    assert_eq!(scored.body["ruleset"], "strict@1");
}

#[test]
fn an_invalid_ruleset_is_refused_naming_the_key_and_the_running_one_stays() {
    let app = spawn_app_with(|c| c.admin.token = TOKEN.into());
    let broken = DEFAULT_RULESET.replace("deny_at = 0.9", "deny_at = 0.3");
    let reply = app.admin("PUT", "/v1/admin/ruleset", Some(TOKEN), Some(&broken));
    reply.expect_error(400, "invalid_request");
    assert!(
        reply.text.contains("ruleset.decision.challenge_at"),
        "{}",
        reply.text
    );
    let garbage = app.admin(
        "PUT",
        "/v1/admin/ruleset",
        Some(TOKEN),
        Some("name = \"x\""),
    );
    garbage.expect_error(400, "invalid_request");
    assert_eq!(
        app.score(&attempt("u1")).expect(200)["ruleset"],
        "default@1"
    );
}

#[test]
fn reload_rereads_the_configured_files_and_keeps_the_old_ones_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ruleset.toml");
    std::fs::write(&path, strict_ruleset("from-file")).unwrap();
    let path_text = path.display().to_string();
    let app = spawn_app_with(|c| {
        c.admin.token = TOKEN.into();
        c.ruleset.path = path_text;
    });
    assert_eq!(
        app.score(&attempt("u1")).expect(200)["ruleset"],
        "from-file@1"
    );
    std::fs::write(
        &path,
        DEFAULT_RULESET.replace("name = \"default\"", "name = \"edited\""),
    )
    .unwrap();
    let reloaded = app.admin("POST", "/v1/admin/ruleset/reload", Some(TOKEN), None);
    assert_eq!(reloaded.expect(200)["live"], "edited@1");
    assert_eq!(app.score(&attempt("u2")).expect(200)["ruleset"], "edited@1");
    std::fs::write(&path, "this is not a ruleset").unwrap();
    app.admin("POST", "/v1/admin/ruleset/reload", Some(TOKEN), None)
        .expect_error(400, "invalid_request");
    assert_eq!(app.score(&attempt("u3")).expect(200)["ruleset"], "edited@1");
}

#[test]
fn shadow_mode_tallies_live_against_candidate_while_live_decides() {
    let app = spawn_app_with(|c| c.admin.token = TOKEN.into());
    app.admin("GET", "/v1/admin/shadow", Some(TOKEN), None)
        .expect_error(404, "not_found");
    let started = app.admin(
        "PUT",
        "/v1/admin/shadow",
        Some(TOKEN),
        Some(&strict_ruleset("candidate")),
    );
    assert_eq!(started.expect(200)["candidate"], "candidate@1");
    for i in 0..5 {
        let scored = app.score(&attempt(&format!("shadowed-{i}")));
        // The live ruleset decides.
        assert_eq!(scored.expect(200)["ruleset"], "default@1");
        assert_eq!(scored.body["decision"], "allow");
    }
    let shadow = app.admin("GET", "/v1/admin/shadow", Some(TOKEN), None);
    let report = &shadow.expect(200)["report"];
    assert_eq!(report["total"], 5);
    assert_eq!(report["matrix"]["allow"]["challenge"], 5);
    assert_eq!(report["agreements"], 0);
    let disagreement = &report["recent_disagreements"][0];
    assert_eq!(disagreement["live"]["decision"], "allow");
    assert_eq!(disagreement["candidate"]["decision"], "challenge");
    assert!(disagreement["candidate"]["reasons"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
    let metrics = app.get("/metrics").text;
    assert_eq!(
        metric(
            &metrics,
            r#"riskd_shadow_decisions_total{candidate="challenge",live="allow"}"#
        ),
        5.0
    );
    app.admin("DELETE", "/v1/admin/shadow", Some(TOKEN), None)
        .expect(200);
    app.admin("GET", "/v1/admin/shadow", Some(TOKEN), None)
        .expect_error(404, "not_found");
}

#[test]
fn unknown_signals_are_ignored_and_counted_known_ones_weigh() {
    let app = spawn_app();
    let mut body = attempt("u1");
    body["signals"] = json!({"attack_ip": true, "no_such_signal": 1});
    let scored = app.score(&body);
    let signals = scored.reason("signals").expect("the signals reason");
    assert!(signals["detail"].as_str().unwrap().contains("attack_ip"));
    assert!(!signals["detail"]
        .as_str()
        .unwrap()
        .contains("no_such_signal"));
    assert_eq!(
        metric(&app.get("/metrics").text, "riskd_signals_unknown_total"),
        1.0
    );
}
