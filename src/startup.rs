//! Building and running a server: what `riskd serve` and the integration
//! tests both use. `Application::build` opens the data directory, starts
//! the partition actors and binds the listener (port 0 picks a free port);
//! `run_until_stopped` serves until SIGINT/SIGTERM or `stop`, then flushes
//! and checkpoints.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix::{Actor, Arbiter, Context};
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};

use crate::config::{Config, ConfigError};
use crate::dead_letter::{DeadLetterError, DeadLetters};
use crate::enrich::Enricher;
use crate::geoip::{DbSource, GeoIp, GeoIpError};
use crate::http::{self, AppState};
use crate::log::{Durability, GroupCommit, LogError, LogStore};
use crate::metrics::Metrics;
use crate::partition::actor::{PartitionActor, Shared};
use crate::partition::router::PartitionHandle;
use crate::partition::{PartitionCore, PartitionError, Readiness, Router};
use crate::projection::GlobalState;
use crate::score::Scoring;
use crate::snapshot::{SnapshotError, SnapshotStore};

/// Room in an actor's mailbox beyond the router's bound, for control
/// messages (checkpoints) that bypass it; keeps actix from ever parking.
const MAILBOX_SLACK: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Partition(#[from] PartitionError),
    #[error(transparent)]
    DeadLetters(#[from] DeadLetterError),
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("loading partition {partition} failed unexpectedly (its loader thread panicked)")]
    LoaderPanicked { partition: usize },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    server: Server,
    router: Router,
    durability: Durability,
    arbiters: Vec<Arbiter>,
    snapshot_on_shutdown: bool,
}

impl Application {
    /// Must run inside an actix system (`#[actix_web::main]`, `System::new`).
    pub fn build(config: Config) -> Result<Application, StartupError> {
        let data_dir = config.server.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| StartupError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let metrics = Arc::new(Metrics::new()?);
        let store = LogStore::open(
            &data_dir,
            config.log.partitions,
            config.log.cache_capacity_bytes,
        )?;
        let durability = store.start_durability(GroupCommit::from_config(&config.log))?;
        {
            let metrics = metrics.clone();
            durability.set_observer(Arc::new(move |events, took| {
                metrics.barrier_events.observe(events as f64);
                metrics.barrier_seconds.observe(took.as_secs_f64());
            }));
        }
        let dead_letters = Arc::new(DeadLetters::open(
            store.dead_letter_tree()?,
            config.dead_letters.max,
            config.dead_letters.raw_bytes_max,
        )?);
        let snapshots = SnapshotStore::open(&data_dir, config.log.partitions)?;
        let geoip = GeoIp::open(
            &db_source(&config.geoip.city_db),
            &db_source(&config.geoip.asn_db),
            &db_source(&config.geoip.anonymous_ip_db),
        )?;
        let scoring = Arc::new(Scoring::new(
            config.load_ruleset()?,
            config.load_candidate_ruleset()?,
        ));

        let global = Arc::new(GlobalState::for_config(&config.projection));
        let readiness = Arc::new(Readiness::new(config.log.partitions as usize));

        let arbiters: Vec<Arbiter> = (0..config.partition_threads())
            .map(|_| Arbiter::new())
            .collect();
        // Loading snapshots (and re-adding each user's share of the global
        // statistics) is the slow part of a start: do it for all partitions
        // at once, one thread per core.
        let loaders = config.partition_threads().max(1);
        let mut cores: Vec<Option<Result<PartitionCore, PartitionError>>> =
            (0..config.log.partitions).map(|_| None).collect();
        std::thread::scope(|scope| {
            let jobs: Vec<_> = (0..loaders)
                .map(|loader| {
                    let (store, config, global, scoring) = (&store, &config, &global, &scoring);
                    let (durability, snapshots, dead_letters) =
                        (&durability, &snapshots, &dead_letters);
                    scope.spawn(move || {
                        (0..config.log.partitions)
                            .filter(|id| *id as usize % loaders == loader)
                            .map(|id| {
                                let core = PartitionCore::open(
                                    id,
                                    store,
                                    config,
                                    global.clone(),
                                    scoring.clone(),
                                    durability.clone(),
                                    snapshots.clone(),
                                    dead_letters.clone(),
                                );
                                (id, core)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for job in jobs {
                // A loader thread that panicked leaves its partitions as None.
                for (id, core) in job.join().unwrap_or_default() {
                    cores[id as usize] = Some(core);
                }
            }
        });
        let mut handles = Vec::with_capacity(config.log.partitions as usize);
        for (id, core) in cores.into_iter().enumerate() {
            let core = core.ok_or(StartupError::LoaderPanicked { partition: id })??;
            let shared = Shared::new(core, &metrics);
            let actor = PartitionActor::new(
                shared.clone(),
                readiness.clone(),
                metrics.clone(),
                config.partition.replay_batch_records,
            );
            let capacity = config.partition.mailbox_capacity + MAILBOX_SLACK;
            let arbiter = &arbiters[id % arbiters.len()];
            let addr = PartitionActor::start_in_arbiter(
                &arbiter.handle(),
                move |ctx: &mut Context<PartitionActor>| {
                    ctx.set_mailbox_capacity(capacity);
                    actor
                },
            );
            handles.push(PartitionHandle::new(addr, shared));
        }
        let router = Router::new(
            handles,
            config.partition.mailbox_capacity,
            metrics.clone(),
            readiness.clone(),
        );

        let state = web::Data::new(AppState {
            router: router.clone(),
            enricher: Enricher::new(geoip),
            scoring: scoring.clone(),
            dead_letters,
            durability: durability.clone(),
            readiness,
            metrics,
            limits: config.limits.clone(),
            retry_after_s: config.partition.retry_after_s,
            admin_token: config.admin.token.clone(),
            ruleset_files: config.ruleset.clone(),
        });
        spawn_reload_on_sighup(scoring.clone(), config.ruleset.clone());

        let addr = config.listen_addr()?;
        let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: addr.to_string(),
                source,
            })?
            .port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap_fn(http::observe)
                .configure(http::routes)
        })
        .workers(config.http_workers())
        .shutdown_timeout(config.server.shutdown_timeout_s)
        // actix-server treats SIGINT as a forced stop that drops in-flight
        // requests; the binary handles signals itself and always stops
        // gracefully (see main.rs).
        .disable_signals()
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })?
        .run();
        Ok(Application {
            port,
            server,
            router,
            durability,
            arbiters,
            snapshot_on_shutdown: config.snapshot.on_shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from elsewhere (signal handler, tests).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, then checkpoints every partition and makes the
    /// log durable before returning.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if self.snapshot_on_shutdown {
            tracing::info!("HTTP server stopped; checkpointing partitions");
            for (partition, result) in self.router.checkpoint_all().await.into_iter().enumerate() {
                if let Err(err) = result {
                    tracing::error!(partition, error = %err, "checkpoint at shutdown failed");
                }
            }
        }
        // The last barrier: everything appended is durable before we return.
        self.durability.shutdown();

        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        tracing::info!("riskd stopped");
        served
    }
}

fn db_source(setting: &str) -> DbSource {
    match setting {
        "builtin" => DbSource::Builtin,
        "" => DbSource::Disabled,
        path => DbSource::File(PathBuf::from(path)),
    }
}

/// SIGHUP re-reads the rulesets; a ruleset that fails validation is logged
/// and the running ones stay in force.
fn spawn_reload_on_sighup(scoring: Arc<Scoring>, files: crate::config::RulesetConfig) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP; reload through the admin API only");
            return;
        }
    };
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            match scoring.reload(&files) {
                Ok((live, candidate)) => {
                    tracing::info!(%live, ?candidate, "SIGHUP: rulesets reloaded")
                }
                Err(err) => {
                    tracing::error!(error = %err, "SIGHUP: reload failed; the running rulesets stay in force")
                }
            }
        }
    });
}
