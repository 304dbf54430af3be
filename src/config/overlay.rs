//! Layering TOML tables: defaults, then a file, then the environment.
//! Every layer may only name keys the defaults have, so a typo is an error
//! naming the key rather than a silently ignored setting.

use toml::value::Table;
use toml::Value;

use super::ConfigError;

pub(super) fn parse(text: &str, origin: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|err| ConfigError::Syntax {
        origin: origin.to_owned(),
        message: err.to_string(),
    })
}

/// Writes `over` into `base`, key by key. `prefix` is the dotted path of `base`.
pub(super) fn merge(base: &mut Table, over: Table, prefix: &str) -> Result<(), ConfigError> {
    for (key, value) in over {
        let path = join(prefix, &key);
        match (base.get_mut(&key), value) {
            (None, _) => return Err(ConfigError::invalid(&path, "unknown key")),
            (Some(Value::Table(base_table)), Value::Table(over_table)) => {
                merge(base_table, over_table, &path)?;
            }
            (Some(Value::Table(_)), _) => {
                return Err(ConfigError::invalid(&path, "is a section, not a value"));
            }
            (Some(slot), value) => *slot = value,
        }
    }
    Ok(())
}

/// Applies `RISKD_SECTION__KEY=value` pairs. A value is read as a TOML value
/// (so numbers and booleans keep their type) and otherwise as a string.
pub(super) fn apply_env(
    table: &mut Table,
    env: impl IntoIterator<Item = (String, String)>,
    prefix: &str,
) -> Result<(), ConfigError> {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.len() != 2 || path.iter().any(String::is_empty) {
            continue;
        }
        let value = parse_scalar(&raw);
        let mut over = Table::new();
        let mut section = Table::new();
        section.insert(path[1].clone(), value);
        over.insert(path[0].clone(), Value::Table(section));
        merge(table, over, "")?;
    }
    Ok(())
}

fn parse_scalar(raw: &str) -> Value {
    format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table())
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}
