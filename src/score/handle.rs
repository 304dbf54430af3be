//! The rulesets in force: the live scorer, and an optional candidate that
//! runs in shadow. Swapped at runtime (SIGHUP, admin API) without a
//! restart; a request reads both once, so it is scored by one consistent
//! pair even while a reload happens.

use std::sync::Arc;

use parking_lot::RwLock;

use super::shadow::Shadow;
use super::Scorer;
use std::path::Path;

use crate::config::{ConfigError, Ruleset, RulesetConfig};

pub struct Scoring {
    live: RwLock<Arc<Scorer>>,
    candidate: RwLock<Option<(Arc<Scorer>, Arc<Shadow>)>>,
}

impl Scoring {
    pub fn new(live: Ruleset, candidate: Option<Ruleset>) -> Scoring {
        let scoring = Scoring {
            live: RwLock::new(Arc::new(Scorer::new(live))),
            candidate: RwLock::new(None),
        };
        scoring.set_candidate(candidate);
        scoring
    }

    pub fn live(&self) -> Arc<Scorer> {
        self.live.read().clone()
    }

    /// The candidate scorer and its tally, when shadow mode is on.
    pub fn candidate(&self) -> Option<(Arc<Scorer>, Arc<Shadow>)> {
        self.candidate.read().clone()
    }

    pub fn set_live(&self, ruleset: Ruleset) {
        *self.live.write() = Arc::new(Scorer::new(ruleset));
    }

    /// Starts shadow mode with `ruleset` (a fresh tally), or stops it.
    pub fn set_candidate(&self, ruleset: Option<Ruleset>) {
        *self.candidate.write() =
            ruleset.map(|r| (Arc::new(Scorer::new(r)), Arc::new(Shadow::default())));
    }

    /// Re-reads the rulesets `config` names. Both are validated before
    /// either is swapped in: a failure changes nothing.
    pub fn reload(&self, config: &RulesetConfig) -> Result<(String, Option<String>), ConfigError> {
        let live = if config.path.is_empty() {
            Ruleset::embedded()?
        } else {
            Ruleset::from_file(Path::new(&config.path))?
        };
        let candidate = match config.candidate_path.as_str() {
            "" => None,
            path => Some(Ruleset::from_file(Path::new(path))?),
        };
        self.set_live(live);
        self.set_candidate(candidate);
        Ok(self.labels())
    }

    /// Labels (`name@version`) of the live and candidate rulesets.
    pub fn labels(&self) -> (String, Option<String>) {
        (
            self.live().ruleset().label(),
            self.candidate().map(|(c, _)| c.ruleset().label()),
        )
    }
}
