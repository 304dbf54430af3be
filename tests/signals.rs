//! Signals to the real binary: SIGHUP reloads the ruleset files (a file
//! that fails validation keeps the running ruleset), SIGTERM stops
//! gracefully with snapshots written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{post, Server};

const DEFAULT_RULESET: &str = include_str!("../config/ruleset.toml");

fn signal(server: &Server, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} failed");
}

fn ruleset_label(server: &Server, user: &str) -> String {
    let body = format!(r#"{{"user_id":"{user}","ip":"192.0.2.1"}}"#);
    let (status, reply) = post(
        &server.agent,
        &format!("{}/v1/score", server.address),
        "application/json",
        &body,
    )
    .unwrap();
    assert_eq!(status, 200, "{reply}");
    reply["ruleset"].as_str().unwrap().to_owned()
}

/// Polls until the server answers with `label` (a signal is asynchronous).
fn wait_for_label(server: &Server, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        if ruleset_label(server, &format!("poll-{n}")) == label {
            return;
        }
        assert!(Instant::now() < deadline, "ruleset never became {label}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reloads_the_ruleset_and_a_broken_file_keeps_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let ruleset = dir.path().join("ruleset.toml");
    let log = dir.path().join("riskd.log");
    std::fs::write(
        &ruleset,
        DEFAULT_RULESET.replace("name = \"default\"", "name = \"first\""),
    )
    .unwrap();
    let ruleset_env = ruleset.display().to_string();
    let mut server = Server::start(
        &dir.path().join("data"),
        &log,
        &[("RISKD_RULESET__PATH", &ruleset_env)],
    );
    server.wait_ready(&log);
    assert_eq!(ruleset_label(&server, "u0"), "first@1");

    std::fs::write(
        &ruleset,
        DEFAULT_RULESET.replace("name = \"default\"", "name = \"second\""),
    )
    .unwrap();
    signal(&server, "HUP");
    wait_for_label(&server, "second@1");

    std::fs::write(&ruleset, "name = \"broken\"").unwrap();
    signal(&server, "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("reload failed")
    {
        assert!(Instant::now() < deadline, "no reload failure logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ruleset_label(&server, "u-after"), "second@1");
}

#[test]
fn sigterm_stops_gracefully_and_writes_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("riskd.log");
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &log, &[]);
    server.wait_ready(&log);
    ruleset_label(&server, "someone");
    signal(&server, "TERM");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let snapshots = std::fs::read_dir(data.join("snapshots")).unwrap().count();
    assert_eq!(snapshots, 4, "one snapshot per partition");
}
