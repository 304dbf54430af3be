//! What the generator sends: logins from the scenario generator
//! ([`crate::simulate`]), turned into `POST /v1/score` bodies before the run
//! so that generating them costs nothing while it is measured.
//!
//! Each login is kept as the JSON of its fields minus `event_id` and
//! `timestamp`; a score body is those two, written per request, followed
//! by the stored rest. The event id is `<run id>-<request number>`, unique
//! per run, so repeated runs against one server are never answered from
//! its idempotency memory.
//!
//! Event time: the pool is moved so that its last login is "now" (the
//! server refuses event times more than a year ahead of its clock). When
//! the pool wraps around, timestamps move on by the pool's span plus a day,
//! so each user's event time keeps going forward as in production, up to
//! [`EVENT_TIME_AHEAD_BUDGET_MS`] ahead of now; then they start over.

use std::io::Write as _;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::dataset::LabelledLogin;
use crate::event::{Outcome, TimestampMs};
use crate::http::request::format_timestamp;
use crate::simulate::{SimulationConfig, Simulator, DAY_MS};

/// Longest run id: event ids are at most 128 bytes (api.md), and a request
/// number takes up to 20 digits.
pub const RUN_ID_BYTES_MAX: usize = 64;
/// Days the scenario generator may simulate to fill the pool.
const SIMULATED_DAYS_MAX: u32 = 3_650;
/// How long after its attempt a login's outcome is reported, in event
/// time (the user typing a password, a second factor).
const OUTCOME_DELAY_MS: i64 = 4_000;
/// How far ahead of the clock wrapped-around event times may go: well
/// within the server's limit (`http::request::EVENT_TIME_AHEAD_MAX_MS`).
pub const EVENT_TIME_AHEAD_BUDGET_MS: i64 = 300 * DAY_MS;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkloadError {
    #[error("the scenario generator produced no logins for {users} users")]
    Empty { users: u32 },
    #[error("run id `{0}` must be 1..={RUN_ID_BYTES_MAX} letters, digits, '-' or '_'")]
    RunId(String),
}

/// One pre-rendered login.
struct PooledLogin {
    /// `,"user_id":...}`: the score body after `event_id` and `timestamp`.
    rest: Box<[u8]>,
    /// The user id as a JSON string (quoted, escaped), for the outcome.
    user_id_json: Box<str>,
    outcome: Outcome,
    timestamp_ms: TimestampMs,
}

/// A login whose outcome is to be reported, once its score reply named the attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingOutcome {
    /// Index of the login in the pool.
    pub login: usize,
    pub attempt_id: String,
    /// The attempt's event time as sent.
    pub timestamp_ms: TimestampMs,
}

/// A score body and what an outcome for it needs.
pub struct ScoreRequest {
    pub body: Bytes,
    pub login: usize,
    pub timestamp_ms: TimestampMs,
}

pub struct Workload {
    logins: Vec<PooledLogin>,
    /// Added to every simulated event time: the pool ends at "now".
    shift_ms: i64,
    /// How far event time moves on each time the pool wraps around.
    cycle_ms: i64,
    /// Wraps before event time starts over.
    cycles_max: u64,
}

impl Workload {
    /// Simulates `users` users (seeded) until `logins` logins are pooled,
    /// the last of them at `now_ms`.
    pub fn generate(
        users: u32,
        seed: u64,
        logins: usize,
        now_ms: TimestampMs,
    ) -> Result<Workload, WorkloadError> {
        let config = SimulationConfig::new(users, SIMULATED_DAYS_MAX, seed);
        Workload::from_logins(Simulator::new(config).take(logins), now_ms)
            .map_err(|_| WorkloadError::Empty { users })
    }

    /// Logins in event-time order, the last of them moved to `now_ms`.
    pub fn from_logins(
        logins: impl IntoIterator<Item = LabelledLogin>,
        now_ms: TimestampMs,
    ) -> Result<Workload, WorkloadError> {
        let logins: Vec<PooledLogin> = logins.into_iter().map(|l| pool(&l)).collect();
        let (Some(first), Some(last)) = (logins.first(), logins.last()) else {
            return Err(WorkloadError::Empty { users: 0 });
        };
        let span_ms = (last.timestamp_ms - first.timestamp_ms).max(0);
        let cycle_ms = span_ms + DAY_MS;
        Ok(Workload {
            shift_ms: now_ms - last.timestamp_ms,
            cycle_ms,
            cycles_max: (EVENT_TIME_AHEAD_BUDGET_MS / cycle_ms).max(1) as u64,
            logins,
        })
    }

    pub fn len(&self) -> usize {
        self.logins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.logins.is_empty()
    }

    /// The body of the `index`th score request of run `run_id`.
    pub fn score(&self, run_id: &str, index: u64) -> ScoreRequest {
        let len = self.logins.len() as u64;
        let login_index = (index % len) as usize;
        let login = &self.logins[login_index];
        // Below `cycles_max`, which fits an i64.
        let cycle = ((index / len) % self.cycles_max) as i64;
        let timestamp_ms = login.timestamp_ms + self.shift_ms + cycle * self.cycle_ms;
        let timestamp = format_timestamp(timestamp_ms);
        let mut body = Vec::with_capacity(48 + run_id.len() + timestamp.len() + login.rest.len());
        body.extend_from_slice(b"{\"event_id\":\"");
        body.extend_from_slice(run_id.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = write!(body, "-{index}\",\"timestamp\":\"{timestamp}\"");
        body.extend_from_slice(&login.rest);
        ScoreRequest {
            body: body.into(),
            login: login_index,
            timestamp_ms,
        }
    }

    /// The `POST /v1/outcomes` body reporting how `pending`'s login ended.
    pub fn outcome(&self, pending: &PendingOutcome) -> Bytes {
        let login = &self.logins[pending.login % self.logins.len()];
        let attempt_id = Value::from(pending.attempt_id.as_str());
        let timestamp = format_timestamp(pending.timestamp_ms.saturating_add(OUTCOME_DELAY_MS));
        format!(
            "{{\"attempt_id\":{attempt_id},\"user_id\":{},\"outcome\":\"{}\",\"timestamp\":\"{timestamp}\"}}",
            login.user_id_json,
            login.outcome.as_str()
        )
        .into()
    }
}

/// Checks a run id: it is written into JSON strings unescaped.
pub fn check_run_id(run_id: &str) -> Result<(), WorkloadError> {
    let ok = (1..=RUN_ID_BYTES_MAX).contains(&run_id.len())
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(WorkloadError::RunId(run_id.to_owned()))
    }
}

/// The login's request fields as the ndjson writer writes them
/// (`dataset::ndjson`), without `event_id` and `timestamp`.
fn pool(login: &LabelledLogin) -> PooledLogin {
    let a = &login.attempt;
    let mut fields = Map::new();
    fields.insert("user_id".into(), json!(a.user_id));
    fields.insert("ip".into(), json!(a.ip.to_string()));
    if let Some(device_id) = &a.device_id {
        fields.insert("device_id".into(), json!(device_id));
    }
    if let Some(user_agent) = &a.user_agent {
        fields.insert("user_agent".into(), json!(user_agent));
    }
    let mut client = Map::new();
    put(
        &mut client,
        "browser",
        a.client.browser.as_deref().map(Value::from),
    );
    put(&mut client, "os", a.client.os.as_deref().map(Value::from));
    client.insert("device_type".into(), json!(a.client.device_type.as_str()));
    fields.insert("client".into(), Value::Object(client));
    let g = &a.geo;
    let mut geo = Map::new();
    put(&mut geo, "country", g.country.as_deref().map(Value::from));
    put(&mut geo, "region", g.region.as_deref().map(Value::from));
    put(&mut geo, "city", g.city.as_deref().map(Value::from));
    put(&mut geo, "latitude", g.latitude.map(Value::from));
    put(&mut geo, "longitude", g.longitude.map(Value::from));
    put(&mut geo, "asn", g.asn.map(Value::from));
    fields.insert("geo".into(), Value::Object(geo));
    if !a.signals.is_empty() {
        let signals: Map<String, Value> = a
            .signals
            .iter()
            .map(|s| (s.name.clone(), json!(s.value)))
            .collect();
        fields.insert("signals".into(), Value::Object(signals));
    }
    // `{"user_id":...}` becomes `,"user_id":...}`: it follows the fields
    // written per request.
    let mut rest = Value::Object(fields).to_string().into_bytes();
    rest[0] = b',';
    PooledLogin {
        rest: rest.into(),
        user_id_json: Value::from(a.user_id.as_str()).to_string().into(),
        outcome: login.outcome,
        timestamp_ms: a.timestamp_ms,
    }
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.into(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::Enricher;
    use crate::geoip::GeoIp;
    use crate::http::request::AttemptDto;

    /// 2026-01-01T00:00:00Z
    const NOW_MS: TimestampMs = 1_767_225_600_000;

    fn workload() -> Workload {
        Workload::generate(50, 7, 200, NOW_MS).unwrap()
    }

    fn logins() -> Vec<LabelledLogin> {
        Simulator::new(SimulationConfig::new(50, SIMULATED_DAYS_MAX, 7))
            .take(200)
            .collect()
    }

    #[test]
    fn score_bodies_parse_as_the_server_parses_them() {
        let workload = workload();
        assert_eq!(workload.len(), 200);
        let enricher = Enricher::new(GeoIp::builtin().unwrap());
        let logins = logins();
        let shift_ms = NOW_MS - logins[199].attempt.timestamp_ms;
        for (index, login) in logins.iter().enumerate() {
            let request = workload.score("run1", index as u64);
            let dto: AttemptDto = crate::http::body::json(&request.body).unwrap();
            let mut attempt = dto.into_attempt(&enricher, 32, NOW_MS).unwrap();
            // The request carries no AS organisation: the server's GeoIP
            // fills it in where it knows the network.
            attempt.geo.as_org = login.attempt.geo.as_org.clone();
            assert_eq!(attempt.attempt_id, format!("run1-{index}"));
            let mut expected = login.attempt.clone();
            expected.attempt_id = attempt.attempt_id.clone();
            expected.timestamp_ms += shift_ms;
            assert_eq!(attempt, expected);
            assert_eq!(request.login, index);
            assert_eq!(request.timestamp_ms, expected.timestamp_ms);
        }
        assert_eq!(workload.score("run1", 199).timestamp_ms, NOW_MS);
    }

    #[test]
    fn a_wrapped_pool_moves_event_time_on_and_keeps_ids_unique() {
        let workload = workload();
        let first = workload.score("r", 0);
        let again = workload.score("r", 200);
        assert_eq!(again.login, first.login);
        assert!(again.timestamp_ms > workload.score("r", 199).timestamp_ms);
        let id = |body: &Bytes| {
            let value: Value = serde_json::from_slice(body).unwrap();
            value["event_id"].as_str().unwrap().to_owned()
        };
        assert_ne!(id(&first.body), id(&again.body));
        // Event time stays within the budget ahead of now, then starts over.
        let cycles = workload.cycles_max;
        assert!(cycles > 1);
        let furthest = workload.score("r", 200 * cycles - 1).timestamp_ms;
        assert!(furthest <= NOW_MS + EVENT_TIME_AHEAD_BUDGET_MS);
        let over = workload.score("r", 200 * cycles);
        assert_eq!(over.timestamp_ms, first.timestamp_ms);
    }

    #[test]
    fn outcome_bodies_name_the_attempt_and_the_logins_outcome() {
        let workload = workload();
        let logins = logins();
        let body = workload.outcome(&PendingOutcome {
            login: 3,
            attempt_id: "r-3\"x".into(),
            timestamp_ms: 1_748_822_400_000,
        });
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["attempt_id"], "r-3\"x");
        assert_eq!(value["user_id"], logins[3].attempt.user_id.as_str());
        assert_eq!(value["outcome"], logins[3].outcome.as_str());
        assert_eq!(value["timestamp"], "2025-06-02T00:00:04Z");
    }

    #[test]
    fn run_ids_are_checked() {
        assert!(check_run_id("a1-B_2").is_ok());
        for bad in ["", "a\"b", "a b", &"x".repeat(RUN_ID_BYTES_MAX + 1)] {
            assert!(check_run_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_pool_is_an_error() {
        assert!(Workload::from_logins(Vec::new(), NOW_MS).is_err());
    }
}
