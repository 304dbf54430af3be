//! What an attempt is compared by: its device, network, place and client,
//! reduced once to compact keys. Scoring reads them; a successful outcome
//! teaches them to the user's context.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::freeman::Observation;
use super::velocity::Sources;
use crate::event::{LoginAttempt, TimestampMs};
use crate::hash::{fingerprint, fnv1a64_tagged_parts};

/// Tags for fingerprints that are not the model's.
const TAG_USER_AGENT_DEVICE: u8 = 0x40;
const TAG_UA_FAMILY: u8 = 0x41;

/// Bits of an address that make its network prefix (a household, an office).
pub const IPV4_PREFIX_BITS: u8 = 24;
pub const IPV6_PREFIX_BITS: u8 = 48;

/// A device: the gateway's stable identifier, or, without one, a
/// fingerprint of the raw User-Agent (weaker: shared by identical browsers).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeviceKey {
    Id(Box<str>),
    UserAgent(u64),
}

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKey::Id(id) => f.write_str(id),
            DeviceKey::UserAgent(hash) => write!(f, "ua:{hash:016x}"),
        }
    }
}

/// ISO 3166-1 alpha-2 country code, upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(text: &str) -> Option<CountryCode> {
        match text.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Some(CountryCode([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
            ])),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An address's network: /24 for IPv4, /48 for IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IpPrefix {
    pub network: IpAddr,
    pub bits: u8,
}

impl IpPrefix {
    pub fn of(ip: IpAddr) -> IpPrefix {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX << (32 - IPV4_PREFIX_BITS);
                IpPrefix {
                    network: IpAddr::V4((u32::from(v4) & mask).into()),
                    bits: IPV4_PREFIX_BITS,
                }
            }
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return IpPrefix::of(IpAddr::V4(v4));
                }
                let mask = u128::MAX << (128 - IPV6_PREFIX_BITS);
                IpPrefix {
                    network: IpAddr::V6((u128::from(v6) & mask).into()),
                    bits: IPV6_PREFIX_BITS,
                }
            }
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.bits)
    }
}

/// A point on Earth with the GeoIP accuracy radius around it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_radius_km: Option<u16>,
}

/// The compact keys of one attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptKeys {
    pub timestamp_ms: TimestampMs,
    pub ip: IpAddr,
    pub device: Option<DeviceKey>,
    pub country: Option<CountryCode>,
    pub asn: Option<u32>,
    pub prefix: IpPrefix,
    /// Browser family and OS family without versions (a browser update is
    /// not a new client; a switch from Chrome to curl is).
    pub ua_family: Option<u64>,
    pub location: Option<Location>,
    pub city: Option<String>,
    pub observation: Observation,
    /// The attempt's IP address, network and ASN as failure sources.
    pub sources: Sources,
}

impl AttemptKeys {
    pub fn of(attempt: &LoginAttempt) -> AttemptKeys {
        let device = match (&attempt.device_id, &attempt.user_agent) {
            (Some(id), _) => Some(DeviceKey::Id(id.as_str().into())),
            (None, Some(ua)) => Some(DeviceKey::UserAgent(fingerprint(
                TAG_USER_AGENT_DEVICE,
                ua.as_bytes(),
            ))),
            (None, None) => None,
        };
        let client = &attempt.client;
        let ua_family = match (&client.browser, &client.os) {
            (None, None) => None,
            // Browser family, a NUL, OS family: hashed in parts (no string
            // built per request).
            (browser, os) => Some(fnv1a64_tagged_parts(
                TAG_UA_FAMILY,
                &[
                    browser.as_deref().map_or("", without_version).as_bytes(),
                    b"\0",
                    os.as_deref().map_or("", without_version).as_bytes(),
                ],
            )),
        };
        let geo = &attempt.geo;
        let location = match (geo.latitude, geo.longitude) {
            (Some(latitude), Some(longitude)) => Some(Location {
                latitude,
                longitude,
                accuracy_radius_km: geo.accuracy_radius_km,
            }),
            _ => None,
        };
        let country = geo.country.as_deref().and_then(CountryCode::parse);
        let ip_text = IpText::of(attempt.ip);
        let observation = Observation::new(
            ip_text.as_str(),
            geo.asn,
            country.as_ref().map_or("", CountryCode::as_str),
            attempt.user_agent.as_deref().unwrap_or(""),
            client.browser.as_deref().unwrap_or(""),
            client.os.as_deref().unwrap_or(""),
            client.device_type.as_str(),
        );
        AttemptKeys {
            timestamp_ms: attempt.timestamp_ms,
            ip: attempt.ip,
            device,
            country,
            asn: geo.asn,
            prefix: IpPrefix::of(attempt.ip),
            ua_family,
            location,
            city: geo.city.clone(),
            observation,
            sources: Sources::of(attempt.ip, geo.asn),
        }
    }
}

/// An IP address's text on the stack: the model compares addresses as
/// text, and formatting one into a `String` per request was an allocation.
struct IpText {
    bytes: [u8; IpText::BYTES_MAX],
    len: usize,
}

impl Default for IpText {
    fn default() -> IpText {
        IpText {
            bytes: [0; IpText::BYTES_MAX],
            len: 0,
        }
    }
}

impl IpText {
    /// The longest IPv6 text ("ffff:...:255.255.255.255") is 45 bytes.
    const BYTES_MAX: usize = 48;

    /// The address's display text. IPv4 digits are written directly: the
    /// formatter's machinery per octet was ~9% of scoring an attempt.
    fn of(ip: IpAddr) -> IpText {
        let mut text = IpText::default();
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.push(b'.');
                    }
                    if octet >= 100 {
                        text.push(b'0' + octet / 100);
                    }
                    if octet >= 10 {
                        text.push(b'0' + octet / 10 % 10);
                    }
                    text.push(b'0' + octet % 10);
                }
            }
            // Always fits (BYTES_MAX); a failure would only leave the text
            // short, never panic.
            IpAddr::V6(_) => {
                let _ = write!(text, "{ip}");
            }
        }
        text
    }

    /// An IPv4 text is at most 15 bytes: always room.
    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn as_str(&self) -> &str {
        // Only `write_str` fills it, with whole `&str`s.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for IpText {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// "Chrome Mobile 81.0.4044" -> "Chrome Mobile"; "Windows 10" -> "Windows".
/// Cut before the first word that starts with a digit (one byte scan: two
/// per request).
fn without_version(text: &str) -> &str {
    let bytes = text.as_bytes();
    let version = (0..bytes.len())
        .find(|&i| bytes[i].is_ascii_digit() && (i == 0 || bytes[i - 1] == b' '))
        .unwrap_or(bytes.len());
    // `version` is at an ASCII digit or the end: a char boundary.
    text[..version].trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_mask_to_24_and_48_bits() {
        assert_eq!(
            IpPrefix::of("192.0.2.77".parse().unwrap()).to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            IpPrefix::of("2001:db8:1:2::5".parse().unwrap()).to_string(),
            "2001:db8:1::/48"
        );
        assert_eq!(
            IpPrefix::of("::ffff:192.0.2.77".parse().unwrap()).to_string(),
            "192.0.2.0/24"
        );
    }

    #[test]
    fn address_text_on_the_stack_is_the_display_text() {
        for ip in [
            "192.0.2.77",
            "0.0.0.0",
            "10.100.9.255",
            "255.255.255.255",
            "2001:db8::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:192.0.2.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(IpText::of(ip).as_str(), ip.to_string());
        }
    }

    #[test]
    fn the_family_fingerprint_is_that_of_the_joined_text() {
        assert_eq!(
            fnv1a64_tagged_parts(TAG_UA_FAMILY, &[b"Chrome", b"\0", b"Windows"]),
            crate::hash::fnv1a64_tagged(TAG_UA_FAMILY, "Chrome\u{0}Windows".as_bytes())
        );
    }

    #[test]
    fn versions_are_stripped_from_families() {
        assert_eq!(without_version("Chrome Mobile 81.0.4044"), "Chrome Mobile");
        assert_eq!(without_version("Windows 10"), "Windows");
        assert_eq!(without_version("curl"), "curl");
        assert_eq!(without_version("81"), "");
        assert_eq!(without_version("Mac OS X 10.15.7"), "Mac OS X");
        assert_eq!(without_version("Opera GX 9"), "Opera GX");
        assert_eq!(without_version("A  B"), "A  B");
        assert_eq!(without_version("Edge 1x 2"), "Edge");
        assert_eq!(without_version(""), "");
    }

    #[test]
    fn country_codes_are_normalised() {
        assert_eq!(CountryCode::parse("se").unwrap().as_str(), "SE");
        assert!(CountryCode::parse("SWE").is_none());
        assert!(CountryCode::parse("S1").is_none());
    }
}
