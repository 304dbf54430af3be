//! A `riskd` child process for tests that need the real binary (crash
//! safety, signals): started on port 0, its address read from stdout.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const READY_WAIT_MAX: Duration = Duration::from_secs(30);

pub struct Server {
    pub child: Child,
    pub address: String,
    pub agent: ureq::Agent,
}

impl Server {
    /// Starts `riskd serve` on port 0 and learns the port from its stdout.
    pub fn start(data_dir: &Path, log: &Path, env: &[(&str, &str)]) -> Server {
        let log_file = std::fs::File::create(log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_riskd"))
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("RUST_LOG")
            .env("RISKD_LOGGING__LEVEL", "warn")
            .env("RISKD_LOG__PARTITIONS", "4")
            .env("RISKD_SERVER__HTTP_WORKERS", "2")
            .env("RISKD_PARTITION__THREADS", "2")
            // Every acknowledged device must still be listed: no eviction.
            .env("RISKD_PROJECTION__DEVICES_PER_USER_MAX", "4096")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("riskd starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut address = None;
        let mut line = String::new();
        while stdout.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(rest) = line.trim().strip_prefix("riskd listening on ") {
                address = Some(rest.to_owned());
                break;
            }
            line.clear();
        }
        let Some(address) = address else {
            let _ = child.kill();
            panic!(
                "riskd printed no address; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .new_agent();
        Server {
            child,
            address,
            agent,
        }
    }

    pub fn wait_ready(&mut self, log: &Path) {
        let deadline = Instant::now() + READY_WAIT_MAX;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "riskd exited during recovery ({status}); its log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if get(&self.agent, &format!("{}/readyz", self.address)).is_ok_and(|(s, _)| s == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "riskd not ready after {READY_WAIT_MAX:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown path runs, no snapshot is written.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL riskd");
        self.child.wait().expect("reap riskd");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn post(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    body: &str,
) -> Result<(u16, Value), ureq::Error> {
    let mut response = agent
        .post(url)
        .header("Content-Type", content_type)
        .send(body)?;
    let text = response.body_mut().read_to_string()?;
    Ok((
        response.status().as_u16(),
        serde_json::from_str(&text).unwrap_or(Value::Null),
    ))
}

pub fn get(agent: &ureq::Agent, url: &str) -> Result<(u16, Value), ureq::Error> {
    let mut response = agent.get(url).call()?;
    let text = response.body_mut().read_to_string()?;
    Ok((
        response.status().as_u16(),
        serde_json::from_str(&text).unwrap_or(Value::Null),
    ))
}
