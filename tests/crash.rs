//! Crash safety: SIGKILL the real `riskd` binary while clients write, then
//! restart it on the same data directory. Every write that was acknowledged
//! (an outcome's 202, a bulk ingest's 200) must be there after recovery.
//!
//! Unacknowledged writes may or may not survive; the checks are "at least".

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::json;

use common::{get, post, Server};
const WRITERS: usize = 4;
const USERS_PER_WRITER: usize = 5;
const LINES_PER_BATCH: usize = 20;

/// Acknowledged device ids per user: each acknowledged login used a new one.
type Acked = Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>;

/// 300 to 800 ms, different on every call.
fn kill_delay() -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Duration::from_millis(300 + u64::from(nanos % 500))
}

/// One writer: score a fresh attempt (new device each time), report its
/// success; record the device once the outcome is acknowledged (202).
fn outcome_writer(
    server: &Server,
    round: usize,
    writer: usize,
    acked: Acked,
    stop: Arc<AtomicBool>,
) -> impl FnOnce() + Send + 'static {
    let agent = server.agent.clone();
    let address = server.address.clone();
    move || {
        for i in 0.. {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let user = format!("crash-{writer}-{}", i % USERS_PER_WRITER);
            let device = format!("dev-r{round}-w{writer}-{i}");
            let attempt_id = format!("att-r{round}-w{writer}-{i}");
            let attempt = json!({"user_id": user, "event_id": attempt_id, "ip": "192.0.2.1", "device_id": device});
            match post(
                &agent,
                &format!("{address}/v1/score"),
                "application/json",
                &attempt.to_string(),
            ) {
                Ok((200, _)) => {}
                _ => return, // the server is gone
            }
            let outcome = json!({"attempt_id": attempt_id, "user_id": user, "outcome": "success"});
            match post(
                &agent,
                &format!("{address}/v1/outcomes"),
                "application/json",
                &outcome.to_string(),
            ) {
                Ok((202, _)) => {
                    acked
                        .lock()
                        .unwrap()
                        .entry(user)
                        .or_default()
                        .insert(device);
                }
                Ok((status, body)) => panic!("outcome answered {status} {body} while running"),
                Err(_) => return,
            }
        }
    }
}

/// One writer of bulk batches; records every line of a batch answered 200.
fn events_writer(
    server: &Server,
    round: usize,
    writer: usize,
    acked: Acked,
    stop: Arc<AtomicBool>,
) -> impl FnOnce() + Send + 'static {
    let agent = server.agent.clone();
    let address = server.address.clone();
    move || {
        for batch in 0.. {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let lines: Vec<(String, String)> = (0..LINES_PER_BATCH)
                .map(|j| {
                    let user = format!("bulk-{writer}-{}", j % USERS_PER_WRITER);
                    (user, format!("bdev-r{round}-w{writer}-b{batch}-{j}"))
                })
                .collect();
            let body: String = lines
                .iter()
                .map(|(user, device)| {
                    let line = json!({
                        "user_id": user, "event_id": device, "ip": "198.51.100.1",
                        "device_id": device, "outcome": "success",
                    });
                    format!("{line}\n")
                })
                .collect();
            match post(
                &agent,
                &format!("{address}/v1/events"),
                "application/x-ndjson",
                &body,
            ) {
                Ok((200, reply)) => {
                    assert_eq!(reply["accepted"], LINES_PER_BATCH, "{reply}");
                    assert_eq!(reply["rejected"], json!([]), "{reply}");
                    let mut acked = acked.lock().unwrap();
                    for (user, device) in lines {
                        acked.entry(user).or_default().insert(device);
                    }
                }
                Ok((status, body)) => panic!("events answered {status} {body} while running"),
                Err(_) => return,
            }
        }
    }
}

/// Scores without outcomes: log records no reply waits to make durable.
fn score_writer(
    server: &Server,
    round: usize,
    writer: usize,
    stop: Arc<AtomicBool>,
) -> impl FnOnce() + Send + 'static {
    let agent = server.agent.clone();
    let address = server.address.clone();
    move || {
        for i in 0.. {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let attempt = json!({
                "user_id": format!("scored-{writer}-{}", i % USERS_PER_WRITER),
                "event_id": format!("only-r{round}-w{writer}-{i}"), "ip": "203.0.113.5",
            });
            let url = format!("{address}/v1/score");
            if !matches!(
                post(&agent, &url, "application/json", &attempt.to_string()),
                Ok((200, _))
            ) {
                return;
            }
        }
    }
}

/// Every acknowledged device is in its user's context, and the history
/// counts at least the acknowledged logins.
fn assert_all_acknowledged_present(server: &Server, acked: &Acked, when: &str) {
    let acked = acked.lock().unwrap();
    let mut missing = Vec::new();
    for (user, devices) in acked.iter() {
        let (status, context) = get(
            &server.agent,
            &format!("{}/v1/users/{user}/context", server.address),
        )
        .unwrap();
        if status != 200 {
            missing.push(format!(
                "{user}: context {status} {context}, {} acknowledged logins",
                devices.len()
            ));
            continue;
        }
        let known: BTreeSet<&str> = context["devices"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["device_id"].as_str())
            .collect();
        let lost: Vec<&String> = devices
            .iter()
            .filter(|d| !known.contains(d.as_str()))
            .collect();
        if !lost.is_empty() {
            missing.push(format!("{user}: lost acknowledged devices {lost:?}"));
        }
        let history = context["history_size"].as_u64().unwrap();
        if history < devices.len() as u64 {
            missing.push(format!(
                "{user}: history_size {history} < {} acknowledged",
                devices.len()
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "{when}: acknowledged writes lost:\n{}",
        missing.join("\n")
    );
}

type Writer = fn(&Server, usize, usize, Acked, Arc<AtomicBool>) -> Box<dyn FnOnce() + Send>;

/// Runs `rounds` of (start or restart, check, write, SIGKILL mid-write) on
/// one data directory, then a final restart and check.
///
/// `acks`: whether the writers' work is acknowledged (outcomes, batches);
/// a round of such writers that acknowledged nothing proves nothing.
fn crash_rounds(rounds: usize, acks: bool, writer: Writer, env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acked: Acked = Arc::default();
    for round in 0..rounds {
        let log = dir.path().join(format!("riskd-{round}.log"));
        let mut server = Server::start(&data, &log, env);
        server.wait_ready(&log);
        assert_all_acknowledged_present(&server, &acked, &format!("after crash {round}"));
        let before = acked
            .lock()
            .unwrap()
            .values()
            .map(BTreeSet::len)
            .sum::<usize>();

        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| std::thread::spawn(writer(&server, round, w, acked.clone(), stop.clone())))
            .collect();
        std::thread::sleep(kill_delay());
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().expect("writer thread");
        }
        let after = acked
            .lock()
            .unwrap()
            .values()
            .map(BTreeSet::len)
            .sum::<usize>();
        assert!(
            !acks || after > before,
            "round {round} acknowledged nothing before the kill"
        );
    }
    let log = dir.path().join("riskd-final.log");
    let mut server = Server::start(&data, &log, env);
    server.wait_ready(&log);
    assert_all_acknowledged_present(&server, &acked, "after the last crash");
}

#[test]
fn sigkill_during_outcome_writes_loses_no_acknowledged_outcome() {
    crash_rounds(
        3,
        true,
        |s, r, w, a, stop| Box::new(outcome_writer(s, r, w, a, stop)),
        &[],
    );
}

#[test]
fn sigkill_during_bulk_ingest_loses_no_acknowledged_batch() {
    crash_rounds(
        2,
        true,
        |s, r, w, a, stop| Box::new(events_writer(s, r, w, a, stop)),
        &[],
    );
}

/// Periodic snapshots are written while scores stream in (a score reply
/// waits for no durability barrier, so the log's tail may still be in
/// memory): after SIGKILL, the server must start again.
#[test]
fn sigkill_after_periodic_snapshots_still_restarts() {
    crash_rounds(
        3,
        false,
        |s, r, w, _, stop| Box::new(score_writer(s, r, w, stop)),
        &[("RISKD_SNAPSHOT__EVERY_EVENTS", "25")],
    );
}
