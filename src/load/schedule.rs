//! The open-loop schedule: request `k` is due at `start + k / rate`,
//! whatever happened to the requests before it. Latency is measured from
//! that intended time, so a server that stalls is charged for every request
//! that should have gone out during the stall (no coordinated omission).

use std::time::{Duration, Instant};

const NANOS_PER_S: f64 = 1e9;

#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    start: Instant,
    rate_per_s: f64,
    /// Requests due before the end: every `k` with an offset below the span.
    total: u64,
}

impl Schedule {
    /// `rate_per_s` must be finite and positive (checked by the caller's
    /// configuration); `span` is how long requests keep coming.
    pub fn new(start: Instant, rate_per_s: f64, span: Duration) -> Schedule {
        let mut schedule = Schedule {
            start,
            rate_per_s,
            total: u64::MAX,
        };
        schedule.total = schedule.count_before(span);
        schedule
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn rate_per_s(&self) -> f64 {
        self.rate_per_s
    }

    /// How many requests the schedule holds.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// When request `k` should go out, after the start. Non-decreasing in `k`.
    pub fn offset(&self, k: u64) -> Duration {
        // Exact for k below 2^53, far beyond any run.
        Duration::from_nanos((k as f64 * NANOS_PER_S / self.rate_per_s) as u64)
    }

    pub fn intended(&self, k: u64) -> Instant {
        self.start + self.offset(k)
    }

    /// The requests whose offset is strictly below `span`.
    pub fn count_before(&self, span: Duration) -> u64 {
        let mut count = (span.as_secs_f64() * self.rate_per_s).ceil() as u64;
        // The float estimate can be one off either way: settle it against
        // `offset`, the one definition of when a request is due.
        while count > 0 && self.offset(count - 1) >= span {
            count -= 1;
        }
        while self.offset(count) < span {
            count += 1;
        }
        count.min(self.total)
    }

    /// How many requests are due at `now` (intended time at or before it),
    /// at most [`Schedule::total`].
    pub fn due_at(&self, now: Instant) -> u64 {
        let Some(elapsed) = now.checked_duration_since(self.start) else {
            return 0;
        };
        let mut count = ((elapsed.as_secs_f64() * self.rate_per_s) as u64).saturating_add(1);
        while count > 0 && self.offset(count - 1) > elapsed {
            count -= 1;
        }
        while count < self.total && self.offset(count) <= elapsed {
            count += 1;
        }
        count.min(self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_k_is_due_at_k_over_rate() {
        let start = Instant::now();
        let schedule = Schedule::new(start, 10_000.0, Duration::from_secs(60));
        assert_eq!(schedule.total(), 600_000);
        assert_eq!(schedule.offset(0), Duration::ZERO);
        assert_eq!(schedule.offset(1), Duration::from_micros(100));
        assert_eq!(schedule.offset(25_000), Duration::from_millis(2_500));
        assert_eq!(schedule.intended(3), start + Duration::from_micros(300));
    }

    #[test]
    fn due_counts_agree_with_offsets() {
        let start = Instant::now();
        for rate in [1.0, 3.0, 7.7, 300.0, 10_000.0, 33_333.3, 100_000.0] {
            let schedule = Schedule::new(start, rate, Duration::from_secs(2));
            for step_us in (0..2_100_000).step_by(997) {
                let elapsed = Duration::from_micros(step_us);
                let due = schedule.due_at(start + elapsed);
                assert!(due <= schedule.total());
                // Every request below `due` is due, the next one is not (yet).
                if due > 0 {
                    assert!(schedule.offset(due - 1) <= elapsed, "{rate} {step_us}");
                }
                if due < schedule.total() {
                    assert!(schedule.offset(due) > elapsed, "{rate} {step_us}");
                }
            }
        }
    }

    #[test]
    fn nothing_is_due_before_the_start_and_all_is_due_after_the_end() {
        let start = Instant::now() + Duration::from_secs(1);
        let schedule = Schedule::new(start, 500.0, Duration::from_secs(3));
        assert_eq!(schedule.due_at(start - Duration::from_millis(1)), 0);
        assert_eq!(schedule.due_at(start), 1);
        assert_eq!(schedule.total(), 1_500);
        assert_eq!(schedule.due_at(start + Duration::from_secs(10)), 1_500);
    }

    #[test]
    fn counts_before_a_span_split_warmup_from_measurement() {
        let schedule = Schedule::new(Instant::now(), 300.0, Duration::from_millis(2_500));
        assert_eq!(schedule.total(), 750);
        assert_eq!(schedule.count_before(Duration::from_millis(500)), 150);
        assert_eq!(schedule.count_before(Duration::ZERO), 0);
        // A rate that does not divide the span: k/rate < span.
        let odd = Schedule::new(Instant::now(), 3.0, Duration::from_millis(1_000));
        assert_eq!(odd.total(), 3);
        let odd = Schedule::new(Instant::now(), 3.0, Duration::from_millis(1_001));
        assert_eq!(odd.total(), 4);
    }
}
