//! The `riskd` binary: parses the command line, loads the configuration,
//! and runs the server built by `riskd::startup`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use riskd::config::Config;
use riskd::startup::Application;

#[derive(Parser)]
#[command(name = "riskd", version, about = "A real-time login risk engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Configuration file (TOML); only the keys it sets override the built-in defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
        #[arg(long)]
        listen: Option<String>,
        /// Directory for the log, snapshots and dead letters.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve {
            config,
            listen,
            data_dir,
        } => serve(config, listen, data_dir),
    }
}

fn serve(
    config_file: Option<PathBuf>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut config = Config::load(config_file.as_deref(), std::env::vars())?;
    if let Some(listen) = listen {
        config.server.listen = listen;
        config.listen_addr()?;
    }
    if let Some(data_dir) = data_dir {
        config.server.data_dir = data_dir;
    }
    riskd::telemetry::init(config.logging.format, &config.logging.level);
    actix_web::rt::System::new().block_on(async move {
        let host = config.listen_addr()?.ip();
        let app = Application::build(config).context("starting riskd")?;
        // Printed on stdout, alone on its line, for people and for scripts
        // that start riskd on port 0.
        println!(
            "riskd listening on http://{}",
            std::net::SocketAddr::new(host, app.port())
        );
        let handle = app.handle();
        actix_web::rt::spawn(async move {
            match shutdown_signal().await {
                Ok(signal) => tracing::info!(signal, "shutting down gracefully"),
                Err(err) => tracing::error!(error = %err, "cannot listen for signals; stopping"),
            }
            handle.stop(true).await;
        });
        app.run_until_stopped().await.context("serving HTTP")
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}
