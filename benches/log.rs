//! The event log: append cost with and without the durability barrier, by
//! group size, next to the disk's raw fdatasync in the same run (the floor
//! any durable acknowledgement pays).
//!
//! - `append/in_memory`: one `PartitionLog::append` (encode, take an
//!   offset, keep the record in memory): what a request thread pays (the
//!   event is built outside the timing).
//! - `write_out/group_N`: N appends, then writing them into sled as blocks
//!   (no fdatasync): what reaching sled costs per event, which the
//!   durability thread pays before each barrier.
//! - `append_durable/group_N`: N appends then one barrier (write-out, sled
//!   flush, fdatasync); divide by N for the amortised per-event cost.
//! - `raw_fdatasync/4KiB`: write 4 KiB to a plain file and fdatasync it.

#![allow(clippy::expect_used, clippy::unwrap_used)] // benchmark setup: a failure is a bug to see

use std::io::Write;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use riskd::event::{Event, Outcome};
use riskd::log::{GroupCommit, LogStore};

mod support;

fn login(n: u64) -> Event {
    Event::Login {
        attempt: support::desktop_login(
            format!("att-{n}"),
            format!("user-{}", n % 1000),
            1_748_822_400_000 + n as i64,
            "192.0.2.10".parse().expect("valid ip"),
        ),
        outcome: Outcome::Success,
    }
}

fn bench_log(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::open(dir.path(), 1, 64 << 20).expect("open log");
    let durability = store
        .start_durability(GroupCommit {
            events_max: 4096,
            interval_min: Duration::from_micros(0),
            // No background write-out: each figure pays for its own.
            idle_flush_max: Duration::from_secs(3600),
        })
        .expect("durability");
    let mut log = store.partition(0).expect("partition");
    let mut n = 0u64;

    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(1));
    // Timed: the appends alone. Untimed: writing them into sled every
    // 1024 (as the durability thread would), so the buffer never reaches
    // the size at which an append writes it out itself.
    group.bench_function("in_memory", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for done in 0..iters {
                n += 1;
                let event = login(n);
                let started = std::time::Instant::now();
                black_box(log.append(&event).expect("append"));
                timed += started.elapsed();
                if done % 1024 == 1023 {
                    log.write_out().expect("write out");
                }
            }
            timed
        })
    });
    group.finish();
    log.write_out().expect("write out");

    let mut group = c.benchmark_group("write_out");
    for size in [1u64, 16, 256] {
        group.throughput(Throughput::Elements(size));
        group.bench_function(format!("group_{size}"), |b| {
            b.iter(|| {
                for _ in 0..size {
                    n += 1;
                    log.append(&login(n)).expect("append");
                }
                log.write_out().expect("write out")
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("append_durable");
    group.sample_size(30);
    for size in [1u64, 16, 256, 4096] {
        group.throughput(Throughput::Elements(size));
        group.bench_function(format!("group_{size}"), |b| {
            b.iter(|| {
                for _ in 0..size {
                    n += 1;
                    log.append(&login(n)).expect("append");
                }
                durability.barrier().wait_blocking().expect("barrier")
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("raw_fdatasync");
    group.sample_size(30);
    let path = dir.path().join("raw");
    let mut file = std::fs::File::create(&path).expect("raw file");
    let block = vec![7u8; 4096];
    group.bench_function("4KiB", |b| {
        b.iter_batched(
            || (),
            |()| {
                file.write_all(&block).expect("write");
                file.sync_data().expect("fdatasync")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    durability.shutdown();
}

criterion_group!(benches, bench_log);
criterion_main!(benches);
