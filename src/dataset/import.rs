//! `riskd import`: appends logins to a data directory's event log as
//! `Event::Login` records, each in its user's partition, so that the next
//! `riskd serve` replays them into its projections like `POST /v1/events`
//! lines. Labels are not recorded (the engine never sees them).
//!
//! The server must not run on the directory meanwhile: sled locks its
//! database, and the importer says so instead of waiting.

use std::path::{Path, PathBuf};

use super::LabelledLogin;
use crate::config::LogConfig;
use crate::event::Event;
use crate::hash::partition_of;
use crate::log::{GroupCommit, LogError, LogStore, PartitionLog};

/// Events appended to one partition in one atomic batch.
pub const CHUNK_EVENTS_MAX: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "the event log in {} is locked by another process: is `riskd serve` running on this \
         data directory? Stop it before importing",
        dir.display()
    )]
    Locked { dir: PathBuf },
    #[error("cannot create data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Appends logins to a data directory's log, batched per partition.
pub struct Importer {
    store: LogStore,
    partitions: Vec<PartitionLog>,
    pending: Vec<Vec<Event>>,
    appended: u64,
    group_commit: GroupCommit,
}

impl Importer {
    /// Opens (or creates) the log of `data_dir` with the configuration's
    /// partition count (an existing directory with another count is refused).
    pub fn open(data_dir: &Path, log: &LogConfig) -> Result<Importer, ImportError> {
        std::fs::create_dir_all(data_dir).map_err(|source| ImportError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let store =
            LogStore::open(data_dir, log.partitions, log.cache_capacity_bytes).map_err(|err| {
                match err {
                    err if is_lock_error(&err) => ImportError::Locked {
                        dir: data_dir.to_owned(),
                    },
                    err => ImportError::Log(err),
                }
            })?;
        let partitions = (0..log.partitions)
            .map(|p| store.partition(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Importer {
            pending: partitions.iter().map(|_| Vec::new()).collect(),
            store,
            partitions,
            appended: 0,
            group_commit: GroupCommit::from_config(log),
        })
    }

    /// Queues one login; full chunks are appended (not yet durable).
    pub fn push(&mut self, login: LabelledLogin) -> Result<(), ImportError> {
        let partition = partition_of(&login.attempt.user_id, self.store.partitions()) as usize;
        self.pending[partition].push(Event::Login {
            attempt: login.attempt,
            outcome: login.outcome,
        });
        if self.pending[partition].len() >= CHUNK_EVENTS_MAX {
            self.flush_partition(partition)?;
        }
        Ok(())
    }

    fn flush_partition(&mut self, partition: usize) -> Result<(), ImportError> {
        let events = &mut self.pending[partition];
        if !events.is_empty() {
            self.partitions[partition].append_all(events)?;
            self.appended += events.len() as u64;
            events.clear();
        }
        Ok(())
    }

    /// Appends what is queued and makes everything durable (sled flush +
    /// fdatasync, the server's barrier). Returns the events appended.
    pub fn finish(mut self) -> Result<u64, ImportError> {
        for partition in 0..self.pending.len() {
            self.flush_partition(partition)?;
        }
        let durability = self.store.start_durability(self.group_commit)?;
        let barrier = durability.barrier().wait_blocking();
        durability.shutdown();
        barrier?;
        Ok(self.appended)
    }
}

fn is_lock_error(err: &LogError) -> bool {
    matches!(err, LogError::Storage(sled::Error::Io(io)) if io.to_string().contains("could not acquire lock"))
}
