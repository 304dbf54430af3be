//! The factors, one file each. To add one: write the file, implement
//! [`Factor`](super::Factor), give it a section in the ruleset, and list it
//! in [`from_ruleset`].

mod failure_burst;
mod freeman;
mod hostile_context;
mod new_asn;
mod new_country;
mod new_device;

pub use failure_burst::FailureBurst;
pub use freeman::Freeman;
pub use hostile_context::HostileContext;
pub use new_asn::NewAsn;
pub use new_country::NewCountry;
pub use new_device::NewDevice;

use super::Factor;
use crate::config::ruleset::HistoryRules;
use crate::config::Ruleset;
use crate::event::HistoryState;

/// The enabled factors of a ruleset, in evaluation order.
pub fn from_ruleset(ruleset: &Ruleset) -> Vec<Box<dyn Factor>> {
    let f = &ruleset.factors;
    let novelty = Novelty::from(&ruleset.history);
    let mut factors: Vec<Box<dyn Factor>> = Vec::new();
    if f.hostile_context.enabled {
        factors.push(Box::new(HostileContext {
            weight: f.hostile_context.weight,
        }));
    }
    if f.new_device.enabled {
        factors.push(Box::new(NewDevice {
            weight: f.new_device.weight,
            novelty,
        }));
    }
    if f.new_country.enabled {
        factors.push(Box::new(NewCountry {
            weight: f.new_country.weight,
            novelty,
        }));
    }
    if f.new_asn.enabled {
        factors.push(Box::new(NewAsn {
            weight: f.new_asn.weight,
            novelty,
        }));
    }
    if f.freeman.enabled {
        factors.push(Box::new(Freeman {
            weight: f.freeman.weight,
            logit_abs_max: f.freeman.logit_abs_max,
        }));
    }
    if f.failure_burst.enabled {
        factors.push(Box::new(FailureBurst::from(&f.failure_burst)));
    }
    factors
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
