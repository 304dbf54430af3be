//! The few fields riskd reads from each database, decoded straight from the database buffer.
//!
//! The geoip2 structs in maxminddb decode every field (all languages of every name, postal
//! codes, traits, ...); these borrow only what [`GeoInfo`] needs, and serde skips the rest
//! without allocating.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{AnonymousIp, GeoInfo};

/// Longest name or organisation kept, in bytes. Real ones are far shorter; a longer one is
/// taken as damage rather than copied into every scoring request.
const NAME_BYTES_MAX: usize = 256;

#[derive(Deserialize)]
pub(super) struct CityRecord<'a> {
    #[serde(borrow)]
    city: Option<Named<'a>>,
    #[serde(borrow)]
    country: Option<Country<'a>>,
    #[serde(borrow)]
    registered_country: Option<Country<'a>>,
    location: Option<Location>,
    #[serde(borrow)]
    subdivisions: Option<First<Named<'a>>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct Country<'a> {
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
    accuracy_radius: Option<u16>,
}

#[derive(Deserialize)]
pub(super) struct AsnRecord<'a> {
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<&'a str>,
}

/// MaxMind writes only the flags that are true.
#[derive(Deserialize)]
pub(super) struct AnonymousIpRecord {
    #[serde(default)]
    is_anonymous: bool,
    #[serde(default)]
    is_anonymous_vpn: bool,
    #[serde(default)]
    is_hosting_provider: bool,
    #[serde(default)]
    is_public_proxy: bool,
    #[serde(default)]
    is_residential_proxy: bool,
    #[serde(default)]
    is_tor_exit_node: bool,
}

impl CityRecord<'_> {
    pub(super) fn fill(&self, info: &mut GeoInfo) {
        let iso = |c: &Option<Country>| c.as_ref().and_then(|c| c.iso_code).and_then(country_code);
        info.country = iso(&self.country).or_else(|| iso(&self.registered_country));
        info.region = self
            .subdivisions
            .as_ref()
            .and_then(|s| english(s.0.as_ref()));
        info.city = english(self.city.as_ref());
        if let Some(location) = &self.location {
            if let (Some(lat), Some(lon)) = (location.latitude, location.longitude) {
                // A position outside the globe is damage; dropping it keeps distance and
                // travel-speed factors from reasoning about a point that does not exist.
                if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
                    info.latitude = Some(lat);
                    info.longitude = Some(lon);
                }
            }
            info.accuracy_radius_km = location.accuracy_radius;
        }
    }
}

impl AsnRecord<'_> {
    pub(super) fn fill(&self, info: &mut GeoInfo) {
        info.asn = self.autonomous_system_number;
        info.as_org = self.autonomous_system_organization.and_then(text);
    }
}

impl AnonymousIpRecord {
    pub(super) fn flags(&self) -> AnonymousIp {
        AnonymousIp {
            is_anonymous: self.is_anonymous,
            is_anonymous_vpn: self.is_anonymous_vpn,
            is_hosting_provider: self.is_hosting_provider,
            is_public_proxy: self.is_public_proxy,
            is_residential_proxy: self.is_residential_proxy,
            is_tor_exit_node: self.is_tor_exit_node,
        }
    }
}

fn english(named: Option<&Named>) -> Option<String> {
    named?.names.as_ref()?.en.and_then(text)
}

fn text(s: &str) -> Option<String> {
    (!s.is_empty() && s.len() <= NAME_BYTES_MAX).then(|| s.to_owned())
}

/// ISO 3166-1 alpha-2, upper case; anything else is not a country code.
fn country_code(code: &str) -> Option<String> {
    (code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| code.to_ascii_uppercase())
}

/// The first element of an array, the rest skipped without being collected.
///
/// The MaxMind decoder reads sequentially, so the remaining elements must still be consumed
/// for the fields after the array to decode.
struct First<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FirstVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstVisitor<T> {
            type Value = First<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
                let first = seq.next_element()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }

        deserializer.deserialize_seq(FirstVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_two_letters_upper_case() {
        assert_eq!(country_code("no").as_deref(), Some("NO"));
        assert_eq!(country_code("GB").as_deref(), Some("GB"));
        for bad in ["", "N", "NOR", "1A", "ñ"] {
            assert_eq!(country_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn empty_and_oversized_names_are_absent() {
        assert_eq!(text(""), None);
        assert_eq!(text(&"x".repeat(NAME_BYTES_MAX + 1)), None);
        assert_eq!(text("Oslo").as_deref(), Some("Oslo"));
    }

    #[test]
    fn out_of_range_coordinates_are_dropped_but_accuracy_kept() {
        let record = CityRecord {
            city: None,
            country: None,
            registered_country: Some(Country {
                iso_code: Some("se"),
            }),
            location: Some(Location {
                latitude: Some(91.0),
                longitude: Some(10.0),
                accuracy_radius: Some(5),
            }),
            subdivisions: None,
        };
        let mut info = GeoInfo::default();
        record.fill(&mut info);
        assert_eq!(
            info.country.as_deref(),
            Some("SE"),
            "falls back to registered_country"
        );
        assert_eq!((info.latitude, info.longitude), (None, None));
        assert_eq!(info.accuracy_radius_km, Some(5));
    }
}
