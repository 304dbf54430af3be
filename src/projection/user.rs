//! One user's context: what the engine has learnt about where, how and from
//! what this user logs in. Every collection is capped (`ProjectionConfig`).

use std::collections::VecDeque;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::bounded::RecentSet;
use super::freeman::{RestoreBatch, UserHistory};
use super::global::GlobalState;
use super::keys::{AttemptKeys, CountryCode, DeviceKey, IpPrefix, Location};
use super::velocity::Sources;
use crate::config::ProjectionConfig;
use crate::event::{Outcome, TimestampMs};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserContext {
    pub devices: RecentSet<DeviceKey>,
    pub countries: RecentSet<CountryCode>,
    pub asns: RecentSet<u32>,
    pub ip_prefixes: RecentSet<IpPrefix>,
    pub ua_families: RecentSet<u64>,
    pub last_success: Option<LastLogin>,
    /// Recent failures (failure, challenge_failed), oldest first.
    pub failures: VecDeque<Failure>,
    /// Successful logins by UTC hour of day (saturating; halved when full),
    /// the user's usual hours.
    pub hours: [u8; 24],

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

/// A failed login: when, and from where.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub at_ms: TimestampMs,
    pub ip: IpAddr,
    pub asn: Option<u32>,
}

impl Failure {
    fn sources(&self) -> Sources {
        Sources::of(self.ip, self.asn)
    }
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

    /// Folds the outcome of an attempt with these keys, for `account`
    /// (`velocity::account(user_id)`). With `global` None (a replay) only
    /// the user's own state changes: the user's share of the global state
    /// is added once the replay is over (`restore_global`).
    pub fn apply_outcome(
        &mut self,
        account: u64,
        keys: &AttemptKeys,
        outcome: Outcome,
        caps: &ProjectionConfig,
        global: Option<&GlobalState>,
    ) {
        let at = keys.timestamp_ms;
        self.first_seen_ms = self.first_seen_ms.min(at);
        self.last_seen_ms = self.last_seen_ms.max(at);
        match outcome {
            Outcome::Success | Outcome::ChallengePassed => self.learn(keys, caps, global),
            Outcome::Failure | Outcome::ChallengeFailed => {
                self.failures_total += 1;
                let failure = Failure {
                    at_ms: at,
                    ip: keys.ip,
                    asn: keys.asn,
                };
                // Keep event-time order even when events arrive out of order.
                let index = self.failures.partition_point(|f| f.at_ms <= at);
                self.failures.insert(index, failure);
                if let Some(global) = global {
                    global.velocity.add_failure(&failure.sources(), account, at);
                }
                while self.failures.len() > caps.failures_per_user_max {
                    if let (Some(old), Some(global)) = (self.failures.pop_front(), global) {
                        global
                            .velocity
                            .remove_failure(&old.sources(), account, old.at_ms);
                    }
                }
            }

            Outcome::FraudConfirmed => {
                if let Some(device) = &keys.device {
                    self.hostile_devices
                        .observe(device.clone(), at, caps.hostile_per_user_max);
                }
                if !self.hostile_ips.contains(&keys.ip) {
                    let evicted = self
                        .hostile_ips
                        .observe(keys.ip, at, caps.hostile_per_user_max);
                    if let Some(global) = global {
                        global.mark_hostile_ip(keys.ip);
                        if let Some(evicted) = evicted {
                            global.unmark_hostile_ip(&evicted);
                        }
                    }
                } else {
                    self.hostile_ips
                        .observe(keys.ip, at, caps.hostile_per_user_max);
                }
            }
        }
    }

    fn learn(&mut self, keys: &AttemptKeys, caps: &ProjectionConfig, global: Option<&GlobalState>) {
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
        let hour = usize::try_from(at.rem_euclid(DAY_MS) / HOUR_MS).unwrap_or(0);
        if self.hours[hour] == u8::MAX {
            // Halve all counts: keeps the profile's shape, favours recent habits.
            self.hours.iter_mut().for_each(|h| *h /= 2);
        }
        self.hours[hour] += 1;
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
        let observations_max = caps.model_observations_per_user_max;
        match global {
            Some(global) => {
                global
                    .model
                    .record(&mut self.model, &keys.observation, observations_max)
            }
            None => {
                self.model.record(&keys.observation, observations_max);
            }
        }
    }

    /// Failures within `window_ms` up to and including `at_ms`.
    pub fn failures_within(
        &self,
        at_ms: TimestampMs,
        window_ms: i64,
    ) -> impl Iterator<Item = &Failure> {
        let from = at_ms.saturating_sub(window_ms);
        self.failures
            .iter()
            .filter(move |f| f.at_ms > from && f.at_ms <= at_ms)
    }

    /// Adds this user's contribution to global state (after a snapshot
    /// load); the model's share is summed into `model` for the caller to
    /// add in one go.
    pub fn restore_global(&self, account: u64, global: &GlobalState, model: &mut RestoreBatch) {
        model.add(&self.model);
        for failure in &self.failures {
            global
                .velocity
                .add_failure(&failure.sources(), account, failure.at_ms);
        }

        for seen in self.hostile_ips.iter() {
            global.mark_hostile_ip(seen.value);
        }
    }

    /// Removes this user's contribution from global state (erasure).
    pub fn forget_global(&self, account: u64, global: &GlobalState) {
        global.model.forget(&self.model);
        for failure in &self.failures {
            global
                .velocity
                .remove_failure(&failure.sources(), account, failure.at_ms);
        }

        for seen in self.hostile_ips.iter() {
            global.unmark_hostile_ip(&seen.value);
        }
    }
}
