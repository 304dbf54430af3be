//! Partition snapshots: a projection and the log offset it covers.
//!
//! One file per partition, `<data_dir>/snapshots/p<N>.snap`, replaced
//! atomically (write a temporary file, fsync, rename, fsync the directory),
//! so a crash leaves either the old snapshot or the new one, never half of
//! one. Layout: magic `RKSN`, then postcard (format version u16, partition
//! u32, partitions u32, next_offset u64, projection). A version this build
//! does not know is an error, never a guess; the operator can delete the
//! file to rebuild from the log.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use serde::{Deserialize, Serialize};

use crate::projection::Projection;

const MAGIC: &[u8; 4] = b"RKSN";
/// Version 3: remembered attempts keep their answer's log offset, not the
/// answer; value fingerprints are `hash::fingerprint` (FNV-1a before).
pub const SNAPSHOT_FORMAT_VERSION: u16 = 3;

/// How much of a snapshot is written before it is synced and the next part
/// written: one fsync of a whole ~90 MB file put it in the disk's queue at
/// once, and the log's barriers (every outcome waits for one) queued
/// behind it. Bounds what the disk has queued for the snapshot at a time.
const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// The encoder writes small pieces; they reach the file in pieces this big.
const BUFFER_BYTES: usize = 1 << 20;

/// A file that is synced every [`WRITE_CHUNK_BYTES`] written.
struct ChunkSynced {
    file: File,
    unsynced: usize,
    /// The last write's error, kept for the caller (an encoder in between
    /// may replace it with its own).
    failure: Option<std::io::Error>,
}

impl ChunkSynced {
    fn write_and_sync(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(buf)?;
        self.unsynced += written;
        if self.unsynced >= WRITE_CHUNK_BYTES {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(written)
    }
}

impl Write for ChunkSynced {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_and_sync(buf).inspect_err(|err| {
            self.failure = Some(std::io::Error::new(err.kind(), err.to_string()));
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a riskd snapshot")]
    NotASnapshot { path: PathBuf },
    #[error("{path}: snapshot format version {found} is not supported (this build reads {SNAPSHOT_FORMAT_VERSION}); delete it to rebuild from the log")]
    UnknownVersion { path: PathBuf, found: u16 },
    #[error("{path}: snapshot is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("{path}: snapshot belongs to partition {found} of {found_of}, expected {expected} of {expected_of}")]
    WrongPartition {
        path: PathBuf,
        found: u32,
        found_of: u32,
        expected: u32,
        expected_of: u32,
    },
}

#[derive(Serialize, Deserialize)]
struct Header {
    version: u16,
    partition: u32,
    partitions: u32,
    next_offset: u64,
}

/// A loaded snapshot: replay resumes at `next_offset`.
pub struct Snapshot {
    pub next_offset: u64,
    pub projection: Projection,
}

#[derive(Clone, Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    partitions: u32,
    /// Per partition: the offset the last written snapshot covers. Held for
    /// the whole write, so one partition's writes (background and
    /// synchronous ones) never interleave, and a snapshot never replaces
    /// one that covers more of the log.
    written: Arc<Vec<Mutex<u64>>>,
}

impl SnapshotStore {
    pub fn open(data_dir: &Path, partitions: u32) -> Result<SnapshotStore, SnapshotError> {
        let dir = data_dir.join("snapshots");
        fs::create_dir_all(&dir).map_err(|source| SnapshotError::Io {
            path: dir.clone(),
            source,
        })?;
        let written = (0..partitions).map(|_| Mutex::new(0)).collect();
        Ok(SnapshotStore {
            dir,
            partitions,
            written: Arc::new(written),
        })
    }

    pub fn path(&self, partition: u32) -> PathBuf {
        self.dir.join(format!("p{partition}.snap"))
    }

    /// Serialises a projection (on the caller's thread: the state must not
    /// change while it is read). The bytes are then written by [`Self::write`].
    pub fn encode(
        &self,
        partition: u32,
        next_offset: u64,
        projection: &Projection,
    ) -> Result<Vec<u8>, SnapshotError> {
        let header = Header {
            version: SNAPSHOT_FORMAT_VERSION,
            partition,
            partitions: self.partitions,
            next_offset,
        };
        let corrupt = |err: postcard::Error| SnapshotError::Corrupt {
            path: self.path(partition),
            message: err.to_string(),
        };
        let mut bytes = MAGIC.to_vec();
        bytes = postcard::to_extend(&header, bytes).map_err(corrupt)?;
        postcard::to_extend(projection, bytes).map_err(corrupt)
    }

    /// Durably replaces the partition's snapshot with `bytes` (encoded at
    /// `next_offset`). Returns false, writing nothing, when a snapshot
    /// covering more of the log was written meanwhile.
    pub fn write(
        &self,
        partition: u32,
        next_offset: u64,
        bytes: &[u8],
    ) -> Result<bool, SnapshotError> {
        self.write_with(partition, next_offset, |out| out.write_all(bytes))
    }

    /// Encodes the projection straight into the partition's snapshot file
    /// (no copy of it in memory: a partition's snapshot is ~90 MB at 110 k
    /// users, and growing a buffer that size remaps memory the request
    /// threads are using). Returns false as [`Self::write`] does.
    pub fn save(
        &self,
        partition: u32,
        next_offset: u64,
        projection: &Projection,
    ) -> Result<bool, SnapshotError> {
        let header = Header {
            version: SNAPSHOT_FORMAT_VERSION,
            partition,
            partitions: self.partitions,
            next_offset,
        };
        self.write_with(partition, next_offset, |out| {
            out.write_all(MAGIC)?;
            // postcard reports a failed write as its own error; the file's
            // wrapper keeps the I/O error itself.
            let encoded = postcard::to_io(&header, &mut *out)
                .and_then(|out| postcard::to_io(projection, out).map(|_| ()));
            encoded.map_err(|err| match out.get_mut().failure.take() {
                Some(io) => io,
                None => std::io::Error::other(err),
            })
        })
    }

    /// Writes a temporary file with `fill`, makes it durable, renames it
    /// over the snapshot and syncs the directory.
    fn write_with(
        &self,
        partition: u32,
        next_offset: u64,
        fill: impl FnOnce(&mut BufWriter<ChunkSynced>) -> std::io::Result<()>,
    ) -> Result<bool, SnapshotError> {
        let mut written = self.written[partition as usize].lock();
        if next_offset < *written {
            return Ok(false);
        }
        let path = self.path(partition);
        let tmp = self.dir.join(format!("p{partition}.snap.tmp"));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| SnapshotError::Io { path, source }
        };
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let synced = ChunkSynced {
            file,
            unsynced: 0,
            failure: None,
        };
        let mut out = BufWriter::with_capacity(BUFFER_BYTES, synced);
        fill(&mut out).map_err(io(&tmp))?;
        let file = out
            .into_inner()
            .map_err(|err| SnapshotError::Io {
                path: tmp.clone(),
                source: err.into_error(),
            })?
            .file;
        file.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        *written = next_offset;
        Ok(true)
    }

    /// The partition's snapshot, if it has one.
    pub fn load(&self, partition: u32) -> Result<Option<Snapshot>, SnapshotError> {
        let path = self.path(partition);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SnapshotError::Io { path, source }),
        };
        let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
            return Err(SnapshotError::NotASnapshot { path });
        };
        let corrupt = |err: postcard::Error| SnapshotError::Corrupt {
            path: path.clone(),
            message: err.to_string(),
        };
        let (version, _) = postcard::take_from_bytes::<u16>(rest).map_err(corrupt)?;
        if version < SNAPSHOT_FORMAT_VERSION {
            // A snapshot is a cache of the log: one from an older build is
            // rebuilt from the log rather than refused (an upgrade must not
            // need an operator to delete files).
            tracing::warn!(
                path = %path.display(),
                version,
                "snapshot written by an older build; rebuilding the partition from the log"
            );
            return Ok(None);
        }
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotError::UnknownVersion {
                path,
                found: version,
            });
        }
        let (header, rest) = postcard::take_from_bytes::<Header>(rest).map_err(corrupt)?;
        if header.partition != partition || header.partitions != self.partitions {
            return Err(SnapshotError::WrongPartition {
                path,
                found: header.partition,
                found_of: header.partitions,
                expected: partition,
                expected_of: self.partitions,
            });
        }
        let projection: Projection = postcard::from_bytes(rest).map_err(corrupt)?;
        Ok(Some(Snapshot {
            next_offset: header.next_offset,
            projection,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn projection() -> Projection {
        let config = Config::embedded().unwrap();
        Projection::new(config.projection, 16)
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path(), 4).unwrap();
        assert!(store.load(2).unwrap().is_none());
        store.save(2, 42, &projection()).unwrap();
        let loaded = store.load(2).unwrap().unwrap();
        assert_eq!(loaded.next_offset, 42);
        assert_eq!(loaded.projection, projection());
    }

    #[test]
    fn a_snapshot_larger_than_a_write_chunk_round_trips() {
        use crate::event::{test_support::sample_attempt, Event, Outcome};
        let global = crate::projection::GlobalState::new();
        let mut big = projection();
        let mut user = 0;
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path(), 4).unwrap();
        while store.encode(2, 9, &big).unwrap().len() < 3 * WRITE_CHUNK_BYTES {
            for _ in 0..1000 {
                let mut attempt = sample_attempt(&format!("user-{user}"));
                attempt.attempt_id = format!("attempt-{user}");
                big.apply(
                    &Event::Login {
                        attempt,
                        outcome: Outcome::Success,
                    },
                    &global,
                );
                user += 1;
            }
        }
        assert!(store.save(2, 9, &big).unwrap());
        let loaded = store.load(2).unwrap().unwrap();
        assert_eq!(loaded.next_offset, 9);
        assert_eq!(loaded.projection, big);
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path(), 4).unwrap();
        let mut bytes = store.encode(1, 7, &projection()).unwrap();
        bytes[4] = 9;
        store.write(1, 7, &bytes).unwrap();
        assert!(matches!(
            store.load(1),
            Err(SnapshotError::UnknownVersion { found: 9, .. })
        ));
        store.write(1, 7, b"garbage").unwrap();
        assert!(matches!(
            store.load(1),
            Err(SnapshotError::NotASnapshot { .. })
        ));
        let bytes = store.encode(1, 7, &projection()).unwrap();
        store.write(1, 7, &bytes[..bytes.len() - 3]).unwrap();
        assert!(matches!(store.load(1), Err(SnapshotError::Corrupt { .. })));
    }

    #[test]
    fn a_snapshot_of_an_older_format_is_ignored_for_the_log_to_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path(), 4).unwrap();
        let mut bytes = store.encode(1, 7, &projection()).unwrap();
        bytes[4] = 2;
        store.write(1, 7, &bytes).unwrap();
        assert!(store.load(1).unwrap().is_none());
    }

    #[test]
    fn a_snapshot_of_another_partition_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path(), 4).unwrap();
        let bytes = store.encode(3, 7, &projection()).unwrap();
        store.write(1, 7, &bytes).unwrap();
        assert!(matches!(
            store.load(1),
            Err(SnapshotError::WrongPartition { .. })
        ));
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path(), 1).unwrap();
        let newer = store.encode(0, 50, &projection()).unwrap();
        let older = store.encode(0, 40, &projection()).unwrap();
        assert!(store.write(0, 50, &newer).unwrap());
        assert!(!store.write(0, 40, &older).unwrap());
        assert_eq!(store.load(0).unwrap().unwrap().next_offset, 50);
    }
}
