//! Routes each request to its user's partition, with a bound on the
//! messages in flight per partition: a request that finds its partition
//! full is refused at once (429 `overloaded`), never queued without limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use tokio::sync::oneshot;

use super::actor::{Command, Envelope, PartitionActor, Permit};
use super::core::{Ingested, PartitionError, Scored};
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
    inflight: Arc<AtomicUsize>,
}

impl PartitionHandle {
    pub fn new(addr: Addr<PartitionActor>) -> PartitionHandle {
        PartitionHandle {
            addr,
            inflight: Arc::default(),
        }
    }
}

/// How long a bulk ingest waits for room in a saturated partition before
/// giving up with 503 (bulk callers prefer waiting to a partial failure).
pub const BULK_WAIT_MAX: Duration = Duration::from_secs(10);
const BULK_RETRY_INTERVAL: Duration = Duration::from_millis(2);

#[derive(Clone)]
pub struct Router {
    handles: Arc<[PartitionHandle]>,
    mailbox_capacity: usize,
    metrics: Arc<Metrics>,
}

impl Router {
    pub fn new(
        handles: Vec<PartitionHandle>,
        mailbox_capacity: usize,
        metrics: Arc<Metrics>,
    ) -> Router {
        Router {
            handles: handles.into(),
            mailbox_capacity,
            metrics,
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
        if handle.inflight.fetch_add(1, Ordering::AcqRel) >= self.mailbox_capacity {
            handle.inflight.fetch_sub(1, Ordering::AcqRel);
            return Err((RouteError::Overloaded(partition), command));
        }
        let envelope = Envelope {
            command,
            permit: Permit::counted(handle.inflight.clone()),
        };
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

    pub async fn score(&self, attempt: LoginAttempt) -> Result<Scored, RouteError> {
        let partition = self.partition_for(&attempt.user_id);
        flatten(
            partition,
            self.call(partition, |tx| Command::Score(Box::new(attempt), tx))
                .await,
        )
    }

    pub async fn outcome(&self, report: OutcomeReport) -> Result<(Ticket, bool), RouteError> {
        let partition = self.partition_for(&report.user_id);
        flatten(
            partition,
            self.call(partition, |tx| Command::Outcome(report, tx))
                .await,
        )
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
