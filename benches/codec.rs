//! Encoding and decoding one log record (a typical login with its
//! assessment): the per-event CPU cost of persistence and of replay.

#![allow(clippy::expect_used, clippy::unwrap_used)] // benchmark setup: a failure is a bug to see

use criterion::{black_box, criterion_group, criterion_main, Criterion};

use riskd::event::codec::{decode, encode};
use riskd::event::{
    Assessment, ClientInfo, Decision, DeviceType, Event, HistoryState, LoginAttempt, Reason,
};
use riskd::geoip::GeoInfo;

fn event() -> Event {
    Event::Attempt {
        attempt: LoginAttempt {
            attempt_id: "3f1c6a1e-8f7b-4c55-9d0e-1b2c3d4e5f60".into(),
            user_id: "user_eaf224".into(),
            timestamp_ms: 1_748_822_952_904,
            ip: "46.212.34.208".parse().expect("valid ip"),
            device_id: Some("d-7e1f".into()),
            user_agent: Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/80.0.3987.149"
                    .into(),
            ),
            client: ClientInfo {
                browser: Some("Chrome 80.0.3987".into()),
                os: Some("Windows 10".into()),
                device_type: DeviceType::Desktop,
            },
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
            signals: Vec::new(),
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
