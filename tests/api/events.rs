//! POST /v1/events (bulk NDJSON ingest) and GET /v1/dead-letters.

use serde_json::{json, Value};

use crate::helpers::{at, spawn_app, spawn_app_with, without_user_id};

fn line(user: &str, event_id: &str, ip: &str, device: &str, t: i64, outcome: &str) -> String {
    json!({
        "user_id": user, "event_id": event_id, "ip": ip, "device_id": device,
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/75.0",
        "timestamp": at(t), "outcome": outcome,
    })
    .to_string()
}

fn ndjson(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn bad_lines_are_rejected_by_number_and_set_aside_as_dead_letters() {
    let app = spawn_app();
    let bad = [
        (
            2,
            r#"{"user_id":"bulk-a","ip":"not-an-ip","outcome":"success"}"#,
            "ip",
        ),
        (4, r#"{"ip":"192.0.2.1","outcome":"success"}"#, "user_id"),
        (
            5,
            r#"{"user_id":"bulk-a","ip":"192.0.2.1","outcome":"success""#,
            "JSON",
        ),
        (
            6,
            r#"{"user_id":"bulk-a","ip":"192.0.2.1","outcome":"maybe"}"#,
            "outcome",
        ),
        (7, r#"{"user_id":"bulk-a","ip":"192.0.2.1"}"#, "outcome"),
        (
            8,
            r#"{"user_id":"bulk-a","ip":"192.0.2.1","geo":{"asn":"x"},"outcome":"success"}"#,
            "geo.asn",
        ),
    ];
    let good = [
        (1, line("bulk-a", "bulk-1", "192.0.2.1", "d1", 0, "success")),
        (
            3,
            line("bulk-b", "bulk-3", "198.51.100.1", "d2", 0, "failure"),
        ),
        (
            9,
            line("bulk-a", "bulk-9", "192.0.2.1", "d1", 60, "success"),
        ),
    ];
    let mut lines = vec![String::new(); 9];
    for (n, text, _) in &bad {
        lines[n - 1] = (*text).to_owned();
    }
    for (n, text) in &good {
        lines[n - 1] = text.clone();
    }
    let reply = app.events(&ndjson(&lines));
    let body = reply.expect(200);
    assert_eq!(body["accepted"], 3, "{}", reply.text);
    assert_eq!(body["duplicates"], 0, "{}", reply.text);
    let rejected = body["rejected"].as_array().unwrap();
    let numbers: Vec<u64> = rejected
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 4, 5, 6, 7, 8], "{}", reply.text);
    for ((_, _, names), rejection) in bad.iter().zip(rejected) {
        let error = rejection["error"].as_str().unwrap();
        assert!(
            error.contains(names),
            "line {rejection} should name {names}"
        );
    }

    let letters = app.dead_letters();
    let letters = letters.expect(200);
    assert_eq!(letters["total"], 6, "{letters}");
    assert_eq!(letters["dropped"], 0, "{letters}");
    let listed = letters["dead_letters"].as_array().unwrap();
    assert_eq!(listed.len(), 6, "{letters}");
    for ((n, raw, _), (letter, rejection)) in bad.iter().zip(listed.iter().zip(rejected)) {
        assert_eq!(letter["source"], "events", "{letter}");
        assert_eq!(letter["line"], *n, "{letter}");
        assert_eq!(letter["raw"], *raw, "{letter}");
        assert_eq!(letter["reason"], rejection["error"], "{letter}");
        assert!(
            letter["id"].is_u64() && letter["at"].is_string(),
            "{letter}"
        );
    }
    assert_eq!(letters["next_after"], listed[5]["id"]);

    // The good lines were recorded (two successes for bulk-a, one failure for bulk-b).
    assert_eq!(app.context("bulk-a").expect(200)["history_size"], 2);
    assert_eq!(app.context("bulk-b").expect(200)["failures_total"], 1);
}

#[test]
fn dead_letters_page_with_after_and_limit() {
    let app = spawn_app();
    let lines: Vec<String> = (0..3).map(|i| format!(r#"{{"bad":{i}}}"#)).collect();
    app.events(&ndjson(&lines)).expect(200);
    let first = app.get("/v1/dead-letters?limit=2");
    let first = first.expect(200);
    let page: Vec<&Value> = first["dead_letters"].as_array().unwrap().iter().collect();
    assert_eq!(page.len(), 2, "{first}");
    let after = first["next_after"].as_u64().unwrap();
    let rest = app.get(&format!("/v1/dead-letters?after={after}&limit=2"));
    let rest = rest.expect(200);
    assert_eq!(rest["dead_letters"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["dead_letters"][0]["raw"], r#"{"bad":2}"#);
    assert_eq!(rest["total"], 3);
}

#[test]
fn blank_lines_are_skipped_but_counted_in_line_numbers() {
    let app = spawn_app();
    let body = format!(
        "\n{}\r\n   \n\n{}\n{}\n\n",
        line("blank-a", "bl-1", "192.0.2.1", "d1", 0, "success"),
        line("blank-a", "bl-2", "192.0.2.1", "d1", 60, "success"),
        r#"{"user_id":"blank-a","ip":"x","outcome":"success"}"#,
    );
    let reply = app.events(&body);
    let body = reply.expect(200);
    assert_eq!(body["accepted"], 2, "{}", reply.text);
    assert_eq!(
        body["rejected"].as_array().unwrap().len(),
        1,
        "{}",
        reply.text
    );
    assert_eq!(body["rejected"][0]["line"], 6, "{}", reply.text);
    assert_eq!(app.context("blank-a").expect(200)["history_size"], 2);
}

#[test]
fn a_repeated_event_id_is_counted_as_a_duplicate_and_recorded_once() {
    let app = spawn_app();
    let once = line("dup-user", "dup-1", "192.0.2.1", "d1", 0, "success");
    let other = line("dup-user", "dup-2", "192.0.2.1", "d1", 60, "success");
    let reply = app.events(&ndjson(&[once.clone(), other, once.clone()]));
    let body = reply.expect(200);
    assert_eq!(body["accepted"], 3, "{}", reply.text);
    assert_eq!(body["duplicates"], 1, "{}", reply.text);
    let again = app.events(&ndjson(&[once]));
    assert_eq!(again.expect(200)["duplicates"], 1, "{}", again.text);
    assert_eq!(app.context("dup-user").expect(200)["history_size"], 2);
}

#[test]
fn events_teach_the_context_exactly_like_score_and_outcome() {
    let app = spawn_app();
    // (ip, device, t, outcome): successes at home, a challenge from abroad,
    // failures, and a confirmed fraud.
    let story = [
        ("192.0.2.10", "d-home", 0, "success"),
        ("192.0.2.11", "d-home", 600, "success"),
        ("198.51.100.7", "d-laptop", 1200, "challenge_passed"),
        ("198.51.100.7", "d-laptop", 1300, "challenge_failed"),
        ("203.0.113.9", "d-evil", 1400, "failure"),
        ("203.0.113.9", "d-evil", 1410, "failure"),
        ("203.0.113.9", "d-evil", 1420, "fraud_confirmed"),
        ("2001:db8:1::7", "d-phone", 1500, "success"),
        ("10.0.0.1", "d-home", 1600, "success"),
    ];
    let mut lines = Vec::new();
    for (i, (ip, device, t, outcome)) in story.iter().enumerate() {
        let scored = json!({
            "user_id": "taught-by-score", "event_id": format!("s-{i}"), "ip": ip,
            "device_id": device, "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/75.0",
            "timestamp": at(*t),
        });
        app.score(&scored).expect(200);
        app.outcome(&json!({"attempt_id": format!("s-{i}"), "user_id": "taught-by-score", "outcome": outcome}))
            .expect(202);
        lines.push(line(
            "taught-by-events",
            &format!("e-{i}"),
            ip,
            device,
            *t,
            outcome,
        ));
    }
    let reply = app.events(&ndjson(&lines));
    assert_eq!(reply.expect(200)["accepted"], story.len(), "{}", reply.text);

    let by_score = without_user_id(app.context("taught-by-score").expect(200).clone());
    let by_events = without_user_id(app.context("taught-by-events").expect(200).clone());
    assert_eq!(by_events, by_score);
    assert_eq!(by_score["history_size"], 5);
    assert_eq!(by_score["failures_total"], 3);
}

#[test]
fn more_lines_than_the_limit_is_413() {
    let app = spawn_app_with(|c| c.limits.events_lines_max = 3);
    let lines: Vec<String> = (0..4)
        .map(|i| line("many", &format!("m-{i}"), "192.0.2.1", "d", i, "success"))
        .collect();
    let reply = app.events(&lines.join("\n"));
    reply.expect_error(413, "payload_too_large");
    assert_eq!(
        app.context("many").status,
        404,
        "nothing of a refused batch is recorded"
    );
}

#[test]
fn a_batch_of_exactly_the_line_limit_is_accepted() {
    let app = spawn_app_with(|c| c.limits.events_lines_max = 3);
    let lines: Vec<String> = (0..3)
        .map(|i| line("exact", &format!("x-{i}"), "192.0.2.1", "d", i, "success"))
        .collect();
    // NDJSON: every line ends with a newline, the last one included.
    let reply = app.events(&ndjson(&lines));
    assert_eq!(
        reply.status, 200,
        "3 lines (each newline-terminated) must fit events_lines_max = 3: {}",
        reply.text
    );
    assert_eq!(reply.body["accepted"], 3);
}

#[test]
fn a_body_over_the_size_limit_is_413() {
    let app = spawn_app_with(|c| c.limits.events_body_bytes_max = 4096);
    let lines: Vec<String> = (0..40)
        .map(|i| line("bulky", &format!("b-{i}"), "192.0.2.1", "d", i, "success"))
        .collect();
    let body = ndjson(&lines);
    assert!(body.len() > 4096);
    let reply = app.events(&body);
    reply.expect_error(413, "payload_too_large");
    assert_eq!(app.context("bulky").status, 404);
}

#[test]
fn an_older_login_ingested_later_does_not_replace_the_last_success() {
    let app = spawn_app();
    let lines = [
        line(
            "late-arrival",
            "la-new",
            "198.51.100.7",
            "d-new",
            600,
            "success",
        ),
        line(
            "late-arrival",
            "la-old",
            "192.0.2.10",
            "d-old",
            0,
            "success",
        ),
    ];
    app.events(&ndjson(&lines)).expect(200);
    let context = app.context("late-arrival");
    let context = context.expect(200);
    assert_eq!(context["last_success"]["timestamp"], at(600), "{context}");
    assert_eq!(context["last_success"]["country"], "SE", "{context}");
    assert_eq!(context["first_seen"], at(0), "{context}");
    assert_eq!(context["last_seen"], at(600), "{context}");
}

#[test]
fn a_bulk_larger_than_one_ingest_chunk_catches_event_ids_repeated_from_earlier_chunks() {
    // Few remembered attempts: the projection has forgotten the first
    // chunk's event_ids by the time the later chunk repeats them.
    let app = spawn_app_with(|c| {
        c.log.partitions = 1;
        c.partition.attempts_max = 16;
    });
    let chunk = riskd::partition::actor::INGEST_CHUNK_LOGINS;
    let total = chunk + chunk / 2;
    let conflict_at = chunk + 10;
    let duplicate_at = chunk + 20;
    let lines: Vec<String> = (0..total)
        .map(|i| match i {
            // An event_id of the first chunk, reused by another user.
            _ if i == conflict_at => line("chunk-b", "c-5", "192.0.2.2", "d2", 0, "success"),
            // An event_id of the first chunk, repeated by its own user.
            _ if i == duplicate_at => line("chunk-a", "c-7", "192.0.2.1", "d1", 7, "success"),
            _ => line(
                "chunk-a",
                &format!("c-{i}"),
                "192.0.2.1",
                "d1",
                i as i64,
                "success",
            ),
        })
        .collect();
    let reply = app.events(&ndjson(&lines));
    let body = reply.expect(200);
    assert_eq!(body["duplicates"], 1, "{}", reply.text);
    let rejected = body["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 1, "{}", reply.text);
    assert_eq!(rejected[0]["line"], conflict_at + 1, "{}", reply.text);
    assert_eq!(
        app.context("chunk-a").expect(200)["history_size"],
        total - 2,
        "every other line of chunk-a is recorded once"
    );
}

#[test]
fn scores_arriving_while_the_actor_holds_the_partition_go_through_its_mailbox_and_are_answered() {
    let app = spawn_app_with(|c| c.log.partitions = 1);
    const ROUNDS: usize = 5;
    const BULK_LINES: usize = 20_000;
    let mut scored = 0;
    for round in 0..ROUNDS {
        // The actor folds the bulk request chunk by chunk under the
        // partition's lock; scores meanwhile find the lock taken.
        let lines: Vec<String> = (0..BULK_LINES)
            .map(|i| {
                line(
                    &format!("bulk-{round}-{}", i % 500),
                    &format!("bulk-{round}-{i}"),
                    "192.0.2.1",
                    "d1",
                    i as i64,
                    "success",
                )
            })
            .collect();
        let (agent, url) = (app.agent(), app.url("/v1/events"));
        let bulk = std::thread::spawn(move || {
            crate::helpers::post_with(
                &agent,
                &url,
                "application/x-ndjson",
                ndjson(&lines).as_bytes(),
            )
        });
        let mut i = 0;
        while !bulk.is_finished() {
            let reply = app.score(&json!({
                "user_id": format!("live-{round}-{i}"), "ip": "192.0.2.9",
                "event_id": format!("live-{round}-{i}"),
            }));
            let body = reply.expect(200);
            assert!(body["risk"].is_number(), "{}", reply.text);
            scored += 1;
            i += 1;
        }
        assert_eq!(
            bulk.join().expect("bulk thread").expect(200)["accepted"],
            BULK_LINES
        );
        let metrics = app.get("/metrics").text;
        if crate::helpers::metric(&metrics, r#"riskd_partition_path_total{path="mailbox"}"#) >= 1.0
        {
            // Every score was answered, by whichever path.
            let direct =
                crate::helpers::metric(&metrics, r#"riskd_partition_path_total{path="direct"}"#);
            let mailbox =
                crate::helpers::metric(&metrics, r#"riskd_partition_path_total{path="mailbox"}"#);
            assert_eq!((direct + mailbox) as usize, scored, "{metrics}");
            return;
        }
    }
    panic!("{ROUNDS} bulk requests never made a score take the mailbox ({scored} scores)");
}
