//! The login the benches (and `examples/barrier_latency.rs`) start from: a
//! desktop Chrome on Windows, in Norway, with a device id. Each bench then
//! varies the fields its figure depends on.

use std::net::IpAddr;

use riskd::event::{ClientInfo, DeviceType, LoginAttempt};
use riskd::geoip::GeoInfo;

pub fn desktop_login(
    attempt_id: String,
    user_id: String,
    timestamp_ms: i64,
    ip: IpAddr,
) -> LoginAttempt {
    LoginAttempt {
        attempt_id,
        user_id,
        timestamp_ms,
        ip,
        device_id: Some("3f1c6a1e-8f7b-4c55-9d0e-1b2c3d4e5f60".into()),
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
            asn: Some(64_500),
            ..GeoInfo::default()
        },
        signals: Vec::new(),
    }
}
