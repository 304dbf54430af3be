//! Configuration: the embedded defaults (`config/riskd.toml`), an optional
//! file over them, environment overrides over that, validated once here.
//!
//! The core never sees raw configuration: it gets these typed, validated
//! structs. An error names the offending key (`log.partitions`), the way an
//! operator would write it.

mod overlay;
pub mod ruleset;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use ruleset::Ruleset;

/// The default configuration, which is also the documented reference.
pub const EMBEDDED_DEFAULTS: &str = include_str!("../../config/riskd.toml");

/// Prefix of environment variables that override keys.
pub const ENV_PREFIX: &str = "RISKD_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub partition: PartitionConfig,
    pub snapshot: SnapshotConfig,
    pub projection: ProjectionConfig,
    pub geoip: GeoIpConfig,
    pub dead_letters: DeadLetterConfig,
    pub logging: LoggingConfig,
    pub ruleset: RulesetConfig,
    pub admin: AdminConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub http_workers: usize,
    pub shutdown_timeout_s: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub json_body_bytes_max: usize,
    pub events_body_bytes_max: usize,
    pub events_lines_max: usize,
    pub signals_max: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub partitions: u32,
    pub group_commit_events_max: usize,
    pub group_commit_interval_us_min: u64,
    pub idle_flush_ms_max: u64,
    pub score_waits_for_durability: bool,
    pub cache_capacity_bytes: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionConfig {
    pub threads: usize,
    pub mailbox_capacity: usize,
    pub attempts_max: usize,
    pub retry_after_s: u32,
    pub replay_batch_records: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    pub every_events: u64,
    pub on_shutdown: bool,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectionConfig {
    pub devices_per_user_max: usize,
    pub countries_per_user_max: usize,
    pub asns_per_user_max: usize,
    pub ip_prefixes_per_user_max: usize,
    pub user_agent_families_per_user_max: usize,
    pub failures_per_user_max: usize,
    pub model_observations_per_user_max: usize,
    pub hostile_per_user_max: usize,
    pub source_failures_per_source_max: usize,
    pub sources_max: usize,
    pub source_failures_retention_s: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpConfig {
    pub city_db: String,
    pub asn_db: String,
    pub anonymous_ip_db: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    pub max: usize,
    pub raw_bytes_max: usize,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesetConfig {
    pub path: String,
    pub candidate_path: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub token: String,
}

/// Upper bound on partitions: each is an actor, a sled tree and a snapshot file.
pub const PARTITIONS_MAX: u32 = 256;

impl Config {
    /// The embedded defaults, without environment overrides.
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::load(None, std::iter::empty())
    }

    /// Defaults, then `file` (if any), then `env` (`RISKD_SECTION__KEY=value` pairs).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = overlay::parse(EMBEDDED_DEFAULTS, "defaults")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let file_table = overlay::parse(&text, &path.display().to_string())?;
            overlay::merge(&mut table, file_table, "")?;
        }
        overlay::apply_env(&mut table, env, ENV_PREFIX)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| {
                ConfigError::invalid(&err.path().to_string(), err.inner().to_string())
            })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        check_range("log.partitions", self.log.partitions, 1, PARTITIONS_MAX)?;
        check_min(
            "log.group_commit_events_max",
            self.log.group_commit_events_max,
            1,
        )?;
        check_range(
            "log.group_commit_interval_us_min",
            self.log.group_commit_interval_us_min,
            0,
            1_000_000,
        )?;
        check_range(
            "log.idle_flush_ms_max",
            self.log.idle_flush_ms_max,
            1,
            60_000,
        )?;
        check_min(
            "partition.mailbox_capacity",
            self.partition.mailbox_capacity,
            1,
        )?;
        check_min("partition.attempts_max", self.partition.attempts_max, 1)?;
        check_min(
            "partition.replay_batch_records",
            self.partition.replay_batch_records,
            1,
        )?;
        check_min(
            "limits.json_body_bytes_max",
            self.limits.json_body_bytes_max,
            1024,
        )?;
        check_min(
            "limits.events_body_bytes_max",
            self.limits.events_body_bytes_max,
            1024,
        )?;
        check_min("limits.events_lines_max", self.limits.events_lines_max, 1)?;
        let p = &self.projection;
        for (key, value) in [
            ("projection.devices_per_user_max", p.devices_per_user_max),
            (
                "projection.countries_per_user_max",
                p.countries_per_user_max,
            ),
            ("projection.asns_per_user_max", p.asns_per_user_max),
            (
                "projection.ip_prefixes_per_user_max",
                p.ip_prefixes_per_user_max,
            ),
            (
                "projection.user_agent_families_per_user_max",
                p.user_agent_families_per_user_max,
            ),
            ("projection.failures_per_user_max", p.failures_per_user_max),
            (
                "projection.model_observations_per_user_max",
                p.model_observations_per_user_max,
            ),
            ("projection.hostile_per_user_max", p.hostile_per_user_max),
            (
                "projection.source_failures_per_source_max",
                p.source_failures_per_source_max,
            ),
        ] {
            check_range(key, value, 1, 4096)?;
        }
        check_min("projection.sources_max", p.sources_max, 1)?;
        check_min(
            "projection.source_failures_retention_s",
            p.source_failures_retention_s,
            1,
        )?;

        check_min("dead_letters.max", self.dead_letters.max, 1)?;
        if self.logging.level.trim().is_empty() {
            return Err(ConfigError::invalid("logging.level", "must not be empty"));
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|_| {
            ConfigError::invalid(
                "server.listen",
                format!(
                    "`{}` is not an address like 127.0.0.1:8080",
                    self.server.listen
                ),
            )
        })
    }

    /// Threads for partition actors: the configured count, or one per core.
    pub fn partition_threads(&self) -> usize {
        match self.partition.threads {
            0 => available_cores(),
            n => n,
        }
        .min(self.log.partitions as usize)
    }

    pub fn http_workers(&self) -> usize {
        match self.server.http_workers {
            0 => available_cores(),
            n => n,
        }
    }

    /// Loads the ruleset this configuration names (embedded when the path is empty).
    pub fn load_ruleset(&self) -> Result<Ruleset, ConfigError> {
        if self.ruleset.path.is_empty() {
            Ruleset::embedded()
        } else {
            Ruleset::from_file(Path::new(&self.ruleset.path))
        }
    }

    /// The shadow-mode candidate ruleset, if one is configured.
    pub fn load_candidate_ruleset(&self) -> Result<Option<Ruleset>, ConfigError> {
        match self.ruleset.candidate_path.as_str() {
            "" => Ok(None),
            path => Ruleset::from_file(Path::new(path)).map(Some),
        }
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn check_min<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: T,
    min: T,
) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::invalid(
            key,
            format!("must be at least {min}, got {value}"),
        ));
    }
    Ok(())
}

fn check_range<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::invalid(
            key,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn embedded_defaults_load_and_validate() {
        let config = Config::embedded().unwrap();
        assert_eq!(config.log.partitions, 8);
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.server.data_dir, PathBuf::from("./data"));
        config.load_ruleset().unwrap();
    }

    #[test]
    fn environment_overrides_a_key() {
        let config = Config::load(
            None,
            env(&[
                ("RISKD_LOG__PARTITIONS", "16"),
                ("RISKD_SERVER__LISTEN", "0.0.0.0:9000"),
            ]),
        )
        .unwrap();
        assert_eq!(config.log.partitions, 16);
        assert_eq!(config.server.listen, "0.0.0.0:9000");
    }

    #[test]
    fn file_overrides_only_the_keys_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("riskd.toml");
        std::fs::write(&path, "[log]\npartitions = 4\n").unwrap();
        let config = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(config.log.partitions, 4);
        assert_eq!(config.log.group_commit_events_max, 4096);
    }

    #[test]
    fn errors_name_the_key() {
        let err = Config::load(None, env(&[("RISKD_LOG__PARTITIONS", "0")])).unwrap_err();
        assert!(err.to_string().contains("log.partitions"), "{err}");
        let err = Config::load(None, env(&[("RISKD_LOG__PARTITIONS", "\"many\"")])).unwrap_err();
        assert!(err.to_string().contains("log.partitions"), "{err}");
        let err = Config::load(None, env(&[("RISKD_SERVER__LISTEN", "nowhere")])).unwrap_err();
        assert!(err.to_string().contains("server.listen"), "{err}");
        let err = Config::load(None, env(&[("RISKD_LOG__PARTITONS", "4")])).unwrap_err();
        assert!(err.to_string().contains("log.partitons"), "{err}");
    }

    #[test]
    fn unrelated_environment_is_ignored() {
        Config::load(None, env(&[("PATH", "/bin"), ("RISKDX", "1")])).unwrap();
    }
}
