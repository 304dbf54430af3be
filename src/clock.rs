//! Wall-clock time, used only where the API says the server's clock fills
//! in: a request without `timestamp`, and bookkeeping (dead letters). All
//! risk logic runs on event time carried by the events themselves.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::event::TimestampMs;

pub fn now_ms() -> TimestampMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
