//! Scoring one attempt against a warm projection: 100,000 users with
//! history, all factors of the default ruleset on, global statistics
//! populated. The number is the in-process cost of `AttemptKeys::of` plus
//! `Scorer::score` for one request (what a partition spends before its log
//! append), for a known context and for a foreign one.

#![allow(clippy::expect_used, clippy::unwrap_used)] // benchmark setup: a failure is a bug to see

use criterion::{black_box, criterion_group, criterion_main, Criterion};

use riskd::config::Config;
use riskd::event::{ClientInfo, DeviceType, Event, LoginAttempt, Outcome};
use riskd::geoip::GeoInfo;

mod support;
use riskd::projection::{AttemptKeys, GlobalState, Projection};
use riskd::score::Scorer;

const USERS: usize = 100_000;
const LOGINS_PER_USER: usize = 4;

fn attempt(user: usize, n: usize, ip: String, country: &str) -> LoginAttempt {
    LoginAttempt {
        device_id: Some(format!("dev-{user}-{}", n % 2)),
        user_agent: Some(format!(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/80.0.{}.149",
            user % 50
        )),
        client: ClientInfo {
            browser: Some(format!("Chrome 80.0.{}", user % 50)),
            os: Some("Windows 10".into()),
            device_type: DeviceType::Desktop,
        },
        geo: GeoInfo {
            country: Some(country.into()),
            city: Some("Oslo".into()),
            latitude: Some(59.9),
            longitude: Some(10.7),
            asn: Some(64_500 + (user % 20) as u32),
            ..GeoInfo::default()
        },
        ..support::desktop_login(
            format!("a{user}-{n}"),
            format!("user-{user}"),
            1_748_822_400_000 + (n as i64) * 3_600_000,
            ip.parse().expect("valid ip"),
        )
    }
}

fn bench_score(c: &mut Criterion) {
    let config = Config::embedded().expect("embedded config");
    let scorer = Scorer::new(config.load_ruleset().expect("embedded ruleset"));
    let global = GlobalState::new();
    let mut projection = Projection::new(config.projection.clone(), 1024);
    for user in 0..USERS {
        for n in 0..LOGINS_PER_USER {
            let ip = format!("10.{}.{}.{}", user % 200, (user / 200) % 250, n % 3 + 1);
            let login = Event::Login {
                attempt: attempt(user, n, ip, "NO"),
                outcome: Outcome::Success,
            };
            projection.apply(&login, &global);
        }
    }
    let known = attempt(4242, 9, "10.42.21.1".into(), "NO");
    let foreign = attempt(4242, 9, "203.0.113.77".into(), "US");
    let mut group = c.benchmark_group("score");
    for (name, attempt) in [("known_context", &known), ("foreign_context", &foreign)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let keys = AttemptKeys::of(black_box(attempt));
                let user = projection.user(&attempt.user_id);
                black_box(scorer.score(attempt, &keys, user, &global))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_score);
criterion_main!(benches);
