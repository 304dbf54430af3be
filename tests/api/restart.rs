//! Restarts on the same data directory: a graceful stop writes snapshots,
//! a start loads them and replays the log tail; without snapshots it
//! replays the whole log. Either way the state is the one before the stop.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{
    at, metric, spawn_app, spawn_app_in, spawn_app_with, TestApp, TEST_PARTITIONS,
};

const HOME_IP: &str = "192.0.2.10";

fn login(user: &str, event_id: &str, ip: &str, device: &str, t: i64) -> Value {
    json!({
        "user_id": user, "event_id": event_id, "ip": ip, "device_id": device,
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) Firefox/75.0",
        "timestamp": at(t),
    })
}

fn outcome(user: &str, attempt_id: &str, outcome: &str) -> Value {
    json!({"attempt_id": attempt_id, "user_id": user, "outcome": outcome})
}

/// Every listed user's context answer: status and body.
fn contexts(app: &TestApp, users: &[String]) -> BTreeMap<String, (u16, Value)> {
    users
        .iter()
        .map(|user| {
            let reply = app.context(user);
            (user.clone(), (reply.status, reply.body))
        })
        .collect()
}

#[track_caller]
fn assert_same_contexts(
    before: &BTreeMap<String, (u16, Value)>,
    after: &BTreeMap<String, (u16, Value)>,
    what: &str,
) {
    let differing: Vec<String> = before
        .iter()
        .filter(|(user, answer)| after.get(*user) != Some(answer))
        .map(|(user, answer)| {
            format!(
                "{user}:\n  before {answer:?}\n  after  {:?}",
                after.get(user)
            )
        })
        .collect();
    assert!(
        differing.is_empty(),
        "{what}: {} contexts differ:\n{}",
        differing.len(),
        differing.join("\n")
    );
}

#[test]
fn a_graceful_restart_keeps_every_context() {
    let app = spawn_app();
    let users: Vec<String> = (0..6).map(|i| format!("keeper-{i}")).collect();
    for (i, user) in users.iter().enumerate() {
        for j in 0..3 {
            let id = format!("{user}-{j}");
            let ip = if j == 2 { "198.51.100.9" } else { HOME_IP };
            app.score(&login(
                user,
                &id,
                ip,
                &format!("d{j}"),
                (i * 100 + j) as i64,
            ))
            .expect(200);
            let result = if j == 1 && i % 2 == 0 {
                "failure"
            } else {
                "success"
            };
            app.outcome(&outcome(user, &id, result)).expect(202);
        }
    }
    let before = contexts(&app, &users);
    assert!(before.values().all(|(status, _)| *status == 200));

    let app = spawn_app_in(app.stop(), |_| {});
    app.get("/readyz").expect(200);
    assert_same_contexts(&before, &contexts(&app, &users), "after a graceful restart");
}

#[test]
fn readyz_is_200_after_a_restart() {
    let app = spawn_app();
    app.events(&format!(
        "{}\n",
        json!({"user_id": "r", "ip": HOME_IP, "outcome": "success"})
    ))
    .expect(200);
    let app = spawn_app_in(app.stop(), |_| {});
    app.get("/readyz").expect(200);
    app.get("/healthz").expect(200);
}

#[test]
fn an_attempt_scored_before_a_restart_takes_its_outcome_after_it() {
    let app = spawn_app();
    let user = "patient";
    app.score(&login(user, "before-stop", HOME_IP, "d1", 0))
        .expect(200);
    let app = spawn_app_in(app.stop(), |_| {});
    app.outcome(&outcome(user, "before-stop", "success"))
        .expect(202);
    let context = app.context(user);
    let context = context.expect(200);
    assert_eq!(context["history_size"], 1, "{context}");
    assert_eq!(context["devices"][0]["device_id"], "d1", "{context}");
}

#[test]
fn a_repeated_event_id_after_a_restart_returns_the_first_answer() {
    let app = spawn_app();
    let user = "idempotent-across-restarts";
    let attempt = login(user, "first-answer", HOME_IP, "d1", 0);
    let first = app.score(&attempt);
    first.expect(200);
    // Teach the user so that a fresh score of the same body would differ.
    app.score(&login(user, "teacher", HOME_IP, "d1", 10))
        .expect(200);
    app.outcome(&outcome(user, "teacher", "success"))
        .expect(202);
    let context = app.context(user).body;

    let app = spawn_app_in(app.stop(), |_| {});
    let again = app.score(&attempt);
    again.expect(200);
    for key in [
        "attempt_id",
        "decision",
        "risk",
        "reasons",
        "history",
        "ruleset",
    ] {
        assert_eq!(
            again.body[key], first.body[key],
            "{key} differs after the restart"
        );
    }
    assert_eq!(
        app.context(user).body,
        context,
        "the repeat recorded something"
    );
}

/// A varied stream for 50 users: bulk logins with every outcome, scored
/// attempts with outcomes, a confirmed fraud, an erasure in the middle.
fn varied_stream(app: &TestApp, users: &[String]) {
    let ips = [
        "192.0.2.10",
        "192.0.2.77",
        "198.51.100.7",
        "2001:db8:1::9",
        "10.0.0.3",
        "203.0.113.50",
    ];
    let outcomes = [
        "success",
        "success",
        "failure",
        "challenge_passed",
        "success",
        "challenge_failed",
    ];
    let mut lines = String::new();
    for (u, user) in users.iter().enumerate() {
        for j in 0..6 {
            let line = json!({
                "user_id": user, "event_id": format!("bulk-{u}-{j}"), "ip": ips[(u + j) % ips.len()],
                "device_id": format!("d{}", (u * j) % 4),
                "user_agent": format!("agent/{}", j % 3),
                "timestamp": at((u * 1000 + j * 60) as i64), "outcome": outcomes[(u + j) % outcomes.len()],
            });
            lines.push_str(&format!("{line}\n"));
        }
    }
    let reply = app.events(&lines);
    assert_eq!(
        reply.expect(200)["accepted"],
        users.len() * 6,
        "{}",
        reply.text
    );

    // A confirmed fraud that stays, and one by a user who is then erased.
    for (user, ip) in [(&users[7], "203.0.113.200"), (&users[13], "203.0.113.201")] {
        let id = format!("fraud-{user}");
        app.score(&login(user, &id, ip, "d-evil", 100_000))
            .expect(200);
        app.outcome(&outcome(user, &id, "fraud_confirmed"))
            .expect(202);
    }
    let erased = app.erase(&users[13]);
    assert_eq!(erased.expect(202)["existed"], true, "{}", erased.text);

    // More traffic after the erasure, for everyone else.
    for (u, user) in users.iter().enumerate().filter(|(u, _)| *u != 13) {
        let id = format!("late-{u}");
        app.score(&login(
            user,
            &id,
            ips[u % ips.len()],
            "d-late",
            200_000 + u as i64,
        ))
        .expect(200);
        let result = if u % 3 == 0 { "failure" } else { "success" };
        app.outcome(&outcome(user, &id, result)).expect(202);
    }
}

/// Answers that depend on global state (hostile addresses, the model's
/// statistics over all users): risk and reasons, without the attempt id.
fn probes(app: &TestApp, run: &str, users: &[String]) -> Vec<Value> {
    let attempts = [
        login(
            "probe",
            &format!("probe-a-{run}"),
            "203.0.113.200",
            "d-x",
            300_000,
        ),
        login(
            "probe",
            &format!("probe-b-{run}"),
            "203.0.113.201",
            "d-x",
            300_000,
        ),
        login(
            &users[3],
            &format!("probe-c-{run}"),
            "192.0.2.10",
            "d1",
            300_000,
        ),
        login(
            &users[20],
            &format!("probe-d-{run}"),
            "198.51.100.7",
            "d-new",
            300_000,
        ),
    ];
    attempts
        .iter()
        .map(|attempt| {
            let reply = app.score(attempt);
            let mut body = reply.expect(200).clone();
            body.as_object_mut().unwrap().remove("attempt_id");
            body
        })
        .collect()
}

#[test]
fn a_snapshot_and_a_full_replay_give_the_same_state() {
    // Periodic snapshots while the stream runs and none at shutdown, so the
    // first restart really is a snapshot plus a log tail.
    let app = spawn_app_with(|c| {
        c.snapshot.every_events = 25;
        c.snapshot.on_shutdown = false;
    });
    let users: Vec<String> = (0..50).map(|i| format!("replay-{i}")).collect();
    varied_stream(&app, &users);
    let live = contexts(&app, &users);
    assert_eq!(live[&users[13]].0, 404, "the erased user is gone");
    assert_eq!(live.values().filter(|(s, _)| *s == 200).count(), 49);
    let live_probes = probes(&app, "live", &users);
    assert_eq!(live_probes[0]["decision"], "deny", "{}", live_probes[0]);
    assert!(
        live_probes[1]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["code"] != "hostile_context"),
        "the erased user's fraud mark leaves with them: {}",
        live_probes[1]
    );

    let dir = app.stop();
    let periodic = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .count();
    assert!(periodic > 0, "periodic snapshots were written");
    let app = spawn_app_in(dir, |_| {});
    let replayed = metric(&app.get("/metrics").text, "riskd_replayed_records_total");
    assert!(replayed > 0.0, "the restart replayed a log tail");
    assert_same_contexts(&live, &contexts(&app, &users), "snapshot + log tail");
    assert_eq!(
        probes(&app, "snapshot", &users),
        live_probes,
        "global state after snapshot load"
    );

    let dir = app.stop();
    let snapshots = dir.path().join("snapshots");
    let files = std::fs::read_dir(&snapshots).unwrap().count();
    assert_eq!(
        files, TEST_PARTITIONS as usize,
        "one snapshot per partition"
    );
    std::fs::remove_dir_all(&snapshots).unwrap();
    let app = spawn_app_in(dir, |_| {});
    assert_same_contexts(&live, &contexts(&app, &users), "full replay");
    assert_eq!(
        probes(&app, "replay", &users),
        live_probes,
        "global state after full replay"
    );
}

#[test]
fn a_restart_after_erasing_the_last_user_of_a_partition_starts() {
    let app = spawn_app();
    let gone = "forget-me";
    let line = |user: &str, i: usize| {
        format!(
            "{}\n",
            json!({"user_id": user, "event_id": format!("{user}-{i}"), "ip": HOME_IP, "outcome": "success"})
        )
    };
    // The erased user's partition holds only their records, then the erase record.
    let stays = (0..)
        .map(|i| format!("stays-{i}"))
        .find(|u| {
            riskd::hash::partition_of(u, TEST_PARTITIONS)
                != riskd::hash::partition_of(gone, TEST_PARTITIONS)
        })
        .unwrap();
    app.events(
        &(0..3)
            .map(|i| line(gone, i) + &line(&stays, i))
            .collect::<String>(),
    )
    .expect(200);
    assert_eq!(app.erase(gone).expect(202)["existed"], true);
    assert_eq!(app.context(gone).status, 404);
    let kept = app.context(&stays).body;
    // The erase record must be compacted away (the partition's last record
    // removed) before the restart, or the test proves nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&app.get("/metrics").text, "riskd_erasures_compacted_total") < 1.0 {
        assert!(Instant::now() < deadline, "the erasure was never compacted");
        std::thread::sleep(Duration::from_millis(10));
    }

    let dir = app.stop();
    let app = crate::helpers::launch(dir, |_| {})
        .unwrap_or_else(|err| panic!("riskd must restart after an erasure: {err}"));
    app.wait_ready();
    assert_eq!(app.context(gone).status, 404);
    assert_eq!(app.context(&stays).body, kept);
}

#[test]
fn no_snapshot_is_written_at_shutdown_when_disabled() {
    let app = spawn_app_with(|c| c.snapshot.on_shutdown = false);
    app.events(&format!(
        "{}\n",
        json!({"user_id": "unsnapped", "ip": HOME_IP, "outcome": "success"})
    ))
    .expect(200);
    let snapshots = app.data_dir.join("snapshots");
    let dir = app.stop();
    let written: Vec<String> = std::fs::read_dir(snapshots)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        written.is_empty(),
        "snapshot.on_shutdown = false, yet the stop wrote {written:?}"
    );
    // The state is still there, from the log.
    let app = spawn_app_in(dir, |c| c.snapshot.on_shutdown = false);
    assert_eq!(app.context("unsnapped").expect(200)["history_size"], 1);
}

#[test]
fn dead_letters_survive_a_restart() {
    let app = spawn_app();
    app.events("{\"user_id\":\"dl\",\"ip\":\"nowhere\",\"outcome\":\"success\"}\n")
        .expect(200);
    let before = app.dead_letters().body;
    assert_eq!(before["total"], 1, "{before}");
    let app = spawn_app_in(app.stop(), |_| {});
    let after = app.dead_letters().body;
    assert_eq!(after["dead_letters"], before["dead_letters"]);
    assert_eq!(after["total"], 1, "{after}");
    // New letters continue the sequence.
    app.events("not json\n").expect(200);
    let letters = app.dead_letters().body;
    let ids: Vec<u64> = letters["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{letters}");
    assert!(ids[1] > ids[0], "{letters}");
}
