//! The partition actor: the owner of a partition's lifecycle. It replays
//! the log at start (a chain of self-notified steps, so the HTTP server
//! stays responsive), writes snapshots and runs compactions in the
//! background, takes bulk ingests and the rarer requests through its
//! mailbox, and writes the last snapshot at shutdown.
//!
//! The two calls on a login's critical path (score, outcome) do not go
//! through the mailbox when the partition's lock is free: the router runs
//! them on the calling HTTP worker under the lock (see [`Shared`]), and
//! sends the actor a [`Maintain`] message only when a snapshot is due.
//! When the lock is taken (the actor is in a long step, or the other
//! worker is in the partition) they come through the mailbox, as before,
//! so an HTTP worker never waits on the lock.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use actix::fut::{wrap_future, ActorFutureExt};
use actix::prelude::*;
use tokio::sync::oneshot;

use super::core::{Ingested, PartitionCore, PartitionError, Scored, SeenInBatch};
use super::{background, Readiness};
use crate::event::{LoginAttempt, Outcome, OutcomeReport, TimestampMs};
use crate::log::Ticket;
use crate::metrics::Metrics;
use crate::projection::UserContext;

pub type Reply<T> = oneshot::Sender<T>;

/// Logins of a bulk ingest folded under one hold of the partition's lock.
/// Between chunks the lock is released, so a live score for this
/// partition waits at most one chunk (about 10 ms), not a whole bulk
/// request (up to 100,000 lines).
pub const INGEST_CHUNK_LOGINS: usize = 1024;

/// What a partition's actor and the HTTP workers share.
///
/// Why a lock and not only the mailbox: on this two-core target a mailbox
/// round trip is two cross-thread wake-ups (an eventfd write and a context
/// switch each way), which profiling showed to cost more than scoring,
/// appending and folding together. Under the lock the worker does that
/// work itself; it only ever `try_lock`s, so the actor's long steps
/// (replay, snapshot encoding, an ingest chunk, a compaction's closing
/// snapshot) make the partition's requests queue in the mailbox, never
/// stall a worker and its other connections.
pub struct Shared {
    pub(super) core: parking_lot::Mutex<PartitionCore>,
    /// Requests admitted and not yet taken up (queued in the mailbox, or
    /// holding the lock on the direct path); bounded by the mailbox capacity.
    pub(super) inflight: Arc<AtomicUsize>,
    /// A [`Maintain`] message is on its way (one is enough).
    pub(super) maintenance_requested: AtomicBool,
    /// This partition's `riskd_users` series, resolved once.
    users_gauge: prometheus::IntGauge,
}

impl Shared {
    pub fn new(core: PartitionCore, metrics: &Metrics) -> Arc<Shared> {
        let users_gauge = metrics.users.with_label_values(&[&core.id().to_string()]);
        Arc::new(Shared {
            core: parking_lot::Mutex::new(core),
            inflight: Arc::default(),
            maintenance_requested: AtomicBool::new(false),
            users_gauge,
        })
    }

    pub(super) fn publish_users(&self, core: &PartitionCore) {
        self.users_gauge.set(core.projection().users_len() as i64);
    }
}

/// A request for a partition's mailbox.
pub enum Command {
    /// Score and outcome come this way only when the lock was taken.
    Score(Box<LoginAttempt>, Reply<Result<Scored, PartitionError>>),
    Outcome(OutcomeReport, Reply<Result<(Ticket, bool), PartitionError>>),
    Ingest(
        Vec<(LoginAttempt, Outcome)>,
        Reply<Result<Ingested, PartitionError>>,
    ),
    Erase(
        String,
        TimestampMs,
        Reply<Result<(bool, Ticket), PartitionError>>,
    ),
    User(String, Reply<Result<Option<UserContext>, PartitionError>>),
    /// Write a snapshot now (graceful shutdown).
    Checkpoint(Reply<Result<(), PartitionError>>),
}

/// A slot in a partition's bounded in-flight count, released when dropped.
pub struct Permit(Option<Arc<AtomicUsize>>);

impl Permit {
    pub(super) fn counted(inflight: Arc<AtomicUsize>) -> Permit {
        Permit(Some(inflight))
    }

    /// For the few control messages that must not be refused (shutdown).
    pub(super) fn uncounted() -> Permit {
        Permit(None)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(inflight) = &self.0 {
            inflight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

pub struct Envelope {
    pub command: Command,
    pub permit: Permit,
}

impl Message for Envelope {
    type Result = ();
}

/// A write on the direct path found a snapshot or a compaction due.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Maintain;

#[derive(Message)]
#[rtype(result = "()")]
struct ReplayStep;

pub struct PartitionActor {
    shared: Arc<Shared>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    replay_batch_records: usize,
    /// A snapshot is being written on a background thread.
    snapshot_in_flight: bool,
    /// A compaction job is running on a background thread.
    compaction_running: bool,
}

impl PartitionActor {
    pub fn new(
        shared: Arc<Shared>,
        readiness: Arc<Readiness>,
        metrics: Arc<Metrics>,
        replay_batch_records: usize,
    ) -> Self {
        PartitionActor {
            shared,
            readiness,
            metrics,
            replay_batch_records,
            snapshot_in_flight: false,
            compaction_running: false,
        }
    }

    fn after_write(&mut self, ctx: &mut Context<Self>) {
        let (snapshot_due, sweep) = {
            let core = self.shared.core.lock();
            (core.snapshot_due(), core.take_velocity_sweep())
        };
        if snapshot_due && !self.snapshot_in_flight {
            self.snapshot_in_background(ctx);
        }
        if let Some(global) = sweep {
            // Visits every failure source (~100 ms at a million users):
            // on the low-priority thread, holding no partition's lock.
            drop(background::run_low_priority(move || {
                global.velocity.sweep()
            }));
        }
        self.compact_in_background(ctx);
    }

    /// Takes a copy-on-write view of the projection under the lock, then
    /// encodes and writes it on the low-priority background thread
    /// ([`background`]), so requests go on being served from the partition,
    /// and have the CPU and the disk first, meanwhile.
    fn snapshot_in_background(&mut self, ctx: &mut Context<Self>) {
        let (view, store, durability, id) = {
            let mut core = self.shared.core.lock();
            (
                core.snapshot_view(),
                core.snapshot_store().clone(),
                core.durability().clone(),
                core.id(),
            )
        };
        let Some((offset, projection)) = view else {
            return;
        };
        self.snapshot_in_flight = true;
        // The records the snapshot covers were all appended before this
        // barrier is requested, so once it completes they are durable and
        // the snapshot may be written.
        let write = background::run_low_priority(move || -> Result<(), PartitionError> {
            durability.sync()?;
            store.save(id, offset, &projection)?;
            // The view's nodes are shared with the live projection until
            // dropped; dropped here, not under the lock, it frees the
            // nodes the partition has copied meanwhile.
            drop(projection);
            Ok(())
        });

        ctx.spawn(
            wrap_future::<_, Self>(write).map(move |result, actor, ctx| {
                actor.snapshot_in_flight = false;
                let outcome = match result {
                    Ok(Ok(())) => "ok",
                    Ok(Err(err)) => {
                        tracing::error!(partition = id, error = %err, "snapshot write failed");
                        "error"
                    }
                    Err(_) => {
                        tracing::error!(
                            partition = id,
                            "snapshot thread failed to start or panicked"
                        );
                        "error"
                    }
                };
                actor.metrics.snapshots.with_label_values(&[outcome]).inc();
                // Writes that came meanwhile may have made the next one due.
                actor.after_write(ctx);
            }),
        );
    }

    /// One compaction job at a time; erasures arriving meanwhile wait for
    /// the next, which takes them all.
    fn compact_in_background(&mut self, ctx: &mut Context<Self>) {
        if self.compaction_running {
            return;
        }
        let (erasures, job, id) = {
            let mut core = self.shared.core.lock();
            let erasures = core.take_pending_erasures();
            if erasures.is_empty() {
                return;
            }
            let job = core.compaction_job(erasures.clone());
            (erasures, job, core.id())
        };
        let count = erasures.len();
        self.compaction_running = true;
        let job = actix_web::rt::task::spawn_blocking(job);
        ctx.spawn(wrap_future::<_, Self>(job).map(move |result, actor, ctx| {
            actor.compaction_running = false;
            match result {
                Ok(Ok(erasures)) => {
                    let finished = actor.shared.core.lock().finish_erasures(&erasures);
                    match finished {
                        Ok(()) => actor.metrics.erasures_compacted.inc_by(erasures.len() as u64),
                        Err(err) => {
                            tracing::error!(partition = id, error = %err, "finishing erasures failed");
                        }
                    }
                }
                Ok(Err(err)) => {
                    tracing::error!(partition = id, error = %err, "compaction failed; retried at next start");
                    actor.shared.core.lock().abandon_erasures(count);
                }
                Err(err) => {
                    tracing::error!(partition = id, error = %err, "compaction task failed; retried at next start");
                    actor.shared.core.lock().abandon_erasures(count);
                }
            }
            // Erasures that arrived while this one ran.
            actor.compact_in_background(ctx);
        }));
    }

    /// A bulk ingest, chunk by chunk (see [`INGEST_CHUNK_LOGINS`]). A chunk
    /// is one atomic log batch; the reply's ticket comes from the last
    /// chunk's barrier request, which covers every chunk before it.
    fn ingest(&self, mut logins: Vec<(LoginAttempt, Outcome)>) -> Result<Ingested, PartitionError> {
        // The whole request's event_ids: an earlier chunk's may already be
        // forgotten by the projection when a later chunk repeats them.
        let mut seen = SeenInBatch::new();
        let mut rest = logins.split_off(logins.len().min(INGEST_CHUNK_LOGINS));
        let mut offset = logins.len();
        let mut total = self.shared.core.lock().ingest_part(logins, 0, &mut seen)?;
        while !rest.is_empty() {
            let later = rest.split_off(rest.len().min(INGEST_CHUNK_LOGINS));
            let chunk_len = rest.len();
            let mut chunk = self
                .shared
                .core
                .lock()
                .ingest_part(rest, offset, &mut seen)?;
            total.recorded += chunk.recorded;
            total.duplicates += chunk.duplicates;
            total.conflicts.append(&mut chunk.conflicts);
            total.ticket = chunk.ticket;
            offset += chunk_len;
            rest = later;
        }
        Ok(total)
    }
}

impl Actor for PartitionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(ReplayStep);
    }
}

impl Handler<ReplayStep> for PartitionActor {
    type Result = ();

    fn handle(&mut self, _: ReplayStep, ctx: &mut Self::Context) {
        let mut core = self.shared.core.lock();
        match core.replay_step(self.replay_batch_records, crate::clock::now_ms()) {
            Ok(read) => {
                self.metrics.replayed_records.inc_by(read as u64);
                if core.is_recovering() {
                    ctx.notify(ReplayStep);
                } else {
                    tracing::info!(
                        partition = core.id(),
                        users = core.projection().users_len(),
                        next_offset = core.next_offset(),
                        "partition caught up with its log"
                    );
                    self.shared.publish_users(&core);
                    drop(core);
                    self.readiness.mark_caught_up();
                    self.metrics.partitions_ready.inc();
                    self.after_write(ctx);
                }
            }
            Err(err) => {
                tracing::error!(partition = core.id(), error = %err, "replay failed; retrying in 1 s");
                ctx.notify_later(ReplayStep, std::time::Duration::from_secs(1));
            }
        }
    }
}

impl Handler<Maintain> for PartitionActor {
    type Result = ();

    fn handle(&mut self, _: Maintain, ctx: &mut Self::Context) {
        // Cleared first: a write after this point asks again.
        self.shared
            .maintenance_requested
            .store(false, Ordering::Release);
        self.after_write(ctx);
    }
}

impl Handler<Envelope> for PartitionActor {
    type Result = ();

    fn handle(&mut self, envelope: Envelope, ctx: &mut Self::Context) {
        let Envelope { command, permit } = envelope;
        drop(permit);
        // A send error means the requester went away; the work is done regardless.
        match command {
            Command::Score(attempt, reply) => {
                let timer = self.metrics.score_seconds.start_timer();
                let result = self.shared.core.lock().score(*attempt);
                timer.observe_duration();
                let _ = reply.send(result);
            }
            Command::Outcome(report, reply) => {
                let _ = reply.send(self.shared.core.lock().outcome(report));
            }
            Command::Ingest(logins, reply) => {
                let _ = reply.send(self.ingest(logins));
            }
            Command::Erase(user_id, now_ms, reply) => {
                let result = self
                    .shared
                    .core
                    .lock()
                    .erase(user_id, now_ms)
                    .map(|(existed, _, ticket)| (existed, ticket));
                let _ = reply.send(result);
            }
            Command::User(user_id, reply) => {
                let _ = reply.send(self.shared.core.lock().user(&user_id));
                return;
            }
            Command::Checkpoint(reply) => {
                let _ = reply.send(self.shared.core.lock().checkpoint());
                return;
            }
        }
        self.shared.publish_users(&self.shared.core.lock());
        self.after_write(ctx);
    }
}
