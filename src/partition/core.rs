//! A partition's logic as a plain struct: the log writer, the projection,
//! the scorer. It lives behind the partition's lock; the actor
//! (`partition::actor`) and the router's direct path only call into it, so
//! everything here is tested without a runtime.
//!
//! Invariant: an event is appended to the log before it is applied to the
//! projection, both under the one lock, so the projection is always the
//! fold of a log prefix and a user's requests see all of that user's
//! earlier events (read your writes).

use std::sync::Arc;

use crate::config::Config;
use crate::dead_letter::{DeadLetters, Origin};
use crate::event::{Assessment, Event, LoginAttempt, Outcome, OutcomeReport, TimestampMs};
use crate::log::{Durability, LogError, LogStore, PartitionLog, Ticket};
use crate::projection::{velocity, Applied, AttemptKeys, GlobalState, Projection, UserContext};
use crate::score::Scoring;
use crate::snapshot::{SnapshotError, SnapshotStore};

#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("unknown attempt_id `{0}` for this user")]
    UnknownAttempt(String),
    #[error("event_id `{0}` was already used for another user or request kind")]
    EventIdConflict(String),
    #[error("partition is recovering its state from the log")]
    Recovering,
}

/// What a partition needs to know from the configuration.
#[derive(Clone, Debug)]
pub struct PartitionSettings {
    pub score_waits_for_durability: bool,
    pub snapshot_every_events: u64,
}

impl PartitionSettings {
    pub fn from_config(config: &Config) -> PartitionSettings {
        PartitionSettings {
            score_waits_for_durability: config.log.score_waits_for_durability,
            snapshot_every_events: config.snapshot.every_events,
        }
    }
}

/// A score reply: the assessment, and a ticket when the reply must wait for durability.
pub struct Scored {
    pub attempt_id: String,
    pub assessment: Assessment,
    pub ticket: Option<Ticket>,
    /// A repeated event_id: the first answer, nothing recorded.
    pub duplicate: bool,
    /// The candidate ruleset's decision, in shadow mode.
    pub shadow: Option<crate::event::Decision>,
}

/// The result of a bulk ingest into this partition.
pub struct Ingested {
    pub recorded: usize,
    pub duplicates: usize,
    /// Positions (in the request's order) of logins whose event_id belongs
    /// to another user: not recorded, to be reported as rejected.
    pub conflicts: Vec<usize>,

    pub ticket: Ticket,
}

pub struct PartitionCore {
    id: u32,
    log: PartitionLog,
    projection: Projection,
    global: Arc<GlobalState>,
    scoring: Arc<Scoring>,
    durability: Durability,
    snapshots: SnapshotStore,
    dead_letters: Arc<DeadLetters>,
    settings: PartitionSettings,
    /// The next log offset to fold into the projection.
    next_to_apply: u64,
    /// Offsets covered by the last snapshot written or loaded.
    snapshot_offset: u64,
    recovering: bool,
    /// Erasures found (by `erase` or replay) and not yet handed to a compaction job.
    pending_erasures: Vec<Erasure>,
    /// Erasures whose compaction has not finished. While any is running no
    /// snapshot is written: a snapshot covering an erase record whose
    /// compaction had not finished would, after a crash, keep replay from
    /// ever seeing that record again, and the user's old records would stay.
    erasures_running: usize,
    /// Erase records whose compaction finished, removed after the next snapshot.
    erasures_done: Vec<u64>,
}

/// Event_ids of a bulk request's logins so far, with their accounts.
pub type SeenInBatch = std::collections::HashMap<String, u64>;

/// A user erased at a log offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erasure {
    pub user_id: String,
    pub offset: u64,
}

impl PartitionCore {
    /// Opens partition `id`: loads its snapshot (if any) and its global
    /// contribution. The log tail is replayed by [`Self::replay_step`].
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        id: u32,
        store: &LogStore,
        config: &Config,
        global: Arc<GlobalState>,
        scoring: Arc<Scoring>,
        durability: Durability,
        snapshots: SnapshotStore,
        dead_letters: Arc<DeadLetters>,
    ) -> Result<PartitionCore, PartitionError> {
        let log = store.partition(id)?;
        let (mut projection, next_to_apply) = match snapshots.load(id)? {
            Some(snapshot) if snapshot.next_offset <= log.next_offset() => {
                let mut projection = snapshot.projection;
                projection.reconfigure(config.projection.clone(), config.partition.attempts_max);
                (projection, snapshot.next_offset)
            }
            Some(snapshot) => {
                // A snapshot ahead of the log means the log lost acknowledged
                // records (or was replaced): refuse rather than serve a state
                // the log cannot reproduce.
                return Err(PartitionError::Snapshot(SnapshotError::Corrupt {
                    path: snapshots.path(id),
                    message: format!(
                        "covers offsets up to {} but the log ends at {}",
                        snapshot.next_offset,
                        log.next_offset()
                    ),
                }));
            }
            None => (
                Projection::new(config.projection.clone(), config.partition.attempts_max),
                0,
            ),
        };
        // The snapshot's users and the tail's changes reach the global
        // state together once the tail is replayed (`replay_step`).
        projection.begin_replay();
        Ok(PartitionCore {
            id,
            log,
            projection,
            global,
            scoring,
            durability,
            snapshots,
            dead_letters,
            settings: PartitionSettings::from_config(config),
            next_to_apply,
            snapshot_offset: next_to_apply,
            recovering: true,
            pending_erasures: Vec::new(),
            erasures_running: 0,
            erasures_done: Vec::new(),
        })
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn is_recovering(&self) -> bool {
        self.recovering
    }

    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    pub fn next_offset(&self) -> u64 {
        self.log.next_offset()
    }

    /// Folds up to `max_records` of the log tail. Returns how many records
    /// were read; recovery is over when a step reads fewer than asked.
    /// A record that does not decode is set aside as a dead letter.
    pub fn replay_step(
        &mut self,
        max_records: usize,
        now_ms: TimestampMs,
    ) -> Result<usize, PartitionError> {
        let mut read = 0;
        for entry in self.log.read_from(self.next_to_apply).take(max_records) {
            let (offset, decoded) = entry?;
            match decoded {
                Ok(event) => {
                    if let Event::Erase { user_id, .. } = &event {
                        self.pending_erasures.push(Erasure {
                            user_id: user_id.clone(),
                            offset,
                        });
                        self.erasures_running += 1;
                    }
                    self.projection
                        .apply_logged(offset, &event, None, &self.global);
                }
                Err(err) => {
                    tracing::warn!(partition = self.id, offset, error = %err, "poison record set aside");
                    let reason = format!("log record does not decode: {err}");
                    let origin = Origin::log_record(self.id, offset);
                    let raw = self.log.raw(offset)?.unwrap_or_default();
                    if let Err(err) = self.dead_letters.put(origin, &reason, &raw, now_ms) {
                        tracing::error!(partition = self.id, offset, error = %err, "cannot record dead letter");
                    }
                }
            }
            self.next_to_apply = offset + 1;
            read += 1;
        }
        if read < max_records {
            self.recovering = false;
            self.next_to_apply = self.log.next_offset();
            self.projection.end_replay(&self.global);
        }
        Ok(read)
    }

    fn append_and_apply(&mut self, event: &Event) -> Result<Applied, PartitionError> {
        self.append_and_apply_keyed(event, None)
    }

    /// Appends, then folds with the attempt's keys if the caller has them.
    fn append_and_apply_keyed(
        &mut self,
        event: &Event,
        keys: Option<AttemptKeys>,
    ) -> Result<Applied, PartitionError> {
        debug_assert!(!self.recovering);
        let offset = self.log.append(event)?;
        let applied = self
            .projection
            .apply_logged(offset, event, keys, &self.global);
        self.next_to_apply = self.log.next_offset();
        Ok(applied)
    }

    /// Scores an attempt from memory, records it with its answer.
    pub fn score(&mut self, attempt: LoginAttempt) -> Result<Scored, PartitionError> {
        self.ensure_ready()?;
        if let Some(record) = self.projection.attempt(&attempt.attempt_id) {
            return match (record.answer_at, record.user_id == attempt.user_id) {
                (Some(offset), true) => Ok(Scored {
                    assessment: self.first_answer(offset, &attempt.attempt_id)?,
                    attempt_id: attempt.attempt_id,
                    // The first record may not be durable yet either.
                    ticket: self
                        .settings
                        .score_waits_for_durability
                        .then(|| self.durability.barrier()),
                    duplicate: true,
                    shadow: None,
                }),

                _ => Err(PartitionError::EventIdConflict(attempt.attempt_id)),
            };
        }
        // Another partition may remember this event_id for another user.
        let account = velocity::account(&attempt.user_id);
        if self
            .global
            .attempt_owner(&attempt.attempt_id)
            .is_some_and(|owner| owner != account)
        {
            return Err(PartitionError::EventIdConflict(attempt.attempt_id));
        }
        let keys = AttemptKeys::of(&attempt);

        let user = self.projection.user(&attempt.user_id);
        let assessment = self
            .scoring
            .live()
            .score(&attempt, &keys, user, &self.global);
        // Shadow mode: the candidate scores the same state; the live ruleset decides.
        let shadow = self.scoring.candidate().map(|(candidate, tally)| {
            let verdict = candidate.score(&attempt, &keys, user, &self.global);
            tally.record(
                &attempt.attempt_id,
                &attempt.user_id,
                attempt.timestamp_ms,
                &assessment,
                &verdict,
            );
            verdict.decision
        });

        let attempt_id = attempt.attempt_id.clone();
        let event = Event::Attempt {
            attempt,
            assessment,
        };
        self.append_and_apply_keyed(&event, Some(keys))?;
        let Event::Attempt { assessment, .. } = event else {
            unreachable!("constructed above")
        };
        let ticket = self
            .settings
            .score_waits_for_durability
            .then(|| self.durability.barrier());
        Ok(Scored {
            attempt_id,
            assessment,
            ticket,
            duplicate: false,
            shadow,
        })
    }

    /// The answer recorded with the attempt at `offset` (a repeated
    /// event_id gets it back). A retry's path: it reads the log.
    fn first_answer(&self, offset: u64, attempt_id: &str) -> Result<Assessment, PartitionError> {
        match self.log.read_at(offset)? {
            Some(Ok(Event::Attempt {
                attempt,
                assessment,
            })) if attempt.attempt_id == attempt_id => Ok(assessment),
            _ => Err(PartitionError::Log(LogError::CorruptMeta(
                "a remembered attempt's first answer is not at its log offset",
            ))),
        }
    }

    /// Records an outcome. The ticket resolves when it is durable.
    /// A repeated outcome records nothing and still waits for durability
    /// (the first one may not be durable yet).
    pub fn outcome(&mut self, report: OutcomeReport) -> Result<(Ticket, bool), PartitionError> {
        self.ensure_ready()?;
        let duplicate = match self.projection.attempt(&report.attempt_id) {
            Some(record) if record.user_id == report.user_id => record.has_outcome(report.outcome),
            _ => return Err(PartitionError::UnknownAttempt(report.attempt_id)),
        };
        if !duplicate {
            self.append_and_apply(&Event::Outcome(report))?;
        }
        Ok((self.durability.barrier(), duplicate))
    }

    /// Records logins that already happened, in order, as one log batch
    /// (the tests' shorthand; the actor feeds requests in parts).
    #[cfg(test)]
    pub fn ingest(
        &mut self,
        logins: Vec<(LoginAttempt, Outcome)>,
    ) -> Result<Ingested, PartitionError> {
        self.ingest_part(logins, 0, &mut SeenInBatch::new())
    }

    /// One part of a bulk request (the actor feeds a large one in chunks):
    /// `first_index` is the request position of `logins[0]`, and `seen`
    /// carries the event_ids of the request's earlier parts, which may
    /// already have been forgotten by the projection.
    pub fn ingest_part(
        &mut self,
        logins: Vec<(LoginAttempt, Outcome)>,
        first_index: usize,
        seen_in_batch: &mut SeenInBatch,
    ) -> Result<Ingested, PartitionError> {
        self.ensure_ready()?;
        let mut events = Vec::with_capacity(logins.len());
        let mut duplicates = 0;
        let mut conflicts = Vec::new();
        for (index, (attempt, outcome)) in logins.into_iter().enumerate() {
            let index = first_index + index;
            let account = velocity::account(&attempt.user_id);
            // Whether the event_id is already this user's (a repeat) or
            // another user's (a conflict): this partition, then the others,
            // then earlier lines of this batch.
            let known = match self.projection.attempt(&attempt.attempt_id) {
                Some(record) => Some(record.user_id == attempt.user_id),
                None => self
                    .global
                    .attempt_owner(&attempt.attempt_id)
                    .map(|owner| owner == account),
            }
            .or_else(|| {
                seen_in_batch
                    .get(&attempt.attempt_id)
                    .map(|&owner| owner == account)
            });
            match known {
                Some(true) => duplicates += 1,
                Some(false) => conflicts.push(index),
                None => {
                    seen_in_batch.insert(attempt.attempt_id.clone(), account);
                    events.push(Event::Login { attempt, outcome });
                }
            }
        }

        if !events.is_empty() {
            let first = self.log.append_all(&events)?;
            for (offset, event) in (first..).zip(&events) {
                self.projection
                    .apply_logged(offset, event, None, &self.global);
            }
            self.next_to_apply = self.log.next_offset();
        }
        Ok(Ingested {
            recorded: events.len(),
            duplicates,
            conflicts,

            ticket: self.durability.barrier(),
        })
    }

    /// Erases a user: an erase record in the log, the projection forgets them.
    /// Returns whether the user existed, and the erase record's offset.
    pub fn erase(
        &mut self,
        user_id: String,
        now_ms: TimestampMs,
    ) -> Result<(bool, u64, Ticket), PartitionError> {
        self.ensure_ready()?;
        let offset = self.log.next_offset();
        let applied = self.append_and_apply(&Event::Erase {
            user_id: user_id.clone(),
            timestamp_ms: now_ms,
        })?;
        self.pending_erasures.push(Erasure { user_id, offset });
        self.erasures_running += 1;

        Ok((
            matches!(applied, Applied::Erased { existed: true }),
            offset,
            self.durability.barrier(),
        ))
    }

    /// A copy of the user's context (refused while recovering: a half-built
    /// context would read as a wrong answer, not as "not yet").
    pub fn user(&self, user_id: &str) -> Result<Option<UserContext>, PartitionError> {
        self.ensure_ready()?;
        Ok(self.projection.user(user_id).cloned())
    }

    /// Events appended since the last snapshot.
    pub fn events_since_snapshot(&self) -> u64 {
        self.next_to_apply.saturating_sub(self.snapshot_offset)
    }

    pub fn snapshot_due(&self) -> bool {
        self.may_snapshot()
            && self.settings.snapshot_every_events > 0
            && self.events_since_snapshot() >= self.settings.snapshot_every_events
    }

    /// Whether the actor has background work to start (checked after each
    /// write on the direct path): a snapshot or a sweep of the shared
    /// failure windows. Not erasures: they arrive through
    /// the actor's mailbox or replay, which start their compaction
    /// themselves, and a running compaction starts the next when it ends.
    pub fn maintenance_due(&self) -> bool {
        self.snapshot_due() || self.global.velocity.sweep_due()
    }

    /// The shared failure windows' sweep, when one is due (once: the
    /// caller runs it, off the request path).
    pub fn take_velocity_sweep(&self) -> Option<Arc<GlobalState>> {
        self.global
            .velocity
            .take_sweep_due()
            .then(|| self.global.clone())
    }

    fn may_snapshot(&self) -> bool {
        !self.recovering && self.erasures_running == 0
    }

    /// Writes a snapshot of the projection now (synchronously), unless one
    /// may not be written yet (recovering, erasures being compacted).
    pub fn checkpoint(&mut self) -> Result<(), PartitionError> {
        if !self.may_snapshot() {
            return Ok(());
        }
        // A snapshot must never cover records the log could still lose: a
        // crash would leave the snapshot ahead of the log.
        self.durability.sync()?;

        self.snapshots
            .save(self.id, self.next_to_apply, &self.projection)?;
        self.snapshot_offset = self.next_to_apply;
        Ok(())
    }

    /// The projection as of now, for the caller to encode and write on
    /// another thread; None when a snapshot may not be written now. The
    /// clone is O(1) (the projection's maps are persistent), so the
    /// partition's lock is held only for that. The caller must run
    /// `Durability::sync` before writing the snapshot (see `checkpoint`).
    pub fn snapshot_view(&mut self) -> Option<(u64, Projection)> {
        if !self.may_snapshot() {
            return None;
        }
        self.snapshot_offset = self.next_to_apply;
        Some((self.next_to_apply, self.projection.clone()))
    }

    pub fn snapshot_store(&self) -> &SnapshotStore {
        &self.snapshots
    }

    pub fn durability(&self) -> &Durability {
        &self.durability
    }

    /// Erasures whose log records still have to be compacted away.
    pub fn take_pending_erasures(&mut self) -> Vec<Erasure> {
        std::mem::take(&mut self.pending_erasures)
    }

    /// A job (for another thread: it scans the whole partition once) that
    /// removes the erased users' records below their erase records from
    /// the log. Erasures are batched: a burst of deletions costs one scan.
    pub fn compaction_job(
        &self,
        erasures: Vec<Erasure>,
    ) -> impl FnOnce() -> Result<Vec<Erasure>, PartitionError> + Send + 'static {
        let log = self.log.reader();
        move || {
            let erased: std::collections::HashMap<&str, u64> = erasures
                .iter()
                .map(|e| (e.user_id.as_str(), e.offset))
                .collect();
            let last = erasures.iter().map(|e| e.offset).max().unwrap_or(0);
            let mut doomed = Vec::new();
            for entry in log.read_from(0) {
                let (offset, decoded) = entry?;
                if offset >= last {
                    break;
                }
                if let Ok(event) = decoded {
                    if erased
                        .get(event.user_id())
                        .is_some_and(|&erase_offset| offset < erase_offset)
                    {
                        doomed.push(offset);
                    }
                }
            }
            log.remove_all(&doomed)?;
            Ok(erasures)
        }
    }

    /// After compaction: once no other erasure is running, snapshot (so no
    /// snapshot older than the erasures is left to resurrect the users),
    /// then drop the erase records themselves.
    pub fn finish_erasures(&mut self, erasures: &[Erasure]) -> Result<(), PartitionError> {
        self.erasures_running = self.erasures_running.saturating_sub(erasures.len());
        self.erasures_done.extend(erasures.iter().map(|e| e.offset));
        if !self.may_snapshot() {
            return Ok(());
        }
        self.checkpoint()?;
        for offset in std::mem::take(&mut self.erasures_done) {
            self.log.remove(offset)?;
        }
        Ok(())
    }

    /// A compaction job failed: the erase records stay in the log, and the
    /// next start's replay schedules the compaction again.
    pub fn abandon_erasures(&mut self, count: usize) {
        self.erasures_running = self.erasures_running.saturating_sub(count);
    }

    fn ensure_ready(&self) -> Result<(), PartitionError> {
        if self.recovering {
            return Err(PartitionError::Recovering);
        }
        Ok(())
    }
}
