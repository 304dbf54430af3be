//! Attackers. Against single accounts, the three attacker models of
//! Wiefling et al. ("Is This Really You? An Empirical Study on Risk-Based
//! Authentication Applied in the Wild", IFIP SEC 2019):
//!
//! - naive: knows the password only: random country, network and client;
//! - vpn: also the victim's country, through a VPN or hosting exit there;
//! - targeted: also the victim's browser family and device type (e.g. from
//!   a phishing page), from another network in the victim's country.
//!
//! And campaigns: credential stuffing (one address or a few in one /24,
//! many accounts, some not even registered), password spraying (one
//! address, 1–2 tries on many accounts, slowly) and brute force (one
//! account, many tries from many addresses). Most tries fail; a successful
//! one is an account takeover (label.takeover).

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::world::{city_of, networks_of, Client, NetKind, NetRef, Subnet, COUNTRIES};
use super::{fresh_user_id, poisson, Device, LoginSpec, Place, Simulator, HOUR_MS, MINUTE_MS};
use crate::dataset::Label;
use crate::event::{Outcome, TimestampMs};

/// Per attacker model: chance the account falls, and chance the source is
/// on threat-intel lists.
const NAIVE: Model = Model {
    kind: "naive",
    takeover: 0.08,
    listed: 0.3,
};
const VPN: Model = Model {
    kind: "vpn",
    takeover: 0.12,
    listed: 0.5,
};
const TARGETED: Model = Model {
    kind: "targeted",
    takeover: 0.25,
    listed: 0.05,
};
/// Failed tries before an attacker against one account gives up or gets in.
const SINGLE_FAILURES_MAX: u32 = 4;

const STUFFING_SHARE_OF_USERS: (f64, f64) = (0.01, 0.03);
const STUFFING_ACCOUNTS: (u32, u32) = (5, 5000);
const STUFFING_ADDRESSES_MAX: usize = 8;
/// Share of a stuffing list's accounts that exist here.
const STUFFING_REGISTERED_SHARE: f64 = 0.7;
const STUFFING_TAKEOVER: f64 = 0.03;
const STUFFING_LISTED: f64 = 0.7;
const SPRAY_SHARE_OF_USERS: (f64, f64) = (0.01, 0.03);
const SPRAY_ACCOUNTS: (u32, u32) = (10, 10_000);
const SPRAY_TAKEOVER: f64 = 0.01;
const SPRAY_LISTED: f64 = 0.5;
const BRUTE_FORCE_TRIES: (u32, u32) = (15, 50);
const BRUTE_FORCE_TAKEOVER: f64 = 0.05;
const BRUTE_FORCE_LISTED: f64 = 0.4;

/// A campaign, scheduled for a day when the simulation starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Campaign {
    BruteForce,
    CredentialStuffing,
    PasswordSpray,
}

/// A run in which at least this many campaigns of a kind are expected has
/// at least one, so every kind shows up in any run of useful size.
const CAMPAIGNS_EXPECTED_FOR_ONE: f64 = 0.5;

/// Which campaigns run on which day (index = day).
pub(super) fn schedule(
    config: &super::SimulationConfig,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<Campaign>> {
    let mut days = vec![Vec::new(); config.days as usize];
    if config.days == 0 || config.users == 0 {
        return days;
    }
    let rates = &config.attacks;
    let run_days = f64::from(config.days);
    for (campaign, expected) in [
        (
            Campaign::BruteForce,
            rates.brute_force_per_1000_users_day * f64::from(config.users) / 1000.0 * run_days,
        ),
        (
            Campaign::CredentialStuffing,
            rates.credential_stuffing_per_day * run_days,
        ),
        (
            Campaign::PasswordSpray,
            rates.password_spray_per_day * run_days,
        ),
    ] {
        let mut count = poisson(rng, expected);
        if count == 0 && expected >= CAMPAIGNS_EXPECTED_FOR_ONE {
            count = 1;
        }
        for _ in 0..count {
            days[rng.random_range(0..config.days as usize)].push(campaign);
        }
    }
    days
}

struct Model {
    kind: &'static str,
    takeover: f64,
    listed: f64,
}

fn label(kind: &str, takeover: bool) -> Label {
    Label {
        attack: true,
        takeover,
        kind: Some(kind.to_owned()),
    }
}

fn any_of(rng: &mut ChaCha8Rng, nets: &[NetRef]) -> Option<NetRef> {
    (!nets.is_empty()).then(|| nets[rng.random_range(0..nets.len())])
}

/// Every hosting, VPN and proxy network in the world table.
fn hosting_networks() -> Vec<NetRef> {
    (0..COUNTRIES.len())
        .flat_map(|c| networks_of(c, &[NetKind::Hosting], None))
        .collect()
}

/// A random network of a random country (a botnet member, a naive attacker).
fn random_place(rng: &mut ChaCha8Rng, kinds: &[NetKind]) -> Place {
    loop {
        let country = rng.random_range(0..COUNTRIES.len());
        if let Some(net) = any_of(rng, &networks_of(country, kinds, None)) {
            let city = rng.random_range(0..COUNTRIES[country].cities.len());
            return Place {
                country,
                city: city_of(net, city),
                subnet: Subnet::draw(net, rng),
            };
        }
    }
}

fn browser(rng: &mut ChaCha8Rng, with_id: bool) -> Device {
    let client = Client::BROWSERS[rng.random_range(0..Client::BROWSERS.len())];
    Device::new(client, with_id, rng)
}

/// A campaign's tool: a script, or a browser User-Agent it sends.
fn tool(rng: &mut ChaCha8Rng) -> Device {
    if rng.random_bool(0.5) {
        let client = Client::SCRIPTS[rng.random_range(0..Client::SCRIPTS.len())];
        Device::new(client, false, rng)
    } else {
        browser(rng, false)
    }
}

/// Draws to find a victim with history before giving up on an attack.
const VICTIM_DRAWS_MAX: usize = 64;

impl Simulator {
    /// The attacks of the day starting at `day_start`.
    pub(super) fn attacks(&mut self, day_start: TimestampMs) {
        if self.users.is_empty() {
            return;
        }
        let per_1000_users = self.users.len() as f64 / 1000.0;
        let rates = self.config.attacks.clone();
        for (model, rate) in [
            (&NAIVE, rates.naive_per_1000_users_day),
            (&VPN, rates.vpn_per_1000_users_day),
            (&TARGETED, rates.targeted_per_1000_users_day),
        ] {
            for _ in 0..poisson(&mut self.rng, rate * per_1000_users) {
                self.single_account(model, day_start);
            }
        }
        let today = std::mem::take(&mut self.campaigns[self.day as usize]);
        for campaign in today {
            match campaign {
                Campaign::BruteForce => self.brute_force(day_start),
                Campaign::CredentialStuffing => self.credential_stuffing(day_start),
                Campaign::PasswordSpray => self.password_spray(day_start),
            }
        }
    }

    fn single_account(&mut self, model: &Model, day_start: TimestampMs) {
        let rng = &mut self.rng;
        // Takeovers target accounts in use: draw until one has logged in
        // before (bounded, so a young population simply gets no attack).
        let Some(victim) = (0..VICTIM_DRAWS_MAX)
            .map(|_| &self.users[rng.random_range(0..self.users.len())])
            .find(|user| user.sessions > 0)
        else {
            return;
        };
        let home_asn = victim.home.net.get().asn;
        let with_id = rng.random_bool(0.5);
        let (place, device) = match model.kind {
            "naive" => (
                random_place(
                    rng,
                    &[NetKind::Residential, NetKind::Mobile, NetKind::Hosting],
                ),
                browser(rng, with_id),
            ),
            "vpn" => {
                let exits = hosting_networks();
                let net = exits[rng.random_range(0..exits.len())];
                let cities = COUNTRIES[victim.country].cities.len();
                let place = Place {
                    // The exit is in the victim's country as far as the
                    // gateway can tell; its network is a hosting one.
                    country: victim.country,
                    city: rng.random_range(0..cities),
                    subnet: Subnet::draw(net, rng),
                };
                (place, browser(rng, with_id))
            }
            _ => {
                let others: Vec<NetRef> = networks_of(
                    victim.country,
                    &[NetKind::Residential, NetKind::Mobile],
                    None,
                )
                .into_iter()
                .filter(|n| n.get().asn != home_asn)
                .collect();
                let net = any_of(rng, &others).unwrap_or(victim.home.net);
                let place = Place {
                    country: victim.country,
                    city: city_of(net, victim.city),
                    subnet: Subnet::draw(net, rng),
                };
                // The victim's usual browser family and device type, on
                // the attacker's own machine.
                let client = victim.devices[0].client;
                (place, Device::new(client, with_id, rng))
            }
        };
        let ip = place.subnet.address(rng);
        let listed = rng.random_bool(model.listed);
        let failures = rng.random_range(1..=SINGLE_FAILURES_MAX);
        let takeover = rng.random_bool(model.takeover);
        let mut at_ms = day_start + rng.random_range(0..24 * HOUR_MS);
        for i in 0..failures + u32::from(takeover) {
            let success = i == failures;
            self.pending.push(
                LoginSpec {
                    user_id: &victim.id,
                    at_ms,
                    ip,
                    place,
                    device: &device,
                    outcome: if success {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    },
                    label: label(model.kind, success),
                    listed,
                }
                .build(),
            );
            at_ms += rng.random_range(5_000..120_000);
        }
    }

    /// An account for a campaign: a registered user, or (with probability
    /// `1 - registered`) a name from a leak that does not exist here.
    fn campaign_account(&mut self, registered: f64) -> (String, bool) {
        if self.rng.random_bool(registered) {
            let user = &self.users[self.rng.random_range(0..self.users.len())];
            (user.id.clone(), true)
        } else {
            (fresh_user_id(&mut self.rng, &self.user_ids), false)
        }
    }

    fn accounts(&mut self, share: (f64, f64), bounds: (u32, u32)) -> u32 {
        let share = self.rng.random_range(share.0..share.1);
        ((self.users.len() as f64 * share).round() as u32).clamp(bounds.0, bounds.1)
    }

    fn credential_stuffing(&mut self, day_start: TimestampMs) {
        let exits = hosting_networks();
        let net = exits[self.rng.random_range(0..exits.len())];
        let cities = COUNTRIES[net.country].cities.len();
        let place = Place {
            country: net.country,
            city: city_of(net, self.rng.random_range(0..cities)),
            subnet: Subnet::draw(net, &mut self.rng),
        };
        let pool: Vec<(std::net::IpAddr, bool)> =
            (0..self.rng.random_range(1..=STUFFING_ADDRESSES_MAX))
                .map(|_| {
                    (
                        place.subnet.address(&mut self.rng),
                        self.rng.random_bool(STUFFING_LISTED),
                    )
                })
                .collect();
        let device = tool(&mut self.rng);
        let start = day_start + self.rng.random_range(0..24 * HOUR_MS);
        let duration = self.rng.random_range(20 * MINUTE_MS..120 * MINUTE_MS);
        for _ in 0..self.accounts(STUFFING_SHARE_OF_USERS, STUFFING_ACCOUNTS) {
            let (user_id, registered) = self.campaign_account(STUFFING_REGISTERED_SHARE);
            let takeover = registered && self.rng.random_bool(STUFFING_TAKEOVER);
            let tries = if takeover || self.rng.random_bool(0.85) {
                1
            } else {
                2
            };
            let mut at_ms = start + self.rng.random_range(0..duration);
            for i in 0..tries {
                let (ip, listed) = pool[self.rng.random_range(0..pool.len())];
                let success = takeover && i + 1 == tries;
                self.pending.push(
                    LoginSpec {
                        user_id: &user_id,
                        at_ms,
                        ip,
                        place,
                        device: &device,
                        outcome: if success {
                            Outcome::Success
                        } else {
                            Outcome::Failure
                        },
                        label: label("credential_stuffing", success),
                        listed,
                    }
                    .build(),
                );
                at_ms += self.rng.random_range(1_000..30_000);
            }
        }
    }

    fn password_spray(&mut self, day_start: TimestampMs) {
        let place = random_place(&mut self.rng, &[NetKind::Residential, NetKind::Hosting]);
        let ip = place.subnet.address(&mut self.rng);
        let listed = self.rng.random_bool(SPRAY_LISTED);
        let device = tool(&mut self.rng);
        let start = day_start + self.rng.random_range(0..24 * HOUR_MS);
        let duration = self.rng.random_range(2 * HOUR_MS..12 * HOUR_MS);
        for _ in 0..self.accounts(SPRAY_SHARE_OF_USERS, SPRAY_ACCOUNTS) {
            let (user_id, registered) = self.campaign_account(STUFFING_REGISTERED_SHARE);
            let tries = self.rng.random_range(1..=2);
            for i in 0..tries {
                let success = registered && i + 1 == tries && self.rng.random_bool(SPRAY_TAKEOVER);
                let at_ms = start + self.rng.random_range(0..duration);
                self.pending.push(
                    LoginSpec {
                        user_id: &user_id,
                        at_ms,
                        ip,
                        place,
                        device: &device,
                        outcome: if success {
                            Outcome::Success
                        } else {
                            Outcome::Failure
                        },
                        label: label("password_spray", success),
                        listed,
                    }
                    .build(),
                );
            }
        }
    }

    fn brute_force(&mut self, day_start: TimestampMs) {
        let victim = self.users[self.rng.random_range(0..self.users.len())]
            .id
            .clone();
        let tries = self
            .rng
            .random_range(BRUTE_FORCE_TRIES.0..=BRUTE_FORCE_TRIES.1);
        let takeover = self.rng.random_bool(BRUTE_FORCE_TAKEOVER);
        let mut at_ms = day_start + self.rng.random_range(0..24 * HOUR_MS);
        let spacing_ms_max =
            self.rng.random_range(10 * MINUTE_MS..90 * MINUTE_MS) / i64::from(tries);
        for i in 0..tries {
            // A botnet: every try from another address somewhere.
            let place = random_place(&mut self.rng, &[NetKind::Residential, NetKind::Mobile]);
            let ip = place.subnet.address(&mut self.rng);
            let device = browser(&mut self.rng, false);
            let success = takeover && i + 1 == tries;
            self.pending.push(
                LoginSpec {
                    user_id: &victim,
                    at_ms,
                    ip,
                    place,
                    device: &device,
                    outcome: if success {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    },
                    label: label("brute_force", success),
                    listed: self.rng.random_bool(BRUTE_FORCE_LISTED),
                }
                .build(),
            );
            at_ms += self.rng.random_range(1_000..spacing_ms_max.max(2_000));
        }
    }
}
