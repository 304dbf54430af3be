//! Durable ingest rate through POST /v1/events: reads an NDJSON stream
//! (e.g. from `riskd simulate`), posts it in batches from several client
//! threads, and reports accepted events per second. Every 200 reply means
//! its batch passed a durability barrier, so this is the acknowledged,
//! durable rate.
//!
//!     cargo run --release -- simulate --users 20000 --days 30 --seed 3 --output /tmp/ingest.ndjson
//!     cargo run --release -- serve --data-dir /tmp/riskd-ingest &
//!     cargo run --release --example ingest_rate -- http://127.0.0.1:8080 /tmp/ingest.ndjson 1000 4

#![allow(clippy::expect_used, clippy::unwrap_used)] // a measurement tool: a failure is a bug to see

use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let path = args
        .next()
        .ok_or("usage: ingest_rate BASE_URL FILE [BATCH_LINES] [THREADS]")?;
    let batch_lines: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1000);
    let threads: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(4);

    let file = std::io::BufReader::new(std::fs::File::open(&path)?);
    let lines: Vec<String> = file.lines().collect::<Result<_, _>>()?;
    let batches: Arc<Vec<String>> =
        Arc::new(lines.chunks(batch_lines).map(|c| c.join("\n")).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (batches, next, accepted, url) = (
                batches.clone(),
                next.clone(),
                accepted.clone(),
                format!("{base}/v1/events"),
            );
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = batches.get(i) else { break };
                    let mut reply = agent
                        .post(&url)
                        .content_type("application/x-ndjson")
                        .send(batch.as_str())
                        .expect("POST /v1/events");
                    let body: serde_json::Value = reply.body_mut().read_json().expect("JSON reply");
                    accepted.fetch_add(
                        body["accepted"].as_u64().unwrap_or(0) as usize,
                        Ordering::Relaxed,
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("client thread");
    }
    let seconds = started.elapsed().as_secs_f64();
    let n = accepted.load(Ordering::Relaxed);
    println!(
        "{n} events accepted durably in {seconds:.2} s = {:.0} events/s ({} lines per batch, {threads} client threads)",
        n as f64 / seconds,
        batch_lines
    );
    Ok(())
}
