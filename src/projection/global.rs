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

use std::net::IpAddr;

use dashmap::DashMap;

use super::freeman::GlobalStats;

#[derive(Default)]
pub struct GlobalState {
    /// The statistical model's statistics over all users' history.
    pub model: GlobalStats,
    /// IP addresses a confirmed fraud came from, with the number of users
    /// whose context marks them (so erasing one user does not clear another's mark).
    hostile_ips: DashMap<IpAddr, u32>,
}

impl GlobalState {
    pub fn new() -> GlobalState {
        GlobalState::default()
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
