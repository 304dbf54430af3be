//! The process heap, after recovery.
//!
//! Loading snapshots and replaying the log free a lot of memory at the end
//! (each partition's decoded snapshot, the batches that add users to the
//! global state, replayed attempts evicted again): ~300 MB at a million
//! users. glibc's allocator keeps freed memory inside its heaps rather
//! than returning it, so the resident size after recovery overstated the
//! live state by that much, and kept it from other processes.

/// Returns the allocator's free memory to the operating system (glibc's
/// `malloc_trim`); elsewhere a no-op. Costs a walk over the heap's free
/// lists: call it once, when recovery is over.
// The crate denies unsafe code; `malloc_trim` has no safe wrapper.
#[allow(unsafe_code)]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() {
    // SAFETY: malloc_trim only releases free pages of glibc's heaps; it
    // touches no live allocation and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}
