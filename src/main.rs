//! The `riskd` binary: parses the command line, loads the configuration,
//! and runs the server built by `riskd::startup`, or one of the offline
//! tools: `import` (`riskd::dataset::import`), `backtest`
//! (`riskd::backtest`), `simulate` (`riskd::simulate`) and the load
//! generator `load` (`riskd::load`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use riskd::backtest::Backtest;
use riskd::config::{Config, Ruleset};
use riskd::dataset::import::Importer;
use riskd::dataset::{DatasetError, Format, LabelledLogin, ReadSettings, Reader, Writer};
use riskd::simulate::{SimulationConfig, Simulator};
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
    /// Load logins from a dataset into a data directory's event log; the
    /// next `riskd serve` replays them. The server must not be running on it.
    Import {
        /// rba-csv or ndjson (default: guessed from the first bytes).
        #[arg(long)]
        format: Option<Format>,
        /// The dataset, or - for standard input.
        file: PathBuf,
        /// Configuration file (TOML), as for `serve`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (default: the configuration's server.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Replay labelled logins in event-time order through fresh projections
    /// and report what a ruleset decides (and how a candidate differs).
    Backtest {
        /// The ruleset to replay with (TOML, like config/ruleset.toml).
        #[arg(long)]
        ruleset: PathBuf,
        /// The logins, or - for standard input.
        #[arg(long)]
        input: PathBuf,
        /// rba-csv or ndjson (default: guessed from the first bytes).
        #[arg(long)]
        format: Option<Format>,
        /// A candidate ruleset scored on the same replay.
        #[arg(long)]
        compare: Option<PathBuf>,
        /// Also report the statistical model alone: the likelihood-ratio
        /// thresholds catching 99% and 99.9% of the attacks of this label
        /// kind (e.g. `targeted`), and their cost in friction.
        #[arg(long, value_name = "KIND")]
        model_thresholds: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Configuration file (projection caps, GeoIP databases).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Generate a reproducible labelled login stream (same seed, same bytes).
    Simulate {
        #[arg(long)]
        users: u32,
        #[arg(long)]
        days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "ndjson")]
        format: Format,
        /// Output file (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Multiplies every attack rate (0: no attacks).
        #[arg(long, default_value_t = 1.0)]
        attack_scale: f64,
    },
    /// Load a running server at a paced rate (open loop) with simulated
    /// logins and their outcomes; report latency from the intended send
    /// time (p50, p99, p99.9, max), the rate achieved and errors.
    Load(LoadArgs),
}

#[derive(clap::Args)]
struct LoadArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    /// Requests per second, scores and outcomes together.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Recorded time, e.g. 60s, 500ms, 2m.
    #[arg(long, default_value = "60s", value_parser = riskd::load::parse_duration)]
    duration: std::time::Duration,
    /// Paced but unrecorded time before it.
    #[arg(long, default_value = "5s", value_parser = riskd::load::parse_duration)]
    warmup: std::time::Duration,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Users of the simulated population.
    #[arg(long, default_value_t = 10_000)]
    users: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of scored logins whose outcome is reported.
    #[arg(long, default_value_t = 0.5)]
    outcome_share: f64,
    /// A request unanswered after this is a timeout error.
    #[arg(long, default_value = "10s", value_parser = riskd::load::parse_duration)]
    timeout: std::time::Duration,
    /// Prefix of the event ids (default: random).
    #[arg(long)]
    run_id: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Search for the highest rate meeting --p99-max (no errors, 95% of the
    /// rate achieved) instead of one run: steps of --step-duration after
    /// --step-warmup each, between --rate-min and --rate-max; a failing
    /// step is run once more before it counts (one host stall is not the
    /// server's limit).
    #[arg(long)]
    saturate: bool,
    /// The saturation search's bound on p99.
    #[arg(long, default_value = "5ms", value_parser = riskd::load::parse_duration)]
    p99_max: std::time::Duration,
    /// Whose p99 the saturation search bounds: every request, or scores only.
    #[arg(long, value_enum, default_value = "all")]
    p99_of: riskd::load::Judged,
    #[arg(long, default_value_t = 1000.0)]
    rate_min: f64,
    #[arg(long, default_value_t = 100_000.0)]
    rate_max: f64,
    /// Recorded time of each saturation step.
    #[arg(long, default_value = "10s", value_parser = riskd::load::parse_duration)]
    step_duration: std::time::Duration,
    /// Unrecorded time at the start of each saturation step.
    #[arg(long, default_value = "2s", value_parser = riskd::load::parse_duration)]
    step_warmup: std::time::Duration,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve {
            config,
            listen,
            data_dir,
        } => serve(config, listen, data_dir),
        Command::Import {
            format,
            file,
            config,
            data_dir,
        } => import(format, &file, config, data_dir),
        Command::Backtest {
            ruleset,
            input,
            format,
            compare,
            model_thresholds,
            json,
            config,
        } => backtest(
            &ruleset,
            &input,
            format,
            compare,
            model_thresholds,
            json,
            config,
        ),
        Command::Simulate {
            users,
            days,
            seed,
            format,
            output,
            attack_scale,
        } => simulate(users, days, seed, format, output, attack_scale),
        Command::Load(args) => load(args),
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

/// Bad rows printed before they are only counted.
const BAD_ROWS_SHOWN_MAX: u64 = 20;

/// Reads a dataset, handing each good login to `sink`; bad rows go to
/// stderr (the first few) and are counted. Returns (logins, bad rows,
/// whether the input had labels).
fn read_dataset(
    path: &Path,
    format: Option<Format>,
    config: &Config,
    mut sink: impl FnMut(LabelledLogin) -> anyhow::Result<()>,
) -> anyhow::Result<(u64, u64, bool)> {
    let mut input = riskd::dataset::open_input(path)?;
    let format = match format {
        Some(format) => format,
        None => Format::sniff(&mut input).with_context(|| format!("reading {}", path.display()))?,
    };
    let progress = progress_bar(path);
    let mut reader = Reader::new(
        format,
        progress.wrap_read(input),
        ReadSettings::from_config(config)?,
    )?;
    let (mut good, mut bad) = (0, 0);
    for item in &mut reader {
        match item {
            Ok(login) => {
                good += 1;
                sink(login)?;
            }
            Err(err @ DatasetError::Row { .. }) => {
                bad += 1;
                if bad <= BAD_ROWS_SHOWN_MAX {
                    progress.suspend(|| eprintln!("{err}"));
                }
            }
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }
    progress.finish_and_clear();
    if bad > BAD_ROWS_SHOWN_MAX {
        eprintln!("... and {} more bad rows", bad - BAD_ROWS_SHOWN_MAX);
    }
    Ok((good, bad, reader.labelled()))
}

/// A progress bar over the input's bytes, drawn only when stderr is a terminal.
fn progress_bar(path: &Path) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let len = std::fs::metadata(path)
        .map(|m| m.len())
        .ok()
        .filter(|&n| n > 0);
    match len {
        Some(len) => {
            let bar = indicatif::ProgressBar::new(len);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        }
        None => indicatif::ProgressBar::new_spinner(),
    }
}

fn load_config(file: Option<PathBuf>) -> anyhow::Result<Config> {
    Ok(Config::load(file.as_deref(), std::env::vars())?)
}

fn import(
    format: Option<Format>,
    file: &Path,
    config_file: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut config = load_config(config_file)?;
    if let Some(data_dir) = data_dir {
        config.server.data_dir = data_dir;
    }
    let started = Instant::now();
    let mut importer = Importer::open(&config.server.data_dir, &config.log)?;
    let (_, rejected, _) = read_dataset(file, format, &config, |login| Ok(importer.push(login)?))?;
    let imported = importer.finish()?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "imported {imported} logins into {} ({rejected} rejected) in {elapsed:.2} s ({:.0} logins/s)",
        config.server.data_dir.display(),
        imported as f64 / elapsed.max(1e-9)
    );
    Ok(())
}

fn backtest(
    ruleset: &Path,
    input: &Path,
    format: Option<Format>,
    compare: Option<PathBuf>,
    model_kind: Option<String>,
    json: bool,
    config_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let config = load_config(config_file)?;
    let live = Ruleset::from_file(ruleset)?;
    let candidate = compare.map(|path| Ruleset::from_file(&path)).transpose()?;
    let started = Instant::now();
    let mut logins = Vec::new();
    let (_, rejected, labelled) = read_dataset(input, format, &config, |login| {
        logins.push(login);
        Ok(())
    })?;
    riskd::backtest::sort_by_event_time(&mut logins);
    let read_s = started.elapsed().as_secs_f64();

    let mut backtest = Backtest::new(&config, live, candidate);
    if labelled {
        backtest.mark_labelled();
    }
    let replay_started = Instant::now();
    let count = logins.len();
    for login in logins {
        backtest.push(login);
    }
    let replay_s = replay_started.elapsed().as_secs_f64();
    let report = backtest.report();
    // The model-alone view at the two operating points Wiefling et al. report.
    let model: Vec<_> = model_kind
        .iter()
        .flat_map(|kind| [0.99, 0.999].map(|target| backtest.model_threshold(kind, target)))
        .collect();
    let mut stdout = std::io::stdout().lock();
    if json {
        if model.is_empty() {
            serde_json::to_writer_pretty(&mut stdout, &report)?;
        } else {
            serde_json::to_writer_pretty(
                &mut stdout,
                &serde_json::json!({ "report": report, "model_alone": model }),
            )?;
        }
        writeln!(stdout)?;
    } else {
        write!(stdout, "{report}")?;
        for threshold in &model {
            write!(stdout, "\n{threshold}")?;
        }
    }
    eprintln!(
        "read {count} logins in {read_s:.2} s ({rejected} rejected); replayed in {replay_s:.2} s = {:.0} logins/s",
        count as f64 / replay_s.max(1e-9)
    );
    Ok(())
}

fn simulate(
    users: u32,
    days: u32,
    seed: u64,
    format: Format,
    output: Option<PathBuf>,
    attack_scale: f64,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        attack_scale.is_finite() && attack_scale >= 0.0,
        "--attack-scale must be a finite number >= 0"
    );
    let mut config = SimulationConfig::new(users, days, seed);
    config.attacks = config.attacks.scaled(attack_scale);
    let output: Box<dyn Write> = match &output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let written = (|| {
        let mut writer = Writer::new(format, std::io::BufWriter::with_capacity(1 << 16, output))?;
        for login in Simulator::new(config) {
            writer.write(&login)?;
        }
        writer.finish().map(drop)
    })();
    match written {
        // The reader went away (`riskd simulate | head`): nothing to report.
        Err(DatasetError::Write { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(())
        }
        other => Ok(other?),
    }
}

fn load(args: LoadArgs) -> anyhow::Result<()> {
    use riskd::load::{LoadConfig, LoadGenerator, SaturationConfig, SaturationStep};

    let config = LoadConfig {
        warmup: args.warmup,
        connections: args.connections,
        users: args.users,
        seed: args.seed,
        outcome_share: args.outcome_share,
        request_timeout: args.timeout,
        run_id: args.run_id,
        ..LoadConfig::new(args.target, args.rate, args.duration)
    };
    let generator = LoadGenerator::new(config)?;
    eprintln!(
        "{} simulated logins pooled; event ids start with {}-",
        generator.pool_len(),
        generator.run_id()
    );
    let mut stdout = std::io::stdout().lock();
    if args.saturate {
        let search = SaturationConfig {
            rate_min_per_s: args.rate_min,
            rate_max_per_s: args.rate_max,
            p99_max: args.p99_max,
            p99_of: args.p99_of,
            step_duration: args.step_duration,
            step_warmup: args.step_warmup,
        };
        eprintln!("{}", SaturationStep::HEADER);
        let mut number = 0;
        let report = generator.saturate(&search, |step| {
            number += 1;
            eprintln!("{}", step.row(number));
        })?;
        if args.json {
            serde_json::to_writer_pretty(&mut stdout, &report)?;
            writeln!(stdout)?;
        } else {
            write!(stdout, "{report}")?;
            if let Some(best) = report.best() {
                write!(stdout, "\nat the answer:\n{}", best.report)?;
            }
        }
    } else {
        let report = generator.run()?;
        if args.json {
            serde_json::to_writer_pretty(&mut stdout, &report)?;
            writeln!(stdout)?;
        } else {
            write!(stdout, "{report}")?;
        }
    }
    Ok(())
}
