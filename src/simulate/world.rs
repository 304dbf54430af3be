//! The simulated world: countries with cities, their networks (AS number,
//! kind, address block) and the clients people and attackers use.
//!
//! The blocks of the built-in GeoIP fixtures (geoip/README.md) are here
//! with the same country, city and AS number, so GeoIP agrees with the
//! stream where it can; the stream always carries its own geo fields, so it
//! does not depend on GeoIP data. Other blocks and AS numbers are
//! plausible, not authoritative.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::event::DeviceType;

#[derive(Debug)]
pub struct City {
    pub name: &'static str,
    pub region: &'static str,
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetKind {
    Residential,
    Mobile,
    Business,
    /// Hosting, VPN and proxy exits.
    Hosting,
}

#[derive(Clone, Copy, Debug)]
pub enum Block {
    V4 { base: u32, bits: u8 },
    V6 { base: u128, bits: u8 },
}

#[derive(Debug)]
pub struct Network {
    pub asn: u32,
    pub kind: NetKind,
    pub block: Block,
    /// The network's only city (a GeoIP fixture places it there), if any.
    pub city: Option<&'static str>,
}

#[derive(Debug)]
pub struct Country {
    pub code: &'static str,
    /// Share of the service's users living there (0: attackers only).
    pub users_weight: f64,
    /// Hours ahead of UTC (summer time), for the hours people log in.
    pub utc_offset_h: i64,
    pub cities: &'static [City],
    pub networks: &'static [Network],
}

const fn v4(a: u8, b: u8, c: u8, d: u8, bits: u8) -> Block {
    Block::V4 {
        base: u32::from_be_bytes([a, b, c, d]),
        bits,
    }
}

/// 2001:db8:<site>::/48, the documentation range the IPv6 fixtures use.
const fn doc_v6(site: u16) -> Block {
    Block::V6 {
        base: (0x2001_0db8_u128 << 96) | ((site as u128) << 80),
        bits: 48,
    }
}

const fn city(name: &'static str, region: &'static str, latitude: f64, longitude: f64) -> City {
    City {
        name,
        region,
        latitude,
        longitude,
    }
}

const fn net(asn: u32, kind: NetKind, block: Block, city: Option<&'static str>) -> Network {
    Network {
        asn,
        kind,
        block,
        city,
    }
}

use NetKind::{Business, Hosting, Mobile, Residential};

pub static COUNTRIES: &[Country] = &[
    Country {
        code: "NO",
        users_weight: 55.0,
        utc_offset_h: 2,
        cities: &[
            city("Oslo", "Oslo County", 59.9127, 10.7461),
            city("Bergen", "Vestland", 60.3913, 5.3221),
            city("Trondheim", "Trøndelag", 63.4305, 10.3951),
            city("Stavanger", "Rogaland", 58.9700, 5.7331),
            city("Tromsø", "Troms", 69.6492, 18.9553),
        ],
        networks: &[
            net(41164, Residential, v4(46, 212, 0, 0, 16), Some("Oslo")),
            net(2119, Residential, v4(84, 208, 0, 0, 16), Some("Bergen")),
            net(29695, Residential, v4(45, 13, 0, 0, 16), None),
            net(64500, Residential, v4(192, 0, 2, 0, 24), Some("Oslo")),
            net(12929, Mobile, v4(2, 148, 0, 0, 16), None),
            net(224, Business, v4(129, 240, 0, 0, 16), None),
        ],
    },
    Country {
        code: "SE",
        users_weight: 8.0,
        utc_offset_h: 2,
        cities: &[
            city("Stockholm", "Stockholm County", 59.3293, 18.0686),
            city("Gothenburg", "Västra Götaland", 57.7089, 11.9746),
            city("Malmö", "Skåne", 55.6050, 13.0038),
        ],
        networks: &[
            net(
                64501,
                Residential,
                v4(198, 51, 100, 0, 24),
                Some("Stockholm"),
            ),
            net(3301, Residential, v4(78, 72, 0, 0, 16), None),
            net(1257, Mobile, v4(90, 224, 0, 0, 16), None),
            net(8473, Business, v4(85, 24, 0, 0, 16), None),
        ],
    },
    Country {
        code: "DK",
        users_weight: 4.0,
        utc_offset_h: 2,
        cities: &[
            city("Copenhagen", "Capital Region", 55.6761, 12.5683),
            city("Aarhus", "Central Jutland", 56.1629, 10.2039),
        ],
        networks: &[
            net(3292, Residential, v4(87, 49, 0, 0, 16), None),
            net(9158, Mobile, v4(5, 103, 0, 0, 16), None),
        ],
    },
    Country {
        code: "FI",
        users_weight: 3.0,
        utc_offset_h: 3,
        cities: &[
            city("Helsinki", "Uusimaa", 60.1699, 24.9384),
            city("Tampere", "Pirkanmaa", 61.4978, 23.7610),
        ],
        networks: &[
            net(719, Residential, v4(88, 113, 0, 0, 16), None),
            net(16086, Mobile, v4(91, 152, 0, 0, 16), None),
        ],
    },
    Country {
        code: "DE",
        users_weight: 5.0,
        utc_offset_h: 2,
        cities: &[
            city("Berlin", "Land Berlin", 52.52, 13.405),
            city("Munich", "Bavaria", 48.1351, 11.5820),
            city("Hamburg", "Hamburg", 53.5511, 9.9937),
        ],
        networks: &[
            net(3320, Residential, v4(84, 128, 0, 0, 16), None),
            net(64503, Mobile, doc_v6(1), Some("Berlin")),
            net(3209, Mobile, v4(88, 64, 0, 0, 16), None),
            net(24940, Hosting, v4(88, 198, 0, 0, 16), Some("Munich")),
        ],
    },
    Country {
        code: "NL",
        users_weight: 2.0,
        utc_offset_h: 2,
        cities: &[
            city("Amsterdam", "North Holland", 52.3676, 4.9041),
            city("Rotterdam", "South Holland", 51.9244, 4.4777),
        ],
        networks: &[
            net(1136, Residential, v4(77, 160, 0, 0, 16), None),
            net(33915, Residential, v4(84, 24, 0, 0, 16), None),
            net(64505, Hosting, doc_v6(3), Some("Amsterdam")),
            net(14061, Hosting, v4(188, 166, 0, 0, 16), Some("Amsterdam")),
            net(60781, Hosting, v4(37, 48, 0, 0, 16), Some("Amsterdam")),
        ],
    },
    Country {
        code: "GB",
        users_weight: 4.0,
        utc_offset_h: 1,
        cities: &[
            city("London", "England", 51.5074, -0.1278),
            city("Manchester", "England", 53.4808, -2.2426),
            city("Edinburgh", "Scotland", 55.9533, -3.1883),
        ],
        networks: &[
            net(29550, Business, v4(91, 186, 0, 0, 16), Some("London")),
            net(2856, Residential, v4(86, 128, 0, 0, 16), None),
            net(12576, Mobile, v4(31, 94, 0, 0, 16), None),
            net(9009, Hosting, v4(185, 236, 0, 0, 16), Some("London")),
        ],
    },
    Country {
        code: "FR",
        users_weight: 2.0,
        utc_offset_h: 2,
        cities: &[
            city("Paris", "Île-de-France", 48.8566, 2.3522),
            city("Lyon", "Auvergne-Rhône-Alpes", 45.7640, 4.8357),
        ],
        networks: &[
            net(3215, Residential, v4(90, 0, 0, 0, 16), None),
            net(12322, Residential, v4(78, 192, 0, 0, 16), None),
            net(16276, Hosting, v4(51, 68, 0, 0, 16), Some("Paris")),
        ],
    },
    Country {
        code: "ES",
        users_weight: 1.5,
        utc_offset_h: 2,
        cities: &[
            city("Madrid", "Madrid", 40.4168, -3.7038),
            city("Barcelona", "Catalonia", 41.3874, 2.1686),
        ],
        networks: &[net(3352, Residential, v4(83, 32, 0, 0, 16), None)],
    },
    Country {
        code: "IT",
        users_weight: 1.5,
        utc_offset_h: 2,
        cities: &[
            city("Rome", "Lazio", 41.9028, 12.4964),
            city("Milan", "Lombardy", 45.4642, 9.19),
        ],
        networks: &[net(3269, Residential, v4(79, 0, 0, 0, 16), None)],
    },
    Country {
        code: "PL",
        users_weight: 3.0,
        utc_offset_h: 2,
        cities: &[
            city("Warsaw", "Masovia", 52.2297, 21.0122),
            city("Kraków", "Lesser Poland", 50.0647, 19.9450),
        ],
        networks: &[
            net(5617, Residential, v4(83, 0, 0, 0, 16), None),
            net(39603, Mobile, v4(37, 47, 0, 0, 16), None),
        ],
    },
    Country {
        code: "US",
        users_weight: 6.0,
        utc_offset_h: -5,
        cities: &[
            city("New York", "New York", 40.7128, -74.0060),
            city("Chicago", "Illinois", 41.8781, -87.6298),
            city("San Francisco", "California", 37.7749, -122.4194),
        ],
        networks: &[
            net(7922, Residential, v4(73, 0, 0, 0, 16), None),
            net(21928, Mobile, v4(172, 56, 0, 0, 16), None),
            net(64502, Hosting, v4(203, 0, 113, 0, 25), Some("New York")),
            net(64502, Hosting, v4(203, 0, 113, 128, 25), Some("New York")),
            net(14618, Hosting, v4(3, 80, 0, 0, 16), None),
            net(14061, Hosting, v4(104, 131, 0, 0, 16), Some("New York")),
        ],
    },
    Country {
        code: "BR",
        users_weight: 1.0,
        utc_offset_h: -3,
        cities: &[
            city("São Paulo", "São Paulo", -23.5505, -46.6333),
            city("Rio de Janeiro", "Rio de Janeiro", -22.9068, -43.1729),
        ],
        networks: &[
            net(28573, Residential, v4(177, 0, 0, 0, 16), None),
            net(26599, Mobile, v4(179, 96, 0, 0, 16), None),
        ],
    },
    Country {
        code: "IN",
        users_weight: 1.0,
        utc_offset_h: 5,
        cities: &[
            city("Mumbai", "Maharashtra", 19.0760, 72.8777),
            city("Bangalore", "Karnataka", 12.9716, 77.5946),
        ],
        networks: &[
            net(9829, Residential, v4(117, 192, 0, 0, 16), None),
            net(55836, Mobile, v4(49, 32, 0, 0, 16), None),
        ],
    },
    Country {
        code: "AU",
        users_weight: 1.0,
        utc_offset_h: 10,
        cities: &[
            city("Sydney", "New South Wales", -33.8688, 151.2093),
            city("Melbourne", "Victoria", -37.8136, 144.9631),
        ],
        networks: &[
            net(64504, Residential, doc_v6(2), Some("Sydney")),
            net(1221, Residential, v4(1, 120, 0, 0, 16), None),
        ],
    },
    Country {
        code: "JP",
        users_weight: 0.5,
        utc_offset_h: 9,
        cities: &[city("Tokyo", "Tokyo", 35.6762, 139.6503)],
        networks: &[net(17676, Residential, v4(126, 0, 0, 0, 16), None)],
    },
    Country {
        code: "RU",
        users_weight: 0.0,
        utc_offset_h: 3,
        cities: &[city("Moscow", "Moscow", 55.7558, 37.6173)],
        networks: &[
            net(8402, Residential, v4(95, 24, 0, 0, 16), None),
            net(49505, Hosting, v4(92, 53, 0, 0, 16), None),
        ],
    },
    Country {
        code: "CN",
        users_weight: 0.0,
        utc_offset_h: 8,
        cities: &[city("Beijing", "Beijing", 39.9042, 116.4074)],
        networks: &[net(4134, Residential, v4(114, 80, 0, 0, 16), None)],
    },
    Country {
        code: "VN",
        users_weight: 0.0,
        utc_offset_h: 7,
        cities: &[city("Hanoi", "Hanoi", 21.0278, 105.8342)],
        networks: &[net(7552, Residential, v4(27, 64, 0, 0, 16), None)],
    },
];

/// A network of a country, by index into the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetRef {
    pub country: usize,
    pub network: usize,
}

impl NetRef {
    pub fn get(self) -> &'static Network {
        &COUNTRIES[self.country].networks[self.network]
    }
}

/// One household's or office's part of a network: a /24 (IPv4) or a /64
/// (IPv6) inside the block, and the usable host numbers in it.
#[derive(Clone, Copy, Debug)]
pub struct Subnet {
    pub net: NetRef,
    base: u128,
    v6: bool,
    hosts: (u128, u128),
}

impl Subnet {
    pub fn draw(net: NetRef, rng: &mut ChaCha8Rng) -> Subnet {
        match net.get().block {
            Block::V4 { base, bits } => {
                let size = 1u32 << (32 - bits);
                if bits >= 24 {
                    Subnet {
                        net,
                        base: u128::from(base),
                        v6: false,
                        hosts: (u128::from(size > 2), u128::from(size - 2).max(1)),
                    }
                } else {
                    let subnets = size >> 8;
                    let pick = rng.random_range(0..subnets);
                    Subnet {
                        net,
                        base: u128::from(base + (pick << 8)),
                        v6: false,
                        hosts: (1, 254),
                    }
                }
            }
            Block::V6 { base, bits } => {
                let subnets = 1u128 << (64 - u32::from(bits.min(64)));
                let pick = rng.random_range(0..subnets);
                Subnet {
                    net,
                    base: base | (pick << 64),
                    v6: true,
                    hosts: (1, u128::from(u64::MAX)),
                }
            }
        }
    }

    /// An address in this subnet.
    pub fn address(&self, rng: &mut ChaCha8Rng) -> IpAddr {
        let host = rng.random_range(self.hosts.0..=self.hosts.1);
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.base | host))
        } else {
            // IPv4 bases and hosts fit 32 bits by construction.
            IpAddr::V4(Ipv4Addr::from(u32::try_from(self.base + host).unwrap_or(0)))
        }
    }
}

/// The clients people use, with the strings a browser and a User-Agent
/// parser would give for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    WindowsChrome,
    WindowsEdge,
    WindowsFirefox,
    MacSafari,
    MacChrome,
    LinuxFirefox,
    IphoneSafari,
    AndroidChrome,
    IpadSafari,
    /// Automation: attackers' scripts.
    PythonRequests,
    Curl,
    HeadlessChrome,
}

impl Client {
    pub const DESKTOP: [(Client, f64); 6] = [
        (Client::WindowsChrome, 40.0),
        (Client::WindowsEdge, 15.0),
        (Client::WindowsFirefox, 8.0),
        (Client::MacSafari, 15.0),
        (Client::MacChrome, 15.0),
        (Client::LinuxFirefox, 4.0),
    ];
    pub const MOBILE: [(Client, f64); 2] =
        [(Client::IphoneSafari, 45.0), (Client::AndroidChrome, 55.0)];
    pub const BROWSERS: [Client; 9] = [
        Client::WindowsChrome,
        Client::WindowsEdge,
        Client::WindowsFirefox,
        Client::MacSafari,
        Client::MacChrome,
        Client::LinuxFirefox,
        Client::IphoneSafari,
        Client::AndroidChrome,
        Client::IpadSafari,
    ];
    pub const SCRIPTS: [Client; 3] = [Client::PythonRequests, Client::Curl, Client::HeadlessChrome];

    pub fn device_type(self) -> DeviceType {
        match self {
            Client::WindowsChrome
            | Client::WindowsEdge
            | Client::WindowsFirefox
            | Client::MacSafari
            | Client::MacChrome
            | Client::LinuxFirefox => DeviceType::Desktop,
            Client::IphoneSafari | Client::AndroidChrome => DeviceType::Mobile,
            Client::IpadSafari => DeviceType::Tablet,
            Client::PythonRequests | Client::Curl | Client::HeadlessChrome => DeviceType::Bot,
        }
    }

    /// A concrete client of this kind: (User-Agent, browser, OS), versions drawn.
    pub fn render(self, rng: &mut ChaCha8Rng) -> (String, Option<String>, Option<String>) {
        let chrome = rng.random_range(118..=126);
        let build = rng.random_range(5993..=6478);
        let patch = rng.random_range(0..=250);
        let firefox = rng.random_range(115..=127);
        let ios = (rng.random_range(15..=17), rng.random_range(0..=6));
        let android = rng.random_range(10..=14);
        const MODELS: [&str; 6] = [
            "SM-G991B",
            "Pixel 7",
            "SM-A536B",
            "moto g(60)",
            "2201117TY",
            "CPH2305",
        ];
        let model = MODELS[rng.random_range(0..MODELS.len())];
        let windows = "Windows NT 10.0; Win64; x64";
        let mac = "Macintosh; Intel Mac OS X 10_15_7";
        let (ua, browser, os) = match self {
            Client::WindowsChrome => (
                format!("Mozilla/5.0 ({windows}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{chrome}.0.{build}.{patch} Safari/537.36"),
                format!("Chrome {chrome}.0.{build}"),
                "Windows 10".to_owned(),
            ),
            Client::WindowsEdge => (
                format!("Mozilla/5.0 ({windows}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{chrome}.0.0.0 Safari/537.36 Edg/{chrome}.0.{build}.{patch}"),
                format!("Edge {chrome}.0.{build}"),
                "Windows 10".to_owned(),
            ),
            Client::WindowsFirefox => (
                format!("Mozilla/5.0 ({windows}; rv:{firefox}.0) Gecko/20100101 Firefox/{firefox}.0"),
                format!("Firefox {firefox}.0"),
                "Windows 10".to_owned(),
            ),
            Client::MacSafari => (
                format!("Mozilla/5.0 ({mac}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{}.{} Safari/605.1.15", ios.0, ios.1),
                format!("Safari {}.{}", ios.0, ios.1),
                "Mac OS X 10.15.7".to_owned(),
            ),
            Client::MacChrome => (
                format!("Mozilla/5.0 ({mac}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{chrome}.0.{build}.{patch} Safari/537.36"),
                format!("Chrome {chrome}.0.{build}"),
                "Mac OS X 10.15.7".to_owned(),
            ),
            Client::LinuxFirefox => (
                format!("Mozilla/5.0 (X11; Linux x86_64; rv:{firefox}.0) Gecko/20100101 Firefox/{firefox}.0"),
                format!("Firefox {firefox}.0"),
                "Linux".to_owned(),
            ),
            Client::IphoneSafari => (
                format!("Mozilla/5.0 (iPhone; CPU iPhone OS {}_{} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{}.{} Mobile/15E148 Safari/604.1", ios.0, ios.1, ios.0, ios.1),
                format!("Mobile Safari {}.{}", ios.0, ios.1),
                format!("iOS {}.{}", ios.0, ios.1),
            ),
            Client::AndroidChrome => (
                format!("Mozilla/5.0 (Linux; Android {android}; {model}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{chrome}.0.{build}.{patch} Mobile Safari/537.36"),
                format!("Chrome Mobile {chrome}.0.{build}"),
                format!("Android {android}"),
            ),
            Client::IpadSafari => (
                format!("Mozilla/5.0 (iPad; CPU OS {}_{} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{}.{} Mobile/15E148 Safari/604.1", ios.0, ios.1, ios.0, ios.1),
                format!("Mobile Safari {}.{}", ios.0, ios.1),
                format!("iOS {}.{}", ios.0, ios.1),
            ),
            Client::PythonRequests => {
                return (format!("python-requests/2.{}.{}", rng.random_range(25..=32), rng.random_range(0..=3)), None, None);
            }
            Client::Curl => return (format!("curl/8.{}.0", rng.random_range(0..=9)), None, None),
            Client::HeadlessChrome => (
                format!("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/{chrome}.0.{build}.0 Safari/537.36"),
                format!("HeadlessChrome {chrome}.0.{build}"),
                "Linux".to_owned(),
            ),
        };
        (ua, Some(browser), Some(os))
    }
}

/// Great-circle distance in km.
pub fn distance_km(a: &City, b: &City) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0;
    let (la1, la2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dla = la2 - la1;
    let dlo = (b.longitude - a.longitude).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
}

/// Picks an index by weight (weights need not add up to 1).
pub fn weighted<T>(rng: &mut ChaCha8Rng, items: &[T], weight: impl Fn(&T) -> f64) -> usize {
    let total: f64 = items.iter().map(&weight).sum();
    let mut left = rng.random_range(0.0..total.max(f64::MIN_POSITIVE));
    for (i, item) in items.iter().enumerate() {
        left -= weight(item);
        if left < 0.0 {
            return i;
        }
    }
    items.len() - 1
}

/// Networks of a country of one of these kinds, usable in `city` (a
/// network tied to another city is not).
pub fn networks_of(country: usize, kinds: &[NetKind], city: Option<&str>) -> Vec<NetRef> {
    COUNTRIES[country]
        .networks
        .iter()
        .enumerate()
        .filter(|(_, n)| kinds.contains(&n.kind))
        .filter(|(_, n)| match (n.city, city) {
            (Some(only), Some(city)) => only == city,
            _ => true,
        })
        .map(|(network, _)| NetRef { country, network })
        .collect()
}

/// The city a network places its addresses in: its own, else `preferred`.
pub fn city_of(net: NetRef, preferred: usize) -> usize {
    let country = &COUNTRIES[net.country];
    net.get()
        .city
        .and_then(|name| country.cities.iter().position(|c| c.name == name))
        .unwrap_or(preferred)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::keys::CountryCode;
    use rand::SeedableRng;

    #[test]
    fn tables_are_consistent() {
        for country in COUNTRIES {
            assert!(CountryCode::parse(country.code).is_some());
            assert!(!country.cities.is_empty() && !country.networks.is_empty());
            for network in country.networks {
                if let Some(name) = network.city {
                    assert!(
                        country.cities.iter().any(|c| c.name == name),
                        "{} {name}",
                        country.code
                    );
                }
            }
        }
    }

    #[test]
    fn subnets_stay_inside_their_blocks() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (c, country) in COUNTRIES.iter().enumerate() {
            for n in 0..country.networks.len() {
                let net = NetRef {
                    country: c,
                    network: n,
                };
                for _ in 0..50 {
                    let ip = Subnet::draw(net, &mut rng).address(&mut rng);
                    let inside = match (net.get().block, ip) {
                        (Block::V4 { base, bits }, IpAddr::V4(ip)) => {
                            (u32::from(ip) ^ base) >> (32 - bits) == 0
                        }
                        (Block::V6 { base, bits }, IpAddr::V6(ip)) => {
                            (u128::from(ip) ^ base) >> (128 - bits) == 0
                        }
                        _ => false,
                    };
                    assert!(inside, "{ip} outside {:?}", net.get().block);
                    assert!(!crate::geoip::is_local(ip), "{ip} is not public");
                }
            }
        }
    }
}
