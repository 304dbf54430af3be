//! Partitions: one actor per log partition, owning that partition's
//! lifecycle (replay, snapshots, compaction). `core` holds the logic (log
//! writer, projection, scorer) behind the partition's lock, `actor` is the
//! shell that receives messages, `router` sends each request to its user's
//! partition with a bounded number in flight: score and outcome straight
//! into the core on the calling thread, the rest through the mailbox.

pub mod actor;
pub mod background;
pub mod core;
pub mod router;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicUsize, Ordering};

pub use self::core::{PartitionCore, PartitionError};
pub use router::{RouteError, Router};

/// How many partitions have caught up with their log.
#[derive(Debug)]
pub struct Readiness {
    caught_up: AtomicUsize,
    partitions: usize,
}

impl Readiness {
    pub fn new(partitions: usize) -> Readiness {
        Readiness {
            caught_up: AtomicUsize::new(0),
            partitions,
        }
    }

    pub fn mark_caught_up(&self) {
        if self.caught_up.fetch_add(1, Ordering::AcqRel) + 1 == self.partitions {
            // Recovery is over: its temporaries are free, give them back.
            crate::heap::release_free_memory();
        }
    }

    pub fn caught_up(&self) -> usize {
        self.caught_up.load(Ordering::Acquire)
    }

    pub fn partitions(&self) -> usize {
        self.partitions
    }

    pub fn all_caught_up(&self) -> bool {
        self.caught_up() >= self.partitions
    }
}
