//! The event log: append-only, partitioned, on sled.
//!
//! One sled database under `<data_dir>/log`, one tree per partition
//! (`p0`, `p1`, ...). Every record has an offset in its partition; records
//! are stored in blocks of consecutive records (`block.rs`), keyed by the
//! block's first offset as a big-endian u64 so sled's key order is log
//! order. Records are [`crate::event::codec`] envelopes. A `meta` tree
//! records the partition count: a data directory written with P
//! partitions refuses to start with another P, because the
//! user-to-partition mapping would change under it.
//!
//! An append puts its record in memory (`pending.rs`) and returns; the
//! records reach sled as blocks when the durability thread writes them
//! out, before every barrier. Writes become durable only through
//! [`durability::Durability`]: sled's own `flush` is not a power-loss
//! barrier on Linux (it ends in `sync_file_range`), so the barrier adds
//! `fdatasync` on sled's files.

mod block;
pub mod durability;
mod pending;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use pending::Pending;

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
    /// Each partition's records waiting to be written into sled, shared by
    /// its writer, its readers and the durability thread (which writes
    /// them out before every barrier).
    pending: PendingRegistry,
}

/// Per partition, its [`Pending`] once opened.
type PendingRegistry = Arc<Mutex<Vec<Option<Arc<Pending>>>>>;

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
            pending: Arc::new(Mutex::new(vec![None; partitions as usize])),
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

    /// A handle on partition `partition`'s log. Handles on one partition
    /// share its offsets and its records waiting for sled.
    pub fn partition(&self, partition: u32) -> Result<PartitionLog, LogError> {
        debug_assert!(partition < self.partitions);
        let tree = self.db.open_tree(format!("p{partition}"))?;
        let meta = self.db.open_tree(META_TREE)?;
        let mut registry = self.pending.lock();
        let slot = registry
            .get_mut(partition as usize)
            .ok_or(LogError::CorruptMeta("partition out of range"))?;
        let pending = match slot {
            Some(pending) => pending.clone(),
            None => {
                let last = match tree.last()? {
                    Some((key, value)) => block::end_offset(decode_offset(&key)?, &value),
                    None => 0,
                };
                let high_water = match meta.get(high_water_key(partition))? {
                    Some(bytes) => decode_offset(&bytes)?,
                    None => 0,
                };
                let pending = Arc::new(Pending::new(tree.clone(), last.max(high_water)));
                *slot = Some(pending.clone());
                pending
            }
        };
        let removals = Removals {
            meta,
            key: high_water_key(partition),
        };
        Ok(PartitionLog {
            tree,
            pending,
            removals,
        })
    }

    /// The tree dead letters live in (same database, same durability barrier).
    pub fn dead_letter_tree(&self) -> Result<sled::Tree, LogError> {
        Ok(self.db.open_tree(DEAD_LETTER_TREE)?)
    }

    /// Starts the group-commit thread for this database.
    pub fn start_durability(&self, policy: GroupCommit) -> Result<Durability, LogError> {
        Durability::start(self.db.clone(), &self.dir, policy, self.pending.clone())
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

/// One record read from the log: its offset and the event, or the reason
/// it does not decode (a poison record, for the reader to set aside).
pub type LogEntry = Result<(u64, Result<Event, CodecError>), LogError>;

/// One partition's log: the only writer of its tree is its partition actor.
pub struct PartitionLog {
    tree: sled::Tree,
    pending: Arc<Pending>,
    removals: Removals,
}

/// Removes records while keeping the partition's offset high-water mark.
#[derive(Clone)]
struct Removals {
    meta: sled::Tree,
    key: Vec<u8>,
}

impl Removals {
    /// Removes `offsets` (ascending) from the blocks holding them.
    fn remove(&self, tree: &sled::Tree, offsets: &[u64]) -> Result<(), LogError> {
        let Some(&highest) = offsets.last() else {
            return Ok(());
        };
        self.meta.fetch_and_update(&self.key, |old| {
            let old = old
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            Some(old.max(highest + 1).to_be_bytes().to_vec())
        })?;
        let mut rest = offsets;
        while let Some(&offset) = rest.first() {
            let Some((key, value)) = tree
                .range(..=offset.to_be_bytes())
                .next_back()
                .transpose()?
            else {
                rest = &rest[1..];
                continue;
            };
            let key_offset = decode_offset(&key)?;
            let records = match block::decode(key_offset, &value) {
                Ok(records) => records,
                // A block that does not decode holds nothing readable: its
                // records are gone for replay already; leave it as it is.
                Err(_) => {
                    rest = &rest[1..];
                    continue;
                }
            };
            let end = records.last().map_or(key_offset, |(last, _)| last + 1);
            let in_block = rest.iter().take_while(|&&o| o < end).count().max(1);
            let (doomed, later) = rest.split_at(in_block);
            let stored = records.len();
            let kept: Vec<(u64, &[u8])> = records
                .into_iter()
                .filter(|(o, _)| doomed.binary_search(o).is_err())
                .collect();
            if kept.is_empty() {
                tree.remove(&key)?;
            } else if kept.len() < stored {
                tree.insert(&key, block::encode(key_offset, kept)?)?;
            }
            rest = later;
        }
        Ok(())
    }
}

impl PartitionLog {
    /// The offset the next append gets (= number of records ever appended).
    pub fn next_offset(&self) -> u64 {
        self.pending.next_offset()
    }

    /// Appends one event; returns its offset. Not durable until a barrier.
    pub fn append(&mut self, event: &Event) -> Result<u64, LogError> {
        let bytes = codec::encode(event)?;
        self.pending.push([bytes])
    }

    /// Appends events atomically (all or none); returns the first offset.
    pub fn append_all(&mut self, events: &[Event]) -> Result<u64, LogError> {
        let records = events
            .iter()
            .map(codec::encode)
            .collect::<Result<Vec<_>, _>>()?;
        self.pending.push(records)
    }

    /// Records from `offset` on, in order. A record that does not decode is
    /// yielded as an error with its offset, so the reader can set it aside.
    pub fn read_from(&self, offset: u64) -> impl Iterator<Item = LogEntry> {
        read_from(&self.tree, &self.pending, offset)
    }

    /// The stored bytes of one record (to keep a poison record's bytes):
    /// the whole block when the block holding it does not decode.
    pub fn raw(&self, offset: u64) -> Result<Option<Vec<u8>>, LogError> {
        self.pending.write_out()?;
        let Some((key, value)) = self
            .tree
            .range(..=offset.to_be_bytes())
            .next_back()
            .transpose()?
        else {
            return Ok(None);
        };
        match block::decode(decode_offset(&key)?, &value) {
            Ok(records) => Ok(records
                .into_iter()
                .find(|(o, _)| *o == offset)
                .map(|(_, bytes)| bytes.to_vec())),
            Err(_) => Ok(Some(value.to_vec())),
        }
    }

    /// Writes the records appended so far into sled (not durably: that
    /// takes a barrier). The durability thread does this before every
    /// barrier; readers do it before they read.
    pub fn write_out(&self) -> Result<usize, LogError> {
        self.pending.write_out()
    }

    /// The record at `offset`, if stored.
    pub fn read_at(&self, offset: u64) -> Result<Option<Result<Event, CodecError>>, LogError> {
        Ok(self.raw(offset)?.map(|bytes| codec::decode(&bytes)))
    }

    /// Appends bytes that are not an event (tests of poison-record handling).
    #[cfg(test)]
    pub(crate) fn append_raw(&mut self, bytes: &[u8]) -> Result<u64, LogError> {
        self.pending.push([bytes.to_vec()])
    }

    /// Stores a raw sled value at `offset` (tests of blocks that do not decode).
    #[cfg(test)]
    pub(crate) fn insert_raw_value(&mut self, offset: u64, value: &[u8]) -> Result<(), LogError> {
        self.pending.write_out()?;
        self.tree.insert(offset.to_be_bytes(), value)?;
        Ok(())
    }

    /// Drops the record at `offset` (compaction after an erasure). Its
    /// offset is never handed out again.
    pub fn remove(&self, offset: u64) -> Result<(), LogError> {
        self.pending.write_out()?;
        self.removals.remove(&self.tree, &[offset])
    }

    /// A handle for reading and compacting on another thread. Appends stay
    /// with this writer; the reader only touches records below offsets it is given.
    pub fn reader(&self) -> LogReader {
        LogReader {
            tree: self.tree.clone(),
            pending: self.pending.clone(),
            removals: self.removals.clone(),
        }
    }
}

/// Read access to one partition's records from another thread.
pub struct LogReader {
    tree: sled::Tree,
    pending: Arc<Pending>,
    removals: Removals,
}

impl LogReader {
    pub fn read_from(&self, offset: u64) -> impl Iterator<Item = LogEntry> {
        read_from(&self.tree, &self.pending, offset)
    }

    /// Removes the records at `offsets` (ascending), a block at a time.
    pub fn remove_all(&self, offsets: &[u64]) -> Result<(), LogError> {
        debug_assert!(offsets.windows(2).all(|pair| pair[0] < pair[1]));
        self.pending.write_out()?;
        self.removals.remove(&self.tree, offsets)
    }
}

/// Writes out what waits in memory, then reads sled from the block
/// holding `offset`.
fn read_from(tree: &sled::Tree, pending: &Pending, offset: u64) -> impl Iterator<Item = LogEntry> {
    let first_block = || -> Result<Vec<u8>, LogError> {
        pending.write_out()?;
        let holding = tree
            .range(..=offset.to_be_bytes())
            .next_back()
            .transpose()?;
        Ok(holding.map_or_else(|| offset.to_be_bytes().to_vec(), |(key, _)| key.to_vec()))
    };
    let (failed, blocks) = match first_block() {
        Ok(start) => (None, Some(tree.range(start..))),
        Err(err) => (Some(Err(err)), None),
    };
    let records = blocks
        .into_iter()
        .flatten()
        .flat_map(move |entry| block_entries(entry, offset));
    failed.into_iter().chain(records)
}

/// The records at or above `offset` of one stored block.
fn block_entries(entry: sled::Result<(sled::IVec, sled::IVec)>, offset: u64) -> Vec<LogEntry> {
    let (key, value) = match entry {
        Ok(entry) => entry,
        Err(err) => return vec![Err(err.into())],
    };
    let key = match decode_offset(&key) {
        Ok(key) => key,
        Err(err) => return vec![Err(err)],
    };
    match block::decode(key, &value) {
        Ok(records) => records
            .into_iter()
            .filter(|(o, _)| *o >= offset)
            .map(|(o, bytes)| Ok((o, codec::decode(bytes))))
            .collect(),
        // A block that does not decode: one poison entry at its key.
        Err(err) if key >= offset => vec![Ok((key, Err(err)))],
        Err(_) => Vec::new(),
    }
}

fn decode_offset(key: &[u8]) -> Result<u64, LogError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| LogError::CorruptMeta("log key is not a u64 offset"))?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests;
