//! Folding events into a projection: the per-event cost of a partition's
//! write path after its log append, and of replay at start (which also
//! decodes each record: see benches/codec.rs).
//!
//! - `apply/login_success`: a successful login of a known user (learns the
//!   context: sets, hour profile, model statistics).
//! - `apply/login_failure`: a failed login (failure ring, per-source windows).
//! - `apply/scored_attempt`: a scored attempt remembered for its outcome.

#![allow(clippy::expect_used, clippy::unwrap_used)] // benchmark setup: a failure is a bug to see

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};

use riskd::config::Config;
use riskd::event::{Assessment, Decision, Event, HistoryState, LoginAttempt, Outcome};
use riskd::geoip::GeoInfo;

mod support;
use riskd::projection::{GlobalState, Projection};

const USERS: usize = 100_000;

fn attempt(user: usize, n: u64) -> LoginAttempt {
    LoginAttempt {
        device_id: Some(format!("dev-{user}-{}", n % 2)),
        geo: GeoInfo {
            country: Some("NO".into()),
            asn: Some(64_500 + (user % 20) as u32),
            ..GeoInfo::default()
        },
        ..support::desktop_login(
            format!("a{user}-{n}"),
            format!("user-{user}"),
            1_748_822_400_000 + n as i64 * 60_000,
            format!("10.{}.{}.{}", user % 200, (user / 200) % 250, n % 3 + 1)
                .parse()
                .expect("valid ip"),
        )
    }
}

fn bench_apply(c: &mut Criterion) {
    let config = Config::embedded().expect("embedded config");
    let global = GlobalState::new();
    let mut projection = Projection::new(config.projection.clone(), config.partition.attempts_max);
    for user in 0..USERS {
        for n in 0..4 {
            projection.apply(
                &Event::Login {
                    attempt: attempt(user, n),
                    outcome: Outcome::Success,
                },
                &global,
            );
        }
    }
    let mut n = 1_000u64;
    let mut group = c.benchmark_group("apply");
    for (name, outcome) in [
        ("login_success", Outcome::Success),
        ("login_failure", Outcome::Failure),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    Event::Login {
                        attempt: attempt((n as usize * 7919) % USERS, n),
                        outcome,
                    }
                },
                |event| black_box(projection.apply(&event, &global)),
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("scored_attempt", |b| {
        b.iter_batched(
            || {
                n += 1;
                Event::Attempt {
                    attempt: attempt((n as usize * 7919) % USERS, n),
                    assessment: Assessment {
                        decision: Decision::Allow,
                        risk: 0.01,
                        reasons: Vec::new(),
                        history: HistoryState::Established,
                        ruleset: "default@1".into(),
                    },
                }
            },
            |event| black_box(projection.apply(&event, &global)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_apply);
criterion_main!(benches);
