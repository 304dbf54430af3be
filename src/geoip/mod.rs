//! GeoIP: where an IP address is, which network owns it and whether it hides someone.
//!
//! Reads three MaxMind DB files (GeoIP2/GeoLite2 City, ASN and Anonymous IP) into memory
//! once; [`GeoIp::lookup`] then answers from them on the scoring hot path without
//! allocating beyond the few strings it returns. Lookups never fail: an address the
//! databases do not know, an address that says nothing about location (private, loopback,
//! ...) and a damaged record all come back as unknown fields. Opening is where problems are
//! reported, as a typed [`GeoIpError`].
//!
//! `DbSource::Builtin` uses the small fictional fixtures in `geoip/` (see its README), which
//! are compiled into the binary so `riskd serve` works from any directory.

mod layout;
mod record;

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use maxminddb::{MaxMindDbError, Reader};
use serde::Deserialize;

use self::layout::{guarded, Invalid};
use self::record::{AnonymousIpRecord, AsnRecord, CityRecord};

/// Largest database file read, in bytes. MaxMind's biggest commercial databases are a few
/// hundred MB; the cap stops a mistyped path (a device, a log file) from exhausting memory.
pub const DATABASE_BYTES_MAX: u64 = 1 << 30;

const BUILTIN_CITY: &[u8] = include_bytes!("../../geoip/riskd-City.mmdb");
const BUILTIN_ASN: &[u8] = include_bytes!("../../geoip/riskd-ASN.mmdb");
const BUILTIN_ANONYMOUS_IP: &[u8] = include_bytes!("../../geoip/riskd-Anonymous-IP.mmdb");

/// What the databases say about one address. Every field is optional: unknown is normal.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2, upper case (`country.iso_code`, else `registered_country.iso_code`).
    pub country: Option<String>,
    /// English name of the first subdivision (state, county, ...).
    pub region: Option<String>,
    /// English city name.
    pub city: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Radius around the coordinates that likely holds the address (`location.accuracy_radius`).
    pub accuracy_radius_km: Option<u16>,
    /// Autonomous system number (ASN database).
    pub asn: Option<u32>,
    /// Autonomous system organisation (ASN database).
    pub as_org: Option<String>,
    pub anonymous: AnonymousIp,
}

/// Anonymous IP database flags; all false when unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AnonymousIp {
    pub is_anonymous: bool,
    pub is_anonymous_vpn: bool,
    pub is_hosting_provider: bool,
    pub is_public_proxy: bool,
    pub is_residential_proxy: bool,
    pub is_tor_exit_node: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    #[error("cannot read GeoIP database {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("GeoIP database {} is larger than {DATABASE_BYTES_MAX} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("cannot open GeoIP database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: MaxMindDbError,
    },
    #[error("GeoIP database {} is damaged: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "GeoIP database {} is a {found:?} database, but a {expected} database is needed here",
        path.display()
    )]
    WrongDatabaseType {
        path: PathBuf,
        expected: &'static str,
        found: String,
    },
}

/// Which of the three databases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    City,
    Asn,
    AnonymousIp,
}

impl DbKind {
    /// What the metadata `database_type` must contain (MaxMind names them
    /// `GeoIP2-City`, `GeoLite2-ASN`, `GeoIP2-Anonymous-IP`, ...).
    pub fn type_marker(self) -> &'static str {
        match self {
            DbKind::City => "City",
            DbKind::Asn => "ASN",
            DbKind::AnonymousIp => "Anonymous-IP",
        }
    }

    fn builtin(self) -> (&'static str, &'static [u8]) {
        match self {
            DbKind::City => ("builtin:riskd-City.mmdb", BUILTIN_CITY),
            DbKind::Asn => ("builtin:riskd-ASN.mmdb", BUILTIN_ASN),
            DbKind::AnonymousIp => ("builtin:riskd-Anonymous-IP.mmdb", BUILTIN_ANONYMOUS_IP),
        }
    }
}

/// Where one database comes from. As a config value (`geoip.city_db`, ...): `"builtin"`,
/// `""` for disabled, anything else a file path.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(from = "String", into = "String")]
pub enum DbSource {
    Builtin,
    File(PathBuf),
    Disabled,
}

impl DbSource {
    /// The config keyword for the embedded fixtures.
    pub const BUILTIN: &'static str = "builtin";

    /// Parses a config value. Keywords are matched after trimming; a file literally named
    /// `builtin` is `./builtin`.
    pub fn parse(value: &str) -> DbSource {
        match value.trim() {
            "" => DbSource::Disabled,
            Self::BUILTIN => DbSource::Builtin,
            _ => DbSource::File(PathBuf::from(value)),
        }
    }
}

impl From<String> for DbSource {
    fn from(value: String) -> Self {
        DbSource::parse(&value)
    }
}

impl From<DbSource> for String {
    fn from(source: DbSource) -> Self {
        source.to_string()
    }
}

impl fmt::Display for DbSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbSource::Builtin => f.write_str(Self::BUILTIN),
            DbSource::File(path) => write!(f, "{}", path.display()),
            DbSource::Disabled => Ok(()),
        }
    }
}

/// A loaded database, as reported by [`GeoIp::databases`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DbInfo<'a> {
    pub kind: DbKind,
    /// File path, or `builtin:<file name>`.
    pub origin: &'a Path,
    /// Metadata `database_type`, e.g. `GeoLite2-City`.
    pub database_type: &'a str,
    /// Metadata `build_epoch`: when the data was built (seconds since the Unix epoch).
    pub build_epoch_s: u64,
}

/// The GeoIP databases riskd scores with. Cheap to share (`Send + Sync`, read-only).
pub struct GeoIp {
    city: Option<Db>,
    asn: Option<Db>,
    anonymous_ip: Option<Db>,
}

impl GeoIp {
    /// Opens the City, ASN and Anonymous IP databases, checking each file's structure and
    /// that its metadata `database_type` fits the slot.
    pub fn open(
        city: &DbSource,
        asn: &DbSource,
        anonymous_ip: &DbSource,
    ) -> Result<GeoIp, GeoIpError> {
        Ok(GeoIp {
            city: Db::open(DbKind::City, city)?,
            asn: Db::open(DbKind::Asn, asn)?,
            anonymous_ip: Db::open(DbKind::AnonymousIp, anonymous_ip)?,
        })
    }

    /// The embedded fixture databases (what the default configuration uses).
    pub fn builtin() -> Result<GeoIp, GeoIpError> {
        GeoIp::open(&DbSource::Builtin, &DbSource::Builtin, &DbSource::Builtin)
    }

    /// No databases: every lookup is unknown.
    pub fn disabled() -> GeoIp {
        GeoIp {
            city: None,
            asn: None,
            anonymous_ip: None,
        }
    }

    /// The databases that are loaded, for startup logs and diagnostics.
    pub fn databases(&self) -> impl Iterator<Item = DbInfo<'_>> {
        [&self.city, &self.asn, &self.anonymous_ip]
            .into_iter()
            .flatten()
            .map(Db::info)
    }

    /// Everything the databases know about `ip`. Never fails: see the module docs.
    ///
    /// IPv4-mapped and IPv4-compatible IPv6 addresses (`::ffff:a.b.c.d`, `::a.b.c.d`) are
    /// looked up as IPv4, as MaxMind's trees do. Addresses that
    /// say nothing about where a user is (see [`is_local`]) are unknown without a lookup,
    /// even if a database has a record for them.
    pub fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let mut info = GeoInfo::default();
        let ip = canonical(ip);
        if is_local(ip) {
            return info;
        }
        if let Some(record) = self.city.as_ref().and_then(|db| db.get::<CityRecord>(ip)) {
            record.fill(&mut info);
        }
        if let Some(record) = self.asn.as_ref().and_then(|db| db.get::<AsnRecord>(ip)) {
            record.fill(&mut info);
        }
        if let Some(record) =
            (self.anonymous_ip.as_ref()).and_then(|db| db.get::<AnonymousIpRecord>(ip))
        {
            info.anonymous = record.flags();
        }
        info
    }
}

impl fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.databases()).finish()
    }
}

/// True for addresses that are not on the public internet, so no database can place them:
/// private (RFC 1918), shared CGNAT space (100.64.0.0/10), loopback, link-local,
/// unspecified, "this network" (0.0.0.0/8), multicast, reserved 240.0.0.0/4 (which holds
/// the broadcast address), unique-local (fc00::/7), and 6to4 addresses wrapping any of these.
///
/// Documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) are
/// not local: riskd's fixtures and tests use them as stand-ins for public addresses.
pub fn is_local(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(ip) => is_local_v4(ip),
        IpAddr::V6(ip) => is_local_v6(ip),
    }
}

/// IPv6 addresses in ::/96 as the IPv4 address they carry (`::ffff:a.b.c.d`, and the
/// deprecated `::a.b.c.d`, which MaxMind trees store IPv4 data under). `::` and `::1` become
/// 0.0.0.0 and 0.0.0.1, which are local either way.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    let [first, second, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || first == 0
        || first >= 240
        || (first == 100 && second & 0b1100_0000 == 64)
}

fn is_local_v6(ip: Ipv6Addr) -> bool {
    // 6to4 (2002::/16) carries an IPv4 address in bits 16..48, and MaxMind trees alias it
    // to that address's IPv4 data.
    let [prefix, high, low, ..] = ip.segments();
    let embedded = Ipv4Addr::from(u32::from(high) << 16 | u32::from(low));
    (prefix == 0x2002 && is_local_v4(embedded))
        || ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
}

struct Db {
    kind: DbKind,
    origin: PathBuf,
    reader: Reader<Cow<'static, [u8]>>,
    /// An IPv4-only tree cannot answer for IPv6 addresses; maxminddb would walk it anyway.
    has_ipv6: bool,
    /// Damaged records are logged once per database, not once per request.
    damage_logged: AtomicBool,
}

impl Db {
    fn open(kind: DbKind, source: &DbSource) -> Result<Option<Db>, GeoIpError> {
        let (origin, bytes) = match source {
            DbSource::Disabled => return Ok(None),
            DbSource::Builtin => {
                let (name, bytes) = kind.builtin();
                (PathBuf::from(name), Cow::Borrowed(bytes))
            }
            DbSource::File(path) => (path.clone(), Cow::Owned(read_capped(path)?)),
        };
        Db::from_bytes(kind, origin, bytes).map(Some)
    }

    fn from_bytes(
        kind: DbKind,
        origin: PathBuf,
        bytes: Cow<'static, [u8]>,
    ) -> Result<Db, GeoIpError> {
        let metadata = layout::check(&bytes).map_err(|invalid| match invalid {
            Invalid::Metadata(source) => GeoIpError::Open {
                path: origin.clone(),
                source,
            },
            Invalid::Layout(reason) => GeoIpError::Corrupt {
                path: origin.clone(),
                reason,
            },
        })?;
        if !metadata.database_type.contains(kind.type_marker()) {
            return Err(GeoIpError::WrongDatabaseType {
                path: origin,
                expected: kind.type_marker(),
                found: metadata.database_type,
            });
        }
        // `check` passed, so this cannot panic; the guard is for a maxminddb upgrade.
        let reader = guarded(|| Reader::from_source(bytes))
            .unwrap_or_else(|| Err(MaxMindDbError::InvalidDatabase("unreadable".to_owned())))
            .map_err(|source| GeoIpError::Open {
                path: origin.clone(),
                source,
            })?;
        Ok(Db {
            kind,
            origin,
            has_ipv6: reader.metadata.ip_version == 6,
            reader,
            damage_logged: AtomicBool::new(false),
        })
    }

    fn info(&self) -> DbInfo<'_> {
        DbInfo {
            kind: self.kind,
            origin: &self.origin,
            database_type: &self.reader.metadata.database_type,
            build_epoch_s: self.reader.metadata.build_epoch,
        }
    }

    /// The record for `ip`, or `None` when there is none or it cannot be decoded.
    fn get<'a, T: Deserialize<'a>>(&'a self, ip: IpAddr) -> Option<T> {
        if ip.is_ipv6() && !self.has_ipv6 {
            return None;
        }
        match guarded(|| self.reader.lookup::<T>(ip)) {
            Some(Ok(found)) => found,
            failed => {
                if !self.damage_logged.swap(true, Ordering::Relaxed) {
                    let error = failed
                        .and_then(Result::err)
                        .map_or_else(|| "decoder panicked".to_owned(), |e| e.to_string());
                    tracing::debug!(
                        db = %self.origin.display(),
                        %error,
                        "undecodable GeoIP record, treated as unknown (logged once per database)"
                    );
                }
                None
            }
        }
    }
}

/// Reads at most [`DATABASE_BYTES_MAX`] bytes: `take` keeps an endless file such as a
/// device from being read forever.
fn read_capped(path: &Path) -> Result<Vec<u8>, GeoIpError> {
    let read_error = |source| GeoIpError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let size_hint = file
        .metadata()
        .map_or(0, |m| m.len())
        .min(DATABASE_BYTES_MAX);
    let mut bytes = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0));
    file.take(DATABASE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > DATABASE_BYTES_MAX {
        return Err(GeoIpError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
