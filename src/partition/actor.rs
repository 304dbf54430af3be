//! The partition actor: a shell that hands each message to its
//! [`PartitionCore`] and replies through the message's oneshot channel.
//! Recovery runs as a chain of self-notified steps so the actor (and the
//! HTTP server) stay responsive while a partition replays its log.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::fut::{wrap_future, ActorFutureExt};
use actix::prelude::*;
use tokio::sync::oneshot;

use super::core::{Ingested, PartitionCore, PartitionError, Scored};
use super::Readiness;
use crate::event::{LoginAttempt, Outcome, OutcomeReport, TimestampMs};
use crate::log::Ticket;
use crate::metrics::Metrics;
use crate::projection::UserContext;

pub type Reply<T> = oneshot::Sender<T>;

/// A request for a partition.
pub enum Command {
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

/// A slot in a partition's bounded queue, released when the actor takes
/// the message (or drops it).
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

#[derive(Message)]
#[rtype(result = "()")]
struct ReplayStep;

pub struct PartitionActor {
    core: PartitionCore,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    replay_batch_records: usize,
    /// A snapshot is being written on a background thread.
    snapshot_in_flight: bool,
    /// This partition's `riskd_users` series, resolved once (not per request).
    users_gauge: prometheus::IntGauge,
    /// A compaction job is running on a background thread.
    compaction_running: bool,
}

impl PartitionActor {
    pub fn new(
        core: PartitionCore,
        readiness: Arc<Readiness>,
        metrics: Arc<Metrics>,
        replay_batch_records: usize,
    ) -> Self {
        let users_gauge = metrics.users.with_label_values(&[&core.id().to_string()]);
        PartitionActor {
            core,
            readiness,
            metrics,
            replay_batch_records,
            snapshot_in_flight: false,
            users_gauge,
            compaction_running: false,
        }
    }

    fn publish_users(&self) {
        self.users_gauge
            .set(self.core.projection().users_len() as i64);
    }

    fn after_write(&mut self, ctx: &mut Context<Self>) {
        if self.core.snapshot_due() && !self.snapshot_in_flight {
            self.snapshot_in_background(ctx);
        }
        self.compact_in_background(ctx);
    }

    /// Encodes the snapshot here (the state must hold still), writes it elsewhere.
    fn snapshot_in_background(&mut self, ctx: &mut Context<Self>) {
        let (offset, bytes) = match self.core.snapshot_bytes() {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return,
            Err(err) => {
                tracing::error!(partition = self.core.id(), error = %err, "snapshot encoding failed");
                self.metrics.snapshots.with_label_values(&["error"]).inc();
                return;
            }
        };
        self.snapshot_in_flight = true;
        let store = self.core.snapshot_store().clone();
        let durability = self.core.durability().clone();
        let id = self.core.id();
        // The records the snapshot covers were all appended before this
        // barrier is requested, so once it completes they are durable and
        // the snapshot may be written.
        let write = actix_web::rt::task::spawn_blocking(move || -> Result<(), PartitionError> {
            durability.sync()?;
            store.write(id, offset, &bytes)?;
            Ok(())
        });

        ctx.spawn(wrap_future::<_, Self>(write).map(|result, actor, _| {
            actor.snapshot_in_flight = false;
            let outcome = match result {
                Ok(Ok(())) => "ok",
                Ok(Err(err)) => {
                    tracing::error!(partition = actor.core.id(), error = %err, "snapshot write failed");
                    "error"
                }
                Err(err) => {
                    tracing::error!(partition = actor.core.id(), error = %err, "snapshot task failed");
                    "error"
                }
            };
            actor.metrics.snapshots.with_label_values(&[outcome]).inc();
        }));
    }

    /// One compaction job at a time; erasures arriving meanwhile wait for
    /// the next, which takes them all.
    fn compact_in_background(&mut self, ctx: &mut Context<Self>) {
        if self.compaction_running {
            return;
        }
        let erasures = self.core.take_pending_erasures();
        if erasures.is_empty() {
            return;
        }
        let count = erasures.len();
        self.compaction_running = true;
        let job = actix_web::rt::task::spawn_blocking(self.core.compaction_job(erasures));
        ctx.spawn(wrap_future::<_, Self>(job).map(move |result, actor, ctx| {
            actor.compaction_running = false;
            match result {
                Ok(Ok(erasures)) => {
                    match actor.core.finish_erasures(&erasures) {
                        Ok(()) => actor.metrics.erasures_compacted.inc_by(erasures.len() as u64),
                        Err(err) => {
                        tracing::error!(partition = actor.core.id(), error = %err, "finishing erasures failed");
                        }
                    }
                }
                Ok(Err(err)) => {
                    tracing::error!(partition = actor.core.id(), error = %err, "compaction failed; retried at next start");
                    actor.core.abandon_erasures(count);
                }
                Err(err) => {
                    tracing::error!(partition = actor.core.id(), error = %err, "compaction task failed; retried at next start");
                    actor.core.abandon_erasures(count);
                }
            }
            // Erasures that arrived while this one ran.
            actor.compact_in_background(ctx);
        }));
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
        match self
            .core
            .replay_step(self.replay_batch_records, crate::clock::now_ms())
        {
            Ok(read) => {
                self.metrics.replayed_records.inc_by(read as u64);
                if self.core.is_recovering() {
                    ctx.notify(ReplayStep);
                } else {
                    tracing::info!(
                        partition = self.core.id(),
                        users = self.core.projection().users_len(),
                        next_offset = self.core.next_offset(),
                        "partition caught up with its log"
                    );
                    self.publish_users();
                    self.readiness.mark_caught_up();
                    self.metrics.partitions_ready.inc();
                    self.after_write(ctx);
                }
            }
            Err(err) => {
                tracing::error!(partition = self.core.id(), error = %err, "replay failed; retrying in 1 s");
                ctx.notify_later(ReplayStep, std::time::Duration::from_secs(1));
            }
        }
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
                let result = self.core.score(*attempt);
                timer.observe_duration();
                let _ = reply.send(result);
            }
            Command::Outcome(report, reply) => {
                let _ = reply.send(self.core.outcome(report));
            }
            Command::Ingest(logins, reply) => {
                let _ = reply.send(self.core.ingest(logins));
            }
            Command::Erase(user_id, now_ms, reply) => {
                let result = self
                    .core
                    .erase(user_id, now_ms)
                    .map(|(existed, _, ticket)| (existed, ticket));
                let _ = reply.send(result);
            }
            Command::User(user_id, reply) => {
                let _ = reply.send(self.core.user(&user_id));
                return;
            }
            Command::Checkpoint(reply) => {
                let _ = reply.send(self.core.checkpoint());
                return;
            }
        }
        self.publish_users();
        self.after_write(ctx);
    }
}
