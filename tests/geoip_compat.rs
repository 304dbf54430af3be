//! riskd's GeoIP layer against MaxMind's official test databases (`../shared/geoip`, from
//! maxmind/MaxMind-DB; each `.mmdb` has its source `.json` beside it). Expected values are
//! taken from those JSON files. When the folder is absent, each test says so and passes.

// Helpers outside `#[test]` fns are not covered by clippy's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::PathBuf;

use riskd::geoip::{AnonymousIp, DbSource, GeoInfo, GeoIp, GeoIpError};

fn shared_db(file: &str) -> Option<DbSource> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/geoip");
    if !dir.is_dir() {
        eprintln!("skipped: {} not found", dir.display());
        return None;
    }
    Some(DbSource::File(dir.join(file)))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn city_only(file: &str) -> Option<GeoIp> {
    let source = shared_db(file)?;
    Some(GeoIp::open(&source, &DbSource::Disabled, &DbSource::Disabled).unwrap())
}

fn place(
    country: &str,
    region: Option<&str>,
    city: Option<&str>,
    lat: f64,
    lon: f64,
    radius_km: u16,
) -> GeoInfo {
    GeoInfo {
        country: Some(country.into()),
        region: region.map(Into::into),
        city: city.map(Into::into),
        latitude: Some(lat),
        longitude: Some(lon),
        accuracy_radius_km: Some(radius_km),
        ..GeoInfo::default()
    }
}

#[test]
fn geolite2_city_fields() {
    let Some(geo) = city_only("GeoLite2-City-Test.mmdb") else {
        return;
    };
    let cases = [
        // country.iso_code wins over registered_country (US here).
        (
            "81.2.69.142",
            place("GB", Some("England"), Some("London"), 51.5142, -0.0931, 10),
        ),
        (
            "89.160.20.112",
            place(
                "SE",
                Some("Östergötland County"),
                Some("Linköping"),
                58.4167,
                15.6167,
                76,
            ),
        ),
        (
            "89.160.20.200",
            place(
                "SE",
                Some("Östergötland County"),
                Some("Linköping"),
                58.4167,
                15.6167,
                76,
            ),
        ),
        (
            "216.160.83.60",
            place(
                "US",
                Some("Washington"),
                Some("Milton"),
                47.2513,
                -122.3149,
                22,
            ),
        ),
        (
            "175.16.199.1",
            place(
                "CN",
                Some("Jilin Sheng"),
                Some("Changchun"),
                43.88,
                125.3228,
                100,
            ),
        ),
        // Two subdivisions: the first (England, not West Berkshire) is the region.
        (
            "2.125.160.216",
            place("GB", Some("England"), Some("Boxford"), 51.75, -1.25, 100),
        ),
        // IPv6, including a country-level record with no city or subdivision.
        (
            "2001:480::1",
            place(
                "US",
                Some("California"),
                Some("San Diego"),
                32.7203,
                -117.1552,
                50,
            ),
        ),
        ("2a02:cf40::1", place("NO", None, None, 62.0, 10.0, 100)),
        // IPv4-mapped IPv6 is the IPv4 address.
        (
            "::ffff:81.2.69.142",
            place("GB", Some("England"), Some("London"), 51.5142, -0.0931, 10),
        ),
    ];
    for (addr, expected) in cases {
        assert_eq!(geo.lookup(ip(addr)), expected, "{addr}");
    }
}

#[test]
fn geoip2_city_fields() {
    let Some(geo) = city_only("GeoIP2-City-Test.mmdb") else {
        return;
    };
    assert_eq!(
        geo.lookup(ip("81.2.69.142")),
        place("GB", Some("England"), Some("London"), 51.5142, -0.0931, 10)
    );
    assert_eq!(
        geo.lookup(ip("2001:480:10::1")),
        place(
            "US",
            Some("California"),
            Some("San Diego"),
            32.7203,
            -117.1552,
            20
        )
    );
    let korea = geo.lookup(ip("2001:220::1"));
    assert_eq!((korea.country.as_deref(), korea.city), (Some("KR"), None));
    // Not in the database at all.
    assert_eq!(geo.lookup(ip("1.1.1.1")), GeoInfo::default());
}

#[test]
fn geolite2_asn_number_and_organisation() {
    let Some(source) = shared_db("GeoLite2-ASN-Test.mmdb") else {
        return;
    };
    let geo = GeoIp::open(&DbSource::Disabled, &source, &DbSource::Disabled).unwrap();
    let asn = |addr| {
        let info = geo.lookup(ip(addr));
        (info.asn, info.as_org)
    };
    assert_eq!(
        asn("1.128.0.1"),
        (Some(1221), Some("Telstra Pty Ltd".into()))
    );
    assert_eq!(
        asn("12.81.92.1"),
        (Some(7018), Some("AT&T Services".into()))
    );
    // Some records carry only the number.
    assert_eq!(asn("12.81.96.1"), (Some(7018), None));
    assert_eq!(
        asn("2001:1700::1"),
        (Some(6730), Some("Sunrise Communications AG".into()))
    );
    assert_eq!(asn("10.0.0.1"), (None, None));
}

#[test]
fn anonymous_ip_flags() {
    let Some(source) = shared_db("GeoIP2-Anonymous-IP-Test.mmdb") else {
        return;
    };
    let geo = GeoIp::open(&DbSource::Disabled, &DbSource::Disabled, &source).unwrap();
    let anonymous = |f: fn(&mut AnonymousIp)| {
        let mut a = AnonymousIp {
            is_anonymous: true,
            ..AnonymousIp::default()
        };
        f(&mut a);
        a
    };
    let cases = [
        ("1.2.0.1", anonymous(|a| a.is_anonymous_vpn = true)),
        (
            "81.2.69.1",
            AnonymousIp {
                is_anonymous: true,
                is_anonymous_vpn: true,
                is_hosting_provider: true,
                is_public_proxy: true,
                is_residential_proxy: true,
                is_tor_exit_node: true,
            },
        ),
        ("71.160.223.1", anonymous(|a| a.is_hosting_provider = true)),
        ("186.30.236.1", anonymous(|a| a.is_public_proxy = true)),
        ("65.0.0.1", anonymous(|a| a.is_tor_exit_node = true)),
        ("6.1.0.4", anonymous(|a| a.is_residential_proxy = true)),
        ("abcd:1000::1", anonymous(|a| a.is_public_proxy = true)),
        ("2001:480:3a::1", anonymous(|a| a.is_public_proxy = true)),
        ("8.8.8.8", AnonymousIp::default()),
    ];
    for (addr, expected) in cases {
        let info = geo.lookup(ip(addr));
        assert_eq!(info.anonymous, expected, "{addr}");
        assert_eq!(info.country, None, "{addr}: no City database given");
    }
}

#[test]
fn all_three_databases_together() {
    let (Some(city), Some(asn), Some(anonymous)) = (
        shared_db("GeoLite2-City-Test.mmdb"),
        shared_db("GeoLite2-ASN-Test.mmdb"),
        shared_db("GeoIP2-Anonymous-IP-Test.mmdb"),
    ) else {
        return;
    };
    let geo = GeoIp::open(&city, &asn, &anonymous).unwrap();
    let info = geo.lookup(ip("81.2.69.142"));
    assert_eq!(info.city.as_deref(), Some("London"));
    assert!(info.anonymous.is_tor_exit_node);
    let types: Vec<_> = geo
        .databases()
        .map(|d| d.database_type.to_owned())
        .collect();
    assert_eq!(
        types,
        ["GeoLite2-City", "GeoLite2-ASN", "GeoIP2-Anonymous-IP"]
    );
}

#[test]
fn broken_databases_fail_at_open_or_give_unknown() {
    let probes = [
        "81.2.69.142",
        "89.160.20.112",
        "2001:220::1",
        "2001:480:10::1",
        "1.1.1.1",
    ];
    for file in [
        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
        "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
    ] {
        let Some(source) = shared_db(file) else {
            return;
        };
        match GeoIp::open(&source, &DbSource::Disabled, &DbSource::Disabled) {
            Err(e) => eprintln!("{file}: refused at open: {e}"),
            Ok(geo) => {
                for addr in probes {
                    let _ = geo.lookup(ip(addr));
                }
                eprintln!("{file}: opened; damaged records read as unknown");
            }
        }
    }
}

#[test]
fn broken_double_format_record_is_unknown() {
    let Some(source) = shared_db("GeoIP2-City-Test-Broken-Double-Format.mmdb") else {
        return;
    };
    let geo = GeoIp::open(&source, &DbSource::Disabled, &DbSource::Disabled).unwrap();
    // maxminddb's own test: this record's double is malformed.
    assert_eq!(geo.lookup(ip("2001:220::1")), GeoInfo::default());
}

#[test]
fn invalid_node_count_is_refused_at_open() {
    let Some(source) = shared_db("GeoIP2-City-Test-Invalid-Node-Count.mmdb") else {
        return;
    };
    let err = GeoIp::open(&source, &DbSource::Disabled, &DbSource::Disabled)
        .err()
        .unwrap();
    assert!(matches!(err, GeoIpError::Corrupt { .. }), "{err:?}");
}

#[test]
fn a_city_database_in_the_asn_slot_is_a_wrong_type_error() {
    let Some(city) = shared_db("GeoLite2-City-Test.mmdb") else {
        return;
    };
    let err = GeoIp::open(&DbSource::Disabled, &city, &DbSource::Disabled)
        .err()
        .unwrap();
    match err {
        GeoIpError::WrongDatabaseType {
            expected, found, ..
        } => assert_eq!((expected, found.as_str()), ("ASN", "GeoLite2-City")),
        other => panic!("expected WrongDatabaseType, got {other:?}"),
    }
    let Some(asn) = shared_db("GeoLite2-ASN-Test.mmdb") else {
        return;
    };
    let err = GeoIp::open(&asn, &DbSource::Disabled, &DbSource::Disabled)
        .err()
        .unwrap();
    assert!(
        matches!(err, GeoIpError::WrongDatabaseType { .. }),
        "{err:?}"
    );
    let Some(country) = shared_db("GeoLite2-Country-Test.mmdb") else {
        return;
    };
    let err = GeoIp::open(&country, &DbSource::Disabled, &DbSource::Disabled)
        .err()
        .unwrap();
    assert!(
        matches!(err, GeoIpError::WrongDatabaseType { .. }),
        "{err:?}"
    );
}
