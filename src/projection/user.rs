//! One user's context: what the engine has learnt about where, how and from
//! what this user logs in. Every collection is capped (`ProjectionConfig`).

use std::collections::VecDeque;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::bounded::RecentSet;
use super::freeman::UserHistory;
use super::global::GlobalState;
use super::keys::{AttemptKeys, CountryCode, DeviceKey, IpPrefix, Location};
use crate::config::ProjectionConfig;
use crate::event::{Outcome, TimestampMs};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserContext {
    pub devices: RecentSet<DeviceKey>,
    pub countries: RecentSet<CountryCode>,
    pub asns: RecentSet<u32>,
    pub ip_prefixes: RecentSet<IpPrefix>,
    pub ua_families: RecentSet<u64>,
    pub last_success: Option<LastLogin>,
    /// Event times of recent failures (failure, challenge_failed), oldest first.
    pub failures: VecDeque<TimestampMs>,
    /// Successful logins ever (success, challenge_passed): the history size.
    pub successes: u64,
    pub failures_total: u64,
    /// The statistical model's view of this user's history.
    pub model: UserHistory,
    pub hostile_devices: RecentSet<DeviceKey>,
    pub hostile_ips: RecentSet<IpAddr>,
    pub first_seen_ms: TimestampMs,
    pub last_seen_ms: TimestampMs,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastLogin {
    pub at_ms: TimestampMs,
    pub ip: IpAddr,
    pub country: Option<CountryCode>,
    pub city: Option<String>,
    pub location: Option<Location>,
}

impl UserContext {
    pub fn new(at_ms: TimestampMs) -> UserContext {
        UserContext {
            first_seen_ms: at_ms,
            last_seen_ms: at_ms,
            ..UserContext::default()
        }
    }

    /// Folds the outcome of an attempt with these keys.
    pub fn apply_outcome(
        &mut self,
        keys: &AttemptKeys,
        outcome: Outcome,
        caps: &ProjectionConfig,
        global: &GlobalState,
    ) {
        let at = keys.timestamp_ms;
        self.first_seen_ms = self.first_seen_ms.min(at);
        self.last_seen_ms = self.last_seen_ms.max(at);
        match outcome {
            Outcome::Success | Outcome::ChallengePassed => self.learn(keys, caps, global),
            Outcome::Failure | Outcome::ChallengeFailed => {
                self.failures_total += 1;
                // Keep event-time order even when events arrive out of order.
                let index = self.failures.partition_point(|&t| t <= at);
                self.failures.insert(index, at);
                while self.failures.len() > caps.failures_per_user_max {
                    self.failures.pop_front();
                }
            }
            Outcome::FraudConfirmed => {
                if let Some(device) = &keys.device {
                    self.hostile_devices
                        .observe(device.clone(), at, caps.hostile_per_user_max);
                }
                if !self.hostile_ips.contains(&keys.ip) {
                    global.mark_hostile_ip(keys.ip);
                    if let Some(evicted) =
                        self.hostile_ips
                            .observe(keys.ip, at, caps.hostile_per_user_max)
                    {
                        global.unmark_hostile_ip(&evicted);
                    }
                } else {
                    self.hostile_ips
                        .observe(keys.ip, at, caps.hostile_per_user_max);
                }
            }
        }
    }

    fn learn(&mut self, keys: &AttemptKeys, caps: &ProjectionConfig, global: &GlobalState) {
        let at = keys.timestamp_ms;
        self.successes += 1;
        if let Some(device) = &keys.device {
            self.devices
                .observe(device.clone(), at, caps.devices_per_user_max);
        }
        if let Some(country) = keys.country {
            self.countries
                .observe(country, at, caps.countries_per_user_max);
        }
        if let Some(asn) = keys.asn {
            self.asns.observe(asn, at, caps.asns_per_user_max);
        }
        self.ip_prefixes
            .observe(keys.prefix, at, caps.ip_prefixes_per_user_max);
        if let Some(family) = keys.ua_family {
            self.ua_families
                .observe(family, at, caps.user_agent_families_per_user_max);
        }
        if self
            .last_success
            .as_ref()
            .is_none_or(|last| last.at_ms <= at)
        {
            self.last_success = Some(LastLogin {
                at_ms: at,
                ip: keys.ip,
                country: keys.country,
                city: keys.city.clone(),
                location: keys.location,
            });
        }
        global.model.record(
            &mut self.model,
            &keys.observation,
            caps.model_observations_per_user_max,
        );
    }

    /// Failures within `window_ms` up to and including `at_ms`.
    pub fn failures_within(&self, at_ms: TimestampMs, window_ms: i64) -> usize {
        let from = at_ms.saturating_sub(window_ms);
        self.failures
            .iter()
            .filter(|&&t| t > from && t <= at_ms)
            .count()
    }

    /// Adds this user's contribution to global state (after a snapshot load).
    pub fn restore_global(&self, global: &GlobalState) {
        global.model.restore(&self.model);
        for seen in self.hostile_ips.iter() {
            global.mark_hostile_ip(seen.value);
        }
    }

    /// Removes this user's contribution from global state (erasure).
    pub fn forget_global(&self, global: &GlobalState) {
        global.model.forget(&self.model);
        for seen in self.hostile_ips.iter() {
            global.unmark_hostile_ip(&seen.value);
        }
    }
}
