//! A microsecond alarm clock for the dispatcher: a thread that, once set,
//! sleeps until the set time and then wakes the dispatcher's task.
//!
//! Why a thread: tokio's timer has a resolution of one millisecond, so a
//! dispatcher paced by it would send requests up to a millisecond late,
//! and since latency counts from the intended send time, that lateness
//! would be charged to a server that answers in a tenth of it. The
//! dispatcher needs the alarm only while requests are in flight (it must
//! also hear their answers); with nothing in flight it sleeps its own
//! thread until the next request is due (see `engine`), which costs one
//! wake-up instead of two.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Longest single sleep of the alarm thread, so that it notices a stop soon.
const SLEEP_MAX: Duration = Duration::from_millis(50);
/// `Shared::deadline_ns` when the alarm is not set.
const UNSET: u64 = u64::MAX;

struct Shared {
    /// Deadlines are kept as nanoseconds after this.
    epoch: Instant,
    deadline_ns: AtomicU64,
    stop: AtomicBool,
    ring: Notify,
}

pub struct Alarm {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Alarm {
    pub fn start() -> std::io::Result<Alarm> {
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            deadline_ns: AtomicU64::new(UNSET),
            stop: AtomicBool::new(false),
            ring: Notify::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("load-alarm".into())
                .spawn(move || keep_time(&shared))?
        };
        Ok(Alarm {
            shared,
            thread: Some(thread),
        })
    }

    /// Sets the alarm for `at` (replacing an earlier setting).
    pub fn set(&self, at: Instant) {
        let ns = u64::try_from(at.saturating_duration_since(self.shared.epoch).as_nanos())
            .unwrap_or(UNSET - 1);
        if self.shared.deadline_ns.swap(ns, Ordering::AcqRel) != ns {
            if let Some(thread) = &self.thread {
                // Cheap unless the thread is parked, waiting for a setting.
                thread.thread().unpark();
            }
        }
    }

    pub fn clear(&self) {
        self.shared.deadline_ns.store(UNSET, Ordering::Release);
    }

    /// Resolves when the alarm rings (or has rung since the last call).
    pub async fn rung(&self) {
        self.shared.ring.notified().await;
    }

    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            // A panic in `keep_time` would be a bug there; the run's
            // figures are complete either way.
            let _ = thread.join();
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        self.stop();
    }
}

fn keep_time(shared: &Shared) {
    reduce_timer_slack();
    while !shared.stop.load(Ordering::Acquire) {
        let deadline_ns = shared.deadline_ns.load(Ordering::Acquire);
        if deadline_ns == UNSET {
            std::thread::park_timeout(SLEEP_MAX);
            continue;
        }
        let now_ns = u64::try_from(shared.epoch.elapsed().as_nanos()).unwrap_or(UNSET - 1);
        if now_ns >= deadline_ns {
            // Ring unless the setting changed meanwhile.
            if shared
                .deadline_ns
                .compare_exchange(deadline_ns, UNSET, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                shared.ring.notify_one();
            }
            continue;
        }
        std::thread::sleep(Duration::from_nanos(deadline_ns - now_ns).min(SLEEP_MAX));
    }
}

/// Linux lets a sleeping thread oversleep by its timer slack (50 µs by
/// default) to batch wake-ups; every microsecond of it would be added to
/// the latency measured. Lowering it for the calling thread is best effort:
/// elsewhere, or without /proc, the generator is that much less precise.
pub fn reduce_timer_slack() {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return;
    };
    // "PID/task/TID"
    let Some(tid) = link.to_str().and_then(|path| path.rsplit('/').next()) else {
        return;
    };
    let _ = std::fs::write(format!("/proc/{tid}/timerslack_ns"), "1");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_rings_at_the_set_time_and_not_when_cleared() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let alarm = Alarm::start().unwrap();
        runtime.block_on(async {
            let at = Instant::now() + Duration::from_millis(5);
            alarm.set(at);
            alarm.rung().await;
            assert!(Instant::now() >= at);

            alarm.set(Instant::now() + Duration::from_millis(5));
            alarm.clear();
            let rang = tokio::time::timeout(Duration::from_millis(30), alarm.rung()).await;
            assert!(rang.is_err(), "a cleared alarm rang");
        });
    }
}
