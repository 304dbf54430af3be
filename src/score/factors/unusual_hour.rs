//! `unusual_hour`: with enough history, hardly any of the user's successful
//! logins fell within an hour of this attempt's hour of day (UTC: riskd
//! does not know the user's time zone, and a habit is as regular in UTC).

use crate::config::ruleset::UnusualHourRules;
use crate::score::{Contribution, Factor, FactorInput};

const HOUR_MS: i64 = 3_600_000;

pub struct UnusualHour {
    pub weight: f64,
    pub history_min: u32,
    pub share_max: f64,
}

impl From<&UnusualHourRules> for UnusualHour {
    fn from(r: &UnusualHourRules) -> Self {
        UnusualHour {
            weight: r.weight,
            history_min: r.history_min,
            share_max: r.share_max,
        }
    }
}

impl Factor for UnusualHour {
    fn code(&self) -> &'static str {
        "unusual_hour"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let user = input.user?;
        if user.successes < u64::from(self.history_min) {
            return None;
        }
        let hours = &user.hours;
        let total: u32 = hours.iter().map(|&h| u32::from(h)).sum();
        if total == 0 {
            return None;
        }
        let hour = usize::try_from(input.keys.timestamp_ms.rem_euclid(24 * HOUR_MS) / HOUR_MS)
            .unwrap_or(0);
        // The hour itself and its neighbours: 08:59 and 09:01 are one habit.
        let near: u32 = [(hour + 23) % 24, hour, (hour + 1) % 24]
            .iter()
            .map(|&h| u32::from(hours[h]))
            .sum();
        let share = f64::from(near) / f64::from(total);
        if share > self.share_max {
            return None;
        }
        Some(Contribution {
            logit: self.weight,
            value: Some(share),
            detail: format!(
                "{:.1}% of this user's logins were around {hour:02}:00 UTC",
                share * 100.0
            ),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::factors::test_support::Fixture;

    #[test]
    fn a_night_login_of_a_daytime_user_fires_once_history_suffices() {
        let factor = UnusualHour {
            weight: 0.7,
            history_min: 20,
            share_max: 0.02,
        };
        let mut fx = Fixture::new();
        // Fixture time starts at 00:00 UTC; log in daily at 09:00.
        let start = fx.now_ms;
        for day in 0..19 {
            fx.now_ms = start + day * 24 * HOUR_MS + 9 * HOUR_MS - 1_000;
            fx.learn("d", "192.0.2.1", "NO", 64500);
        }
        fx.now_ms = start + 30 * 24 * HOUR_MS + 3 * HOUR_MS;
        assert_eq!(
            fx.evaluate(&factor, "d", "192.0.2.1", "NO", 64500),
            None,
            "not enough history yet"
        );
        fx.now_ms = start + 19 * 24 * HOUR_MS + 9 * HOUR_MS - 1_000;
        fx.learn("d", "192.0.2.1", "NO", 64500);
        fx.now_ms = start + 30 * 24 * HOUR_MS + 3 * HOUR_MS;
        assert!(fx
            .evaluate(&factor, "d", "192.0.2.1", "NO", 64500)
            .is_some());
        fx.now_ms = start + 30 * 24 * HOUR_MS + 9 * HOUR_MS;
        assert_eq!(fx.evaluate(&factor, "d", "192.0.2.1", "NO", 64500), None);
    }
}
