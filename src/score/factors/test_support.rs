//! A small world for factor unit tests: one user, one clock, shared global state.

use std::sync::Arc;

use crate::config::{Config, ProjectionConfig};
use crate::event::{ClientInfo, DeviceType, HistoryState, LoginAttempt, Outcome};
use crate::geoip::GeoInfo;
use crate::projection::{AttemptKeys, GlobalState, UserContext};
use crate::score::{Contribution, Factor, FactorInput};

pub struct Fixture {
    pub global: Arc<GlobalState>,
    pub user: Option<UserContext>,
    pub user_id: String,
    pub caps: ProjectionConfig,
    pub now_ms: i64,
    last_keys: Option<AttemptKeys>,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            global: Arc::new(GlobalState::new()),
            user: None,
            user_id: "u1".to_owned(),
            caps: Config::embedded().unwrap().projection,
            now_ms: 1_748_822_400_000,
            last_keys: None,
        }
    }

    /// A fixture for another user in the same world.
    pub fn for_user(&self, user_id: &str) -> Fixture {
        Fixture {
            global: self.global.clone(),
            user: None,
            user_id: user_id.to_owned(),
            caps: self.caps.clone(),
            now_ms: self.now_ms,
            last_keys: None,
        }
    }

    pub fn attempt(&self, device: &str, ip: &str, country: &str, asn: u32) -> LoginAttempt {
        LoginAttempt {
            attempt_id: format!("a-{}", self.now_ms),
            user_id: self.user_id.clone(),
            timestamp_ms: self.now_ms,
            ip: ip.parse().unwrap(),
            device_id: (!device.is_empty()).then(|| device.to_owned()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0".to_owned()),
            client: ClientInfo {
                browser: Some("Firefox 126.0".to_owned()),
                os: Some("Linux".to_owned()),
                device_type: DeviceType::Desktop,
            },
            geo: GeoInfo {
                country: (!country.is_empty()).then(|| country.to_owned()),
                asn: (asn != 0).then_some(asn),
                ..GeoInfo::default()
            },
            signals: Vec::new(),
        }
    }

    /// A successful login with this context, one second later.
    pub fn learn(&mut self, device: &str, ip: &str, country: &str, asn: u32) {
        let keys = AttemptKeys::of(&self.attempt(device, ip, country, asn));
        self.last_keys = Some(keys);
        self.outcome(Outcome::Success);
    }

    /// Another outcome for the last context (or a default one), one second later.
    pub fn outcome(&mut self, outcome: Outcome) {
        self.now_ms += 1_000;
        let mut keys = match &self.last_keys {
            Some(keys) => keys.clone(),
            None => AttemptKeys::of(&self.attempt("d", "192.0.2.1", "NO", 64500)),
        };
        keys.timestamp_ms = self.now_ms;
        let user = self
            .user
            .get_or_insert_with(|| UserContext::new(self.now_ms));
        let account = crate::projection::velocity::account(&self.user_id);
        user.apply_outcome(account, &keys, outcome, &self.caps, Some(&self.global));
        self.last_keys = Some(keys);
    }

    pub fn advance_ms(&mut self, ms: i64) {
        self.now_ms += ms;
    }

    /// As the embedded ruleset classifies this user's history.
    pub fn history(&self) -> HistoryState {
        crate::score::Scorer::new(crate::config::Ruleset::embedded().unwrap())
            .history_state(self.user.as_ref())
    }

    pub fn evaluate(
        &self,
        factor: &dyn Factor,
        device: &str,
        ip: &str,
        country: &str,
        asn: u32,
    ) -> Option<Contribution> {
        let attempt = self.attempt(device, ip, country, asn);
        let keys = AttemptKeys::of(&attempt);
        let input = FactorInput {
            attempt: &attempt,
            keys: &keys,
            user: self.user.as_ref(),
            history: self.history(),
            global: &self.global,
        };
        factor.evaluate(&input)
    }
}

impl Fixture {
    /// Folds `outcome` for exactly this attempt (its own time and context).
    pub fn apply(&mut self, attempt: &LoginAttempt, outcome: Outcome) {
        let keys = AttemptKeys::of(attempt);
        let account = crate::projection::velocity::account(&attempt.user_id);
        if attempt.user_id == self.user_id {
            let user = self
                .user
                .get_or_insert_with(|| UserContext::new(attempt.timestamp_ms));
            user.apply_outcome(account, &keys, outcome, &self.caps, Some(&self.global));
        } else {
            // Another account's outcome: only its global traces matter here.
            let mut other = UserContext::new(attempt.timestamp_ms);
            other.apply_outcome(account, &keys, outcome, &self.caps, Some(&self.global));
        }
        self.last_keys = Some(keys);
    }

    pub fn evaluate_attempt(
        &self,
        factor: &dyn Factor,
        attempt: &LoginAttempt,
    ) -> Option<Contribution> {
        let keys = AttemptKeys::of(attempt);
        let input = FactorInput {
            attempt,
            keys: &keys,
            user: self.user.as_ref(),
            history: self.history(),
            global: &self.global,
        };
        factor.evaluate(&input)
    }
}
