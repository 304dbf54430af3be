//! The durability barrier's tail next to the disk's: p50, p99, p99.9 and
//! max of one durable acknowledgement (append one event, then wait for its
//! barrier: sled flush + fdatasync) and of a raw 4 KiB write + fdatasync
//! of a plain file in the same directory, interleaved in one run so both
//! see the same disk weather. Criterion (`benches/log.rs`) gives means;
//! the bound is on p99, hence this.
//!
//!     cargo run --release --example barrier_latency -- [DIR] [SAMPLES]

#![allow(clippy::expect_used, clippy::unwrap_used)] // a measurement tool: a failure is a bug to see

use std::io::Write;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use riskd::event::{Event, Outcome};
use riskd::log::{GroupCommit, LogStore};

#[path = "../benches/support/mod.rs"]
mod support;

fn login(n: u64) -> Event {
    Event::Login {
        attempt: support::desktop_login(
            format!("att-{n}"),
            format!("user-{}", n % 1000),
            1_748_822_400_000 + n as i64,
            "192.0.2.10".parse().unwrap(),
        ),
        outcome: Outcome::Success,
    }
}

fn line(name: &str, h: &Histogram<u64>) {
    println!(
        "{name:<22} {:>8} {:>8} {:>8} {:>8}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let parent = args.next().map(std::path::PathBuf::from);
    let samples: u64 = args.next().map(|n| n.parse().unwrap()).unwrap_or(3000);
    let dir = match &parent {
        Some(parent) => tempfile::tempdir_in(parent).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let store = LogStore::open(dir.path(), 1, 64 << 20).unwrap();
    // No waiting for company: a lone acknowledgement, as at low load.
    let durability = store
        .start_durability(GroupCommit {
            events_max: 1,
            interval_min: Duration::ZERO,
            idle_flush_max: Duration::from_millis(100),
        })
        .unwrap();
    let mut log = store.partition(0).unwrap();
    let mut raw = std::fs::File::create(dir.path().join("raw")).unwrap();
    let block = vec![7u8; 4096];

    let mut barrier = Histogram::<u64>::new(3).unwrap();
    let mut fdatasync = Histogram::<u64>::new(3).unwrap();
    for n in 0..samples + samples / 10 {
        let started = Instant::now();
        log.append(&login(n)).unwrap();
        durability.sync().unwrap();
        let barrier_us = started.elapsed().as_micros() as u64;

        let started = Instant::now();
        raw.write_all(&block).unwrap();
        raw.sync_data().unwrap();
        let raw_us = started.elapsed().as_micros() as u64;
        // The first tenth warms sled and the file up.
        if n >= samples / 10 {
            barrier.record(barrier_us).unwrap();
            fdatasync.record(raw_us).unwrap();
        }
    }
    durability.shutdown();

    println!(
        "{samples} samples each, interleaved, in {}",
        dir.path().display()
    );
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>8}",
        "µs", "p50", "p99", "p99.9", "max"
    );
    line("durable ack (barrier)", &barrier);
    line("raw write+fdatasync", &fdatasync);
    println!(
        "ratio p50 {:.2}, p99 {:.2}",
        barrier.value_at_quantile(0.5) as f64 / fdatasync.value_at_quantile(0.5) as f64,
        barrier.value_at_quantile(0.99) as f64 / fdatasync.value_at_quantile(0.99) as f64
    );
}
