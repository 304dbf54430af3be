//! Generates the fictional GeoIP fixture databases in `geoip/` (see `geoip/README.md`).
//!
//! Run with: `cargo run --example make_geoip_fixtures [-- OUT_DIR]` (default: `<crate>/geoip`).
//!
//! The output is byte-identical on every run: the build epoch is fixed and mmdb-writer lays
//! out the tree and data section deterministically, so regenerating without changing this
//! file leaves git clean.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use mmdb_writer::ipnet::IpNet;
use mmdb_writer::Writer;
use serde::Serialize;

/// 2025-01-01T00:00:00Z. Fixed so the files do not change between runs.
const BUILD_EPOCH_S: u64 = 1_735_689_600;

/// Where a network is, in City-database terms.
struct Place {
    country: (&'static str, &'static str, u32),
    continent: (&'static str, &'static str, u32),
    /// `(city, geoname_id, subdivision iso_code, subdivision name, subdivision geoname_id)`
    city: Option<(&'static str, u32, &'static str, &'static str, u32)>,
    /// `(latitude, longitude, accuracy_radius_km, time_zone)`
    location: Option<(f64, f64, u16, &'static str)>,
}

/// Anonymous-IP flags of a network; only the true ones are written, as MaxMind does.
#[derive(Default, Serialize)]
struct Anon {
    #[serde(skip_serializing_if = "is_false")]
    is_anonymous: bool,
    #[serde(skip_serializing_if = "is_false")]
    is_anonymous_vpn: bool,
    #[serde(skip_serializing_if = "is_false")]
    is_hosting_provider: bool,
    #[serde(skip_serializing_if = "is_false")]
    is_public_proxy: bool,
    #[serde(skip_serializing_if = "is_false")]
    is_residential_proxy: bool,
    #[serde(skip_serializing_if = "is_false")]
    is_tor_exit_node: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

struct Row {
    network: &'static str,
    place: Place,
    asn: (u32, &'static str),
    anon: Option<Anon>,
}

const EUROPE: (&str, &str, u32) = ("EU", "Europe", 6_255_148);
const NORTH_AMERICA: (&str, &str, u32) = ("NA", "North America", 6_255_149);
const OCEANIA: (&str, &str, u32) = ("OC", "Oceania", 6_255_151);
const NORWAY: (&str, &str, u32) = ("NO", "Norway", 3_144_096);
const UNITED_STATES: (&str, &str, u32) = ("US", "United States", 6_252_001);

fn place(
    country: (&'static str, &'static str, u32),
    continent: (&'static str, &'static str, u32),
    city: (&'static str, u32, &'static str, &'static str, u32),
    location: (f64, f64, u16, &'static str),
) -> Place {
    Place {
        country,
        continent,
        city: Some(city),
        location: Some(location),
    }
}

fn country_only(
    country: (&'static str, &'static str, u32),
    continent: (&'static str, &'static str, u32),
) -> Place {
    Place {
        country,
        continent,
        city: None,
        location: None,
    }
}

/// The fixture table. Order matters: a more specific network must come after the network
/// that contains it (mmdb-writer's later-insert-wins), as 203.0.113.128/25 does.
fn rows() -> Vec<Row> {
    let anon = |f: fn(&mut Anon)| {
        let mut a = Anon {
            is_anonymous: true,
            ..Anon::default()
        };
        f(&mut a);
        Some(a)
    };
    let new_york = || {
        place(
            UNITED_STATES,
            NORTH_AMERICA,
            ("New York", 5_128_581, "NY", "New York", 5_128_638),
            (40.7128, -74.0060, 50, "America/New_York"),
        )
    };
    vec![
        Row {
            network: "192.0.2.0/24",
            place: place(
                NORWAY,
                EUROPE,
                ("Oslo", 3_143_244, "03", "Oslo County", 3_143_242),
                (59.9127, 10.7461, 20, "Europe/Oslo"),
            ),
            asn: (64_500, "Example Telecom NO"),
            anon: None,
        },
        Row {
            network: "198.51.100.0/24",
            place: place(
                ("SE", "Sweden", 2_661_886),
                EUROPE,
                ("Stockholm", 2_673_730, "AB", "Stockholm County", 2_673_722),
                (59.3293, 18.0686, 20, "Europe/Stockholm"),
            ),
            asn: (64_501, "Example Net SE"),
            anon: None,
        },
        Row {
            network: "203.0.113.0/24",
            place: new_york(),
            asn: (64_502, "Example Hosting US"),
            anon: anon(|a| a.is_hosting_provider = true),
        },
        Row {
            network: "203.0.113.128/25",
            place: new_york(),
            asn: (64_502, "Example Hosting US"),
            anon: anon(|a| a.is_tor_exit_node = true),
        },
        Row {
            network: "2001:db8:1::/48",
            place: place(
                ("DE", "Germany", 2_921_044),
                EUROPE,
                ("Berlin", 2_950_159, "BE", "Land Berlin", 2_950_157),
                (52.52, 13.405, 100, "Europe/Berlin"),
            ),
            asn: (64_503, "Example Mobile DE"),
            anon: None,
        },
        Row {
            network: "2001:db8:2::/48",
            place: place(
                ("AU", "Australia", 2_077_456),
                OCEANIA,
                ("Sydney", 2_147_714, "NSW", "New South Wales", 2_155_400),
                (-33.8688, 151.2093, 50, "Australia/Sydney"),
            ),
            asn: (64_504, "Example Net AU"),
            anon: None,
        },
        Row {
            network: "2001:db8:3::/48",
            place: place(
                ("NL", "Netherlands", 2_750_405),
                EUROPE,
                ("Amsterdam", 2_759_794, "NH", "North Holland", 2_749_879),
                (52.3676, 4.9041, 20, "Europe/Amsterdam"),
            ),
            asn: (64_505, "Example VPN NL"),
            anon: anon(|a| a.is_anonymous_vpn = true),
        },
        Row {
            network: "2001:db8:4::/48",
            place: country_only(UNITED_STATES, NORTH_AMERICA),
            asn: (64_506, "Example Proxy US"),
            anon: anon(|a| a.is_public_proxy = true),
        },
        Row {
            network: "2001:db8:5::/48",
            place: country_only(UNITED_STATES, NORTH_AMERICA),
            asn: (64_507, "Example Residential US"),
            anon: anon(|a| a.is_residential_proxy = true),
        },
        Row {
            network: "45.13.0.0/16",
            place: country_only(NORWAY, EUROPE),
            asn: (29_695, "Altibox AS"),
            anon: None,
        },
        Row {
            network: "46.212.0.0/16",
            place: place(
                NORWAY,
                EUROPE,
                ("Oslo", 3_143_244, "03", "Oslo County", 3_143_242),
                (59.91, 10.75, 100, "Europe/Oslo"),
            ),
            asn: (41_164, "Telia Norge"),
            anon: None,
        },
        Row {
            network: "84.208.0.0/16",
            place: place(
                NORWAY,
                EUROPE,
                ("Bergen", 3_161_732, "46", "Vestland", 11_259_446),
                (60.3913, 5.3221, 50, "Europe/Oslo"),
            ),
            asn: (2_119, "Telenor Norge"),
            anon: None,
        },
        Row {
            network: "91.186.0.0/16",
            place: place(
                ("GB", "United Kingdom", 2_635_167),
                EUROPE,
                ("London", 2_643_743, "ENG", "England", 6_269_131),
                (51.5074, -0.1278, 100, "Europe/London"),
            ),
            asn: (29_550, "Simply Transit"),
            anon: None,
        },
        // Private and ULA space: riskd must never look these up; the records exist to prove it.
        Row {
            network: "10.0.0.0/8",
            place: country_only(UNITED_STATES, NORTH_AMERICA),
            asn: (64_510, "Example Private Net"),
            anon: anon(|a| a.is_public_proxy = true),
        },
        Row {
            network: "fd00::/8",
            place: country_only(UNITED_STATES, NORTH_AMERICA),
            asn: (64_510, "Example Private Net"),
            anon: anon(|a| a.is_public_proxy = true),
        },
    ]
}

#[derive(Serialize)]
struct Names {
    en: &'static str,
}

#[derive(Serialize)]
struct Named {
    #[serde(skip_serializing_if = "Option::is_none")]
    iso_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    geoname_id: u32,
    names: Names,
}

#[derive(Serialize)]
struct Location {
    accuracy_radius: u16,
    latitude: f64,
    longitude: f64,
    time_zone: &'static str,
}

/// The GeoIP2/GeoLite2 City schema, restricted to the fields the fixtures fill.
#[derive(Serialize)]
struct CityRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<Named>,
    continent: Named,
    country: Named,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location>,
    registered_country: Named,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subdivisions: Vec<Named>,
}

#[derive(Serialize)]
struct AsnRecord {
    autonomous_system_number: u32,
    autonomous_system_organization: &'static str,
}

fn country(c: (&'static str, &'static str, u32)) -> Named {
    Named {
        iso_code: Some(c.0),
        code: None,
        geoname_id: c.2,
        names: Names { en: c.1 },
    }
}

fn city_record(p: &Place) -> CityRecord {
    let (city, subdivisions) = match p.city {
        Some((name, id, sub_iso, sub_name, sub_id)) => (
            Some(Named {
                iso_code: None,
                code: None,
                geoname_id: id,
                names: Names { en: name },
            }),
            vec![Named {
                iso_code: Some(sub_iso),
                code: None,
                geoname_id: sub_id,
                names: Names { en: sub_name },
            }],
        ),
        None => (None, Vec::new()),
    };
    CityRecord {
        city,
        continent: Named {
            iso_code: None,
            code: Some(p.continent.0),
            geoname_id: p.continent.2,
            names: Names { en: p.continent.1 },
        },
        country: country(p.country),
        location: p.location.map(
            |(latitude, longitude, accuracy_radius, time_zone)| Location {
                accuracy_radius,
                latitude,
                longitude,
                time_zone,
            },
        ),
        registered_country: country(p.country),
        subdivisions,
    }
}

fn writer(database_type: &str, description: &str) -> Writer {
    // Defaults match MaxMind's files: ip_version 6 with IPv4 reachable at ::/96 and through
    // the ::ffff:0:0/96, 6to4 and Teredo aliases.
    Writer::builder(database_type)
        .languages(["en"])
        .description(&[("en", description)])
        .build_epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(BUILD_EPOCH_S))
        .build()
}

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = std::env::args_os().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip"),
        PathBuf::from,
    );
    const NOTE: &str = "riskd test fixture: fictional data, not for production";
    let mut city = writer("GeoLite2-City", &format!("{NOTE} (City)"));
    let mut asn = writer("GeoLite2-ASN", &format!("{NOTE} (ASN)"));
    let mut anonymous = writer("GeoIP2-Anonymous-IP", &format!("{NOTE} (Anonymous IP)"));

    for row in rows() {
        let net: IpNet = row.network.parse()?;
        city.insert(net, &city_record(&row.place))?;
        asn.insert(
            net,
            &AsnRecord {
                autonomous_system_number: row.asn.0,
                autonomous_system_organization: row.asn.1,
            },
        )?;
        if let Some(flags) = &row.anon {
            anonymous.insert(net, flags)?;
        }
    }

    std::fs::create_dir_all(&out_dir)?;
    for (file, db, database_type) in [
        ("riskd-City.mmdb", &city, "GeoLite2-City"),
        ("riskd-ASN.mmdb", &asn, "GeoLite2-ASN"),
        ("riskd-Anonymous-IP.mmdb", &anonymous, "GeoIP2-Anonymous-IP"),
    ] {
        let bytes = db.to_bytes()?;
        // Read back with the same reader riskd uses, so a writer regression fails here.
        let reader = maxminddb::Reader::from_source(bytes.as_slice())?;
        if reader.metadata.database_type != database_type || reader.metadata.ip_version != 6 {
            return Err(format!("{file}: unexpected metadata {:?}", reader.metadata).into());
        }
        let path = out_dir.join(file);
        std::fs::write(&path, &bytes)?;
        println!("wrote {} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}
