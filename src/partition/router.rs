//! Routes each request to its user's partition, with a bound on the
//! requests in flight per partition: a request that finds its partition
//! full is refused at once (429 `overloaded`), never queued without limit.
//!
//! Score and outcome run on the calling thread under the partition's lock
//! when it is free (the direct path, see [`Shared`]) and through the
//! actor's mailbox when it is not; the rest always goes through the mailbox.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use tokio::sync::oneshot;

use super::actor::{Command, Envelope, Maintain, PartitionActor, Permit, Shared};
use super::core::{Ingested, PartitionCore, PartitionError, Scored};
use super::Readiness;
use crate::event::{LoginAttempt, Outcome, OutcomeReport, TimestampMs};
use crate::hash::partition_of;
use crate::log::Ticket;
use crate::metrics::Metrics;
use crate::projection::UserContext;

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("partition {0} is saturated")]
    Overloaded(usize),
    #[error("partition {0} is still recovering")]
    Recovering(usize),
    #[error("partition {0} has stopped")]
    Stopped(usize),
    #[error(transparent)]
    Partition(PartitionError),
}

impl From<PartitionError> for RouteError {
    fn from(err: PartitionError) -> RouteError {
        RouteError::Partition(err)
    }
}

pub struct PartitionHandle {
    pub addr: Addr<PartitionActor>,
    shared: Arc<Shared>,
}

impl PartitionHandle {
    pub fn new(addr: Addr<PartitionActor>, shared: Arc<Shared>) -> PartitionHandle {
        PartitionHandle { addr, shared }
    }

    /// Counts a request in, unless the partition is full.
    fn admit(&self, partition: usize, capacity: usize) -> Result<Permit, RouteError> {
        let inflight = &self.shared.inflight;
        if inflight.fetch_add(1, Ordering::AcqRel) >= capacity {
            inflight.fetch_sub(1, Ordering::AcqRel);
            return Err(RouteError::Overloaded(partition));
        }
        Ok(Permit::counted(inflight.clone()))
    }
}

/// How long a bulk ingest waits for room in a saturated partition before
/// giving up with 503 (bulk callers prefer waiting to a partial failure).
pub const BULK_WAIT_MAX: Duration = Duration::from_secs(10);
const BULK_RETRY_INTERVAL: Duration = Duration::from_millis(2);

/// How an admitted score or outcome reaches its partition's core.
enum Entry<'a> {
    Direct {
        core: parking_lot::MutexGuard<'a, PartitionCore>,
        permit: Permit,
    },
    Mailbox {
        permit: Permit,
    },
}

#[derive(Clone)]
pub struct Router {
    handles: Arc<[PartitionHandle]>,
    mailbox_capacity: usize,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    /// `riskd_partition_path_total{path="direct"|"mailbox"}`, resolved once.
    direct_calls: prometheus::IntCounter,
    mailbox_calls: prometheus::IntCounter,
}

impl Router {
    pub fn new(
        handles: Vec<PartitionHandle>,
        mailbox_capacity: usize,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
    ) -> Router {
        Router {
            handles: handles.into(),
            mailbox_capacity,
            direct_calls: metrics.partition_path.with_label_values(&["direct"]),
            mailbox_calls: metrics.partition_path.with_label_values(&["mailbox"]),
            metrics,
            readiness,
        }
    }

    pub fn partitions(&self) -> usize {
        self.handles.len()
    }

    /// Whether every partition actor is still running.
    pub fn all_running(&self) -> bool {
        self.handles.iter().all(|handle| handle.addr.connected())
    }

    pub fn partition_for(&self, user_id: &str) -> usize {
        partition_of(user_id, self.handles.len() as u32) as usize
    }

    /// Sends `command` if the partition has room.
    fn try_send(&self, partition: usize, command: Command) -> Result<(), (RouteError, Command)> {
        let handle = &self.handles[partition];
        let permit = match handle.admit(partition, self.mailbox_capacity) {
            Ok(permit) => permit,
            Err(err) => return Err((err, command)),
        };
        let envelope = Envelope { command, permit };
        handle.addr.try_send(envelope).map_err(|err| {
            let envelope = err.into_inner();
            (RouteError::Stopped(partition), envelope.command)
        })
    }

    async fn call<R>(
        &self,
        partition: usize,
        make: impl FnOnce(oneshot::Sender<R>) -> Command,
    ) -> Result<R, RouteError> {
        let (tx, rx) = oneshot::channel();
        if let Err((err, _)) = self.try_send(partition, make(tx)) {
            if matches!(err, RouteError::Overloaded(_)) {
                self.metrics.shed.with_label_values(&["overloaded"]).inc();
            }
            return Err(err);
        }
        rx.await.map_err(|_| RouteError::Stopped(partition))
    }

    /// Admits a score or outcome to its partition, and takes the
    /// partition's lock if it is free right now (the direct path). When it
    /// is not (the actor is in a long step, or the other worker is in this
    /// partition), the request goes through the mailbox instead, so this
    /// thread never waits on the lock.
    fn enter(&self, partition: usize) -> Result<Entry<'_>, RouteError> {
        let handle = &self.handles[partition];
        // Every partition, not only this one: an attempt's event_id is
        // checked against all partitions' remembered attempts, which are
        // complete only once all have replayed.
        if !self.readiness.all_caught_up() {
            return Err(RouteError::Recovering(partition));
        }
        if !handle.addr.connected() {
            return Err(RouteError::Stopped(partition));
        }
        let permit = handle
            .admit(partition, self.mailbox_capacity)
            .inspect_err(|_| {
                self.metrics.shed.with_label_values(&["overloaded"]).inc();
            })?;
        Ok(match handle.shared.core.try_lock() {
            Some(core) => {
                self.direct_calls.inc();
                Entry::Direct { core, permit }
            }
            None => {
                self.mailbox_calls.inc();
                Entry::Mailbox { permit }
            }
        })
    }

    /// After a direct call: publishes the user count and asks the actor
    /// for a snapshot when one is due (one request in flight at a time).
    fn leave(&self, partition: usize, core: parking_lot::MutexGuard<'_, PartitionCore>) {
        let handle = &self.handles[partition];
        handle.shared.publish_users(&core);
        let maintenance_due = core.maintenance_due();
        drop(core);
        if maintenance_due
            && !handle
                .shared
                .maintenance_requested
                .swap(true, Ordering::AcqRel)
        {
            handle.addr.do_send(Maintain);
        }
    }

    /// Sends an admitted request to the partition's mailbox and awaits the reply.
    async fn through_mailbox<R>(
        &self,
        partition: usize,
        permit: Permit,
        make: impl FnOnce(oneshot::Sender<R>) -> Command,
    ) -> Result<R, RouteError> {
        let (tx, rx) = oneshot::channel();
        let envelope = Envelope {
            command: make(tx),
            permit,
        };
        self.handles[partition]
            .addr
            .try_send(envelope)
            .map_err(|_| RouteError::Stopped(partition))?;
        rx.await.map_err(|_| RouteError::Stopped(partition))
    }

    /// Scores an attempt: on this thread if the partition's lock is free,
    /// through the mailbox otherwise.
    pub async fn score(&self, attempt: LoginAttempt) -> Result<Scored, RouteError> {
        let partition = self.partition_for(&attempt.user_id);
        match self.enter(partition)? {
            Entry::Direct { mut core, permit } => {
                let timer = self.metrics.score_seconds.start_timer();
                let scored = core.score(attempt);
                timer.observe_duration();
                self.leave(partition, core);
                drop(permit);
                flatten(partition, Ok(scored))
            }
            Entry::Mailbox { permit } => {
                let reply = self
                    .through_mailbox(partition, permit, |tx| {
                        Command::Score(Box::new(attempt), tx)
                    })
                    .await;
                flatten(partition, reply)
            }
        }
    }

    /// Records an outcome (like `score`); the ticket resolves once durable.
    pub async fn outcome(&self, report: OutcomeReport) -> Result<(Ticket, bool), RouteError> {
        let partition = self.partition_for(&report.user_id);
        match self.enter(partition)? {
            Entry::Direct { mut core, permit } => {
                let recorded = core.outcome(report);
                self.leave(partition, core);
                drop(permit);
                flatten(partition, Ok(recorded))
            }
            Entry::Mailbox { permit } => {
                let reply = self
                    .through_mailbox(partition, permit, |tx| Command::Outcome(report, tx))
                    .await;
                flatten(partition, reply)
            }
        }
    }

    pub async fn erase(
        &self,
        user_id: String,
        now_ms: TimestampMs,
    ) -> Result<(bool, Ticket), RouteError> {
        let partition = self.partition_for(&user_id);
        flatten(
            partition,
            self.call(partition, |tx| Command::Erase(user_id, now_ms, tx))
                .await,
        )
    }

    pub async fn user(&self, user_id: String) -> Result<Option<UserContext>, RouteError> {
        let partition = self.partition_for(&user_id);
        flatten(
            partition,
            self.call(partition, |tx| Command::User(user_id, tx)).await,
        )
    }

    /// Ingests one partition's share of a bulk request, waiting (up to
    /// [`BULK_WAIT_MAX`]) for room rather than failing half a batch.
    pub async fn ingest(
        &self,
        partition: usize,
        logins: Vec<(LoginAttempt, Outcome)>,
    ) -> Result<Ingested, RouteError> {
        let deadline = Instant::now() + BULK_WAIT_MAX;
        let (tx, rx) = oneshot::channel();
        let mut command = Command::Ingest(logins, tx);
        loop {
            match self.try_send(partition, command) {
                Ok(()) => break,
                Err((RouteError::Overloaded(_), returned)) if Instant::now() < deadline => {
                    command = returned;
                    actix_web::rt::time::sleep(BULK_RETRY_INTERVAL).await;
                }
                Err((err, _)) => {
                    self.metrics.shed.with_label_values(&["overloaded"]).inc();
                    return Err(err);
                }
            }
        }
        flatten(
            partition,
            rx.await.map_err(|_| RouteError::Stopped(partition)),
        )
    }

    /// Asks every partition to write a snapshot (graceful shutdown); waits for all.
    pub async fn checkpoint_all(&self) -> Vec<Result<(), RouteError>> {
        let mut results = Vec::with_capacity(self.handles.len());
        for (partition, handle) in self.handles.iter().enumerate() {
            let (tx, rx) = oneshot::channel();
            let envelope = Envelope {
                command: Command::Checkpoint(tx),
                permit: Permit::uncounted(),
            };
            let result = match handle.addr.send(envelope).await {
                Ok(()) => flatten(
                    partition,
                    rx.await.map_err(|_| RouteError::Stopped(partition)),
                ),
                Err(_) => Err(RouteError::Stopped(partition)),
            };
            results.push(result);
        }
        results
    }
}

fn flatten<T>(
    partition: usize,
    result: Result<Result<T, PartitionError>, RouteError>,
) -> Result<T, RouteError> {
    match result? {
        Ok(value) => Ok(value),
        Err(PartitionError::Recovering) => Err(RouteError::Recovering(partition)),
        Err(err) => Err(RouteError::Partition(err)),
    }
}
