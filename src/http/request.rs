//! Request bodies as sent (every field optional, so a missing field is
//! reported by name) and their validation into domain values. This is the
//! only place raw request strings are checked; the core trusts what leaves here.

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::enrich::{ClientOverride, Enricher, GeoOverride};
use crate::event::{DeviceType, LoginAttempt, Outcome, OutcomeReport, Signal, TimestampMs};

pub const USER_ID_BYTES_MAX: usize = 256;
pub const EVENT_ID_BYTES_MAX: usize = 128;
pub const DEVICE_ID_BYTES_MAX: usize = 256;
pub const USER_AGENT_BYTES_MAX: usize = 1024;
/// Browser, OS, region and city names.
pub const NAME_BYTES_MAX: usize = 256;
pub const SIGNAL_NAME_BYTES_MAX: usize = 64;
/// Largest |value| of a signal: far beyond any meaningful score or flag,
/// small enough that weight x value stays finite.
pub const SIGNAL_VALUE_ABS_MAX: f64 = 1e6;
/// How far ahead of the server's clock an event time may be. Time-based
/// state keys on the newest event time seen; a year-9999 typo must not
/// age out everyone else's recent failures.
pub const EVENT_TIME_AHEAD_MAX_MS: i64 = 366 * 24 * 3_600_000;

#[derive(Debug, Default, Deserialize)]
pub struct ClientDto {
    browser: Option<String>,
    os: Option<String>,
    device_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GeoDto {
    country: Option<String>,
    region: Option<String>,
    city: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    asn: Option<u32>,
}

/// POST /v1/score, and one line of POST /v1/events (which adds `outcome`).
#[derive(Debug, Default, Deserialize)]
pub struct AttemptDto {
    user_id: Option<String>,
    ip: Option<String>,
    timestamp: Option<String>,
    event_id: Option<String>,
    device_id: Option<String>,
    user_agent: Option<String>,
    client: Option<ClientDto>,
    geo: Option<GeoDto>,
    signals: Option<Map<String, Value>>,
    pub outcome: Option<String>,
}

/// POST /v1/outcomes.
#[derive(Debug, Default, Deserialize)]
pub struct OutcomeDto {
    attempt_id: Option<String>,
    user_id: Option<String>,
    outcome: Option<String>,
    timestamp: Option<String>,
}

impl AttemptDto {
    /// Validates and enriches (GeoIP, User-Agent) into an attempt.
    pub fn into_attempt(
        self,
        enricher: &Enricher,
        signals_max: usize,
        now_ms: TimestampMs,
    ) -> Result<LoginAttempt, ApiError> {
        let user_id = user_id(self.user_id, "user_id")?;
        let ip = ip(self.ip)?;
        let timestamp_ms = match self.timestamp {
            Some(text) => parse_timestamp(&text, "timestamp")?,
            None => now_ms,
        };
        let attempt_id = match self.event_id {
            Some(id) => bounded("event_id", id, 1, EVENT_ID_BYTES_MAX)?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let device_id = optional("device_id", self.device_id, DEVICE_ID_BYTES_MAX)?;
        let user_agent = optional("user_agent", self.user_agent, USER_AGENT_BYTES_MAX)?;
        let client = self.client.unwrap_or_default();
        let client = ClientOverride {
            browser: optional("client.browser", client.browser, NAME_BYTES_MAX)?,
            os: optional("client.os", client.os, NAME_BYTES_MAX)?,
            device_type: client
                .device_type
                .map(|d| {
                    DeviceType::parse(&d).ok_or_else(|| {
                        ApiError::invalid(
                            "client.device_type",
                            format!("client.device_type: `{d}` is not one of desktop, mobile, tablet, bot, unknown"),
                        )
                    })
                })
                .transpose()?,
        };
        let geo = self.geo.unwrap_or_default();
        let geo = GeoOverride {
            country: geo.country.map(|c| country(&c)).transpose()?,
            region: optional("geo.region", geo.region, NAME_BYTES_MAX)?,
            city: optional("geo.city", geo.city, NAME_BYTES_MAX)?,
            latitude: geo
                .latitude
                .map(|v| coordinate("geo.latitude", v, 90.0))
                .transpose()?,
            longitude: geo
                .longitude
                .map(|v| coordinate("geo.longitude", v, 180.0))
                .transpose()?,
            asn: geo.asn,
        };
        let signals = signals(self.signals, signals_max)?;
        Ok(LoginAttempt {
            attempt_id,
            user_id,
            timestamp_ms,
            ip,
            client: enricher.client(user_agent.as_deref(), client),
            geo: enricher.geo(ip, geo),
            device_id,
            user_agent,
            signals,
        })
    }
}

impl OutcomeDto {
    pub fn into_report(self, now_ms: TimestampMs) -> Result<OutcomeReport, ApiError> {
        let attempt_id = bounded(
            "attempt_id",
            required("attempt_id", self.attempt_id)?,
            1,
            EVENT_ID_BYTES_MAX,
        )?;
        let user_id = user_id(self.user_id, "user_id")?;
        let outcome = outcome(self.outcome)?;
        let timestamp_ms = match self.timestamp {
            Some(text) => parse_timestamp(&text, "timestamp")?,
            None => now_ms,
        };
        Ok(OutcomeReport {
            attempt_id,
            user_id,
            outcome,
            timestamp_ms,
        })
    }
}

pub fn outcome(value: Option<String>) -> Result<Outcome, ApiError> {
    let text = required("outcome", value)?;
    Outcome::parse(&text).ok_or_else(|| {
        ApiError::invalid(
            "outcome",
            format!("outcome: `{text}` is not one of success, failure, challenge_passed, challenge_failed, fraud_confirmed"),
        )
    })
}

pub fn user_id(value: Option<String>, field: &str) -> Result<String, ApiError> {
    bounded(field, required(field, value)?, 1, USER_ID_BYTES_MAX)
}

fn required(field: &str, value: Option<String>) -> Result<String, ApiError> {
    value.ok_or_else(|| ApiError::invalid(field, format!("{field} is required")))
}

fn bounded(field: &str, value: String, min: usize, max: usize) -> Result<String, ApiError> {
    if value.len() < min || value.len() > max {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} must be {min} to {max} bytes long, got {}",
                value.len()
            ),
        ));
    }
    Ok(value)
}

/// An optional string: empty means absent.
fn optional(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => bounded(field, v, 1, max).map(Some),
        None => Ok(None),
    }
}

fn ip(value: Option<String>) -> Result<IpAddr, ApiError> {
    let text = required("ip", value)?;
    let ip: IpAddr = text.trim().parse().map_err(|_| {
        ApiError::invalid("ip", format!("ip: `{text}` is not an IPv4 or IPv6 address"))
    })?;
    // ::ffff:a.b.c.d is the IPv4 client a dual-stack socket saw.
    Ok(ip.to_canonical())
}

fn country(text: &str) -> Result<String, ApiError> {
    crate::projection::keys::CountryCode::parse(text)
        .map(|c| c.as_str().to_owned())
        .ok_or_else(|| {
            ApiError::invalid(
                "geo.country",
                format!("geo.country: `{text}` is not an ISO 3166-1 alpha-2 code"),
            )
        })
}

fn coordinate(field: &str, value: f64, bound: f64) -> Result<f64, ApiError> {
    if !value.is_finite() || value.abs() > bound {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be within ±{bound}, got {value}"),
        ));
    }
    Ok(value)
}

fn signals(map: Option<Map<String, Value>>, max: usize) -> Result<Vec<Signal>, ApiError> {
    let Some(map) = map else {
        return Ok(Vec::new());
    };
    if map.len() > max {
        return Err(ApiError::invalid(
            "signals",
            format!(
                "signals has {} entries; at most {max} are accepted",
                map.len()
            ),
        ));
    }
    let mut signals = Vec::with_capacity(map.len());
    for (name, value) in map {
        let field = format!("signals.{name}");
        if name.is_empty() || name.len() > SIGNAL_NAME_BYTES_MAX {
            return Err(ApiError::invalid(
                "signals",
                format!("signal names must be 1 to {SIGNAL_NAME_BYTES_MAX} bytes"),
            ));
        }
        let value = match value {
            Value::Bool(b) => f64::from(u8::from(b)),
            Value::Number(n) => n
                .as_f64()
                .filter(|v| v.abs() <= SIGNAL_VALUE_ABS_MAX)
                .ok_or_else(|| {
                    ApiError::invalid(
                        &field,
                        format!("{field} must be a number within ±{SIGNAL_VALUE_ABS_MAX}"),
                    )
                })?,
            _ => {
                return Err(ApiError::invalid(
                    &field,
                    format!("{field} must be a boolean or a number"),
                ))
            }
        };
        signals.push(Signal { name, value });
    }
    Ok(signals)
}

/// Refuses an event time absurdly far ahead of the server's clock (the
/// HTTP edge only: offline tools replay whatever their data says).
pub fn check_not_far_future(
    timestamp_ms: TimestampMs,
    now_ms: TimestampMs,
) -> Result<(), ApiError> {
    if timestamp_ms > now_ms.saturating_add(EVENT_TIME_AHEAD_MAX_MS) {
        return Err(ApiError::invalid(
            "timestamp",
            format!(
                "timestamp: {} is more than a year in the future",
                format_timestamp(timestamp_ms)
            ),
        ));
    }
    Ok(())
}

pub fn parse_timestamp(text: &str, field: &str) -> Result<TimestampMs, ApiError> {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiError::invalid(
                field,
                format!("{field}: `{text}` is not an RFC 3339 timestamp with an offset"),
            )
        })?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ApiError::invalid(field, format!("{field}: `{text}` is out of range")))
}

pub fn format_timestamp(ms: TimestampMs) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_offsets_parse_to_utc_milliseconds() {
        assert_eq!(
            parse_timestamp("2025-06-02T00:09:12.904Z", "t").unwrap(),
            1_748_822_952_904
        );
        assert_eq!(
            parse_timestamp("2025-06-02T02:09:12.904+02:00", "t").unwrap(),
            1_748_822_952_904
        );
        assert!(parse_timestamp("2025-06-02 00:09:12", "t").is_err());
        assert_eq!(
            format_timestamp(1_748_822_952_904),
            "2025-06-02T00:09:12.904Z"
        );
    }
}
