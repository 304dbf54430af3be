//! Unit tests against the embedded fixtures (`geoip/README.md` lists their contents).

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn builtin() -> GeoIp {
    GeoIp::builtin().unwrap()
}

fn flags(f: fn(&mut AnonymousIp)) -> AnonymousIp {
    let mut a = AnonymousIp {
        is_anonymous: true,
        ..AnonymousIp::default()
    };
    f(&mut a);
    a
}

#[allow(clippy::too_many_arguments)]
fn full(
    country: &str,
    region: &str,
    city: &str,
    lat: f64,
    lon: f64,
    radius_km: u16,
    asn: u32,
    org: &str,
    anonymous: AnonymousIp,
) -> GeoInfo {
    GeoInfo {
        country: Some(country.into()),
        region: Some(region.into()),
        city: Some(city.into()),
        latitude: Some(lat),
        longitude: Some(lon),
        accuracy_radius_km: Some(radius_km),
        asn: Some(asn),
        as_org: Some(org.into()),
        anonymous,
    }
}

fn country_only(country: &str, asn: u32, org: &str, anonymous: AnonymousIp) -> GeoInfo {
    GeoInfo {
        country: Some(country.into()),
        asn: Some(asn),
        as_org: Some(org.into()),
        anonymous,
        ..GeoInfo::default()
    }
}

#[test]
fn builtin_fixtures_answer_every_row() {
    let none = AnonymousIp::default();
    let oslo = |radius, lat, lon, asn, org| {
        full(
            "NO",
            "Oslo County",
            "Oslo",
            lat,
            lon,
            radius,
            asn,
            org,
            none,
        )
    };
    let new_york = |anonymous| {
        full(
            "US",
            "New York",
            "New York",
            40.7128,
            -74.0060,
            50,
            64_502,
            "Example Hosting US",
            anonymous,
        )
    };
    let cases = [
        (
            "192.0.2.1",
            oslo(20, 59.9127, 10.7461, 64_500, "Example Telecom NO"),
        ),
        (
            "192.0.2.255",
            oslo(20, 59.9127, 10.7461, 64_500, "Example Telecom NO"),
        ),
        (
            "198.51.100.7",
            full(
                "SE",
                "Stockholm County",
                "Stockholm",
                59.3293,
                18.0686,
                20,
                64_501,
                "Example Net SE",
                none,
            ),
        ),
        (
            "203.0.113.1",
            new_york(flags(|a| a.is_hosting_provider = true)),
        ),
        (
            "203.0.113.127",
            new_york(flags(|a| a.is_hosting_provider = true)),
        ),
        (
            "203.0.113.128",
            new_york(flags(|a| a.is_tor_exit_node = true)),
        ),
        (
            "203.0.113.255",
            new_york(flags(|a| a.is_tor_exit_node = true)),
        ),
        (
            "2001:db8:1::1",
            full(
                "DE",
                "Land Berlin",
                "Berlin",
                52.52,
                13.405,
                100,
                64_503,
                "Example Mobile DE",
                none,
            ),
        ),
        (
            "2001:db8:2:ffff::1",
            full(
                "AU",
                "New South Wales",
                "Sydney",
                -33.8688,
                151.2093,
                50,
                64_504,
                "Example Net AU",
                none,
            ),
        ),
        (
            "2001:db8:3::1",
            full(
                "NL",
                "North Holland",
                "Amsterdam",
                52.3676,
                4.9041,
                20,
                64_505,
                "Example VPN NL",
                flags(|a| a.is_anonymous_vpn = true),
            ),
        ),
        (
            "2001:db8:4::1",
            country_only(
                "US",
                64_506,
                "Example Proxy US",
                flags(|a| a.is_public_proxy = true),
            ),
        ),
        (
            "2001:db8:5::1",
            country_only(
                "US",
                64_507,
                "Example Residential US",
                flags(|a| a.is_residential_proxy = true),
            ),
        ),
        (
            "45.13.200.1",
            country_only("NO", 29_695, "Altibox AS", none),
        ),
        ("46.212.3.4", oslo(100, 59.91, 10.75, 41_164, "Telia Norge")),
        (
            "84.208.1.1",
            full(
                "NO",
                "Vestland",
                "Bergen",
                60.3913,
                5.3221,
                50,
                2_119,
                "Telenor Norge",
                none,
            ),
        ),
        (
            "91.186.9.9",
            full(
                "GB",
                "England",
                "London",
                51.5074,
                -0.1278,
                100,
                29_550,
                "Simply Transit",
                none,
            ),
        ),
    ];
    let geo = builtin();
    for (addr, expected) in cases {
        assert_eq!(geo.lookup(ip(addr)), expected, "{addr}");
    }
}

#[test]
fn neighbours_of_fixture_networks_are_unknown() {
    let geo = builtin();
    for addr in [
        "192.0.3.0",
        "198.51.101.1",
        "203.0.114.1",
        "45.14.0.1",
        "8.8.8.8",
        "2001:db8:6::1",
        "2001:4860::8888",
    ] {
        assert_eq!(geo.lookup(ip(addr)), GeoInfo::default(), "{addr}");
    }
}

#[test]
fn ipv4_in_ipv6_is_looked_up_as_ipv4() {
    let geo = builtin();
    let v4 = geo.lookup(ip("203.0.113.200"));
    assert!(v4.anonymous.is_tor_exit_node);
    // Mapped, compatible and (through the tree's alias) 6to4 forms.
    for addr in [
        "::ffff:203.0.113.200",
        "::203.0.113.200",
        "2002:cb00:71c8::1",
    ] {
        assert_eq!(geo.lookup(ip(addr)), v4, "{addr}");
    }
    for addr in ["::ffff:10.1.2.3", "::10.1.2.3", "2002:a01:203::1"] {
        assert_eq!(geo.lookup(ip(addr)), GeoInfo::default(), "{addr}");
    }
}

#[test]
fn local_addresses_are_unknown_even_when_a_database_has_them() {
    let geo = builtin();
    for addr in ["10.1.2.3", "fd00::1"] {
        // The fixtures deliberately hold these networks ...
        let city = geo.city.as_ref().unwrap().get::<CityRecord>(ip(addr));
        assert!(city.is_some(), "{addr} should be in the City fixture");
        let anonymous = geo.anonymous_ip.as_ref().unwrap();
        assert!(
            anonymous
                .get::<AnonymousIpRecord>(ip(addr))
                .unwrap()
                .flags()
                .is_public_proxy
        );
        // ... and riskd must not use them.
        assert_eq!(geo.lookup(ip(addr)), GeoInfo::default(), "{addr}");
    }
}

#[test]
fn local_address_classification() {
    let local = [
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.1.1",
        "0.0.0.0",
        "0.1.2.3",
        "100.64.0.1",
        "100.127.255.255",
        "224.0.0.1",
        "239.255.255.255",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fc00::1",
        "fdff:ffff::1",
        "fe80::1",
        "febf::1",
        "ff02::1",
        "::ffff:192.168.0.1",
        "::ffff:127.0.0.1",
        "::ffff:0.0.0.0",
        "::10.0.0.1",
        "2002:a00:1::1",
        "2002:c0a8:101::",
        "2002:6440::1",
    ];
    let public = [
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "2001:db8::1",
        "8.8.8.8",
        "100.63.255.255",
        "100.128.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "169.253.255.255",
        "223.255.255.255",
        "2a00::1",
        "fec0::1",
        "::ffff:8.8.8.8",
        "::8.8.8.8",
        "2002:808:808::1",
        "2002:c000:201::1",
    ];
    for addr in local {
        assert!(is_local(ip(addr)), "{addr} is local");
    }
    for addr in public {
        assert!(!is_local(ip(addr)), "{addr} is public");
    }
}

#[test]
fn disabled_databases_give_unknown() {
    let geo = GeoIp::disabled();
    assert_eq!(geo.lookup(ip("192.0.2.1")), GeoInfo::default());
    assert_eq!(geo.databases().count(), 0);

    let asn_only =
        GeoIp::open(&DbSource::Disabled, &DbSource::Builtin, &DbSource::Disabled).unwrap();
    let info = asn_only.lookup(ip("192.0.2.1"));
    assert_eq!(info.asn, Some(64_500));
    assert_eq!(
        (info.country, info.anonymous),
        (None, AnonymousIp::default())
    );
}

#[test]
fn builtin_metadata_is_maxmind_shaped() {
    let geo = builtin();
    let dbs: Vec<_> = geo.databases().collect();
    let types: Vec<_> = dbs.iter().map(|d| d.database_type).collect();
    assert_eq!(
        types,
        ["GeoLite2-City", "GeoLite2-ASN", "GeoIP2-Anonymous-IP"]
    );
    assert!(dbs.iter().all(|d| d.build_epoch_s == 1_735_689_600));
    assert_eq!(dbs[0].origin, Path::new("builtin:riskd-City.mmdb"));
    assert!(format!("{geo:?}").contains("GeoLite2-ASN"));
    for db in [&geo.city, &geo.asn, &geo.anonymous_ip] {
        let metadata = &db.as_ref().unwrap().reader.metadata;
        assert_eq!(metadata.ip_version, 6);
        assert_eq!(metadata.languages, ["en"]);
    }
}

#[test]
fn builtin_fixtures_decode_with_the_full_geoip2_schema() {
    use maxminddb::geoip2;
    let geo = builtin();
    let city_db = &geo.city.as_ref().unwrap().reader;
    let city: geoip2::City = city_db.lookup(ip("192.0.2.1")).unwrap().unwrap();
    assert_eq!(city.continent.unwrap().code, Some("EU"));
    assert_eq!(city.country.as_ref().unwrap().geoname_id, Some(3_144_096));
    assert_eq!(city.country.unwrap().names.unwrap()["en"], "Norway");
    assert_eq!(city.registered_country.unwrap().iso_code, Some("NO"));
    assert_eq!(city.city.unwrap().geoname_id, Some(3_143_244));
    assert_eq!(city.location.unwrap().time_zone, Some("Europe/Oslo"));
    assert_eq!(city.subdivisions.unwrap()[0].iso_code, Some("03"));

    let asn: geoip2::Asn = (geo.asn.as_ref().unwrap().reader)
        .lookup(ip("2001:db8:1::1"))
        .unwrap()
        .unwrap();
    assert_eq!(asn.autonomous_system_number, Some(64_503));

    let anonymous_db = &geo.anonymous_ip.as_ref().unwrap().reader;
    let anon: geoip2::AnonymousIp = anonymous_db.lookup(ip("203.0.113.1")).unwrap().unwrap();
    assert_eq!(anon.is_hosting_provider, Some(true));
    assert_eq!(anon.is_tor_exit_node, None, "only true flags are written");
}

#[test]
fn wrong_database_type_is_a_typed_error() {
    let err = Db::from_bytes(DbKind::Asn, "city.mmdb".into(), Cow::Borrowed(BUILTIN_CITY))
        .err()
        .unwrap();
    match &err {
        GeoIpError::WrongDatabaseType {
            expected, found, ..
        } => assert_eq!((*expected, found.as_str()), ("ASN", "GeoLite2-City")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("city.mmdb"), "{err}");
}

#[test]
fn file_sources_are_read_and_missing_files_reported() {
    let dir = std::env::temp_dir().join(format!("riskd-geoip-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("asn.mmdb");
    std::fs::write(&path, BUILTIN_ASN).unwrap();
    let geo = GeoIp::open(
        &DbSource::Disabled,
        &DbSource::File(path.clone()),
        &DbSource::Disabled,
    );
    assert_eq!(geo.unwrap().lookup(ip("198.51.100.1")).asn, Some(64_501));

    let missing = DbSource::File(dir.join("missing.mmdb"));
    let err = GeoIp::open(&missing, &DbSource::Disabled, &DbSource::Disabled)
        .err()
        .unwrap();
    assert!(matches!(err, GeoIpError::Read { .. }), "{err:?}");

    let not_mmdb = dir.join("not.mmdb");
    std::fs::write(&not_mmdb, b"hello").unwrap();
    let err = GeoIp::open(
        &DbSource::File(not_mmdb),
        &DbSource::Disabled,
        &DbSource::Disabled,
    );
    assert!(matches!(err, Err(GeoIpError::Open { .. })), "{err:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn db_source_parses_config_values() {
    use serde::de::{value::Error, IntoDeserializer};
    assert_eq!(DbSource::parse("builtin"), DbSource::Builtin);
    assert_eq!(DbSource::parse(" builtin "), DbSource::Builtin);
    assert_eq!(DbSource::parse(""), DbSource::Disabled);
    assert_eq!(DbSource::parse("  "), DbSource::Disabled);
    assert_eq!(
        DbSource::parse("/var/lib/GeoIP/GeoLite2-City.mmdb"),
        DbSource::File("/var/lib/GeoIP/GeoLite2-City.mmdb".into())
    );
    assert_eq!(
        DbSource::parse("./builtin"),
        DbSource::File("./builtin".into())
    );
    for source in [
        DbSource::Builtin,
        DbSource::Disabled,
        DbSource::File("/x/y.mmdb".into()),
    ] {
        assert_eq!(DbSource::parse(&source.to_string()), source);
    }
    let de: serde::de::value::StrDeserializer<Error> = "builtin".into_deserializer();
    assert_eq!(DbSource::deserialize(de).unwrap(), DbSource::Builtin);
}

/// Index of `needle` in `haystack`; panics when absent so a fixture change fails loudly.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn truncated_and_damaged_files_fail_to_open_without_panicking() {
    for bytes in [BUILTIN_CITY, BUILTIN_ASN, BUILTIN_ANONYMOUS_IP] {
        for len in 0..bytes.len() {
            let cut = Cow::Owned(bytes[..len].to_vec());
            // Either an error or (cutting only metadata padding) a working reader; never a panic.
            let _ = Db::from_bytes(DbKind::City, "cut".into(), cut);
        }
    }

    // A search-tree record pointing past the data section.
    let mut bad_tree = BUILTIN_ASN.to_vec();
    assert_eq!(layout::check(BUILTIN_ASN).unwrap().record_size, 24);
    bad_tree[..3].copy_from_slice(&[0xff; 3]);
    let err = Db::from_bytes(DbKind::Asn, "t".into(), Cow::Owned(bad_tree))
        .err()
        .unwrap();
    assert!(matches!(err, GeoIpError::Corrupt { .. }), "{err:?}");

    // A string whose length runs past the end of the file.
    let mut long_string = BUILTIN_ASN.to_vec();
    let at = find(&long_string, b"Example Telecom NO") - 1;
    assert_eq!(
        long_string[at],
        0x40 | 18,
        "control byte of an 18-byte string"
    );
    long_string[at] = 0x5f; // size in the next three bytes: 65,821 + "Exa"
    let err = Db::from_bytes(DbKind::Asn, "s".into(), Cow::Owned(long_string))
        .err()
        .unwrap();
    assert!(err.to_string().contains("malformed"), "{err}");
}

#[test]
fn pointer_cycles_fail_to_open() {
    // Turn the string value into a pointer to the record's own map: decoding would recurse
    // forever.
    let mut cyclic = BUILTIN_ASN.to_vec();
    let metadata = layout::check(BUILTIN_ASN).unwrap();
    let data_start = metadata.node_count as usize * 6 + 16;
    let org = find(&cyclic, b"Example Telecom NO") - 1;
    // The record's map: the last 2-entry map control byte before its organisation.
    let map = (cyclic[data_start..org].iter().rposition(|&b| b == 0xe2)).unwrap() + data_start;
    let target = map - data_start;
    assert!(target < 2048, "fits a 2-byte pointer");
    let pointer = [0x20 | (target >> 8) as u8, target as u8];
    cyclic[org..org + 2].copy_from_slice(&pointer);
    let err = Db::from_bytes(DbKind::Asn, "c".into(), Cow::Owned(cyclic))
        .err()
        .unwrap();
    assert!(err.to_string().contains("deeper"), "{err}");
}

#[test]
fn undecodable_record_is_unknown_and_logged_once() {
    // A double where the organisation string belongs: structurally fine, a type error to serde.
    let mut bytes = BUILTIN_ASN.to_vec();
    let at = find(&bytes, b"Example Telecom NO") - 1;
    bytes[at] = 0x60 | 8;
    let db = Db::from_bytes(DbKind::Asn, "d".into(), Cow::Owned(bytes)).unwrap();
    let geo = only(DbKind::Asn, db);
    assert_eq!(geo.lookup(ip("192.0.2.1")), GeoInfo::default());
    let db = geo.asn.as_ref().unwrap();
    assert!(db.damage_logged.load(Ordering::Relaxed));
    assert_eq!(
        geo.lookup(ip("198.51.100.1")).asn,
        Some(64_501),
        "other records still work"
    );
}

/// A `GeoIp` with `db` in the slot for its kind and the other two disabled.
fn only(kind: DbKind, db: Db) -> GeoIp {
    let mut geo = GeoIp::disabled();
    *match kind {
        DbKind::City => &mut geo.city,
        DbKind::Asn => &mut geo.asn,
        DbKind::AnonymousIp => &mut geo.anonymous_ip,
    } = Some(db);
    geo
}

#[test]
fn every_single_byte_corruption_is_an_error_or_a_lookup_without_panic() {
    let probes = [
        "192.0.2.1",
        "203.0.113.200",
        "2001:db8:2::1",
        "45.13.0.1",
        "8.8.8.8",
    ];
    for kind in [DbKind::City, DbKind::Asn, DbKind::AnonymousIp] {
        let bytes = kind.builtin().1;
        for at in 0..bytes.len() {
            for value in [0x00, 0xff, bytes[at] ^ 0x20] {
                let mut damaged = bytes.to_vec();
                damaged[at] = value;
                if let Ok(db) = Db::from_bytes(kind, "f".into(), Cow::Owned(damaged)) {
                    let geo = only(kind, db);
                    for addr in probes {
                        let _ = geo.lookup(ip(addr));
                    }
                }
            }
        }
    }
}

#[test]
fn geoip_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GeoIp>();
}
