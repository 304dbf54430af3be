//! Legitimate users: where they live and work, their devices, how often
//! they log in, and what happens to them (trips abroad, new phones,
//! forgotten passwords).

use std::net::IpAddr;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::world::{
    city_of, distance_km, networks_of, weighted, Client, NetKind, NetRef, Subnet, COUNTRIES,
};
use super::{poisson, Device, LoginSpec, Place, DAY_MS, HOUR_MS};
use crate::dataset::{Label, LabelledLogin};
use crate::event::{DeviceType, Outcome, TimestampMs};

/// A user starts a trip abroad on a given day with this probability.
const TRIP_START_PER_DAY: f64 = 0.004;
const TRIP_DAYS_MIN: i64 = 2;
const TRIP_DAYS_MAX: i64 = 7;
/// Flight speed, and time at airports added to each flight.
const FLIGHT_KMH: f64 = 800.0;
const AIRPORT_MS: i64 = 2 * HOUR_MS;
/// A user gets a new phone on a given day with this probability.
const NEW_PHONE_PER_DAY: f64 = 0.0015;
/// A session starts with 1–3 wrong passwords with this probability.
const FORGOT_PASSWORD_PER_SESSION: f64 = 0.03;
const FORGOT_PASSWORD_FAILURES_MAX: u32 = 3;
/// Share of a phone's sessions at home that go over the mobile network.
const MOBILE_NETWORK_SHARE: f64 = 0.3;
/// Share of a phone's sessions abroad that go over a local mobile network.
const ROAMING_SHARE: f64 = 0.3;
/// Users with an office network they log in from on weekdays.
const WORKER_SHARE: f64 = 0.35;
const AT_WORK_SHARE: f64 = 0.8;
const OFFICE_HOURS: std::ops::Range<i64> = 8..17;
/// The home router gets another address (same /24) before a session.
const HOME_ADDRESS_CHANGE_PER_SESSION: f64 = 0.01;
/// The browser's cookies are cleared before a session: a new device id.
const COOKIES_CLEARED_PER_SESSION: f64 = 0.003;

/// How likely a login is in each local hour (relative).
const HOUR_WEIGHTS: [f64; 24] = [
    1.0, 0.5, 0.3, 0.2, 0.2, 0.4, 1.0, 3.0, 5.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0,
    7.0, 7.0, 6.0, 4.0, 2.0,
];

#[derive(Debug)]
struct Trip {
    depart_ms: TimestampMs,
    arrive_ms: TimestampMs,
    leave_ms: TimestampMs,
    back_ms: TimestampMs,
    place: Place,
    mobile: Option<NetRef>,
}

enum Whereabouts {
    Home,
    Abroad,
    InFlight,
}

#[derive(Debug)]
pub(crate) struct User {
    pub id: String,
    pub country: usize,
    pub city: usize,
    pub home: Subnet,
    home_ip: IpAddr,
    mobile: Option<NetRef>,
    work: Option<Place>,
    /// The first is the one used most.
    pub devices: Vec<Device>,
    logins_per_day: f64,
    trip: Option<Trip>,
    /// A new phone not used yet: the next session uses it.
    new_phone: Option<usize>,
    /// Sessions so far (each ends in a success): a takeover targets an
    /// account in use, which a risk engine has seen before.
    pub sessions: u32,
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[rng.random_range(0..items.len())])
}

fn weighted_client(rng: &mut ChaCha8Rng, clients: &[(Client, f64)]) -> Client {
    clients[weighted(rng, clients, |c| c.1)].0
}

impl User {
    pub fn new(id: String, rng: &mut ChaCha8Rng) -> User {
        let country = weighted(rng, COUNTRIES, |c| c.users_weight);
        let cities = COUNTRIES[country].cities;
        let city = rng.random_range(0..cities.len());
        let city_name = Some(cities[city].name);
        let home_net = pick(
            rng,
            &networks_of(country, &[NetKind::Residential], city_name),
        )
        .or_else(|| {
            pick(
                rng,
                &networks_of(country, &[NetKind::Mobile, NetKind::Business], city_name),
            )
        })
        .unwrap_or(NetRef {
            country,
            network: 0,
        });
        let city = city_of(home_net, city);
        let home = Subnet::draw(home_net, rng);
        let home_ip = home.address(rng);
        let mobile = pick(rng, &networks_of(country, &[NetKind::Mobile], None));
        let work = if rng.random_bool(WORKER_SHARE) {
            pick(rng, &networks_of(country, &[NetKind::Business], None)).map(|net| Place {
                country,
                city: city_of(net, city),
                subnet: Subnet::draw(net, rng),
            })
        } else {
            None
        };

        let first_is_phone = rng.random_bool(0.6);
        let count = [1, 2, 3][weighted(rng, &[0.35, 0.45, 0.2], |w| *w)];
        let mut devices = Vec::with_capacity(count);
        for i in 0..count {
            let phone = match i {
                0 => first_is_phone,
                1 => !first_is_phone,
                _ => false,
            };
            let client = if phone {
                weighted_client(rng, &Client::MOBILE)
            } else if i == 2 && rng.random_bool(0.5) {
                Client::IpadSafari
            } else {
                weighted_client(rng, &Client::DESKTOP)
            };
            devices.push(Device::new(client, true, rng));
        }

        let pace = rng.random::<f64>();
        let logins_per_day = if pace < 0.25 {
            rng.random_range(0.6..2.0)
        } else if pace < 0.7 {
            rng.random_range(0.1..0.35)
        } else {
            rng.random_range(0.01..0.07)
        };
        User {
            id,
            country,
            city,
            home,
            home_ip,
            mobile,
            work,
            devices,
            logins_per_day,
            trip: None,
            new_phone: None,
            sessions: 0,
        }
    }

    fn utc_offset_ms(&self) -> i64 {
        COUNTRIES[self.country].utc_offset_h * HOUR_MS
    }

    /// The user's logins of the day starting at `day_start` (UTC midnight).
    pub fn day(
        &mut self,
        day_start: TimestampMs,
        weekday: bool,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<LabelledLogin>,
    ) {
        if self.trip.is_none() && rng.random_bool(TRIP_START_PER_DAY) {
            self.trip = Some(self.plan_trip(day_start, rng));
        }
        if rng.random_bool(NEW_PHONE_PER_DAY) {
            self.buy_phone(rng);
        }
        let sessions = poisson(rng, self.logins_per_day);
        let mut times: Vec<TimestampMs> = (0..sessions)
            .map(|_| {
                let hour = weighted(rng, &HOUR_WEIGHTS, |w| *w) as i64;
                let local_ms = hour * HOUR_MS + rng.random_range(0..HOUR_MS);
                day_start + (local_ms - self.utc_offset_ms()).rem_euclid(DAY_MS)
            })
            .collect();
        times.sort_unstable();
        for at_ms in times {
            self.session(at_ms, weekday, rng, out);
        }
        if self
            .trip
            .as_ref()
            .is_some_and(|trip| trip.back_ms < day_start + DAY_MS)
        {
            self.trip = None;
        }
    }

    fn plan_trip(&self, day_start: TimestampMs, rng: &mut ChaCha8Rng) -> Trip {
        let home_country = self.country;
        let destination = weighted(rng, COUNTRIES, |c| {
            if std::ptr::eq(c, &COUNTRIES[home_country]) {
                0.0
            } else {
                c.users_weight.min(6.0) + 1.0
            }
        });
        let cities = COUNTRIES[destination].cities;
        let city = rng.random_range(0..cities.len());
        let net = pick(
            rng,
            &networks_of(
                destination,
                &[NetKind::Residential, NetKind::Business],
                Some(cities[city].name),
            ),
        )
        .unwrap_or(NetRef {
            country: destination,
            network: 0,
        });
        let city = city_of(net, city);
        let km = distance_km(&COUNTRIES[self.country].cities[self.city], &cities[city]);
        let flight_ms = (km / FLIGHT_KMH * HOUR_MS as f64) as i64 + AIRPORT_MS;
        let depart_ms = day_start + rng.random_range(4 * HOUR_MS..20 * HOUR_MS);
        let arrive_ms = depart_ms + flight_ms;
        let leave_ms = arrive_ms
            + rng.random_range(TRIP_DAYS_MIN..=TRIP_DAYS_MAX) * DAY_MS
            + rng.random_range(-6 * HOUR_MS..6 * HOUR_MS);
        Trip {
            depart_ms,
            arrive_ms,
            leave_ms,
            back_ms: leave_ms + flight_ms,
            place: Place {
                country: destination,
                city,
                subnet: Subnet::draw(net, rng),
            },
            mobile: pick(rng, &networks_of(destination, &[NetKind::Mobile], None)),
        }
    }

    fn buy_phone(&mut self, rng: &mut ChaCha8Rng) {
        let phone = Device::new(weighted_client(rng, &Client::MOBILE), true, rng);
        let old = self
            .devices
            .iter()
            .position(|d| d.client.device_type() == DeviceType::Mobile);
        let index = match old {
            Some(i) => i,
            None if self.devices.len() < 3 => {
                self.devices.push(phone.clone());
                self.devices.len() - 1
            }
            None => 0,
        };
        self.devices[index] = phone;
        self.new_phone = Some(index);
    }

    fn whereabouts(&self, at_ms: TimestampMs) -> Whereabouts {
        match &self.trip {
            Some(t) if at_ms >= t.depart_ms && at_ms < t.arrive_ms => Whereabouts::InFlight,
            Some(t) if at_ms >= t.arrive_ms && at_ms < t.leave_ms => Whereabouts::Abroad,
            Some(t) if at_ms >= t.leave_ms && at_ms < t.back_ms => Whereabouts::InFlight,
            _ => Whereabouts::Home,
        }
    }

    fn pick_device(&self, at_work: bool, abroad: bool, rng: &mut ChaCha8Rng) -> usize {
        let of_type = |t: DeviceType| {
            self.devices
                .iter()
                .rposition(|d| d.client.device_type() == t)
        };
        if at_work {
            return of_type(DeviceType::Desktop).unwrap_or(0);
        }
        if abroad && rng.random_bool(0.7) {
            if let Some(phone) = of_type(DeviceType::Mobile) {
                return phone;
            }
        }
        if rng.random_bool(0.55) {
            0
        } else {
            rng.random_range(0..self.devices.len())
        }
    }

    fn session(
        &mut self,
        at_ms: TimestampMs,
        weekday: bool,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<LabelledLogin>,
    ) {
        let whereabouts = self.whereabouts(at_ms);
        if matches!(whereabouts, Whereabouts::InFlight) {
            return;
        }
        let abroad = matches!(whereabouts, Whereabouts::Abroad);
        let local_hour = (at_ms + self.utc_offset_ms()).rem_euclid(DAY_MS) / HOUR_MS;
        let at_work = !abroad
            && self.work.is_some()
            && weekday
            && OFFICE_HOURS.contains(&local_hour)
            && rng.random_bool(AT_WORK_SHARE);

        let mut kind = None;
        let device = match self.new_phone.take() {
            Some(phone) => {
                kind = Some("new_phone");
                phone
            }
            None => self.pick_device(at_work, abroad, rng),
        };
        if rng.random_bool(COOKIES_CLEARED_PER_SESSION) {
            self.devices[device].id = Some(format!("dev-{:016x}", rng.random::<u64>()));
        }
        let phone = self.devices[device].client.device_type() == DeviceType::Mobile;

        let home = Place {
            country: self.country,
            city: self.city,
            subnet: self.home,
        };
        let over_mobile = |net: NetRef, city: usize, rng: &mut ChaCha8Rng| {
            let subnet = Subnet::draw(net, rng);
            let place = Place {
                country: net.country,
                city: city_of(net, city),
                subnet,
            };
            (place, subnet.address(rng))
        };
        let (place, ip) = match (&self.trip, abroad) {
            (Some(trip), true) => {
                kind = kind.or(Some("travel"));
                match trip.mobile {
                    Some(net) if phone && rng.random_bool(ROAMING_SHARE) => {
                        over_mobile(net, trip.place.city, rng)
                    }
                    _ => (trip.place, trip.place.subnet.address(rng)),
                }
            }
            _ => match (self.work, self.mobile) {
                (Some(work), _) if at_work => (work, work.subnet.address(rng)),
                (_, Some(net)) if phone && rng.random_bool(MOBILE_NETWORK_SHARE) => {
                    over_mobile(net, self.city, rng)
                }
                _ => {
                    if rng.random_bool(HOME_ADDRESS_CHANGE_PER_SESSION) {
                        self.home_ip = self.home.address(rng);
                    }
                    (home, self.home_ip)
                }
            },
        };

        let mut at_ms = at_ms;
        let failures = if rng.random_bool(FORGOT_PASSWORD_PER_SESSION) {
            kind = Some("forgot_password");
            rng.random_range(1..=FORGOT_PASSWORD_FAILURES_MAX)
        } else {
            0
        };
        let label = Label {
            attack: false,
            takeover: false,
            kind: kind.map(str::to_owned),
        };
        for i in 0..=failures {
            out.push(
                LoginSpec {
                    user_id: &self.id,
                    at_ms,
                    ip,
                    place,
                    device: &self.devices[device],
                    outcome: if i < failures {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    },
                    label: label.clone(),
                    listed: false,
                }
                .build(),
            );
            at_ms += rng.random_range(10_000..90_000);
        }
        self.sessions += 1;
    }
}
