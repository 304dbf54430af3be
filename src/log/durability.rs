//! The durability barrier, with group commit.
//!
//! Appends wait in memory (`pending.rs`); an event is durable only after a
//! barrier: the partitions' waiting records are written into sled as
//! blocks, then `Db::flush` (sled writes its buffers out, ending in
//! `sync_file_range`, which is no power-loss barrier: sled issues #1351,
//! #1452), then `fdatasync` on sled's data file and on any blob files. One
//! thread runs barriers; writers hand it a [`Ticket`] request over a
//! crossbeam channel and await the ticket. One barrier completes every
//! request that was queued before it started, so its cost is shared by the
//! whole group.
//!
//! When a barrier starts: barriers start at least `interval_min` apart, or
//! as soon as `events_max` requests wait. A request after a quiet spell is
//! made durable at once (a lone acknowledgement costs one barrier, not a
//! window plus a barrier); under load, the requests of one interval share
//! a barrier. Each barrier costs far more CPU than its fdatasync (sled's
//! flush hands its write to a thread pool that wakes all seven of its idle
//! threads, and the write is submitted twice: sync_file_range, then
//! fdatasync), so the interval bounds that cost per second, whatever the
//! request rate.
//!
//! While a group's window is open the thread sleeps (parked) instead of
//! receiving request by request: a blocking receive per request woke it,
//! with a spin and `sched_yield`, for every outcome (a wake-up and a
//! context switch each on a two-core machine). Writers unpark it only when
//! the group is full.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tokio::sync::oneshot;

use super::{LogError, PendingRegistry};

/// Group commit limits (from `[log]` in the configuration).
#[derive(Clone, Copy, Debug)]
pub struct GroupCommit {
    pub events_max: usize,
    /// The least time between the starts of two barriers.
    pub interval_min: Duration,
    /// With no barrier requested for this long, records appended meanwhile
    /// (scores) are written out and made durable anyway.
    pub idle_flush_max: Duration,
}

impl GroupCommit {
    pub fn from_config(log: &crate::config::LogConfig) -> GroupCommit {
        GroupCommit {
            events_max: log.group_commit_events_max,
            interval_min: Duration::from_micros(log.group_commit_interval_us_min),
            idle_flush_max: Duration::from_millis(log.idle_flush_ms_max),
        }
    }
}

/// Observes each barrier: (events in the group, time the barrier took).
pub type BarrierObserver = Arc<dyn Fn(usize, Duration) + Send + Sync>;

/// Who is told when a barrier completes: an async task (a reply waiting on
/// it) or a thread blocked on a channel (snapshots: they must not cover
/// records the log has not made durable).
enum Waiter {
    Async(oneshot::Sender<Result<(), String>>),
    Blocking(Sender<Result<(), String>>),
}

impl Waiter {
    fn complete(self, result: Result<(), String>) {
        // A waiter that went away needs no answer.
        let _ = match self {
            Waiter::Async(tx) => tx.send(result).map_err(|_| ()),
            Waiter::Blocking(tx) => tx.send(result).map_err(|_| ()),
        };
    }
}

enum Request {
    Barrier(Waiter),
    /// Complete what is queued, then stop.
    Shutdown,
}

/// Handle to the barrier thread; cheap to clone.
#[derive(Clone)]
pub struct Durability {
    requests: Sender<Request>,
    /// The barrier thread, unparked when a group reaches `events_max`.
    barrier_thread: std::thread::Thread,
    /// Requests sent and not yet taken into a barrier.
    waiting: Arc<AtomicUsize>,
    events_max: usize,
    healthy: Arc<AtomicBool>,
    observer: Arc<parking_lot::Mutex<Option<BarrierObserver>>>,
    thread: Arc<parking_lot::Mutex<Option<JoinHandle<()>>>>,
}

/// Resolves once everything appended before it was requested is durable.
pub struct Ticket(oneshot::Receiver<Result<(), String>>);

impl Ticket {
    pub async fn wait(self) -> Result<(), LogError> {
        match self.0.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(LogError::Barrier(message)),
            Err(_) => Err(LogError::BarrierStopped),
        }
    }

    /// Blocking form, for threads outside the async runtime (tools, tests).
    pub fn wait_blocking(self) -> Result<(), LogError> {
        match self.0.blocking_recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(LogError::Barrier(message)),
            Err(_) => Err(LogError::BarrierStopped),
        }
    }
}

/// How many requests the channel holds before writers block. Writers are
/// partitions, whose requests in flight are bounded (`mailbox_capacity`
/// each), so this never fills in practice; it only bounds memory if the
/// disk stalls.
const PENDING_REQUESTS_MAX: usize = 1 << 16;

impl Durability {
    pub(super) fn start(
        db: sled::Db,
        dir: &Path,
        policy: GroupCommit,
        pending: PendingRegistry,
    ) -> Result<Durability, LogError> {
        let (requests, receiver) = crossbeam_channel::bounded(PENDING_REQUESTS_MAX);
        let files = SledFiles::open(dir)?;
        let healthy = Arc::new(AtomicBool::new(true));
        let waiting = Arc::new(AtomicUsize::new(0));
        let observer: Arc<parking_lot::Mutex<Option<BarrierObserver>>> = Arc::default();
        let thread = {
            let healthy = healthy.clone();
            let observer = observer.clone();
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name("riskd-durability".into())
                .spawn(move || {
                    let store = Store { db, files, pending };
                    run(store, policy, receiver, waiting, healthy, observer)
                })
                .map_err(|source| LogError::Io {
                    path: dir.to_owned(),
                    source,
                })?
        };
        Ok(Durability {
            requests,
            barrier_thread: thread.thread().clone(),
            waiting,
            events_max: policy.events_max.max(1),
            healthy,
            observer,
            thread: Arc::new(parking_lot::Mutex::new(Some(thread))),
        })
    }

    /// A ticket for everything appended so far.
    pub fn barrier(&self) -> Ticket {
        let (tx, rx) = oneshot::channel();
        // If the thread has stopped, the request (and its sender) is dropped
        // and the ticket resolves to BarrierStopped.
        let full = self.count_request();
        let _ = self.requests.send(Request::Barrier(Waiter::Async(tx)));
        self.end_window_if(full);
        Ticket(rx)
    }

    /// Blocks this thread until everything appended so far is durable.
    /// Safe on any thread, async runtime threads included (it waits on a
    /// crossbeam channel, not a future).
    pub fn sync(&self) -> Result<(), LogError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let full = self.count_request();
        if self
            .requests
            .send(Request::Barrier(Waiter::Blocking(tx)))
            .is_err()
        {
            return Err(LogError::BarrierStopped);
        }
        self.end_window_if(full);
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(LogError::Barrier(message)),
            Err(_) => Err(LogError::BarrierStopped),
        }
    }

    /// Counts a request before it is sent (so the barrier thread never
    /// takes one it has not counted); true if it fills the group.
    fn count_request(&self) -> bool {
        self.waiting.fetch_add(1, Ordering::AcqRel) + 1 >= self.events_max
    }

    /// Ends the group's window early once it holds `events_max` requests.
    fn end_window_if(&self, full: bool) {
        if full {
            self.barrier_thread.unpark();
        }
    }

    /// False once a barrier has failed: the log can no longer be trusted to
    /// persist what it is given, and /readyz says so.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    pub fn set_observer(&self, observer: BarrierObserver) {
        *self.observer.lock() = Some(observer);
    }

    /// Runs a last barrier for everything queued and stops the thread.
    pub fn shutdown(&self) {
        let handle = self.thread.lock().take();
        if let Some(handle) = handle {
            let _ = self.requests.send(Request::Shutdown);
            handle.thread().unpark();
            if handle.join().is_err() {
                tracing::error!("durability thread panicked");
            }
        }
    }
}

/// What a barrier makes durable: the partitions' waiting records, sled's
/// buffers, sled's files.
struct Store {
    db: sled::Db,
    files: SledFiles,
    pending: PendingRegistry,
}

impl Store {
    fn has_pending(&self) -> bool {
        self.pending
            .lock()
            .iter()
            .flatten()
            .any(|pending| !pending.is_empty())
    }

    /// Writes out every partition's waiting records, then flushes sled and
    /// syncs its files.
    fn barrier(&mut self) -> Result<(), String> {
        let partitions: Vec<_> = self.pending.lock().iter().flatten().cloned().collect();
        for pending in partitions {
            pending.write_out().map_err(|err| err.to_string())?;
        }
        self.db.flush().map_err(|err| err.to_string())?;
        self.files.sync().map_err(|err| err.to_string())
    }
}

fn run(
    mut store: Store,
    policy: GroupCommit,
    receiver: Receiver<Request>,
    waiting: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
    observer: Arc<parking_lot::Mutex<Option<BarrierObserver>>>,
) {
    let mut group: Vec<Waiter> = Vec::with_capacity(policy.events_max.min(4096));
    let mut stopping = false;
    let mut last_start: Option<Instant> = None;
    while !stopping {
        match receiver.recv_timeout(policy.idle_flush_max) {
            Ok(Request::Barrier(first)) => group.push(first),
            Ok(Request::Shutdown) | Err(RecvTimeoutError::Disconnected) => stopping = true,
            // Idle: make what was appended meanwhile durable, if anything.
            Err(RecvTimeoutError::Timeout) => {
                if !store.has_pending() {
                    continue;
                }
            }
        }
        // The window: take what is queued, then sleep until the deadline
        // (`interval_min` after the last barrier started; now, after a
        // quiet spell) or until a writer finds the group full (or
        // shutdown) and unparks this thread. A spurious wake-up just goes
        // round again.
        let now = Instant::now();
        let deadline = last_start.map_or(now, |last| (last + policy.interval_min).max(now));
        while !stopping && !group.is_empty() {
            while group.len() < policy.events_max {
                match receiver.try_recv() {
                    Ok(Request::Barrier(waiter)) => group.push(waiter),
                    Ok(Request::Shutdown) => {
                        stopping = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            let now = Instant::now();
            if stopping || group.len() >= policy.events_max || now >= deadline {
                break;
            }
            std::thread::park_timeout(deadline - now);
        }
        // Writers count requests from here on towards the next group.
        waiting.fetch_sub(group.len(), Ordering::AcqRel);
        let started = Instant::now();
        last_start = Some(started);
        let result = store.barrier();
        let elapsed = started.elapsed();
        if let Err(message) = &result {
            tracing::error!(%message, "durability barrier failed; the log is no longer writable");
            healthy.store(false, Ordering::Release);
        }
        if let Some(observe) = observer.lock().as_ref() {
            observe(group.len(), elapsed);
        }
        for waiter in group.drain(..) {
            waiter.complete(result.clone());
        }
    }
}

/// sled 0.34's files that hold data: `db` (the log-structured store) and
/// `blobs/<lsn>` (nodes too large for a segment, written without sync).
struct SledFiles {
    db: File,
    db_path: PathBuf,
    blobs: PathBuf,
    synced_blobs: HashSet<std::ffi::OsString>,
}

impl SledFiles {
    fn open(dir: &Path) -> Result<SledFiles, LogError> {
        let db_path = dir.join("db");
        let db = File::open(&db_path).map_err(|source| LogError::Io {
            path: db_path.clone(),
            source,
        })?;
        Ok(SledFiles {
            db,
            db_path,
            blobs: dir.join("blobs"),
            synced_blobs: HashSet::new(),
        })
    }

    fn sync(&mut self) -> Result<(), LogError> {
        self.db.sync_data().map_err(|source| LogError::Io {
            path: self.db_path.clone(),
            source,
        })?;
        self.sync_new_blobs()
    }

    fn sync_new_blobs(&mut self) -> Result<(), LogError> {
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(LogError::Io {
                    path: self.blobs.clone(),
                    source,
                })
            }
        };
        let mut present = HashSet::new();
        let mut added = false;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !self.synced_blobs.contains(&name) {
                let path = entry.path();
                // A blob sled garbage-collected meanwhile needs no sync.
                if let Ok(file) = File::open(&path) {
                    file.sync_data()
                        .map_err(|source| LogError::Io { path, source })?;
                    added = true;
                }
            }
            present.insert(name);
        }
        self.synced_blobs = present;
        if added {
            sync_path(&self.blobs)?;
        }
        Ok(())
    }
}

/// fsync a file or directory (directories: makes new entries durable).
pub(crate) fn sync_path(path: &Path) -> Result<(), LogError> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|source| LogError::Io {
            path: path.to_owned(),
            source,
        })
}
