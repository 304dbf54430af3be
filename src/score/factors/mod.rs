//! The factors, one file each. To add one: write the file, implement
//! [`Factor`](super::Factor), give it a section in the ruleset, and list it
//! in [`from_ruleset`].

mod anonymous_ip;
mod bot_user_agent;
mod brute_force;
mod credential_stuffing;
mod dormant_account;
mod failure_burst;
mod freeman;
mod hostile_context;
mod impossible_travel;
mod new_asn;
mod new_country;
mod new_device;
mod new_ip_prefix;
mod new_ua_family;
mod password_spray;
mod signals;
mod unfamiliar_failures;
mod unusual_hour;

pub use anonymous_ip::AnonymousIp;
pub use bot_user_agent::BotUserAgent;
pub use brute_force::BruteForce;
pub use credential_stuffing::CredentialStuffing;
pub use dormant_account::DormantAccount;
pub use failure_burst::FailureBurst;
pub use freeman::Freeman;
pub use hostile_context::HostileContext;
pub use impossible_travel::ImpossibleTravel;
pub use new_asn::NewAsn;
pub use new_country::NewCountry;
pub use new_device::NewDevice;
pub use new_ip_prefix::NewIpPrefix;
pub use new_ua_family::NewUaFamily;
pub use password_spray::PasswordSpray;
pub use signals::Signals;
pub use unfamiliar_failures::UnfamiliarFailures;
pub use unusual_hour::UnusualHour;

use super::Factor;
use crate::config::ruleset::HistoryRules;
use crate::config::Ruleset;
use crate::event::HistoryState;

/// The enabled factors of a ruleset, in evaluation order.
pub fn from_ruleset(ruleset: &Ruleset) -> Vec<Box<dyn Factor>> {
    let f = &ruleset.factors;
    let novelty = Novelty::from(&ruleset.history);
    let candidates: Vec<(bool, Box<dyn Factor>)> = vec![
        (
            f.hostile_context.enabled,
            Box::new(HostileContext {
                weight: f.hostile_context.weight,
            }),
        ),
        (
            f.new_device.enabled,
            Box::new(NewDevice {
                weight: f.new_device.weight,
                novelty,
            }),
        ),
        (
            f.new_country.enabled,
            Box::new(NewCountry {
                weight: f.new_country.weight,
                novelty,
            }),
        ),
        (
            f.new_asn.enabled,
            Box::new(NewAsn {
                weight: f.new_asn.weight,
                novelty,
            }),
        ),
        (
            f.new_ip_prefix.enabled,
            Box::new(NewIpPrefix {
                weight: f.new_ip_prefix.weight,
                novelty,
            }),
        ),
        (
            f.new_ua_family.enabled,
            Box::new(NewUaFamily {
                weight: f.new_ua_family.weight,
                novelty,
            }),
        ),
        (
            f.freeman.enabled,
            Box::new(Freeman {
                weight: f.freeman.weight,
                logit_abs_max: f.freeman.logit_abs_max,
            }),
        ),
        (
            f.failure_burst.enabled,
            Box::new(FailureBurst::from(&f.failure_burst)),
        ),
        (
            f.brute_force.enabled,
            Box::new(BruteForce::from(&f.brute_force)),
        ),
        (
            f.unfamiliar_failures.enabled,
            Box::new(UnfamiliarFailures::new(&f.unfamiliar_failures, novelty)),
        ),
        (
            f.credential_stuffing.enabled,
            Box::new(CredentialStuffing::from(&f.credential_stuffing)),
        ),
        (
            f.password_spray.enabled,
            Box::new(PasswordSpray::from(&f.password_spray)),
        ),
        (
            f.impossible_travel.enabled,
            Box::new(ImpossibleTravel::from(&f.impossible_travel)),
        ),
        (
            f.anonymous_ip.enabled,
            Box::new(AnonymousIp {
                rules: f.anonymous_ip.clone(),
            }),
        ),
        (
            f.bot_user_agent.enabled,
            Box::new(BotUserAgent {
                weight: f.bot_user_agent.weight,
            }),
        ),
        (
            f.signals.enabled,
            Box::new(Signals {
                weights: f.signals.weights.clone(),
            }),
        ),
        (
            f.dormant_account.enabled,
            Box::new(DormantAccount::from(&f.dormant_account)),
        ),
        (
            f.unusual_hour.enabled,
            Box::new(UnusualHour::from(&f.unusual_hour)),
        ),
    ];
    candidates
        .into_iter()
        .filter(|(enabled, _)| *enabled)
        .map(|(_, factor)| factor)
        .collect()
}

/// A window in seconds (configuration) as milliseconds of event time.
pub(crate) fn seconds_to_ms(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// How much a novelty ("never seen before") is worth for a user with this
/// much history: for a first login everything is new, so it says little.
#[derive(Clone, Copy, Debug)]
pub struct Novelty {
    pub scale_none: f64,
    pub scale_thin: f64,
}

impl Novelty {
    pub fn scale(&self, history: HistoryState) -> f64 {
        match history {
            HistoryState::None => self.scale_none,
            HistoryState::Thin => self.scale_thin,
            HistoryState::Established => 1.0,
        }
    }
}

impl From<&HistoryRules> for Novelty {
    fn from(rules: &HistoryRules) -> Novelty {
        Novelty {
            scale_none: rules.novelty_scale_none,
            scale_thin: rules.novelty_scale_thin,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support;
