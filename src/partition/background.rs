//! Background jobs that must not take the CPU or the disk from requests.
//!
//! Encoding a snapshot of ~110 k users is ~0.3 s of one core and writing it
//! ~90 MB. At normal priority, on a two-core machine serving 10,000
//! requests/s, that overloaded the CPU for as long as it ran and the
//! request latency's p99.9 went to ~50 ms (measured: snapshots every 50,000
//! events in a paced run, see BENCHMARKS.md). The job runs on a thread
//! with `SCHED_IDLE` (the CPU is its only when no request wants
//! it) and the idle I/O class (the disk's queue serves the log's barriers
//! first). Where the platform refuses either, the job runs anyway at
//! normal priority. Jobs meet the thread over a crossbeam channel and
//! report back on a oneshot the actor awaits.

use std::sync::OnceLock;

use crossbeam_channel::Sender;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The process's one low-priority thread. One, so that jobs run one after
/// another: every partition grows at about the same rate, so their
/// snapshots fall due together, and eight written at once would take the
/// disk eight times as long in one burst.
static WORKER: OnceLock<Option<Sender<Job>>> = OnceLock::new();

fn worker() -> Option<&'static Sender<Job>> {
    WORKER
        .get_or_init(|| {
            let (jobs, receiver) = crossbeam_channel::unbounded::<Job>();
            let spawned = std::thread::Builder::new()
                .name("riskd-background".into())
                .spawn(move || {
                    lower_this_threads_priority();
                    for job in receiver {
                        job();
                    }
                });
            match spawned {
                Ok(_) => Some(jobs),
                Err(err) => {
                    tracing::error!(error = %err, "could not start the background thread");
                    None
                }
            }
        })
        .as_ref()
}

/// Queues `job` for the low-priority thread; the receiver gets its result
/// (or is closed if the thread could not start or the job panicked).
pub fn run_low_priority<R, F>(job: F) -> oneshot::Receiver<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        // A panicking job must not take the thread (and every later job)
        // with it; its receiver sees the sender dropped.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        match result {
            Ok(value) => {
                let _ = tx.send(value);
            }
            Err(_) => tracing::error!("a background job panicked"),
        }
    });
    if let Some(jobs) = worker() {
        // Unbounded: a job per partition at most is queued (the actor
        // starts its next snapshot only when the last one is done).
        let _ = jobs.send(job);
    }
    rx
}

// The crate denies unsafe code; these two system calls have no safe
// wrapper in std or libc, and this is the one place allowed to make them.
#[allow(unsafe_code)]
#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // Linux's `ioprio_set` (no wrapper in libc): who = this thread (0 with
    // IOPRIO_WHO_PROCESS), class IDLE (3) in the top bits.
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    const IOPRIO_CLASS_SHIFT: u32 = 13;
    // SAFETY: plain system calls on the calling thread with valid
    // arguments; a failure only leaves the priority as it was.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            tracing::debug!("SCHED_IDLE refused; background job at normal CPU priority");
        }
        if libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        ) != 0
        {
            tracing::debug!("idle I/O class refused; background job at normal I/O priority");
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_priority_job_runs_and_returns_its_result() {
        let rx = run_low_priority(|| 6 * 7);
        assert_eq!(rx.blocking_recv().unwrap(), 42);
    }

    #[test]
    fn a_panicking_job_closes_its_receiver_and_later_jobs_still_run() {
        let failed = run_low_priority(|| -> u8 { panic!("boom") });
        assert!(failed.blocking_recv().is_err());
        assert_eq!(run_low_priority(|| 1).blocking_recv().unwrap(), 1);
    }

    #[allow(unsafe_code)]
    #[cfg(target_os = "linux")]
    #[test]
    fn the_job_runs_under_sched_idle() {
        // SAFETY: reads the calling thread's scheduling policy.
        let rx = run_low_priority(|| unsafe { libc::sched_getscheduler(0) });
        assert_eq!(rx.blocking_recv().unwrap(), libc::SCHED_IDLE);
    }
}
