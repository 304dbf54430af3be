//! State that spans users, and so spans partitions.
//!
//! Owner: the process, shared by every partition through an `Arc`. Writers:
//! each partition actor, while folding its own users' events, adds or
//! removes exactly the contribution of those users (commutative deltas
//! behind sharded locks and atomics). Readers: scoring, on any partition,
//! without taking a partition's turn. Because every update is a delta that
//! one user's partition can undo (erasure, eviction), the state is always
//! the sum of what the partitions' projections hold, whatever the
//! interleaving; after a restart each partition re-adds its users
//! (`Projection::restore_global`) and replays its tail.

use std::hash::BuildHasherDefault;
use std::net::IpAddr;

use dashmap::DashMap;

use super::freeman::{FingerprintHasher, GlobalStats};
use super::velocity::{Velocity, VelocityLimits};
use crate::config::ProjectionConfig;

pub struct GlobalState {
    /// The statistical model's statistics over all users' history.
    pub model: GlobalStats,
    /// Failures by source across users (credential stuffing, password spray).
    pub velocity: Velocity,

    /// IP addresses a confirmed fraud came from, with the number of users
    /// whose context marks them (so erasing one user does not clear another's mark).
    hostile_ips: DashMap<IpAddr, u32>,
    /// Which account each remembered attempt id (event_id) belongs to, over
    /// all partitions: an event_id reused for another user is refused even
    /// when the two users live in different partitions.
    attempt_owners: DashMap<u64, u64, BuildHasherDefault<FingerprintHasher>>,
}

/// An attempt id (event_id) as a fingerprint.
pub fn attempt_key(attempt_id: &str) -> u64 {
    crate::hash::fingerprint(TAG_ATTEMPT_ID, attempt_id.as_bytes())
}

const TAG_ATTEMPT_ID: u8 = 0x60;

impl Default for GlobalState {
    fn default() -> Self {
        GlobalState::new()
    }
}

impl GlobalState {
    /// With the default limits of `config/riskd.toml`.
    pub fn new() -> GlobalState {
        GlobalState::with_limits(VelocityLimits {
            entries_per_source_max: 256,
            sources_max: 1_000_000,
            retention_ms: 86_400_000,
        })
    }

    pub fn for_config(config: &ProjectionConfig) -> GlobalState {
        GlobalState::with_limits(VelocityLimits {
            entries_per_source_max: config.source_failures_per_source_max,
            sources_max: config.sources_max,
            retention_ms: i64::try_from(config.source_failures_retention_s.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        })
    }

    pub fn with_limits(limits: VelocityLimits) -> GlobalState {
        GlobalState {
            model: GlobalStats::new(),
            velocity: Velocity::new(limits),
            hostile_ips: DashMap::new(),
            attempt_owners: super::freeman::fingerprint_map(),
        }
    }

    /// The account an attempt id belongs to, if any partition remembers it.
    pub fn attempt_owner(&self, attempt_id: &str) -> Option<u64> {
        self.attempt_owners
            .get(&attempt_key(attempt_id))
            .map(|owner| *owner)
    }

    /// Event_ids owned (tests compare a replayed state with the live one).
    #[cfg(test)]
    pub fn attempt_owner_count(&self) -> usize {
        self.attempt_owners.len()
    }

    pub fn claim_attempt(&self, attempt_id: &str, account: u64) {
        self.attempt_owners.insert(attempt_key(attempt_id), account);
    }

    pub fn release_attempt(&self, attempt_id: &str, account: u64) {
        self.attempt_owners
            .remove_if(&attempt_key(attempt_id), |_, owner| *owner == account);
    }

    pub fn is_hostile_ip(&self, ip: &IpAddr) -> bool {
        self.hostile_ips.contains_key(ip)
    }

    pub fn mark_hostile_ip(&self, ip: IpAddr) {
        *self.hostile_ips.entry(ip).or_insert(0) += 1;
    }

    pub fn unmark_hostile_ip(&self, ip: &IpAddr) {
        self.hostile_ips.remove_if_mut(ip, |_, count| {
            *count = count.saturating_sub(1);
            *count == 0
        });
    }

    pub fn hostile_ip_count(&self) -> usize {
        self.hostile_ips.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_unconfigured_defaults_are_the_configuration_files_defaults() {
        let configured = GlobalState::for_config(&Config::embedded().unwrap().projection);
        assert_eq!(
            GlobalState::new().velocity.limits(),
            configured.velocity.limits()
        );
    }
}
