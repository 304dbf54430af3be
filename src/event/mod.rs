//! The domain events riskd records, and what a scored attempt answers.
//!
//! These are validated values: the HTTP layer parses requests into them
//! once (`http::request`), the log persists them (`event::codec`), the
//! projections fold them. Times are event times in Unix milliseconds.

pub mod codec;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::geoip::GeoInfo;

/// Event time: milliseconds since the Unix epoch, UTC.
pub type TimestampMs = i64;

/// One login attempt with everything the request carried and what GeoIP
/// and user-agent parsing derived from it (recorded as derived, so a replay
/// with a newer GeoIP database still gives the answers of the time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoginAttempt {
    pub attempt_id: String,
    pub user_id: String,
    pub timestamp_ms: TimestampMs,
    pub ip: IpAddr,
    pub device_id: Option<String>,
    pub user_agent: Option<String>,
    pub client: ClientInfo,
    pub geo: GeoInfo,
    pub signals: Vec<Signal>,
}

/// What the user agent is: the request's `client` fields where given, the
/// parser's reading of `user_agent` otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Browser name and version, e.g. "Chrome 80.0.3987".
    pub browser: Option<String>,
    /// Operating system name and version, e.g. "Windows 10".
    pub os: Option<String>,
    pub device_type: DeviceType,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeviceType {
    Desktop,
    Mobile,
    Tablet,
    Bot,
    #[default]
    Unknown,
}

impl DeviceType {
    pub const ALL: [DeviceType; 5] = [
        DeviceType::Desktop,
        DeviceType::Mobile,
        DeviceType::Tablet,
        DeviceType::Bot,
        DeviceType::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Desktop => "desktop",
            DeviceType::Mobile => "mobile",
            DeviceType::Tablet => "tablet",
            DeviceType::Bot => "bot",
            DeviceType::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<DeviceType> {
        DeviceType::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

/// A flag from another system (`signals` in the request); booleans are 1 or 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub name: String,
    pub value: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    Success,
    Failure,
    ChallengePassed,
    ChallengeFailed,
    FraudConfirmed,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::ChallengePassed,
        Outcome::ChallengeFailed,
        Outcome::FraudConfirmed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::ChallengePassed => "challenge_passed",
            Outcome::ChallengeFailed => "challenge_failed",
            Outcome::FraudConfirmed => "fraud_confirmed",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// Only these teach the engine that the attempt's context is the user's.
    pub fn teaches_context(self) -> bool {
        matches!(self, Outcome::Success | Outcome::ChallengePassed)
    }

    /// These feed the velocity factors.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failure | Outcome::ChallengeFailed)
    }
}

/// The gateway's report of how an attempt ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutcomeReport {
    pub attempt_id: String,
    pub user_id: String,
    pub outcome: Outcome,
    pub timestamp_ms: TimestampMs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Allow,
    Challenge,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Challenge => "challenge",
            Decision::Deny => "deny",
        }
    }
}

/// How much the engine knows about the user: an explicit cold-start state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryState {
    None,
    Thin,
    Established,
}

impl HistoryState {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryState::None => "none",
            HistoryState::Thin => "thin",
            HistoryState::Established => "established",
        }
    }
}

/// One factor's part in a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable snake_case code (README lists them). Borrowed from the factor
    /// when scoring (no allocation per reason), owned when read back.
    pub code: std::borrow::Cow<'static, str>,
    /// Contribution to `risk` (a share of risk minus base risk; negative lowers it).
    pub score: f64,
    /// The factor's raw measurement (failure count, km/h, likelihood ratio), if any.
    pub value: Option<f64>,
    pub detail: String,
}

/// The answer to a score request. Recorded with the attempt so that a
/// repeated `event_id` gets the first answer back, even after a restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub decision: Decision,
    pub risk: f64,
    pub reasons: Vec<Reason>,
    pub history: HistoryState,
    pub ruleset: String,
}

/// A record of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// A scored attempt (POST /v1/score) and the answer it got.
    Attempt {
        attempt: LoginAttempt,
        assessment: Assessment,
    },
    /// How a scored attempt ended (POST /v1/outcomes).
    Outcome(OutcomeReport),
    /// A login that already happened, with its outcome (POST /v1/events).
    Login {
        attempt: LoginAttempt,
        outcome: Outcome,
    },
    /// Right to erasure: forget the user (DELETE /v1/users/{id}).
    Erase {
        user_id: String,
        timestamp_ms: TimestampMs,
    },
}

impl Event {
    /// The user whose partition owns the event.
    pub fn user_id(&self) -> &str {
        match self {
            Event::Attempt { attempt, .. } | Event::Login { attempt, .. } => &attempt.user_id,
            Event::Outcome(report) => &report.user_id,
            Event::Erase { user_id, .. } => user_id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Event::Attempt { .. } => "attempt",
            Event::Outcome(_) => "outcome",
            Event::Login { .. } => "login",
            Event::Erase { .. } => "erase",
        }
    }
}

/// Sample values for tests across the crate.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn sample_attempt(user_id: &str) -> LoginAttempt {
        LoginAttempt {
            attempt_id: format!("a-{user_id}"),
            user_id: user_id.to_owned(),
            timestamp_ms: 1_748_822_952_904,
            ip: "192.0.2.10".parse().unwrap(),
            device_id: Some("d-1".to_owned()),
            user_agent: Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/80.0.3987.149".to_owned(),
            ),
            client: ClientInfo {
                browser: Some("Chrome 80.0.3987".to_owned()),
                os: Some("Windows 10".to_owned()),
                device_type: DeviceType::Desktop,
            },
            geo: GeoInfo {
                country: Some("NO".to_owned()),
                city: Some("Oslo".to_owned()),
                latitude: Some(59.91),
                longitude: Some(10.75),
                asn: Some(64500),
                ..GeoInfo::default()
            },
            signals: vec![Signal {
                name: "vendor_risk".to_owned(),
                value: 0.7,
            }],
        }
    }

    pub fn sample_events() -> Vec<Event> {
        let attempt = sample_attempt("u1");
        vec![
            Event::Attempt {
                attempt: attempt.clone(),
                assessment: Assessment {
                    decision: Decision::Challenge,
                    risk: 0.61,
                    reasons: vec![Reason {
                        code: "new_device".into(),
                        score: 0.4,
                        value: Some(1.0),
                        detail: "first login from this device".to_owned(),
                    }],
                    history: HistoryState::Thin,
                    ruleset: "default@1".to_owned(),
                },
            },
            Event::Outcome(OutcomeReport {
                attempt_id: attempt.attempt_id.clone(),
                user_id: "u1".to_owned(),
                outcome: Outcome::Success,
                timestamp_ms: attempt.timestamp_ms + 1_000,
            }),
            Event::Login {
                attempt,
                outcome: Outcome::Failure,
            },
            Event::Erase {
                user_id: "u1".to_owned(),
                timestamp_ms: 1_748_822_999_000,
            },
        ]
    }
}
