//! Dead letters: input set aside with the reason, so nothing is silently
//! dropped. Rejected /v1/events lines and log records that no longer decode
//! ("poison" records met during replay) land here; the pipeline goes on.
//!
//! Stored in the log's sled database (tree `dead_letters`), so the same
//! durability barrier that acknowledges a bulk request covers its rejected
//! lines. Bounded: past `max`, the oldest are dropped (and counted).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::event::TimestampMs;

const FORMAT_VERSION: u8 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: u64,
    /// Wall-clock time it was set aside (Unix ms).
    pub at_ms: TimestampMs,
    /// Where it came from: `events` (a /v1/events line) or `log` (a record met during replay).
    pub source: String,
    pub reason: String,
    /// 1-based line number in its /v1/events request.
    pub line: Option<u64>,
    pub partition: Option<u32>,
    pub offset: Option<u64>,
    /// The offending input, truncated to `dead_letters.raw_bytes_max` (lossy UTF-8).
    pub raw: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("dead letter store: {0}")]
    Storage(#[from] sled::Error),
}

/// Where a dead letter came from.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    pub source: &'static str,
    pub line: Option<u64>,
    pub partition: Option<u32>,
    pub offset: Option<u64>,
}

impl Origin {
    /// Line `line` (1-based) of a /v1/events request.
    pub fn events_line(line: u64) -> Origin {
        Origin {
            source: "events",
            line: Some(line),
            partition: None,
            offset: None,
        }
    }

    /// A log record met during replay.
    pub fn log_record(partition: u32, offset: u64) -> Origin {
        Origin {
            source: "log",
            line: None,
            partition: Some(partition),
            offset: Some(offset),
        }
    }
}

pub struct DeadLetters {
    tree: sled::Tree,
    next_id: AtomicU64,
    len: AtomicUsize,
    max: usize,
    raw_bytes_max: usize,
    dropped: AtomicU64,
}

impl DeadLetters {
    pub fn open(
        tree: sled::Tree,
        max: usize,
        raw_bytes_max: usize,
    ) -> Result<DeadLetters, DeadLetterError> {
        let next_id = match tree.last()? {
            Some((key, _)) => key_to_id(&key) + 1,
            None => 1,
        };
        let len = tree.len();
        Ok(DeadLetters {
            tree,
            next_id: AtomicU64::new(next_id),
            len: AtomicUsize::new(len),
            max: max.max(1),
            raw_bytes_max,
            dropped: AtomicU64::new(0),
        })
    }

    /// Sets `raw` aside with its reason. Not durable until the next barrier.
    pub fn put(
        &self,
        origin: Origin,
        reason: &str,
        raw: &[u8],
        at_ms: TimestampMs,
    ) -> Result<u64, DeadLetterError> {
        let Origin {
            source,
            line,
            partition,
            offset,
        } = origin;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let raw = &raw[..raw.len().min(self.raw_bytes_max)];
        let letter = DeadLetter {
            id,
            at_ms,
            source: source.to_owned(),
            reason: reason.to_owned(),
            line,
            partition,
            offset,
            raw: String::from_utf8_lossy(raw).into_owned(),
        };
        let mut bytes = vec![FORMAT_VERSION];
        bytes = postcard::to_extend(&letter, bytes).unwrap_or_else(|_| vec![FORMAT_VERSION]);
        self.tree.insert(id.to_be_bytes(), bytes)?;
        if self.len.fetch_add(1, Ordering::Relaxed) + 1 > self.max {
            if let Some((key, _)) = self.tree.pop_min()? {
                debug_assert!(key_to_id(&key) < id);
                self.len.fetch_sub(1, Ordering::Relaxed);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(id)
    }

    /// Up to `limit` dead letters with an id greater than `after`, oldest first.
    pub fn list(&self, after: u64, limit: usize) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let mut letters = Vec::new();
        for entry in self.tree.range((after.saturating_add(1)).to_be_bytes()..) {
            let (_, value) = entry?;
            // A letter written by another format version is skipped, not fatal.
            if let Some((&FORMAT_VERSION, body)) = value.split_first() {
                if let Ok(letter) = postcard::from_bytes::<DeadLetter>(body) {
                    letters.push(letter);
                }
            }
            if letters.len() >= limit {
                break;
            }
        }
        Ok(letters)
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dead letters dropped because the store was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn key_to_id(key: &[u8]) -> u64 {
    key.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: usize) -> (tempfile::TempDir, DeadLetters) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let letters = DeadLetters::open(db.open_tree("dl").unwrap(), max, 8).unwrap();
        (dir, letters)
    }

    #[test]
    fn letters_are_listed_in_order_with_their_reason() {
        let (_dir, letters) = store(10);
        letters
            .put(
                Origin::events_line(3),
                "ip: invalid address",
                b"{\"ip\":\"x\"}",
                1,
            )
            .unwrap();
        letters
            .put(Origin::log_record(2, 9), "bad record", b"\x00\x01", 2)
            .unwrap();
        let listed = letters.list(0, 10).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].reason, "ip: invalid address");
        assert_eq!(listed[0].raw, "{\"ip\":\"x");
        assert_eq!(listed[1].offset, Some(9));
        assert_eq!(letters.list(listed[0].id, 10).unwrap().len(), 1);
    }

    #[test]
    fn the_oldest_are_dropped_past_the_cap() {
        let (_dir, letters) = store(2);
        for i in 0..5 {
            letters
                .put(Origin::events_line(1), &format!("r{i}"), b"", i)
                .unwrap();
        }
        let listed = letters.list(0, 10).unwrap();
        assert_eq!(
            listed.iter().map(|l| l.reason.as_str()).collect::<Vec<_>>(),
            ["r3", "r4"]
        );
        assert_eq!(letters.dropped(), 3);
    }
}
