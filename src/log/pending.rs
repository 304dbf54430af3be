//! A partition's appended records on their way into sled.
//!
//! An append takes an offset and puts the encoded record here, in memory,
//! under a short lock: the request thread never waits for sled. The
//! durability thread writes what waits into sled as blocks before every
//! barrier (so a barrier still covers everything appended before it was
//! requested), and within `log.idle_flush_ms_max` when no barrier is asked
//! for; readers write it
//! out before they read, so they see every record appended before they
//! started. This is the same promise the log made when appends went
//! straight into sled: sled keeps inserts in its own memory buffers until
//! a flush, so in both cases only a barrier makes a record durable.
//!
//! Memory is bounded: an append that finds more than
//! [`PENDING_BYTES_MAX`] waiting writes them out itself.

use parking_lot::Mutex;

use super::block::{self, BLOCK_BYTES_MAX};
use super::LogError;

/// Bytes of records that may wait in memory per partition before the
/// appender writes them into sled itself (bulk appends without a barrier
/// in between, e.g. `riskd import`).
pub const PENDING_BYTES_MAX: usize = 1 << 20;

pub(super) struct Pending {
    tree: sled::Tree,
    /// Held for a whole write-out, so that a reader's write-out returns
    /// only once an earlier one (on another thread) is in sled too.
    writing: Mutex<()>,
    buffer: Mutex<Buffer>,
}

struct Buffer {
    /// The offset the next append gets.
    next_offset: u64,
    /// Offset of `records[0]`; the records are consecutive.
    first_offset: u64,
    records: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pending {
    pub(super) fn new(tree: sled::Tree, next_offset: u64) -> Pending {
        Pending {
            tree,
            writing: Mutex::new(()),
            buffer: Mutex::new(Buffer {
                next_offset,
                first_offset: next_offset,
                records: Vec::new(),
                bytes: 0,
            }),
        }
    }

    pub(super) fn next_offset(&self) -> u64 {
        self.buffer.lock().next_offset
    }

    /// Takes offsets for `records`, in order, all at once (a concurrent
    /// write-out sees all of them or none). Returns the first offset.
    pub(super) fn push(&self, records: impl IntoIterator<Item = Vec<u8>>) -> Result<u64, LogError> {
        let (first, full) = {
            let mut buffer = self.buffer.lock();
            let first = buffer.next_offset;
            for record in records {
                buffer.next_offset += 1;
                buffer.bytes += record.len();
                buffer.records.push(record);
            }
            (first, buffer.bytes > PENDING_BYTES_MAX)
        };
        if full {
            self.write_out()?;
        }
        Ok(first)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buffer.lock().records.is_empty()
    }

    /// Writes every waiting record into sled (one atomic batch of blocks)
    /// and returns how many. When it returns, everything pushed before it
    /// was called is in sled, whoever wrote it.
    pub(super) fn write_out(&self) -> Result<usize, LogError> {
        let _writing = self.writing.lock();
        let (first_offset, records) = {
            let mut buffer = self.buffer.lock();
            let first = buffer.first_offset;
            buffer.first_offset = buffer.next_offset;
            buffer.bytes = 0;
            (first, std::mem::take(&mut buffer.records))
        };
        if records.is_empty() {
            return Ok(0);
        }
        let written = encode_blocks(first_offset, &records).and_then(|blocks| self.insert(blocks));
        if let Err(err) = written {
            // Nothing was written: the records wait again, ahead of any
            // appended meanwhile, for the next write-out.
            let mut buffer = self.buffer.lock();
            buffer.first_offset = first_offset;
            buffer.bytes += records.iter().map(Vec::len).sum::<usize>();
            let newer = std::mem::replace(&mut buffer.records, records);
            buffer.records.extend(newer);
            return Err(err);
        }
        Ok(records.len())
    }

    /// Stores `(key, block)`s, all or none.
    fn insert(&self, mut blocks: Vec<(u64, Vec<u8>)>) -> Result<(), LogError> {
        if blocks.len() == 1 {
            // One insert is atomic by itself, and much cheaper than a batch
            // (which takes sled's transaction machinery).
            let (key, value) = blocks.swap_remove(0);
            self.tree.insert(key.to_be_bytes(), value)?;
        } else {
            let mut batch = sled::Batch::default();
            for (key, value) in blocks {
                batch.insert(&key.to_be_bytes(), value);
            }
            self.tree.apply_batch(batch)?;
        }
        Ok(())
    }
}

/// `records` (the first at `first_offset`) cut into blocks of about
/// [`BLOCK_BYTES_MAX`], each with its key.
fn encode_blocks(first_offset: u64, records: &[Vec<u8>]) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
    let mut blocks = Vec::new();
    let mut block_start = 0;
    let mut block_bytes = 0;
    for (i, record) in records.iter().enumerate() {
        if i > block_start && block_bytes + record.len() > BLOCK_BYTES_MAX {
            blocks.push(encode_block(first_offset, records, block_start..i)?);
            block_start = i;
            block_bytes = 0;
        }
        block_bytes += record.len();
    }
    blocks.push(encode_block(
        first_offset,
        records,
        block_start..records.len(),
    )?);
    Ok(blocks)
}

/// The block of `records[range]` (whose first record has `first_offset`), and its key.
fn encode_block(
    first_offset: u64,
    records: &[Vec<u8>],
    range: std::ops::Range<usize>,
) -> Result<(u64, Vec<u8>), LogError> {
    let key = first_offset + range.start as u64;
    let value = block::encode(
        key,
        records[range]
            .iter()
            .enumerate()
            .map(|(i, bytes)| (key + i as u64, bytes.as_slice())),
    )?;
    Ok((key, value))
}
