//! Failures by source (IP address, /24 or /48 network, ASN) across all
//! users: what credential stuffing and password spraying look like from
//! the defender's side (many accounts failing from one place).
//!
//! Shared by all partitions (it spans users). Each failure is added by the
//! partition of the user it happened to, and removed again when that
//! user's failure ring forgets it (cap, erasure), so the windows are always
//! derivable from the users' rings: a restart rebuilds them with
//! `UserContext::restore_global`. Windows are applied at read time, in event
//! time; memory is bounded per source (`entries_per_source_max`, oldest
//! dropped) and overall (stale sources are swept, new ones beyond
//! `sources_max` are not tracked and counted).

use std::hash::BuildHasherDefault;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

use dashmap::mapref::entry::Entry as MapEntry;
use dashmap::DashMap;

use super::freeman::FingerprintHasher;
use super::keys::IpPrefix;
use crate::event::TimestampMs;
use crate::hash::fingerprint;

const TAG_SOURCE_IP: u8 = 0x50;
const TAG_SOURCE_PREFIX: u8 = 0x51;
const TAG_SOURCE_ASN: u8 = 0x52;
const TAG_ACCOUNT: u8 = 0x53;

/// A sweep of stale sources is due every this many additions.
const SWEEP_EVERY_ADDITIONS: u64 = 1 << 16;

/// The three sources of one attempt, as fingerprints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sources {
    pub ip: u64,
    pub prefix: u64,
    pub asn: Option<u64>,
}

impl Sources {
    pub fn of(ip: IpAddr, asn: Option<u32>) -> Sources {
        let prefix = IpPrefix::of(ip);
        Sources {
            ip: address_fingerprint(TAG_SOURCE_IP, ip.to_canonical()),
            prefix: address_fingerprint(TAG_SOURCE_PREFIX, prefix.network) ^ u64::from(prefix.bits),
            asn: asn.map(|a| fingerprint(TAG_SOURCE_ASN, &a.to_be_bytes())),
        }
    }

    fn each(&self) -> impl Iterator<Item = u64> {
        [Some(self.ip), Some(self.prefix), self.asn]
            .into_iter()
            .flatten()
    }
}

/// An account, as a fingerprint (the windows never hold user ids).
pub fn account(user_id: &str) -> u64 {
    fingerprint(TAG_ACCOUNT, user_id.as_bytes())
}

/// What one source did in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub failures: u32,
    pub accounts: u32,
    /// Most failures of a single account from this source.
    pub failures_per_account_max: u32,
    /// Accounts with at most the caller's `few_failures_max` failures from
    /// this source (the signature of spraying one password over many accounts).
    pub accounts_with_few_failures: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VelocityLimits {
    pub entries_per_source_max: usize,
    pub sources_max: usize,
    pub retention_ms: i64,
}

pub struct Velocity {
    sources: DashMap<u64, Vec<(TimestampMs, u64)>, BuildHasherDefault<FingerprintHasher>>,
    limits: VelocityLimits,
    additions: AtomicU64,
    newest_ms: AtomicI64,
    untracked: AtomicU64,
    /// Set when a sweep is due, until someone takes it ([`Velocity::take_sweep_due`]).
    sweep_due: AtomicBool,
    /// Sources in `sources`, kept beside it: `DashMap::len` locks every
    /// shard (256 of them), which made each new source cost ~256 lock
    /// round trips (9% of a snapshot load's CPU).
    tracked: AtomicUsize,
}

impl Velocity {
    pub fn new(limits: VelocityLimits) -> Velocity {
        Velocity {
            sources: super::freeman::fingerprint_map(),
            limits,
            additions: AtomicU64::new(0),
            newest_ms: AtomicI64::new(i64::MIN),
            untracked: AtomicU64::new(0),
            tracked: AtomicUsize::new(0),
            sweep_due: AtomicBool::new(false),
        }
    }

    pub fn add_failure(&self, sources: &Sources, account: u64, at_ms: TimestampMs) {
        self.newest_ms.fetch_max(at_ms, Ordering::Relaxed);
        for key in sources.each() {
            let mut entries = match self.sources.entry(key) {
                MapEntry::Occupied(entries) => entries.into_ref(),
                MapEntry::Vacant(_)
                    if self.tracked.load(Ordering::Relaxed) >= self.limits.sources_max =>
                {
                    self.untracked.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                MapEntry::Vacant(slot) => {
                    self.tracked.fetch_add(1, Ordering::Relaxed);
                    slot.insert(Vec::new())
                }
            };
            entries.push((at_ms, account));
            if entries.len() > self.limits.entries_per_source_max {
                // Drop the oldest: the windows look at recent failures.
                if let Some(oldest) = entries
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, e)| **e)
                    .map(|(i, _)| i)
                {
                    entries.swap_remove(oldest);
                }
            }
        }
        // Not swept here: a sweep visits every source (~a million at a
        // million users, ~100 ms), and this runs on a request's path under
        // its partition's lock. The owner of the thread decides where.
        if self.additions.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY_ADDITIONS
            == SWEEP_EVERY_ADDITIONS - 1
        {
            self.sweep_due.store(true, Ordering::Release);
        }
    }

    pub fn remove_failure(&self, sources: &Sources, account: u64, at_ms: TimestampMs) {
        for key in sources.each() {
            let emptied = match self.sources.get_mut(&key) {
                Some(mut entries) => {
                    if let Some(i) = entries.iter().position(|e| *e == (at_ms, account)) {
                        entries.swap_remove(i);
                    }
                    entries.is_empty()
                }
                None => false,
            };
            if emptied
                && self
                    .sources
                    .remove_if(&key, |_, entries| entries.is_empty())
                    .is_some()
            {
                self.tracked.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Failures from `source` in `(to_ms - window_ms, to_ms]`; accounts with at
    /// most `few_failures_max` of them are counted apart.
    pub fn stats(
        &self,
        source: u64,
        to_ms: TimestampMs,
        window_ms: i64,
        few_failures_max: u32,
    ) -> SourceStats {
        let Some(entries) = self.sources.get(&source) else {
            return SourceStats::default();
        };
        let from = to_ms.saturating_sub(window_ms);
        let mut recent: Vec<u64> = entries
            .iter()
            .filter(|(t, _)| *t > from && *t <= to_ms)
            .map(|(_, a)| *a)
            .collect();
        drop(entries);
        recent.sort_unstable();
        let mut stats = SourceStats {
            failures: recent.len() as u32,
            ..SourceStats::default()
        };
        for run in recent.chunk_by(|a, b| a == b) {
            stats.accounts += 1;
            stats.accounts_with_few_failures += u32::from(run.len() <= few_failures_max as usize);
            stats.failures_per_account_max = stats.failures_per_account_max.max(run.len() as u32);
        }
        stats
    }

    /// Whether a sweep is due (enough failures were added since the last
    /// one); true once per due sweep, for the caller to run [`Self::sweep`]
    /// or have it run (the server: on its low-priority background thread).
    pub fn take_sweep_due(&self) -> bool {
        self.sweep_due.swap(false, Ordering::AcqRel)
    }

    /// Whether a sweep is due, without taking it.
    pub fn sweep_due(&self) -> bool {
        self.sweep_due.load(Ordering::Acquire)
    }

    /// Drops entries older than the retention, relative to the newest event
    /// seen, but never relative to a time beyond the wall clock: one
    /// future-dated event must not age out everyone's recent failures.
    pub fn sweep(&self) {
        let newest = self
            .newest_ms
            .load(Ordering::Relaxed)
            .min(crate::clock::now_ms());
        let horizon = newest.saturating_sub(self.limits.retention_ms);
        let mut dropped = 0;
        self.sources.retain(|_, entries| {
            entries.retain(|(t, _)| *t > horizon);
            dropped += usize::from(entries.is_empty());
            !entries.is_empty()
        });
        self.tracked.fetch_sub(dropped, Ordering::Relaxed);
    }

    pub fn limits(&self) -> VelocityLimits {
        self.limits
    }

    pub fn sources_len(&self) -> usize {
        self.sources.len()
    }

    /// Failures not tracked because `sources_max` was reached.
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }
}

/// An address's bytes, fingerprinted without formatting (hot path).
fn address_fingerprint(tag: u8, ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => fingerprint(tag, &v4.octets()),
        IpAddr::V6(v6) => fingerprint(tag, &v6.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn velocity() -> Velocity {
        Velocity::new(VelocityLimits {
            entries_per_source_max: 8,
            sources_max: 100,
            retention_ms: 3_600_000,
        })
    }

    #[test]
    fn counts_failures_and_distinct_accounts_in_the_window() {
        let v = velocity();
        let s = Sources::of("192.0.2.7".parse().unwrap(), Some(64500));
        for (user, t) in [("a", 1_000), ("b", 2_000), ("b", 3_000), ("c", 500_000)] {
            v.add_failure(&s, account(user), t);
        }
        let stats = v.stats(s.ip, 10_000, 60_000, 2);
        assert_eq!(
            stats,
            SourceStats {
                failures: 3,
                accounts: 2,
                failures_per_account_max: 2,
                accounts_with_few_failures: 2
            }
        );
        // The network and the ASN see the same failures.
        assert_eq!(v.stats(s.prefix, 10_000, 60_000, 2), stats);
        assert_eq!(v.stats(s.asn.unwrap(), 600_000, 1_000_000, 2).accounts, 3);
        // Another address in the same /24 shares the prefix, not the address.
        let neighbour = Sources::of("192.0.2.99".parse().unwrap(), Some(64500));
        assert_eq!(neighbour.prefix, s.prefix);
        assert_eq!(v.stats(neighbour.ip, 10_000, 60_000, 2).failures, 0);
    }

    #[test]
    fn removal_undoes_an_addition() {
        let v = velocity();
        let s = Sources::of("198.51.100.1".parse().unwrap(), None);
        v.add_failure(&s, account("a"), 1_000);
        v.remove_failure(&s, account("a"), 1_000);
        assert_eq!(v.stats(s.ip, 2_000, 60_000, 2), SourceStats::default());
        assert_eq!(v.sources_len(), 0);
    }

    #[test]
    fn memory_is_bounded_per_source_and_overall() {
        let v = velocity();
        let s = Sources::of("198.51.100.1".parse().unwrap(), None);
        for i in 0..100 {
            v.add_failure(&s, account(&format!("u{i}")), i);
        }
        assert_eq!(
            v.stats(s.ip, 100, 1_000, 2).failures,
            8,
            "only the newest 8 are kept"
        );
        for i in 0..200u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 + (i << 8)));
            v.add_failure(&Sources::of(ip, None), account("x"), 1);
        }
        assert!(v.sources_len() <= 100);
        assert!(v.untracked() > 0);
    }

    #[test]
    fn sources_freed_by_a_removal_or_a_sweep_are_tracked_again() {
        // `sources_max` is 100, checked against a count kept beside the map:
        // a removal or a sweep that did not lower it would leave the
        // windows refusing every new source for good.
        let v = velocity();
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 + (i << 8)));
        // 50 addresses in 50 /24s: 100 sources, the limit.
        for i in 0..50 {
            v.add_failure(&Sources::of(ip(i), None), account("x"), 1);
        }
        assert_eq!(v.sources_len(), 100);
        let late = Sources::of("192.0.2.1".parse().unwrap(), None);
        v.add_failure(&late, account("y"), 1);
        assert_eq!(v.stats(late.ip, 1, 10, 2).failures, 0, "full: not tracked");
        // A removal frees the two sources of one address.
        v.remove_failure(&Sources::of(ip(0), None), account("x"), 1);
        v.add_failure(&late, account("y"), 2);
        assert_eq!(v.stats(late.ip, 2, 10, 2).failures, 1);
        // A sweep past the others' retention frees theirs.
        v.add_failure(&late, account("y"), 4_000_000);
        v.sweep();
        assert_eq!(v.sources_len(), 2);
        let untracked = v.untracked();
        for i in 100..149 {
            v.add_failure(&Sources::of(ip(i), None), account("z"), 4_000_000);
        }
        assert_eq!(v.sources_len(), 100);
        assert_eq!(v.untracked(), untracked, "every new source was tracked");
    }

    #[test]
    fn a_sweep_falls_due_after_enough_additions_and_is_taken_once() {
        let v = velocity();
        let s = Sources::of("198.51.100.1".parse().unwrap(), None);
        assert!(!v.take_sweep_due());
        for i in 0..SWEEP_EVERY_ADDITIONS - 1 {
            v.add_failure(&s, account("a"), i as i64);
        }
        assert!(!v.sweep_due());
        v.add_failure(&s, account("a"), 0);
        assert!(v.sweep_due());
        assert!(v.take_sweep_due());
        assert!(!v.take_sweep_due());
    }

    #[test]
    fn sweeping_drops_what_is_past_retention() {
        let v = velocity();
        let s = Sources::of("198.51.100.1".parse().unwrap(), None);
        v.add_failure(&s, account("a"), 0);
        v.add_failure(
            &Sources::of("192.0.2.1".parse().unwrap(), None),
            account("b"),
            4_000_000,
        );
        v.sweep();
        assert_eq!(v.stats(s.ip, 1, 10, 2).failures, 0);
    }
}
