//! Enrichment at the edge: what GeoIP and User-Agent parsing derive from a
//! request, with the request's own `geo` and `client` fields overriding
//! them field by field. Runs on the HTTP worker, before the partition, so
//! partitions spend their single thread on state only.

pub mod ua;

use std::net::IpAddr;

use crate::event::ClientInfo;
use crate::geoip::{GeoInfo, GeoIp};
use ua::UaParser;

/// What the caller already knows about the IP (request `geo`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GeoOverride {
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub asn: Option<u32>,
}

/// What the caller already parsed from the User-Agent (request `client`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientOverride {
    pub browser: Option<String>,
    pub os: Option<String>,
    pub device_type: Option<crate::event::DeviceType>,
}

pub struct Enricher {
    geoip: GeoIp,
    ua: UaParser,
}

impl Enricher {
    pub fn new(geoip: GeoIp) -> Enricher {
        Enricher {
            geoip,
            ua: UaParser::default(),
        }
    }

    pub fn geo(&self, ip: IpAddr, given: GeoOverride) -> GeoInfo {
        let mut geo = self.geoip.lookup(ip);
        if given.country.is_some() {
            geo.country = given.country;
        }
        if given.region.is_some() {
            geo.region = given.region;
        }
        if given.city.is_some() {
            geo.city = given.city;
        }
        if given.latitude.is_some() || given.longitude.is_some() {
            // A caller's own coordinates come without GeoIP's error radius.
            geo.accuracy_radius_km = None;
        }
        if given.latitude.is_some() {
            geo.latitude = given.latitude;
        }
        if given.longitude.is_some() {
            geo.longitude = given.longitude;
        }
        if given.asn.is_some() {
            geo.asn = given.asn;
        }
        geo
    }

    pub fn client(&self, user_agent: Option<&str>, given: ClientOverride) -> ClientInfo {
        let mut client = user_agent.map(|ua| self.ua.parse(ua)).unwrap_or_default();
        if given.browser.is_some() {
            client.browser = given.browser;
        }
        if given.os.is_some() {
            client.os = given.os;
        }
        if let Some(device_type) = given.device_type {
            client.device_type = device_type;
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::DeviceType;
    use crate::geoip::DbSource;

    fn enricher() -> Enricher {
        Enricher::new(
            GeoIp::open(&DbSource::Builtin, &DbSource::Builtin, &DbSource::Builtin).unwrap(),
        )
    }

    #[test]
    fn request_geo_overrides_lookup_field_by_field() {
        let e = enricher();
        let looked_up = e.geo("198.51.100.7".parse().unwrap(), GeoOverride::default());
        assert_eq!(looked_up.country.as_deref(), Some("SE"));
        let given = GeoOverride {
            city: Some("Uppsala".into()),
            ..GeoOverride::default()
        };
        let merged = e.geo("198.51.100.7".parse().unwrap(), given);
        assert_eq!(merged.country.as_deref(), Some("SE"));
        assert_eq!(merged.city.as_deref(), Some("Uppsala"));
        assert_eq!(merged.asn, looked_up.asn);
    }

    #[test]
    fn private_addresses_are_unknown() {
        let geo = enricher().geo("10.1.2.3".parse().unwrap(), GeoOverride::default());
        assert_eq!(geo, GeoInfo::default());
    }

    #[test]
    fn request_client_overrides_the_parser() {
        let given = ClientOverride {
            device_type: Some(DeviceType::Mobile),
            ..ClientOverride::default()
        };
        let client = enricher().client(Some("curl/8.5.0"), given);
        assert_eq!(client.device_type, DeviceType::Mobile);
    }
}
