//! The statistical login model of Freeman et al. (NDSS 2016), maintained
//! incrementally: see `docs/rba-model.md` for the formulas.
//!
//! State is split by owner. A [`UserHistory`] (the model's `H_u`) lives in its
//! user's context and is only touched by the partition that owns the user.
//! [`GlobalStats`] (`H`, over all users) is shared by every partition: it is
//! updated through `&self` with commutative deltas only, so its value depends
//! on the multiset of retained history entries and never on how partitions
//! interleaved. That is what lets [`GlobalStats::restore`] rebuild it after a
//! restart from the users' histories alone.
//!
//! Values are 64-bit fingerprints, never strings: equal fingerprints stand for
//! equal values (`hash::fingerprint` collides with odds of about 2^-64 per
//! pair of values, far below the model's own noise).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::mapref::entry::Entry as MapEntry;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use crate::hash::fingerprint;

/// Interpolation weights `w_j` of the ip levels [ip, asn, country].
pub const IP_WEIGHTS: [f64; IP_LEVELS] = [0.6, 0.3, 0.1];
/// Interpolation weights `w_j` of the ua levels [raw UA, browser+version, OS+version, device type].
pub const UA_WEIGHTS: [f64; UA_LEVELS] = [
    0.538_665_384_055_135_9,
    0.268_045_149_862_566_6,
    0.188_182_951_001_095_36,
    0.005_106_515_081_202_152_5,
];
/// A feature the user has never seen at any level (`P_L = 0`) contributes this
/// factor: the reference notebook's rule. Dividing instead (the Keystone
/// plugin) would make a wholly new context look safer than a known one.
pub const NEW_CONTEXT_FACTOR: f64 = 4.0;

const IP_LEVELS: usize = 3;
const UA_LEVELS: usize = 4;
/// Coarse levels (all but level 0) of the deepest feature.
const COARSE_LEVELS_MAX: usize = UA_LEVELS - 1;

/// Fingerprint tags, one per (feature, level), so that equal strings at
/// different levels never compare equal. Persisted in snapshots: never renumber.
mod tag {
    pub const IP: u8 = 1;
    pub const ASN: u8 = 2;
    pub const COUNTRY: u8 = 3;
    pub const USER_AGENT: u8 = 4;
    pub const BROWSER: u8 = 5;
    pub const OS: u8 = 6;
    pub const DEVICE_TYPE: u8 = 7;
}

/// The model's feature values for one login, as fingerprints. ip levels: [ip, asn, country]; ua levels: [raw UA, browser+version, OS+version, device type].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Observation {
    pub ip: [u64; IP_LEVELS],
    pub ua: [u64; UA_LEVELS],
}

impl Observation {
    /// `asn: None` and empty strings are the empty value. ASN compares as its decimal string.
    pub fn new(
        ip: &str,
        asn: Option<u32>,
        country: &str,
        user_agent: &str,
        browser: &str,
        os: &str,
        device_type: &str,
    ) -> Observation {
        let mut digits = [0; 10];
        let asn = asn.map_or(&[][..], |asn| decimal(asn, &mut digits));
        let of = |tag, value: &str| fingerprint(tag, value.as_bytes());
        Observation {
            ip: [
                of(tag::IP, ip),
                fingerprint(tag::ASN, asn),
                of(tag::COUNTRY, country),
            ],
            ua: [
                of(tag::USER_AGENT, user_agent),
                of(tag::BROWSER, browser),
                of(tag::OS, os),
                of(tag::DEVICE_TYPE, device_type),
            ],
        }
    }
}

/// `n` in decimal without allocating: observations are built per request.
fn decimal(mut n: u32, digits: &mut [u8; 10]) -> &[u8] {
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[start..];
        }
    }
}

/// One distinct observation in a user's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    observation: Observation,
    /// History entries with this observation (at least 1).
    count: u64,
    /// The user's `clock` when it was last recorded: eviction order.
    last_seen: u64,
}

// Millions of users keep up to `max_entries` of these each: grow it knowingly.
const _: () = assert!(std::mem::size_of::<Entry>() == 72);

/// One user's successful-login history (what the model calls H_u), bounded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserHistory {
    entries: Vec<Entry>,
    /// Counts this user's records. Recency must not come from wall clock:
    /// snapshot-then-replay and full replay must evict the same entries.
    clock: u64,
}

impl UserHistory {
    /// n_u = number of history entries (sum of counts).
    pub fn len(&self) -> u64 {
        self.entries.iter().map(|entry| entry.count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of distinct observations kept.
    pub fn distinct(&self) -> usize {
        self.entries.len()
    }

    /// The distinct observations kept, with their number of history entries.
    pub fn iter(&self) -> impl Iterator<Item = (&Observation, u64)> + '_ {
        self.entries
            .iter()
            .map(|entry| (&entry.observation, entry.count))
    }

    /// The user's side of [`GlobalStats::record`] alone: for a replay,
    /// which adds every user's history to the global statistics once it
    /// is over (`GlobalStats::restore_batch`). Returns whether this is the
    /// user's first entry and the entries evicted to make room.
    pub fn record(&mut self, observation: &Observation, max_entries: usize) -> (bool, Vec<Entry>) {
        self.clock += 1;
        let now = self.clock;
        if let Some(entry) = self
            .entries
            .iter_mut()
            .find(|entry| entry.observation == *observation)
        {
            entry.count += 1;
            entry.last_seen = now;
            return (false, Vec::new());
        }
        let first = self.entries.is_empty();
        let mut evicted = Vec::new();
        while self.entries.len() >= max_entries.max(1) {
            evicted.extend(self.evict_oldest());
        }
        self.entries.push(Entry {
            observation: *observation,
            count: 1,
            last_seen: now,
        });
        (first, evicted)
    }

    /// Removes the least recently seen entry. `last_seen` values are unique
    /// (one clock tick per record), so the first minimum is the only one.
    fn evict_oldest(&mut self) -> Option<Entry> {
        let (oldest, _) = self
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(_, entry)| entry.last_seen)?;
        Some(self.entries.swap_remove(oldest))
    }
}

/// A commutative change to the global state: adding or removing `n` entries.
#[derive(Clone, Copy, Debug)]
enum Delta {
    Add(u64),
    Remove(u64),
}

impl Delta {
    fn apply(self, count: u64) -> u64 {
        match self {
            Delta::Add(n) => count.saturating_add(n),
            Delta::Remove(n) => {
                debug_assert!(count >= n, "removing history that was never added");
                count.saturating_sub(n)
            }
        }
    }
}

/// Hasher for fingerprint keys. FNV-1a's low bits mix poorly and dashmap
/// (shard) and hashbrown (bucket, tag) each use different bits, so the key
/// is not used as is: folded in Fx style, then finished with murmur3's fmix64.
#[derive(Clone, Copy, Debug, Default)]
pub struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

type Counts<K> = DashMap<K, u64, BuildHasherDefault<FingerprintHasher>>;

/// Shards of the global maps that hold an entry per value seen across all
/// users (millions at a million users). A growing hash table copies its
/// whole shard under that shard's write lock: with dashmap's default
/// (4 × cores, 8 here) one doubling of a million-user map stalls every
/// partition that touches the shard for milliseconds. More shards keep
/// each doubling small; a shard costs a lock and an empty table.
pub const GLOBAL_MAP_SHARDS: usize = 256;

/// A global map keyed by fingerprints, with [`GLOBAL_MAP_SHARDS`] shards.
pub fn fingerprint_map<K: Eq + Hash, V>() -> DashMap<K, V, BuildHasherDefault<FingerprintHasher>> {
    DashMap::with_hasher_and_shard_amount(BuildHasherDefault::default(), GLOBAL_MAP_SHARDS)
}

/// Applies `delta` to `key`'s count, dropping the key at zero so that keys
/// present are exactly the values seen; true when the key appeared or vanished.
fn adjust<K: Eq + Hash>(counts: &Counts<K>, key: K, delta: Delta) -> bool {
    match counts.entry(key) {
        MapEntry::Occupied(mut slot) => {
            let count = slot.get_mut();
            *count = delta.apply(*count);
            if *count == 0 {
                slot.remove();
                return true;
            }
            false
        }
        MapEntry::Vacant(slot) => {
            let count = delta.apply(0);
            if count > 0 {
                slot.insert(count);
            }
            count > 0
        }
    }
}

/// What the global state knows about one level-0 value x_0: the entries of its
/// sub-history S (n_v) and, per coarse level, the distinct values seen with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Root {
    count: u64,
    with: [u32; COARSE_LEVELS_MAX],
}

impl Root {
    fn apply(&mut self, delta: Delta, pairs_changed: &[bool; COARSE_LEVELS_MAX]) {
        self.count = delta.apply(self.count);
        for (with, &changed) in self.with.iter_mut().zip(pairs_changed) {
            if changed {
                *with = match delta {
                    Delta::Add(_) => with.saturating_add(1),
                    Delta::Remove(_) => with.saturating_sub(1),
                };
            }
        }
    }

    /// Only then may the entry go: a concurrent partition may have changed a
    /// pair count before this root's count, leaving `with` briefly ahead.
    fn is_empty(&self) -> bool {
        self.count == 0 && self.with.iter().all(|&with| with == 0)
    }
}

/// Global statistics of one feature: counts per value at every level, the
/// distinct values per coarse level (D_H), and per level-0 value its pair
/// counts with each coarse value, so D_S stays exact when history is removed.
struct FeatureStats {
    /// Level-0 value -> n_v (= c_H(x_0)) and D_S per coarse level.
    roots: DashMap<u64, Root, BuildHasherDefault<FingerprintHasher>>,
    /// Coarse value (any level: fingerprints are tagged per level) -> c_H.
    coarse: Counts<u64>,
    /// (level-0 value, coarse value) -> entries with both.
    pairs: Counts<(u64, u64)>,
    /// D_H(j) for each coarse level j = index + 1.
    distinct: [AtomicU64; COARSE_LEVELS_MAX],
}

impl Default for FeatureStats {
    fn default() -> FeatureStats {
        FeatureStats {
            roots: fingerprint_map(),
            coarse: fingerprint_map(),
            pairs: fingerprint_map(),
            distinct: Default::default(),
        }
    }
}

impl FeatureStats {
    fn apply(&self, values: &[u64], delta: Delta) {
        let Some((&root, coarse)) = values.split_first() else {
            return;
        };
        let mut pairs_changed = [false; COARSE_LEVELS_MAX];
        for ((&value, distinct), pair_changed) in
            coarse.iter().zip(&self.distinct).zip(&mut pairs_changed)
        {
            if adjust(&self.coarse, value, delta) {
                match delta {
                    Delta::Add(_) => distinct.fetch_add(1, Ordering::Relaxed),
                    Delta::Remove(_) => distinct.fetch_sub(1, Ordering::Relaxed),
                };
            }
            *pair_changed = adjust(&self.pairs, (root, value), delta);
        }
        match self.roots.entry(root) {
            MapEntry::Occupied(mut slot) => {
                slot.get_mut().apply(delta, &pairs_changed);
                if slot.get().is_empty() {
                    slot.remove();
                }
            }
            MapEntry::Vacant(slot) => {
                let mut stats = Root::default();
                stats.apply(delta, &pairs_changed);
                if !stats.is_empty() {
                    slot.insert(stats);
                }
            }
        }
    }

    /// Adds a batch's sums: each key is written once, whatever the number
    /// of history entries behind it. Appearances (a key going from absent
    /// to present) update D_H and the roots' D_S exactly as one-by-one
    /// additions would.
    fn merge(&self, batch: FeatureBatch) {
        for (value, (level, count)) in batch.coarse {
            if adjust(&self.coarse, value, Delta::Add(count)) {
                self.distinct[level].fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut appeared: HashMap<
            u64,
            [u32; COARSE_LEVELS_MAX],
            BuildHasherDefault<FingerprintHasher>,
        > = HashMap::default();
        for ((root, value), (level, count)) in batch.pairs {
            if adjust(&self.pairs, (root, value), Delta::Add(count)) {
                appeared.entry(root).or_default()[level] += 1;
            }
        }
        for (root, count) in batch.roots {
            let with = appeared.get(&root).copied().unwrap_or_default();
            let mut stats = self.roots.entry(root).or_default();
            stats.count = stats.count.saturating_add(count);
            for (total, added) in stats.with.iter_mut().zip(with) {
                *total = total.saturating_add(added);
            }
        }
    }

    /// The feature's factor P_G(k) / P_L(k), or [`NEW_CONTEXT_FACTOR`] when
    /// P_L(k) = 0. `hits[j]` = c_{H_u}(x_j); `n_u` and `n` as in the model.
    ///
    /// P_L = Σ_j w_j c_{H_u}(x_j) / n_u
    /// P_G = w_0 A B + Σ_{j≥1} w_j c_H(x_j) / N, with
    /// B = c_H(x_0) / (N + M_H(0)) (1 / (N + M_H(0)) if unseen),
    /// A = n_v / (n_v + M_S(0)) (1 if unseen), M_X(0) = 1 + Σ_{j≥1} D_X(j).
    fn factor(&self, values: &[u64], weights: &[f64], hits: &[u64], n_u: f64, n: f64) -> f64 {
        if hits.iter().all(|&hit| hit == 0) {
            return NEW_CONTEXT_FACTOR;
        }
        let local: f64 = weights
            .iter()
            .zip(hits)
            .map(|(w, &hit)| w * hit as f64 / n_u)
            .sum();

        let Some((root, coarse)) = values.split_first() else {
            return NEW_CONTEXT_FACTOR;
        };
        let coarse_levels = coarse.len();
        let unseen_global = 1 + self.distinct[..coarse_levels]
            .iter()
            .map(|distinct| distinct.load(Ordering::Relaxed))
            .sum::<u64>();
        let stats = self.roots.get(root).map(|stats| *stats).unwrap_or_default();
        let (a, b) = if stats.count == 0 {
            (1.0, 1.0 / (n + unseen_global as f64))
        } else {
            let n_v = stats.count as f64;
            let unseen_sub = 1 + stats.with[..coarse_levels]
                .iter()
                .map(|&with| u64::from(with))
                .sum::<u64>();
            (
                n_v / (n_v + unseen_sub as f64),
                n_v / (n + unseen_global as f64),
            )
        };
        let global = weights[0] * a * b
            + weights[1..]
                .iter()
                .zip(coarse)
                .map(|(w, value)| {
                    let count = self.coarse.get(value).map_or(0, |count| *count);
                    w * count as f64 / n
                })
                .sum::<f64>();
        global / local
    }
}

/// One feature's share of a [`RestoreBatch`]: counts summed per key, with
/// the coarse level each coarse value belongs to.
#[derive(Default)]
struct FeatureBatch {
    roots: HashMap<u64, u64, BuildHasherDefault<FingerprintHasher>>,
    coarse: HashMap<u64, (usize, u64), BuildHasherDefault<FingerprintHasher>>,
    pairs: HashMap<(u64, u64), (usize, u64), BuildHasherDefault<FingerprintHasher>>,
}

impl FeatureBatch {
    fn with_capacity(entries: usize, coarse_levels: usize) -> FeatureBatch {
        FeatureBatch {
            roots: HashMap::with_capacity_and_hasher(entries, BuildHasherDefault::default()),
            coarse: HashMap::default(),
            pairs: HashMap::with_capacity_and_hasher(
                entries * coarse_levels,
                BuildHasherDefault::default(),
            ),
        }
    }

    fn add(&mut self, values: &[u64], count: u64) {
        let Some((&root, coarse)) = values.split_first() else {
            return;
        };
        *self.roots.entry(root).or_default() += count;
        for (level, &value) in coarse.iter().enumerate() {
            self.coarse.entry(value).or_insert((level, 0)).1 += count;
            self.pairs.entry((root, value)).or_insert((level, 0)).1 += count;
        }
    }
}

/// Many users' histories summed before they reach the shared maps. Adding
/// a partition's users one by one after a snapshot load made ~50 shared-map
/// writes per user, a third of them on a few popular values (a country, a
/// browser) whose shard locks every loading partition fought over: most of
/// the load's CPU. Summed first, each distinct key is written once.
#[derive(Default)]
pub struct RestoreBatch {
    users: u64,
    entries: u64,
    ip: FeatureBatch,
    ua: FeatureBatch,
}

impl RestoreBatch {
    /// A batch sized for this many distinct history entries (at most:
    /// growing the maps while adding rehashes them again and again).
    pub fn with_capacity(entries: usize) -> RestoreBatch {
        RestoreBatch {
            users: 0,
            entries: 0,
            ip: FeatureBatch::with_capacity(entries, IP_LEVELS - 1),
            ua: FeatureBatch::with_capacity(entries, UA_LEVELS - 1),
        }
    }

    /// Adds a user's whole history, as [`GlobalStats::restore`] would.
    pub fn add(&mut self, user: &UserHistory) {
        if !user.is_empty() {
            self.users += 1;
        }
        for entry in &user.entries {
            self.entries += entry.count;
            self.ip.add(&entry.observation.ip, entry.count);
            self.ua.add(&entry.observation.ua, entry.count);
        }
    }
}

/// The statistics over all users' history (H, N, |U|, counts per level, distinct counts, pair counts).
#[derive(Default)]
pub struct GlobalStats {
    /// N: history entries over all users.
    entries: AtomicU64,
    /// |U|: users with at least one history entry.
    users: AtomicU64,
    ip: FeatureStats,
    ua: FeatureStats,
}

impl std::fmt::Debug for GlobalStats {
    // The maps hold millions of fingerprints: show the scalars only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalStats")
            .field("entries", &self.entries())
            .field("users", &self.users())
            .finish_non_exhaustive()
    }
}

impl GlobalStats {
    pub fn new() -> GlobalStats {
        GlobalStats::default()
    }

    /// One more history entry for this user (a success / challenge_passed login). Updates user + global, evicting per `max_entries`.
    ///
    /// When a new distinct observation would exceed `max_entries` (at least
    /// 1: the entry being recorded is always kept), the least recently seen
    /// observations go, with all their counts, so that the global state stays
    /// the sum of what users retain.
    pub fn record(&self, user: &mut UserHistory, observation: &Observation, max_entries: usize) {
        let (first, evicted) = user.record(observation, max_entries);
        if first {
            self.users.fetch_add(1, Ordering::Relaxed);
        }
        for entry in evicted {
            self.apply(&entry.observation, Delta::Remove(entry.count));
        }
        self.apply(observation, Delta::Add(1));
    }

    /// Removes everything this user contributes (user erasure). The caller drops the UserHistory afterwards.
    pub fn forget(&self, user: &UserHistory) {
        for entry in &user.entries {
            self.apply(&entry.observation, Delta::Remove(entry.count));
        }
        if !user.is_empty() {
            self.users.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Adds back a user's whole history (after loading a snapshot), exactly as if each entry had been recorded.
    pub fn restore(&self, user: &UserHistory) {
        if !user.is_empty() {
            self.users.fetch_add(1, Ordering::Relaxed);
        }
        for entry in &user.entries {
            self.apply(&entry.observation, Delta::Add(entry.count));
        }
    }

    /// Adds a batch of users' histories: the same state as restoring each.
    pub fn restore_batch(&self, batch: RestoreBatch) {
        self.users.fetch_add(batch.users, Ordering::Relaxed);
        // N grows first (see `apply`).
        self.entries.fetch_add(batch.entries, Ordering::Relaxed);
        self.ip.merge(batch.ip);
        self.ua.merge(batch.ua);
    }

    /// S for this user and attempt; None when the user has no history (the model says nothing).
    ///
    /// S = [(1/|U|) / (n_u/N)] · Π_k P_G(k) / P_L(k), features multiplied ip
    /// then ua. One pass over the user's entries, at most one map read per
    /// level of each feature the user has seen, no allocation.
    pub fn likelihood_ratio(&self, user: &UserHistory, attempt: &Observation) -> Option<f64> {
        let mut n_u = 0;
        let mut ip_hits = [0; IP_LEVELS];
        let mut ua_hits = [0; UA_LEVELS];
        for entry in &user.entries {
            n_u += entry.count;
            count_hits(
                &mut ip_hits,
                &entry.observation.ip,
                &attempt.ip,
                entry.count,
            );
            count_hits(
                &mut ua_hits,
                &entry.observation.ua,
                &attempt.ua,
                entry.count,
            );
        }
        if n_u == 0 {
            return None;
        }
        // Other partitions update concurrently; this user's own entries are
        // always visible to its owner, which keeps both at least this large.
        let n = self.entries().max(n_u) as f64;
        let users = self.users().max(1) as f64;
        let n_u = n_u as f64;
        let ip = self.ip.factor(&attempt.ip, &IP_WEIGHTS, &ip_hits, n_u, n);
        let ua = self.ua.factor(&attempt.ua, &UA_WEIGHTS, &ua_hits, n_u, n);
        Some(ip * ua * ((1.0 / users) / (n_u / n)))
    }

    /// N.
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// |U|, users with at least one entry.
    pub fn users(&self) -> u64 {
        self.users.load(Ordering::Relaxed)
    }

    /// Readers may see part of a concurrent update; N grows first and shrinks
    /// last so that a count never exceeds it for long.
    fn apply(&self, observation: &Observation, delta: Delta) {
        if matches!(delta, Delta::Add(0) | Delta::Remove(0)) {
            return;
        }
        if let Delta::Add(n) = delta {
            self.entries.fetch_add(n, Ordering::Relaxed);
        }
        self.ip.apply(&observation.ip, delta);
        self.ua.apply(&observation.ua, delta);
        if let Delta::Remove(n) = delta {
            self.entries.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

/// Adds `count` to `hits[j]` for every level j where `seen` equals `attempt`.
fn count_hits(hits: &mut [u64], seen: &[u64], attempt: &[u64], count: u64) {
    for ((hit, seen), attempt) in hits.iter_mut().zip(seen).zip(attempt) {
        if seen == attempt {
            *hit += count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    const UNBOUNDED: usize = usize::MAX;

    fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
        let error = ((actual - expected) / expected).abs();
        assert!(error <= tolerance, "{what}: {actual} != {expected}");
    }

    /// Everything the global state holds, in a comparable order.
    #[derive(Debug, PartialEq)]
    struct FeatureDump {
        roots: Vec<(u64, Root)>,
        coarse: Vec<(u64, u64)>,
        pairs: Vec<((u64, u64), u64)>,
        distinct: Vec<u64>,
    }

    fn dump_feature(feature: &FeatureStats) -> FeatureDump {
        let mut roots: Vec<_> = feature.roots.iter().map(|r| (*r.key(), *r)).collect();
        let mut coarse: Vec<_> = feature.coarse.iter().map(|r| (*r.key(), *r)).collect();
        let mut pairs: Vec<_> = feature.pairs.iter().map(|r| (*r.key(), *r)).collect();
        roots.sort_unstable_by_key(|(key, _)| *key);
        coarse.sort_unstable();
        pairs.sort_unstable();
        let distinct: Vec<_> = feature
            .distinct
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .collect();
        // Invariants the incremental updates must keep, checked independently.
        assert_eq!(distinct.iter().sum::<u64>(), coarse.len() as u64);
        assert!(roots.iter().all(|(_, root)| root.count > 0));
        for (key, root) in &roots {
            let with: u32 = root.with.iter().sum();
            let pairs_with_root = pairs.iter().filter(|((r, _), _)| r == key).count();
            assert_eq!(with as usize, pairs_with_root);
        }
        FeatureDump {
            roots,
            coarse,
            pairs,
            distinct,
        }
    }

    fn dump(global: &GlobalStats) -> (u64, u64, FeatureDump, FeatureDump) {
        (
            global.entries(),
            global.users(),
            dump_feature(&global.ip),
            dump_feature(&global.ua),
        )
    }

    fn rebuild<'a>(users: impl IntoIterator<Item = &'a UserHistory>) -> GlobalStats {
        let global = GlobalStats::new();
        for user in users {
            global.restore(user);
        }
        global
    }

    fn ip_levels(observation: &Observation) -> &[u64] {
        &observation.ip
    }

    fn ua_levels(observation: &Observation) -> &[u64] {
        &observation.ua
    }

    /// The spec's formulas evaluated from scratch over the retained histories.
    fn naive_factor(
        all: &[(Observation, u64)],
        mine: &[(Observation, u64)],
        levels: fn(&Observation) -> &[u64],
        weights: &[f64],
        attempt: &[u64],
    ) -> f64 {
        let count = |set: &[(Observation, u64)], j: usize| -> f64 {
            set.iter()
                .filter(|(o, _)| levels(o)[j] == attempt[j])
                .map(|(_, c)| *c as f64)
                .sum()
        };
        let unseen = |set: &[(Observation, u64)]| -> f64 {
            let distinct = |j: usize| {
                set.iter()
                    .map(|(o, _)| levels(o)[j])
                    .collect::<HashSet<_>>()
                    .len()
            };
            (1 + (1..weights.len()).map(distinct).sum::<usize>()) as f64
        };
        let n_u: f64 = mine.iter().map(|(_, c)| *c as f64).sum();
        let n: f64 = all.iter().map(|(_, c)| *c as f64).sum();
        let local: f64 = (0..weights.len())
            .map(|j| weights[j] * count(mine, j) / n_u)
            .sum();
        if local == 0.0 {
            return 4.0;
        }
        let sub: Vec<_> = all
            .iter()
            .copied()
            .filter(|(o, _)| levels(o)[0] == attempt[0])
            .collect();
        let n_v = count(all, 0);
        let (a, b) = if n_v == 0.0 {
            (1.0, 1.0 / (n + unseen(all)))
        } else {
            (n_v / (n_v + unseen(&sub)), n_v / (n + unseen(all)))
        };
        let global = weights[0] * a * b
            + (1..weights.len())
                .map(|j| weights[j] * count(all, j) / n)
                .sum::<f64>();
        global / local
    }

    fn naive_likelihood_ratio(
        users: &[UserHistory],
        user: &UserHistory,
        attempt: &Observation,
    ) -> Option<f64> {
        let flatten = |h: &UserHistory| h.iter().map(|(o, c)| (*o, c)).collect::<Vec<_>>();
        let all: Vec<_> = users.iter().flat_map(flatten).collect();
        let mine = flatten(user);
        if mine.is_empty() {
            return None;
        }
        let with_history = users.iter().filter(|u| !u.is_empty()).count() as f64;
        let n: f64 = all.iter().map(|(_, c)| *c as f64).sum();
        let n_u = user.len() as f64;
        let ip = naive_factor(&all, &mine, ip_levels, &IP_WEIGHTS, &attempt.ip);
        let ua = naive_factor(&all, &mine, ua_levels, &UA_WEIGHTS, &attempt.ua);
        Some(ip * ua * ((1.0 / with_history) / (n_u / n)))
    }

    #[derive(serde::Deserialize)]
    struct Scenario {
        id: String,
        history: Vec<Login>,
        attempt: Login,
        expected_likelihood_ratio: f64,
    }

    #[derive(serde::Deserialize)]
    struct Login {
        user: String,
        ip: String,
        asn: u32,
        cc: String,
        ua: String,
        bv: String,
        osv: String,
        df: String,
    }

    impl Login {
        fn observation(&self) -> Observation {
            let Login {
                ip,
                asn,
                cc,
                ua,
                bv,
                osv,
                df,
                ..
            } = self;
            Observation::new(ip, Some(*asn), cc, ua, bv, osv, df)
        }
    }

    #[test]
    fn reproduces_the_reference_vectors() {
        let vectors = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/freeman-vectors.json"
        ));
        let scenarios: Vec<Scenario> = serde_json::from_str(vectors).unwrap();
        assert_eq!(scenarios.len(), 20);
        for scenario in &scenarios {
            let global = GlobalStats::new();
            let mut users: HashMap<&str, UserHistory> = HashMap::new();
            for login in &scenario.history {
                let user = users.entry(&login.user).or_default();
                global.record(user, &login.observation(), UNBOUNDED);
            }
            let user = &users[scenario.attempt.user.as_str()];
            let attempt = scenario.attempt.observation();
            let s = global.likelihood_ratio(user, &attempt).unwrap();
            assert_close(s, scenario.expected_likelihood_ratio, 1e-9, &scenario.id);
            let all: Vec<_> = users.values().cloned().collect();
            let naive = naive_likelihood_ratio(&all, user, &attempt).unwrap();
            assert_close(
                naive,
                scenario.expected_likelihood_ratio,
                1e-9,
                &scenario.id,
            );
        }
    }

    fn known() -> Observation {
        Observation::new(
            "84.208.1.10",
            Some(2119),
            "NO",
            "Mozilla/5.0",
            "Chrome 80",
            "Windows 10",
            "desktop",
        )
    }

    /// P_G(ua) of a one-entry history seen again: A = B = 1/(1 + 4).
    fn ua_global_of_single_entry() -> f64 {
        UA_WEIGHTS[0] / 25.0 + UA_WEIGHTS[1] + UA_WEIGHTS[2] + UA_WEIGHTS[3]
    }

    #[test]
    fn single_entry_seen_again() {
        let global = GlobalStats::new();
        let mut user = UserHistory::default();
        global.record(&mut user, &known(), UNBOUNDED);
        // ip: P_L = 1; A = 1/(1 + 3), B = 1/(1 + 3). Prior ratio (1/1)/(1/1).
        let expected = (0.6 / 16.0 + 0.3 + 0.1) * ua_global_of_single_entry();
        let s = global.likelihood_ratio(&user, &known()).unwrap();
        assert_close(s, expected, 1e-12, "single entry");
        assert_eq!((global.entries(), global.users(), user.len()), (1, 1, 1));
    }

    #[test]
    fn no_history_no_ratio() {
        let global = GlobalStats::new();
        let mut other = UserHistory::default();
        global.record(&mut other, &known(), UNBOUNDED);
        assert_eq!(
            global.likelihood_ratio(&UserHistory::default(), &known()),
            None
        );
    }

    #[test]
    fn wholly_new_context_contributes_factor_four_per_feature() {
        let global = GlobalStats::new();
        let (mut rare, mut frequent) = (UserHistory::default(), UserHistory::default());
        global.record(&mut rare, &known(), UNBOUNDED);
        let elsewhere =
            Observation::new("1.1.1.1", Some(1), "US", "curl", "curl 7", "Linux", "bot");
        for _ in 0..3 {
            global.record(&mut frequent, &elsewhere, UNBOUNDED);
        }
        let new = Observation::new("2.2.2.2", Some(2), "BR", "wget", "wget 1", "BSD", "unknown");
        // 4 · 4 · (1/2) / (1/4), exact in binary.
        assert_eq!(global.likelihood_ratio(&rare, &new), Some(32.0));
    }

    #[test]
    fn empty_values_match_only_empty_values() {
        let empty = Observation::new("", None, "", "", "", "", "");
        assert_ne!(
            empty.ip[1],
            Observation::new("", Some(0), "", "", "", "", "").ip[1]
        );
        let levels: HashSet<u64> = empty.ip.iter().chain(&empty.ua).copied().collect();
        assert_eq!(
            levels.len(),
            7,
            "equal strings at different levels must differ"
        );

        let global = GlobalStats::new();
        let mut user = UserHistory::default();
        global.record(
            &mut user,
            &Observation::new("1.2.3.4", None, "", "", "", "", ""),
            4,
        );
        // ip: P_L = 0.3 + 0.1 (both empties match); unseen ip: A = 1, B = 1/(1 + 3).
        let no_asn = Observation::new("5.6.7.8", None, "", "", "", "", "");
        let expected = (0.6 / 4.0 + 0.3 + 0.1) / 0.4 * ua_global_of_single_entry();
        assert_close(
            global.likelihood_ratio(&user, &no_asn).unwrap(),
            expected,
            1e-12,
            "no asn",
        );
        // An ASN does not match the empty one: P_L = 0.1, P_G = 0.6/4 + 0.1.
        let some_asn = Observation::new("5.6.7.8", Some(7), "", "", "", "", "");
        let expected = (0.6 / 4.0 + 0.1) / 0.1 * ua_global_of_single_entry();
        assert_close(
            global.likelihood_ratio(&user, &some_asn).unwrap(),
            expected,
            1e-12,
            "asn",
        );
    }

    fn pool() -> Vec<Observation> {
        vec![
            known(),
            Observation::new(
                "84.208.1.11",
                Some(2119),
                "NO",
                "Mozilla/5.0",
                "Chrome 80",
                "Windows 10",
                "desktop",
            ),
            Observation::new(
                "84.208.1.10",
                Some(2119),
                "NO",
                "Safari",
                "Safari 13",
                "iOS 13",
                "mobile",
            ),
            Observation::new("5.5.5.5", None, "", "", "", "", ""),
            Observation::new("5.5.5.5", Some(3), "SE", "", "Other", "", "unknown"),
        ]
    }

    #[test]
    fn eviction_drops_the_least_recently_seen_with_all_its_counts() {
        let pool = pool();
        let global = GlobalStats::new();
        let (mut a, mut b) = (UserHistory::default(), UserHistory::default());
        global.record(&mut a, &pool[0], 2);
        global.record(&mut a, &pool[1], 2);
        global.record(&mut a, &pool[0], 2);
        global.record(&mut b, &pool[1], 2);
        global.record(&mut a, &pool[2], 2);
        let kept: Vec<_> = a.iter().map(|(o, c)| (*o, c)).collect();
        assert_eq!(
            kept,
            [(pool[0], 2), (pool[2], 1)],
            "pool[1] was least recently seen"
        );
        assert_eq!((global.entries(), global.users()), (4, 2));

        let rebuilt = rebuild([&a, &b]);
        assert_eq!(dump(&global), dump(&rebuilt));
        for attempt in &pool {
            for user in [&a, &b] {
                assert_eq!(
                    global.likelihood_ratio(user, attempt),
                    rebuilt.likelihood_ratio(user, attempt)
                );
            }
        }

        // A lowered limit evicts down to it on the next new observation.
        global.record(&mut a, &pool[3], 1);
        assert_eq!((a.distinct(), a.len(), global.entries()), (1, 1, 2));
        assert_eq!(dump(&global), dump(&rebuild([&a, &b])));
    }

    #[test]
    fn forget_returns_to_the_state_without_the_user() {
        let pool = pool();
        let global = GlobalStats::new();
        let (mut a, mut b) = (UserHistory::default(), UserHistory::default());
        for (i, observation) in pool.iter().enumerate() {
            global.record(&mut a, observation, 3);
            global.record(&mut b, &pool[(i * 3) % pool.len()], 3);
        }
        global.forget(&b);
        assert_eq!(dump(&global), dump(&rebuild([&a])));
        global.forget(&a);
        assert_eq!(dump(&global), dump(&GlobalStats::new()));
    }

    /// A deterministic scramble of logins for `users` users.
    fn logins(users: usize, per_user: usize) -> Vec<(usize, Observation)> {
        let pool = pool();
        (0..users * per_user)
            .map(|i| (i % users, pool[(i * 7 + i / 3) % pool.len()]))
            .collect()
    }

    #[test]
    fn interleaving_does_not_change_the_global_state() {
        let logins = logins(4, 12);
        let record_all = |order: &mut dyn Iterator<Item = &(usize, Observation)>| {
            let global = GlobalStats::new();
            let mut users = vec![UserHistory::default(); 4];
            for (user, observation) in order {
                global.record(&mut users[*user], observation, 3);
            }
            (global, users)
        };
        let (round_robin, users) = record_all(&mut logins.iter());
        let mut by_user = logins.clone();
        by_user.sort_by_key(|(user, _)| std::cmp::Reverse(*user));
        let (grouped, same_users) = record_all(&mut by_user.iter());
        assert_eq!(users, same_users);
        assert_eq!(dump(&round_robin), dump(&grouped));
        for attempt in &pool() {
            for user in &users {
                let s = round_robin.likelihood_ratio(user, attempt);
                assert_eq!(s, grouped.likelihood_ratio(user, attempt));
                assert_close(
                    s.unwrap(),
                    naive_likelihood_ratio(&users, user, attempt).unwrap(),
                    1e-12,
                    "naive",
                );
            }
        }
    }

    #[test]
    fn concurrent_partitions_reach_the_sequential_state() {
        const PARTITIONS: usize = 4;
        let logins = logins(PARTITIONS * 3, 40);
        let sequential = GlobalStats::new();
        let mut expected = vec![UserHistory::default(); PARTITIONS * 3];
        for (user, observation) in &logins {
            sequential.record(&mut expected[*user], observation, 2);
        }
        let concurrent = GlobalStats::new();
        let partitions: Vec<Vec<UserHistory>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..PARTITIONS)
                .map(|partition| {
                    let (concurrent, logins) = (&concurrent, &logins);
                    scope.spawn(move || {
                        let mut users = vec![UserHistory::default(); PARTITIONS * 3];
                        for (user, observation) in
                            logins.iter().filter(|(u, _)| u % PARTITIONS == partition)
                        {
                            concurrent.record(&mut users[*user], observation, 2);
                        }
                        users
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().unwrap())
                .collect()
        });
        for (user, history) in expected.iter().enumerate() {
            assert_eq!(history, &partitions[user % PARTITIONS][user]);
        }
        assert_eq!(dump(&concurrent), dump(&sequential));
    }

    #[test]
    fn history_survives_a_serde_round_trip() {
        let global = GlobalStats::new();
        let mut user = UserHistory::default();
        for (_, observation) in logins(1, 9) {
            global.record(&mut user, &observation, 3);
        }
        let json = serde_json::to_string(&user).unwrap();
        let mut decoded: UserHistory = serde_json::from_str(&json).unwrap();
        assert_eq!(decoded, user);
        let rebuilt = rebuild([&decoded]);
        // Recency survives too: the same observation is evicted next.
        let next = Observation::new("9.9.9.9", None, "", "", "", "", "");
        global.record(&mut user, &next, 3);
        rebuilt.record(&mut decoded, &next, 3);
        assert_eq!(decoded, user);
        assert_eq!(dump(&global), dump(&rebuilt));
    }

    fn small_observation() -> impl Strategy<Value = Observation> {
        // Few values per level so that users share values and pairings vary;
        // "a" and "" recur across levels to exercise the tags.
        (
            0..3usize,
            0..3usize,
            0..2usize,
            0..3usize,
            0..2usize,
            0..2usize,
            0..2usize,
        )
            .prop_map(|(ip, asn, cc, ua, bv, os, df)| {
                Observation::new(
                    ["10.0.0.1", "10.0.0.2", "a"][ip],
                    [None, Some(1), Some(2)][asn],
                    ["", "NO"][cc],
                    ["a", "b", ""][ua],
                    ["a", "x"][bv],
                    ["x", ""][os],
                    ["mobile", "desktop"][df],
                )
            })
    }

    proptest! {
        #[test]
        fn incremental_equals_rebuilt_from_restore(
            max_entries in 1..4usize,
            // `None` forgets the user (erasure); its history starts over.
            ops in prop::collection::vec((0..4usize, prop::option::weighted(0.9, small_observation())), 1..60),
            attempts in prop::collection::vec(small_observation(), 1..6),
        ) {
            let global = GlobalStats::new();
            let mut users = vec![UserHistory::default(); 4];
            for (user, op) in ops {
                match op {
                    Some(observation) => global.record(&mut users[user], &observation, max_entries),
                    None => {
                        global.forget(&users[user]);
                        users[user] = UserHistory::default();
                    }
                }
                prop_assert!(users[user].distinct() <= max_entries);
                prop_assert_eq!(dump(&global), dump(&rebuild(&users)));
            }
            let rebuilt = rebuild(&users);
            // Summed in batches (two, as two partitions would) onto a state
            // that already holds the first user: the same state.
            let batched = GlobalStats::new();
            batched.restore(&users[0]);
            for half in users[1..].chunks(2) {
                let mut batch = RestoreBatch::default();
                half.iter().for_each(|user| batch.add(user));
                batched.restore_batch(batch);
            }
            prop_assert_eq!(dump(&batched), dump(&rebuilt));
            for user in &users {
                for attempt in &attempts {
                    let s = global.likelihood_ratio(user, attempt);
                    prop_assert_eq!(s, rebuilt.likelihood_ratio(user, attempt));
                    match (s, naive_likelihood_ratio(&users, user, attempt)) {
                        (Some(s), Some(naive)) => assert_close(s, naive, 1e-12, "naive"),
                        (s, naive) => prop_assert_eq!(s, naive),
                    }
                }
            }
        }
    }
}
