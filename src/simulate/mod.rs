//! A seeded generator of realistic labelled login streams, for backtests
//! (`riskd simulate | riskd backtest`).
//!
//! Users ([`population`]) live in one of ~20 countries ([`world`]), log in
//! at their own pace (some daily, some weekly, some rarely) from 1–3 devices,
//! from home, from a mobile network, from work, and now and then from
//! abroad; they forget passwords and buy new phones. Attackers
//! ([`attacks`]) follow Wiefling et al. ("Is This Really You?", 2019):
//! naive, VPN and targeted attackers against single accounts, plus
//! credential stuffing, password spraying and brute force campaigns.
//!
//! Reproducible: one ChaCha8 stream seeded from `seed` drives everything,
//! and the output is in event-time order, so the same configuration gives
//! the same logins (and the writers the same bytes) on every run. The
//! stream is generated a day at a time: memory holds one day, not the run.

mod attacks;
mod population;
pub mod world;

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dataset::{Label, LabelledLogin};
use crate::event::{LoginAttempt, Outcome, Signal, TimestampMs};
use crate::geoip::GeoInfo;
use population::User;
use world::{Client, Subnet, COUNTRIES};

pub const DAY_MS: i64 = 24 * 3600 * 1000;
pub const HOUR_MS: i64 = 3600 * 1000;
pub const MINUTE_MS: i64 = 60 * 1000;

/// 2025-06-02T00:00:00Z, a Monday (the first day of the RBA lab set).
pub const DEFAULT_START_MS: TimestampMs = 1_748_822_400_000;

/// The signal for a source on the gateway's threat-intel lists (the RBA
/// dataset's `Is Attack IP`).
pub const ATTACK_IP_SIGNAL: &str = crate::dataset::rba_csv::ATTACK_IP_SIGNAL;

/// How often attackers strike. The defaults give about 2% attack logins
/// whatever the population: attacks on single accounts and brute force
/// grow with the number of users, campaigns grow in size instead.
#[derive(Clone, Debug, PartialEq)]
pub struct AttackRates {
    /// Accounts attacked by a naive attacker (random country, network and
    /// client), per 1,000 users and day.
    pub naive_per_1000_users_day: f64,
    /// Accounts attacked through a VPN or hosting exit in the victim's
    /// country, per 1,000 users and day.
    pub vpn_per_1000_users_day: f64,
    /// Accounts attacked by someone who knows the victim's country and
    /// client, per 1,000 users and day.
    pub targeted_per_1000_users_day: f64,
    /// Brute force campaigns (one account, many tries from many
    /// addresses), per 1,000 users and day.
    ///
    /// Campaigns are scheduled when the run starts, on random days; a run
    /// long enough to expect half a campaign of a kind gets at least one.
    pub brute_force_per_1000_users_day: f64,
    /// Credential stuffing campaigns (one source, 1–3% of the users' names
    /// and some unknown ones), per day.
    pub credential_stuffing_per_day: f64,
    /// Password spraying campaigns (one address, 1–2 tries on 1–3% of the
    /// users), per day.
    pub password_spray_per_day: f64,
}

impl Default for AttackRates {
    fn default() -> AttackRates {
        AttackRates {
            naive_per_1000_users_day: 0.5,
            vpn_per_1000_users_day: 0.5,
            targeted_per_1000_users_day: 0.5,
            brute_force_per_1000_users_day: 0.06,
            credential_stuffing_per_day: 0.1,
            password_spray_per_day: 0.08,
        }
    }
}

impl AttackRates {
    /// Every rate times `factor` (0: no attacks).
    pub fn scaled(&self, factor: f64) -> AttackRates {
        AttackRates {
            naive_per_1000_users_day: self.naive_per_1000_users_day * factor,
            vpn_per_1000_users_day: self.vpn_per_1000_users_day * factor,
            targeted_per_1000_users_day: self.targeted_per_1000_users_day * factor,
            brute_force_per_1000_users_day: self.brute_force_per_1000_users_day * factor,
            credential_stuffing_per_day: self.credential_stuffing_per_day * factor,
            password_spray_per_day: self.password_spray_per_day * factor,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SimulationConfig {
    pub users: u32,
    pub days: u32,
    pub seed: u64,
    /// The first day's midnight (UTC).
    pub start_ms: TimestampMs,
    pub attacks: AttackRates,
}

impl SimulationConfig {
    pub fn new(users: u32, days: u32, seed: u64) -> SimulationConfig {
        SimulationConfig {
            users,
            days,
            seed,
            start_ms: DEFAULT_START_MS,
            attacks: AttackRates::default(),
        }
    }
}

/// The label kinds the simulator writes.
pub const ATTACK_KINDS: [&str; 6] = [
    "naive",
    "vpn",
    "targeted",
    "credential_stuffing",
    "password_spray",
    "brute_force",
];
pub const LEGIT_KINDS: [&str; 3] = ["travel", "new_phone", "forgot_password"];

/// The generator: an iterator of labelled logins in event-time order.
pub struct Simulator {
    config: SimulationConfig,
    rng: ChaCha8Rng,
    users: Vec<User>,
    user_ids: HashSet<String>,
    /// The next day to generate.
    day: u32,
    /// Generated logins not yet due (a day's logins, and those of campaigns
    /// that run past midnight), in generation order.
    pending: Vec<LabelledLogin>,
    ready: VecDeque<LabelledLogin>,
    emitted: u64,
    /// Campaigns by day, drawn up front.
    campaigns: Vec<Vec<attacks::Campaign>>,
}

impl Simulator {
    pub fn new(config: SimulationConfig) -> Simulator {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut user_ids = HashSet::with_capacity(config.users as usize);
        let users = (0..config.users)
            .map(|_| {
                let id = fresh_user_id(&mut rng, &user_ids);
                user_ids.insert(id.clone());
                User::new(id, &mut rng)
            })
            .collect();
        let campaigns = attacks::schedule(&config, &mut rng);
        Simulator {
            campaigns,
            config,
            rng,
            users,
            user_ids,
            day: 0,
            pending: Vec::new(),
            ready: VecDeque::new(),
            emitted: 0,
        }
    }

    fn generate_day(&mut self) {
        let day_start = self.config.start_ms + i64::from(self.day) * DAY_MS;
        // Monday = 0 (1970-01-01 was a Thursday); Saturday and Sunday are off.
        let weekday = (day_start.div_euclid(DAY_MS) + 3).rem_euclid(7) < 5;
        for index in 0..self.users.len() {
            let user = &mut self.users[index];
            user.day(day_start, weekday, &mut self.rng, &mut self.pending);
        }
        self.attacks(day_start);
        self.day += 1;
        // Stable: logins at the same millisecond keep generation order.
        self.pending.sort_by_key(|login| login.attempt.timestamp_ms);
        let day_end = day_start + DAY_MS;
        let due = if self.day >= self.config.days {
            self.pending.len()
        } else {
            self.pending
                .partition_point(|login| login.attempt.timestamp_ms < day_end)
        };
        for mut login in self.pending.drain(..due) {
            self.emitted += 1;
            login.attempt.attempt_id = format!("sim-{}", self.emitted);
            self.ready.push_back(login);
        }
    }
}

impl Iterator for Simulator {
    type Item = LabelledLogin;

    fn next(&mut self) -> Option<LabelledLogin> {
        while self.ready.is_empty() && self.day < self.config.days {
            self.generate_day();
        }
        self.ready.pop_front()
    }
}

fn fresh_user_id(rng: &mut ChaCha8Rng, taken: &HashSet<String>) -> String {
    loop {
        let id = format!("user_{:08x}", rng.random::<u32>());
        if !taken.contains(&id) {
            return id;
        }
    }
}

/// Poisson-distributed count with mean `mean` (Knuth; large means are
/// summed from pieces so that e^-mean stays representable).
pub(crate) fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u32 {
    const PIECE_MEAN_MAX: f64 = 30.0;
    let mut left = mean.max(0.0);
    let mut count = 0;
    while left > 0.0 {
        let piece = left.min(PIECE_MEAN_MAX);
        left -= piece;
        let limit = (-piece).exp();
        let mut product = rng.random::<f64>();
        while product > limit {
            count += 1;
            product *= rng.random::<f64>();
        }
    }
    count
}

/// A concrete client: a device a person owns, or an attacker's tool.
#[derive(Clone, Debug)]
pub(crate) struct Device {
    pub id: Option<String>,
    pub client: Client,
    pub user_agent: String,
    pub browser: Option<String>,
    pub os: Option<String>,
}

impl Device {
    pub fn new(client: Client, with_id: bool, rng: &mut ChaCha8Rng) -> Device {
        let (user_agent, browser, os) = client.render(rng);
        Device {
            id: with_id.then(|| format!("dev-{:016x}", rng.random::<u64>())),
            client,
            user_agent,
            browser,
            os,
        }
    }
}

/// Where a login comes from: an address and what the gateway knows of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place {
    pub country: usize,
    pub city: usize,
    pub subnet: Subnet,
}

/// One login as the stream carries it (the attempt id is set on emission).
pub(crate) struct LoginSpec<'a> {
    pub user_id: &'a str,
    pub at_ms: TimestampMs,
    pub ip: IpAddr,
    pub place: Place,
    pub device: &'a Device,
    pub outcome: Outcome,
    pub label: Label,
    /// The source is on threat-intel lists (signal `attack_ip`).
    pub listed: bool,
}

impl LoginSpec<'_> {
    pub fn build(self) -> LabelledLogin {
        let country = &COUNTRIES[self.place.country];
        let city = &country.cities[self.place.city];
        LabelledLogin {
            attempt: LoginAttempt {
                attempt_id: String::new(),
                user_id: self.user_id.to_owned(),
                timestamp_ms: self.at_ms,
                ip: self.ip,
                device_id: self.device.id.clone(),
                user_agent: Some(self.device.user_agent.clone()),
                client: crate::event::ClientInfo {
                    browser: self.device.browser.clone(),
                    os: self.device.os.clone(),
                    device_type: self.device.client.device_type(),
                },
                geo: GeoInfo {
                    country: Some(country.code.to_owned()),
                    region: Some(city.region.to_owned()),
                    city: Some(city.name.to_owned()),
                    latitude: Some(city.latitude),
                    longitude: Some(city.longitude),
                    asn: Some(self.place.subnet.net.get().asn),
                    ..GeoInfo::default()
                },
                signals: if self.listed {
                    vec![Signal {
                        name: ATTACK_IP_SIGNAL.to_owned(),
                        value: 1.0,
                    }]
                } else {
                    Vec::new()
                },
            },
            outcome: self.outcome,
            label: self.label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(config: SimulationConfig) -> Vec<LabelledLogin> {
        Simulator::new(config).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let a = run(SimulationConfig::new(50, 5, 9));
        let b = run(SimulationConfig::new(50, 5, 9));
        assert!(!a.is_empty());
        assert_eq!(a, b);
        let c = run(SimulationConfig::new(50, 5, 10));
        assert_ne!(a, c);
    }

    #[test]
    fn the_stream_is_in_event_time_order_with_unique_ids() {
        let logins = run(SimulationConfig::new(200, 7, 1));
        assert!(logins
            .windows(2)
            .all(|w| w[0].attempt.timestamp_ms <= w[1].attempt.timestamp_ms));
        let ids: HashSet<&str> = logins
            .iter()
            .map(|l| l.attempt.attempt_id.as_str())
            .collect();
        assert_eq!(ids.len(), logins.len());
    }

    #[test]
    fn poisson_has_the_asked_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for mean in [0.2, 3.0, 75.0] {
            let n = 4000;
            let total: u64 = (0..n).map(|_| u64::from(poisson(&mut rng, mean))).sum();
            let observed = total as f64 / f64::from(n);
            assert!(
                (observed - mean).abs() < 0.1 * mean.max(1.0),
                "{mean}: {observed}"
            );
        }
    }
}
