//! A simple loopback latency test: closed loop, one keep-alive connection,
//! sequential POST /v1/score requests to a running riskd, then a success
//! outcome for every tenth attempt (so projections grow). Prints p50, p99,
//! p99.9 and max of the score round trip as the client sees it.
//!
//!     cargo run --release -- serve --data-dir /tmp/riskd-lat &
//!     cargo run --release --example loopback_latency -- http://127.0.0.1:8080 20000
//!
//! Closed loop measures service time, not behaviour under a paced load
//! (no coordinated-omission correction): the paced load generator is
//! issue 4's `riskd load`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // benchmark setup: a failure is a bug to see

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let requests: usize = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20_000);
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let mut latencies_us = Vec::with_capacity(requests);
    for i in 0..requests {
        let user = format!("lat-user-{}", i % 5_000);
        let body = format!(
            r#"{{"user_id":"{user}","ip":"192.0.2.{}","device_id":"dev-{}","user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/80.0.3987.149","event_id":"lat-{i}-{}"}}"#,
            i % 200,
            i % 7,
            std::process::id()
        );
        let started = Instant::now();
        let mut response = agent
            .post(format!("{base}/v1/score"))
            .content_type("application/json")
            .send(&body)?;
        let text = response.body_mut().read_to_string()?;
        latencies_us.push(started.elapsed().as_secs_f64() * 1e6);
        if i % 10 == 0 {
            let value: serde_json::Value = serde_json::from_str(&text)?;
            let outcome = format!(
                r#"{{"attempt_id":"{}","user_id":"{user}","outcome":"success"}}"#,
                value["attempt_id"].as_str().unwrap_or_default()
            );
            agent
                .post(format!("{base}/v1/outcomes"))
                .content_type("application/json")
                .send(&outcome)?;
        }
    }
    latencies_us.sort_by(f64::total_cmp);
    let at = |q: f64| latencies_us[((latencies_us.len() as f64 - 1.0) * q) as usize];
    println!(
        "score round trip over {requests} requests: p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us",
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0)
    );
    Ok(())
}
