//! A small set that remembers when each member was seen, bounded by a cap.
//!
//! Per-user sets are tiny (a handful of devices, countries, networks), so a
//! vector with a linear scan beats any map in time and memory. Eviction is
//! by event time (least recently seen first, ties to the oldest first
//! sighting, then to position), never by wall clock or hash order, so
//! folding the same events always yields the same set: snapshot-then-replay
//! and full replay must agree.

use serde::{Deserialize, Serialize};

use crate::event::TimestampMs;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seen<T> {
    pub value: T,
    pub first_ms: TimestampMs,
    pub last_ms: TimestampMs,
    pub count: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecentSet<T> {
    entries: Vec<Seen<T>>,
}

impl<T> Default for RecentSet<T> {
    fn default() -> Self {
        RecentSet {
            entries: Vec::new(),
        }
    }
}

impl<T: PartialEq> RecentSet<T> {
    pub fn contains(&self, value: &T) -> bool {
        self.entries.iter().any(|e| &e.value == value)
    }

    pub fn get(&self, value: &T) -> Option<&Seen<T>> {
        self.entries.iter().find(|e| &e.value == value)
    }

    /// Records a sighting at `at_ms`; evicts the least recently seen member
    /// when a new one would exceed `cap`. Returns the evicted value.
    pub fn observe(&mut self, value: T, at_ms: TimestampMs, cap: usize) -> Option<T> {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.value == value) {
            entry.last_ms = entry.last_ms.max(at_ms);
            entry.first_ms = entry.first_ms.min(at_ms);
            entry.count = entry.count.saturating_add(1);
            return None;
        }
        let evicted = if self.entries.len() >= cap.max(1) {
            self.least_recent()
                .map(|index| self.entries.remove(index).value)
        } else {
            None
        };
        self.entries.push(Seen {
            value,
            first_ms: at_ms,
            last_ms: at_ms,
            count: 1,
        });
        evicted
    }

    pub fn remove(&mut self, value: &T) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| &e.value != value);
        self.entries.len() != before
    }

    fn least_recent(&self) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .min_by_key(|(index, e)| (e.last_ms, e.first_ms, *index))
            .map(|(index, _)| index)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Seen<T>> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observing_again_updates_instead_of_adding() {
        let mut set = RecentSet::default();
        set.observe("a", 10, 4);
        set.observe("a", 20, 4);
        assert_eq!(set.len(), 1);
        let seen = set.get(&"a").unwrap();
        assert_eq!((seen.first_ms, seen.last_ms, seen.count), (10, 20, 2));
    }

    #[test]
    fn the_least_recently_seen_member_is_evicted_at_the_cap() {
        let mut set = RecentSet::default();
        set.observe("a", 10, 2);
        set.observe("b", 20, 2);
        set.observe("a", 30, 2);
        assert_eq!(set.observe("c", 40, 2), Some("b"));
        assert!(set.contains(&"a") && set.contains(&"c") && !set.contains(&"b"));
    }

    #[test]
    fn eviction_ties_are_broken_deterministically() {
        let mut set = RecentSet::default();
        set.observe("a", 10, 2);
        set.observe("b", 10, 2);
        assert_eq!(set.observe("c", 10, 2), Some("a"));
    }
}
