//! The ruleset: weights, windows and thresholds that turn factors into a
//! decision. Versioned and validated at load; the scorer only ever sees a
//! valid one.

use std::path::Path;

use serde::Deserialize;

use super::{overlay, ConfigError};

pub const EMBEDDED_RULESET: &str = include_str!("../../config/ruleset.toml");

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ruleset {
    pub name: String,
    pub version: u32,
    pub decision: DecisionRules,
    pub history: HistoryRules,
    pub factors: FactorRules,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DecisionRules {
    pub challenge_at: f64,
    pub deny_at: f64,
    pub bias: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HistoryRules {
    pub established_at: u32,
    pub novelty_scale_none: f64,
    pub novelty_scale_thin: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FactorRules {
    pub hostile_context: WeightedFactor,
    pub new_device: WeightedFactor,
    pub new_country: WeightedFactor,
    pub new_asn: WeightedFactor,
    pub failure_burst: FailureBurstRules,
    pub freeman: FreemanRules,
    pub new_ip_prefix: WeightedFactor,
    pub new_ua_family: WeightedFactor,
    pub impossible_travel: ImpossibleTravelRules,
    pub credential_stuffing: CredentialStuffingRules,
    pub password_spray: PasswordSprayRules,
    pub brute_force: BruteForceRules,
    pub anonymous_ip: AnonymousIpRules,
    pub bot_user_agent: WeightedFactor,
    pub signals: SignalRules,
    pub dormant_account: DormantAccountRules,
    pub unusual_hour: UnusualHourRules,
    pub unfamiliar_failures: UnfamiliarFailuresRules,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnfamiliarFailuresRules {
    pub enabled: bool,
    pub weight_per_failure: f64,
    pub failures_counted_max: u32,
    pub window_s: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImpossibleTravelRules {
    pub enabled: bool,
    pub weight: f64,
    pub speed_kmh_max: f64,
    pub distance_km_min: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CredentialStuffingRules {
    pub enabled: bool,
    pub weight: f64,
    pub window_s: u64,
    pub ip_accounts_min: u32,
    pub prefix_accounts_min: u32,
    pub asn_accounts_min: u32,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PasswordSprayRules {
    pub enabled: bool,
    pub weight: f64,
    pub window_s: u64,
    pub accounts_min: u32,
    pub failures_per_account_max: u32,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BruteForceRules {
    pub enabled: bool,
    pub weight: f64,
    pub window_s: u64,
    pub sources_min: u32,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnonymousIpRules {
    pub enabled: bool,
    pub tor_exit_weight: f64,
    pub vpn_weight: f64,
    pub public_proxy_weight: f64,
    pub residential_proxy_weight: f64,
    pub hosting_provider_weight: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SignalRules {
    pub enabled: bool,
    /// Log-odds per unit of each known signal (true = 1).
    pub weights: std::collections::BTreeMap<String, f64>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DormantAccountRules {
    pub enabled: bool,
    pub weight: f64,
    pub after_days: u32,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnusualHourRules {
    pub enabled: bool,
    pub weight: f64,
    pub history_min: u32,
    pub share_max: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FreemanRules {
    pub enabled: bool,
    pub weight: f64,
    pub logit_abs_max: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WeightedFactor {
    pub enabled: bool,
    pub weight: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FailureBurstRules {
    pub enabled: bool,
    pub window_s: u64,
    pub threshold: u32,
    pub weight_per_failure: f64,
    pub long_window_s: u64,
    pub long_threshold: u32,
    pub long_weight: f64,
}

/// Largest weight (log-odds) a single factor may carry: beyond this a factor
/// saturates the risk on its own and should be a forcing rule instead.
pub const WEIGHT_ABS_MAX: f64 = 20.0;

impl Ruleset {
    pub fn embedded() -> Result<Ruleset, ConfigError> {
        Ruleset::parse(EMBEDDED_RULESET, "built-in ruleset")
    }

    pub fn from_file(path: &Path) -> Result<Ruleset, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ruleset::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Ruleset, ConfigError> {
        let table = overlay::parse(text, origin)?;
        let ruleset: Ruleset = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|err| {
                // A missing top-level key has the root (".") as its path.
                let key = match err.path().to_string().as_str() {
                    "." => "ruleset".to_owned(),
                    path => format!("ruleset.{path}"),
                };
                ConfigError::invalid(&key, err.inner().to_string().trim_end())
            })?;
        ruleset.validate()?;
        Ok(ruleset)
    }

    /// A short label for replies: `name@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() {
            return Err(ConfigError::invalid("ruleset.name", "must not be empty"));
        }
        let d = &self.decision;
        unit_interval("ruleset.decision.challenge_at", d.challenge_at)?;
        unit_interval("ruleset.decision.deny_at", d.deny_at)?;
        if d.challenge_at > d.deny_at {
            return Err(ConfigError::invalid(
                "ruleset.decision.challenge_at",
                format!("must not exceed deny_at ({})", d.deny_at),
            ));
        }
        weight("ruleset.decision.bias", d.bias)?;
        if self.history.established_at == 0 {
            return Err(ConfigError::invalid(
                "ruleset.history.established_at",
                "must be at least 1",
            ));
        }
        unit_interval(
            "ruleset.history.novelty_scale_none",
            self.history.novelty_scale_none,
        )?;
        unit_interval(
            "ruleset.history.novelty_scale_thin",
            self.history.novelty_scale_thin,
        )?;
        let f = &self.factors;
        weight(
            "ruleset.factors.hostile_context.weight",
            f.hostile_context.weight,
        )?;
        weight("ruleset.factors.new_device.weight", f.new_device.weight)?;
        weight("ruleset.factors.new_country.weight", f.new_country.weight)?;
        weight("ruleset.factors.new_asn.weight", f.new_asn.weight)?;
        weight(
            "ruleset.factors.failure_burst.weight_per_failure",
            f.failure_burst.weight_per_failure,
        )?;
        weight("ruleset.factors.freeman.weight", f.freeman.weight)?;
        if !(f.freeman.logit_abs_max > 0.0 && f.freeman.logit_abs_max <= WEIGHT_ABS_MAX) {
            return Err(ConfigError::invalid(
                "ruleset.factors.freeman.logit_abs_max",
                format!("must be within (0, {WEIGHT_ABS_MAX}]"),
            ));
        }
        for (key, value) in [
            ("new_ip_prefix.weight", f.new_ip_prefix.weight),
            ("new_ua_family.weight", f.new_ua_family.weight),
            ("impossible_travel.weight", f.impossible_travel.weight),
            ("credential_stuffing.weight", f.credential_stuffing.weight),
            ("password_spray.weight", f.password_spray.weight),
            ("brute_force.weight", f.brute_force.weight),
            (
                "anonymous_ip.tor_exit_weight",
                f.anonymous_ip.tor_exit_weight,
            ),
            ("anonymous_ip.vpn_weight", f.anonymous_ip.vpn_weight),
            (
                "anonymous_ip.public_proxy_weight",
                f.anonymous_ip.public_proxy_weight,
            ),
            (
                "anonymous_ip.residential_proxy_weight",
                f.anonymous_ip.residential_proxy_weight,
            ),
            (
                "anonymous_ip.hosting_provider_weight",
                f.anonymous_ip.hosting_provider_weight,
            ),
            ("bot_user_agent.weight", f.bot_user_agent.weight),
            ("dormant_account.weight", f.dormant_account.weight),
            ("unusual_hour.weight", f.unusual_hour.weight),
            (
                "unfamiliar_failures.weight_per_failure",
                f.unfamiliar_failures.weight_per_failure,
            ),
        ] {
            weight(&format!("ruleset.factors.{key}"), value)?;
        }
        for (name, value) in &f.signals.weights {
            weight(&format!("ruleset.factors.signals.weights.{name}"), *value)?;
        }
        weight(
            "ruleset.factors.failure_burst.long_weight",
            f.failure_burst.long_weight,
        )?;
        for (key, value) in [
            ("failure_burst.long_window_s", f.failure_burst.long_window_s),
            (
                "unfamiliar_failures.window_s",
                f.unfamiliar_failures.window_s,
            ),
            (
                "credential_stuffing.window_s",
                f.credential_stuffing.window_s,
            ),
            ("password_spray.window_s", f.password_spray.window_s),
            ("brute_force.window_s", f.brute_force.window_s),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    &format!("ruleset.factors.{key}"),
                    "must be at least 1",
                ));
            }
        }
        let travel = &f.impossible_travel;
        if !(travel.speed_kmh_max > 0.0 && travel.speed_kmh_max.is_finite()) {
            return Err(ConfigError::invalid(
                "ruleset.factors.impossible_travel.speed_kmh_max",
                "must be positive",
            ));
        }
        if !(travel.distance_km_min >= 0.0 && travel.distance_km_min.is_finite()) {
            return Err(ConfigError::invalid(
                "ruleset.factors.impossible_travel.distance_km_min",
                "must be >= 0",
            ));
        }
        unit_interval(
            "ruleset.factors.unusual_hour.share_max",
            f.unusual_hour.share_max,
        )?;
        if f.failure_burst.window_s == 0 {
            return Err(ConfigError::invalid(
                "ruleset.factors.failure_burst.window_s",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

fn unit_interval(key: &str, value: f64) -> Result<(), ConfigError> {
    if !(0.0..=1.0).contains(&value) {
        return Err(ConfigError::invalid(
            key,
            format!("must be within [0, 1], got {value}"),
        ));
    }
    Ok(())
}

fn weight(key: &str, value: f64) -> Result<(), ConfigError> {
    if !value.is_finite() || value.abs() > WEIGHT_ABS_MAX {
        return Err(ConfigError::invalid(
            key,
            format!("must be finite and within ±{WEIGHT_ABS_MAX}, got {value}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_ruleset_is_valid() {
        let ruleset = Ruleset::embedded().unwrap();
        assert_eq!(ruleset.label(), "default@1");
    }

    #[test]
    fn inverted_thresholds_are_rejected_naming_the_key() {
        let text = EMBEDDED_RULESET.replace("challenge_at = 0.5", "challenge_at = 0.95");
        let err = Ruleset::parse(&text, "test").unwrap_err();
        assert!(
            err.to_string().contains("ruleset.decision.challenge_at"),
            "{err}"
        );
    }

    #[test]
    fn unknown_factor_key_is_rejected_naming_the_key() {
        let text = format!("{EMBEDDED_RULESET}\n[factors.new_asn_typo]\nenabled = true\n");
        let err = Ruleset::parse(&text, "test").unwrap_err();
        assert!(err.to_string().contains("new_asn_typo"), "{err}");
    }
}
