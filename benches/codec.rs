//! Encoding and decoding one log record (a typical login with its
//! assessment): the per-event CPU cost of persistence and of replay.

#![allow(clippy::expect_used, clippy::unwrap_used)] // benchmark setup: a failure is a bug to see

use criterion::{black_box, criterion_group, criterion_main, Criterion};

use riskd::event::codec::{decode, encode};
use riskd::event::{Assessment, Decision, Event, HistoryState, LoginAttempt, Reason};
use riskd::geoip::GeoInfo;

mod support;

fn event() -> Event {
    Event::Attempt {
        attempt: LoginAttempt {
            device_id: Some("d-7e1f".into()),
            geo: GeoInfo {
                country: Some("NO".into()),
                region: Some("Oslo County".into()),
                city: Some("Oslo".into()),
                latitude: Some(59.91),
                longitude: Some(10.75),
                accuracy_radius_km: Some(100),
                asn: Some(41164),
                ..GeoInfo::default()
            },
            ..support::desktop_login(
                "3f1c6a1e-8f7b-4c55-9d0e-1b2c3d4e5f60".into(),
                "user_eaf224".into(),
                1_748_822_952_904,
                "46.212.34.208".parse().expect("valid ip"),
            )
        },
        assessment: Assessment {
            decision: Decision::Challenge,
            risk: 0.61,
            reasons: vec![Reason {
                code: "new_country".into(),
                score: 0.4,
                value: Some(1.0),
                detail: "first login from NO for this user".into(),
            }],
            history: HistoryState::Established,
            ruleset: "default@1".into(),
        },
    }
}

fn bench_codec(c: &mut Criterion) {
    let event = event();
    let bytes = encode(&event).expect("encode");
    c.bench_function("codec/encode", |b| {
        b.iter(|| encode(black_box(&event)).expect("encode"))
    });
    c.bench_function("codec/decode", |b| {
        b.iter(|| decode(black_box(&bytes)).expect("decode"))
    });
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
