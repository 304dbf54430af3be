//! `impossible_travel`: reaching the attempt's location from the last
//! successful login's, in the event time between them, would need more
//! than `speed_kmh_max`. Both GeoIP accuracy radii are subtracted from the
//! great-circle distance first (the tolerance), distances below
//! `distance_km_min` never fire, and unknown locations never fire.

use crate::config::ruleset::ImpossibleTravelRules;
use crate::score::{Contribution, Factor, FactorInput};

const EARTH_RADIUS_KM: f64 = 6371.0;
/// Below this time gap (one minute) the speed is computed over one minute:
/// two logins at "the same instant" from far apart are still impossible.
const HOURS_MIN: f64 = 1.0 / 60.0;

pub struct ImpossibleTravel {
    pub weight: f64,
    pub speed_kmh_max: f64,
    pub distance_km_min: f64,
}

impl From<&ImpossibleTravelRules> for ImpossibleTravel {
    fn from(rules: &ImpossibleTravelRules) -> Self {
        ImpossibleTravel {
            weight: rules.weight,
            speed_kmh_max: rules.speed_kmh_max,
            distance_km_min: rules.distance_km_min,
        }
    }
}

/// Great-circle distance (haversine), km.
pub fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
}

impl Factor for ImpossibleTravel {
    fn code(&self) -> &'static str {
        "impossible_travel"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        let last = input.user?.last_success.as_ref()?;
        let from = last.location?;
        let to = input.keys.location?;
        let raw_km = distance_km(from.latitude, from.longitude, to.latitude, to.longitude);
        let tolerance_km = f64::from(from.accuracy_radius_km.unwrap_or(0))
            + f64::from(to.accuracy_radius_km.unwrap_or(0));
        let km = (raw_km - tolerance_km).max(0.0);
        if km < self.distance_km_min {
            return None;
        }
        let hours = ((input.keys.timestamp_ms - last.at_ms) as f64 / 3_600_000.0)
            .abs()
            .max(HOURS_MIN);
        let speed = km / hours;
        if speed <= self.speed_kmh_max {
            return None;
        }
        Some(Contribution {
            logit: self.weight,
            value: Some(speed),
            detail: format!(
                "{raw_km:.0} km ({km:.0} km beyond GeoIP accuracy) from the last successful login in {hours:.2} h: {speed:.0} km/h"
            ),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::factors::test_support::Fixture;

    fn factor() -> ImpossibleTravel {
        ImpossibleTravel {
            weight: 3.0,
            speed_kmh_max: 1000.0,
            distance_km_min: 300.0,
        }
    }

    fn at(fx: &Fixture, lat: f64, lon: f64, radius: u16) -> crate::event::LoginAttempt {
        let mut a = fx.attempt("d", "192.0.2.1", "NO", 64500);
        a.geo.latitude = Some(lat);
        a.geo.longitude = Some(lon);
        a.geo.accuracy_radius_km = Some(radius);
        a
    }

    #[test]
    fn oslo_to_new_york_in_an_hour_fires_with_km_hours_and_speed() {
        let mut fx = Fixture::new();
        let home = at(&fx, 59.91, 10.75, 20);
        fx.apply(&home, crate::event::Outcome::Success);
        fx.advance_ms(3_600_000);
        let c = fx
            .evaluate_attempt(&factor(), &at(&fx, 40.71, -74.0, 50))
            .unwrap();
        assert!(c.value.unwrap() > 5000.0, "{c:?}");
        assert!(c.detail.contains("km/h") && c.detail.contains(" h"));
    }

    #[test]
    fn the_same_trip_over_a_day_is_possible() {
        let mut fx = Fixture::new();
        fx.apply(&at(&fx, 59.91, 10.75, 20), crate::event::Outcome::Success);
        fx.advance_ms(24 * 3_600_000);
        assert_eq!(
            fx.evaluate_attempt(&factor(), &at(&fx, 40.71, -74.0, 50)),
            None
        );
    }

    #[test]
    fn accuracy_radii_and_the_minimum_distance_absorb_nearby_jumps() {
        let mut fx = Fixture::new();
        fx.apply(&at(&fx, 59.91, 10.75, 100), crate::event::Outcome::Success);
        fx.advance_ms(60_000);
        // Oslo to Bergen, 300 km, with 100 km radii on both ends: within tolerance.
        assert_eq!(
            fx.evaluate_attempt(&factor(), &at(&fx, 60.39, 5.32, 100)),
            None
        );
    }

    #[test]
    fn unknown_locations_never_fire() {
        let mut fx = Fixture::new();
        fx.apply(&at(&fx, 59.91, 10.75, 20), crate::event::Outcome::Success);
        let mut private = fx.attempt("d", "10.0.0.1", "", 0);
        private.geo.latitude = None;
        assert_eq!(fx.evaluate_attempt(&factor(), &private), None);
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // Oslo - Stockholm is about 417 km.
        let d = distance_km(59.9127, 10.7461, 59.3293, 18.0686);
        assert!((d - 417.0).abs() < 5.0, "{d}");
    }
}
