//! The event log: append-only, partitioned, on sled.
//!
//! One sled database under `<data_dir>/log`, one tree per partition
//! (`p0`, `p1`, ...), keyed by the partition's offset as a big-endian u64 so
//! sled's key order is log order. Values are [`crate::event::codec`]
//! envelopes. A `meta` tree records the partition count: a data directory
//! written with P partitions refuses to start with another P, because the
//! user-to-partition mapping would change under it.
//!
//! Writes become durable only through [`durability::Durability`]: sled's own
//! `flush` is not a power-loss barrier on Linux (it ends in
//! `sync_file_range`), so the barrier adds `fdatasync` on sled's files.

pub mod durability;

use std::path::{Path, PathBuf};

use crate::event::codec::{self, CodecError};
use crate::event::Event;

pub use durability::{Durability, GroupCommit, Ticket};

const META_TREE: &[u8] = b"meta";
const META_PARTITIONS: &[u8] = b"partitions";
/// Per partition: the next offset, recorded when a record is removed, so
/// that removing the last record never lets a restart reuse its offset.
fn high_water_key(partition: u32) -> Vec<u8> {
    format!("next_offset/p{partition}").into_bytes()
}
const DEAD_LETTER_TREE: &[u8] = b"dead_letters";

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log storage error: {0}")]
    Storage(#[from] sled::Error),
    #[error("event log I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data directory was created with {recorded} partitions but log.partitions is {configured}; \
         partitions cannot change on an existing data directory"
    )]
    PartitionMismatch { recorded: u32, configured: u32 },
    #[error("event log metadata is corrupt: {0}")]
    CorruptMeta(&'static str),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("the durability barrier failed: {0}")]
    Barrier(String),
    #[error("the durability barrier has stopped")]
    BarrierStopped,
}

/// The opened event log of a data directory.
pub struct LogStore {
    db: sled::Db,
    dir: PathBuf,
    partitions: u32,
}

impl LogStore {
    pub fn open(
        data_dir: &Path,
        partitions: u32,
        cache_capacity_bytes: u64,
    ) -> Result<LogStore, LogError> {
        let dir = data_dir.join("log");
        let fresh = !dir.exists();
        let db = open_waiting_for_lock(&dir, cache_capacity_bytes)?;
        let meta = db.open_tree(META_TREE)?;
        match meta.get(META_PARTITIONS)? {
            Some(bytes) => {
                let recorded = u32::from_be_bytes(
                    bytes
                        .as_ref()
                        .try_into()
                        .map_err(|_| LogError::CorruptMeta("partitions"))?,
                );
                if recorded != partitions {
                    return Err(LogError::PartitionMismatch {
                        recorded,
                        configured: partitions,
                    });
                }
            }
            None => {
                meta.insert(META_PARTITIONS, &partitions.to_be_bytes())?;
            }
        }
        let store = LogStore {
            db,
            dir,
            partitions,
        };
        if fresh {
            // The directory entries of sled's files must be durable too, once.
            store.db.flush()?;
            durability::sync_path(&store.dir)?;
            durability::sync_path(data_dir)?;
        }
        Ok(store)
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    pub fn partition(&self, partition: u32) -> Result<PartitionLog, LogError> {
        debug_assert!(partition < self.partitions);
        let tree = self.db.open_tree(format!("p{partition}"))?;
        let meta = self.db.open_tree(META_TREE)?;
        let last = match tree.last()? {
            Some((key, _)) => decode_offset(&key)? + 1,
            None => 0,
        };
        let high_water = match meta.get(high_water_key(partition))? {
            Some(bytes) => decode_offset(&bytes)?,
            None => 0,
        };
        let removals = Removals {
            meta,
            key: high_water_key(partition),
        };
        Ok(PartitionLog {
            tree,
            next_offset: last.max(high_water),
            removals,
        })
    }

    /// The tree dead letters live in (same database, same durability barrier).
    pub fn dead_letter_tree(&self) -> Result<sled::Tree, LogError> {
        Ok(self.db.open_tree(DEAD_LETTER_TREE)?)
    }

    /// Starts the group-commit thread for this database.
    pub fn start_durability(&self, policy: GroupCommit) -> Result<Durability, LogError> {
        Durability::start(self.db.clone(), &self.dir, policy)
    }
}

/// How long opening waits for the database lock. sled releases it only
/// when its background threads have let go of a dropped database, so a
/// restart within one process (tests, embedding) can find it briefly held.
const LOCK_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(5);

fn open_waiting_for_lock(dir: &Path, cache_capacity_bytes: u64) -> Result<sled::Db, LogError> {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(cache_capacity_bytes)
            .open()
        {
            Err(sled::Error::Io(err))
                if err.kind() == std::io::ErrorKind::Other
                    && err.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT_MAX =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return Ok(result?),
        }
    }
}

/// One partition's log: the only writer of its tree is its partition actor.
pub struct PartitionLog {
    tree: sled::Tree,
    next_offset: u64,
    removals: Removals,
}

/// Removes records while keeping the partition's offset high-water mark.
#[derive(Clone)]
struct Removals {
    meta: sled::Tree,
    key: Vec<u8>,
}

impl Removals {
    fn remove(&self, tree: &sled::Tree, offset: u64) -> Result<(), LogError> {
        self.meta.fetch_and_update(&self.key, |old| {
            let old = old
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            Some(old.max(offset + 1).to_be_bytes().to_vec())
        })?;
        tree.remove(offset.to_be_bytes())?;
        Ok(())
    }
}

impl PartitionLog {
    /// The offset the next append gets (= number of records ever appended).
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Appends one event; returns its offset. Not durable until a barrier.
    pub fn append(&mut self, event: &Event) -> Result<u64, LogError> {
        let bytes = codec::encode(event)?;
        let offset = self.next_offset;
        self.tree.insert(offset.to_be_bytes(), bytes)?;
        self.next_offset += 1;
        Ok(offset)
    }

    /// Appends events atomically (all or none); returns the first offset.
    pub fn append_all(&mut self, events: &[Event]) -> Result<u64, LogError> {
        let first = self.next_offset;
        let mut batch = sled::Batch::default();
        for (i, event) in events.iter().enumerate() {
            batch.insert(&(first + i as u64).to_be_bytes(), codec::encode(event)?);
        }
        self.tree.apply_batch(batch)?;
        self.next_offset += events.len() as u64;
        Ok(first)
    }

    /// Records from `offset` on, in order. A record that does not decode is
    /// yielded as an error with its offset, so the reader can set it aside.
    pub fn read_from(
        &self,
        offset: u64,
    ) -> impl Iterator<Item = Result<(u64, Result<Event, CodecError>), LogError>> {
        read_from(&self.tree, offset)
    }

    /// The stored bytes of one record (to keep a poison record's bytes).
    pub fn raw(&self, offset: u64) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self.tree.get(offset.to_be_bytes())?.map(|v| v.to_vec()))
    }

    /// Appends bytes that are not an event (tests of poison-record handling).
    #[cfg(test)]
    pub(crate) fn append_raw(&mut self, bytes: &[u8]) -> Result<u64, LogError> {
        let offset = self.next_offset;
        self.tree.insert(offset.to_be_bytes(), bytes)?;
        self.next_offset += 1;
        Ok(offset)
    }

    /// Drops the record at `offset` (compaction after an erasure). Its
    /// offset is never handed out again.
    pub fn remove(&self, offset: u64) -> Result<(), LogError> {
        self.removals.remove(&self.tree, offset)
    }

    /// A handle for reading and compacting on another thread. Appends stay
    /// with this writer; the reader only touches records below offsets it is given.
    pub fn reader(&self) -> LogReader {
        LogReader {
            tree: self.tree.clone(),
            removals: self.removals.clone(),
        }
    }

    /// Records currently stored (after compaction, fewer than `next_offset`).
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

/// Read access to one partition's records from another thread.
pub struct LogReader {
    tree: sled::Tree,
    removals: Removals,
}

impl LogReader {
    pub fn read_from(
        &self,
        offset: u64,
    ) -> impl Iterator<Item = Result<(u64, Result<Event, CodecError>), LogError>> {
        read_from(&self.tree, offset)
    }

    pub fn remove(&self, offset: u64) -> Result<(), LogError> {
        self.removals.remove(&self.tree, offset)
    }
}

fn read_from(
    tree: &sled::Tree,
    offset: u64,
) -> impl Iterator<Item = Result<(u64, Result<Event, CodecError>), LogError>> {
    tree.range(offset.to_be_bytes()..).map(|entry| {
        let (key, value) = entry?;
        Ok((decode_offset(&key)?, codec::decode(&value)))
    })
}

fn decode_offset(key: &[u8]) -> Result<u64, LogError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| LogError::CorruptMeta("log key is not a u64 offset"))?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests;
