//! A partition's in-memory projection of its log: every user's context and
//! the recent scored attempts. `Projection::apply` is the only way state
//! changes, so the state after offset k is a pure function of records 0..=k
//! (plus the shared [`GlobalState`] deltas it makes): that is what lets a
//! snapshot plus the log tail reproduce a full replay exactly.

pub mod bounded;
pub mod freeman;
pub mod global;
pub mod keys;
pub mod user;
pub mod velocity;

use serde::{Deserialize, Serialize};

use crate::config::ProjectionConfig;
use crate::event::{Event, LoginAttempt, Outcome, OutcomeReport};
pub use global::GlobalState;
pub use keys::AttemptKeys;
pub use user::UserContext;

/// A scored (or ingested) attempt, remembered for its outcome and for
/// event_id idempotency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub user_id: String,
    pub keys: AttemptKeys,
    /// The log offset of the record holding the first answer (None for
    /// ingested logins, which get no answer). A repeated event_id is
    /// answered from there: the answer (its reasons and their details)
    /// was two thirds of a remembered attempt's ~1.2 KB, and every
    /// partition remembers 65,536 attempts; a repeat is a retry, rare and
    /// off the path of new logins.
    pub answer_at: Option<u64>,
    /// Outcomes already applied (bit per `Outcome`), so a repeated report
    /// changes nothing.
    outcomes: u8,
}

impl AttemptRecord {
    pub fn has_outcome(&self, outcome: Outcome) -> bool {
        self.outcomes & outcome_bit(outcome) != 0
    }

    /// Whether an outcome already taught this attempt's context to the user.
    pub fn taught(&self) -> bool {
        self.has_outcome(Outcome::Success) || self.has_outcome(Outcome::ChallengePassed)
    }
}

fn outcome_bit(outcome: Outcome) -> u8 {
    1 << (outcome as u8)
}

/// What applying one event did (for metrics and replies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Recorded,
    /// An outcome for an attempt this projection does not know (forgotten
    /// or never scored): nothing changed.
    UnknownAttempt,
    /// A repeat of something already applied: nothing changed.
    Duplicate,
    Erased {
        existed: bool,
    },
}

/// A persistent map keyed by strings from requests (user ids, event ids).
/// foldhash instead of imbl's default SipHash: keys are hashed on every
/// lookup, and SipHash was ~4% of folding an event; its per-map random
/// seed keeps crafted keys from colliding on purpose.
type PersistentMap<K, V> =
    imbl::GenericHashMap<K, V, foldhash::quality::RandomState, imbl::shared_ptr::DefaultSharedPtr>;

/// Persistent (copy-on-write) maps: cloning the projection is O(1), and the
/// clone shares every node until the original changes it. A snapshot
/// clones the projection under the partition's lock and encodes the clone
/// on another thread; with plain hash maps, encoding ~110 k users held the
/// lock for 200–500 ms (and a deep clone took as long), a pause every
/// snapshot in the latency of the partition's requests. The price: a lookup
/// walks a trie (~0.1 µs more than a hash table), ~150 B more per user, and
/// while a snapshot is encoded, the first change to a user copies its
/// trie path and its context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// Boxed: a trie node holds 32 entries inline, and a context is 368 B.
    users: PersistentMap<String, Box<UserContext>>,
    /// Boxed for the same reason (328 B a record).
    attempts: PersistentMap<String, Box<AttemptRecord>>,
    /// Insertion order of `attempts`, oldest first, for eviction.
    attempt_order: imbl::Vector<String>,
    attempts_max: usize,
    caps: ProjectionConfig,
    /// While replaying, the projection leaves the global state alone: no
    /// user contribution (model statistics, failure windows, hostile
    /// addresses) and no event_id claim is made or taken back event by
    /// event. Most of them are undone again before replay ends (evicted
    /// entries, forgotten attempts), every one was a write to a map all
    /// partitions share, and nothing reads the global state before every
    /// partition has caught up. [`Projection::end_replay`] adds what the
    /// projection holds at the end, once: the same state, since the global
    /// state is the sum of what the partitions' projections hold.
    #[serde(skip)]
    global_deferred: bool,
}

impl Projection {
    pub fn new(caps: ProjectionConfig, attempts_max: usize) -> Projection {
        Projection {
            users: PersistentMap::default(),
            attempts: PersistentMap::default(),
            attempt_order: imbl::Vector::new(),
            attempts_max: attempts_max.max(1),
            caps,
            global_deferred: false,
        }
    }

    /// Leaves the global state alone until [`Projection::end_replay`]
    /// (for a replay; the projection's current content is not added either).
    pub fn begin_replay(&mut self) {
        self.global_deferred = true;
    }

    /// Adds every user's contribution to the global state and claims every
    /// remembered attempt's event_id, then goes back to updating the global
    /// state event by event (replay is over).
    pub fn end_replay(&mut self, global: &GlobalState) {
        self.restore_global(global);
        for (attempt_id, record) in &self.attempts {
            global.claim_attempt(attempt_id, velocity::account(&record.user_id));
        }
        self.global_deferred = false;
    }

    /// Applies caps from a new configuration to a projection loaded from a
    /// snapshot. Lowered caps take effect as users are next touched.
    pub fn reconfigure(&mut self, caps: ProjectionConfig, attempts_max: usize) {
        self.caps = caps;
        self.attempts_max = attempts_max.max(1);
    }

    pub fn user(&self, user_id: &str) -> Option<&UserContext> {
        self.users.get(user_id).map(Box::as_ref)
    }

    pub fn attempt(&self, attempt_id: &str) -> Option<&AttemptRecord> {
        self.attempts.get(attempt_id).map(Box::as_ref)
    }

    pub fn users_len(&self) -> usize {
        self.users.len()
    }

    pub fn attempts_len(&self) -> usize {
        self.attempts.len()
    }

    /// Folds one event that is not in a log (tests, backtests): a
    /// repeated event_id then has no first answer to read back. Global
    /// deltas go to `global`.
    pub fn apply(&mut self, event: &Event, global: &GlobalState) -> Applied {
        self.apply_keyed(event, None, global)
    }

    /// [`Self::apply`] with the attempt's keys already derived (the caller
    /// scored the attempt with them): deriving them again formats strings
    /// on the hot path. `keys` must be `AttemptKeys::of` the event's attempt.
    pub fn apply_keyed(
        &mut self,
        event: &Event,
        keys: Option<AttemptKeys>,
        global: &GlobalState,
    ) -> Applied {
        self.fold(None, event, keys, global)
    }

    /// Folds the event recorded at `offset` of the partition's log.
    pub fn apply_logged(
        &mut self,
        offset: u64,
        event: &Event,
        keys: Option<AttemptKeys>,
        global: &GlobalState,
    ) -> Applied {
        self.fold(Some(offset), event, keys, global)
    }

    fn fold(
        &mut self,
        offset: Option<u64>,
        event: &Event,
        keys: Option<AttemptKeys>,
        global: &GlobalState,
    ) -> Applied {
        match event {
            Event::Attempt { attempt, .. } => {
                self.remember(attempt, offset, keys, global);
                Applied::Recorded
            }
            Event::Outcome(report) => self.apply_report(report, global),
            Event::Login { attempt, outcome } => {
                if self.attempts.contains_key(&attempt.attempt_id) {
                    return Applied::Duplicate;
                }
                let keys = self.remember(attempt, None, keys, global);

                self.resolve(
                    &attempt.attempt_id,
                    &attempt.user_id,
                    &keys,
                    *outcome,
                    global,
                );
                Applied::Recorded
            }
            Event::Erase { user_id, .. } => {
                let existed = match self.users.remove(user_id.as_str()) {
                    Some(user) => {
                        if !self.global_deferred {
                            user.forget_global(velocity::account(user_id), global);
                        }
                        true
                    }
                    None => false,
                };
                let claimed = !self.global_deferred;
                self.attempts.retain(|attempt_id, record| {
                    let keep = &record.user_id != user_id;
                    if !keep && claimed {
                        global.release_attempt(attempt_id, velocity::account(user_id));
                    }
                    keep
                });

                let attempts = &self.attempts;
                self.attempt_order.retain(|id| attempts.contains_key(id));
                Applied::Erased { existed }
            }
        }
    }

    fn apply_report(&mut self, report: &OutcomeReport, global: &GlobalState) -> Applied {
        let keys = match self.attempts.get(&report.attempt_id) {
            Some(record) if record.user_id == report.user_id => {
                if record.has_outcome(report.outcome) {
                    return Applied::Duplicate;
                }
                // One attempt teaches its context once: `success` then
                // `challenge_passed` for the same attempt is one login.
                if report.outcome.teaches_context() && record.taught() {
                    if let Some(record) = self.attempts.get_mut(&report.attempt_id) {
                        record.outcomes |= outcome_bit(report.outcome);
                    }
                    return Applied::Duplicate;
                }
                record.keys.clone()
            }
            _ => return Applied::UnknownAttempt,
        };
        self.resolve(
            &report.attempt_id,
            &report.user_id,
            &keys,
            report.outcome,
            global,
        );
        Applied::Recorded
    }

    fn resolve(
        &mut self,
        attempt_id: &str,
        user_id: &str,
        keys: &AttemptKeys,
        outcome: Outcome,
        global: &GlobalState,
    ) {
        if let Some(record) = self.attempts.get_mut(attempt_id) {
            record.outcomes |= outcome_bit(outcome);
        }
        // Looked up before inserting: `entry` would allocate the key every time.
        let user = match self.users.get_mut(user_id) {
            Some(user) => user,
            None => self
                .users
                .entry(user_id.to_owned())
                .or_insert_with(|| Box::new(UserContext::new(keys.timestamp_ms))),
        };
        let global = (!self.global_deferred).then_some(global);
        user.apply_outcome(
            velocity::account(user_id),
            keys,
            outcome,
            &self.caps,
            global,
        );
    }

    fn remember(
        &mut self,
        attempt: &LoginAttempt,
        answer_at: Option<u64>,
        keys: Option<AttemptKeys>,
        global: &GlobalState,
    ) -> AttemptKeys {
        let keys = keys.unwrap_or_else(|| AttemptKeys::of(attempt));
        debug_assert_eq!(keys, AttemptKeys::of(attempt));
        let record = AttemptRecord {
            user_id: attempt.user_id.clone(),
            keys: keys.clone(),
            answer_at,
            outcomes: 0,
        };
        if self
            .attempts
            .insert(attempt.attempt_id.clone(), Box::new(record))
            .is_none()
        {
            self.attempt_order.push_back(attempt.attempt_id.clone());
        }
        if !self.global_deferred {
            global.claim_attempt(&attempt.attempt_id, velocity::account(&attempt.user_id));
        }
        while self.attempt_order.len() > self.attempts_max {
            if let Some(oldest) = self.attempt_order.pop_front() {
                if let Some(record) = self.attempts.remove(&oldest) {
                    if !self.global_deferred {
                        global.release_attempt(&oldest, velocity::account(&record.user_id));
                    }
                }
            }
        }

        keys
    }

    /// Adds every user's contribution to global state (their model
    /// histories summed first: `freeman::RestoreBatch`).
    fn restore_global(&self, global: &GlobalState) {
        let entries = self.users.values().map(|user| user.model.distinct()).sum();
        let mut model = freeman::RestoreBatch::with_capacity(entries);
        for (user_id, user) in &self.users {
            user.restore_global(velocity::account(user_id), global, &mut model);
        }
        global.model.restore_batch(model);
    }

    pub fn users(&self) -> impl Iterator<Item = (&String, &UserContext)> {
        self.users.iter().map(|(id, user)| (id, user.as_ref()))
    }
}

#[cfg(test)]
mod tests;
