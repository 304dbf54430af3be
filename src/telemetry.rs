//! tracing-subscriber setup: human-readable by default, JSON on request.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// maxminddb logs every decoded value at debug level; keep it quiet unless
/// asked for by name.
const QUIET_DEPENDENCIES: &str = "maxminddb=info";

/// Installs the global subscriber. RUST_LOG, when set, overrides `level`.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        if level.contains("maxminddb") {
            EnvFilter::new(level)
        } else {
            EnvFilter::new(format!("{level},{QUIET_DEPENDENCIES}"))
        }
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
