//! riskd: a real-time login risk engine.
//!
//! A login gateway asks `POST /v1/score` how risky a login attempt is and
//! gets a decision (allow, challenge, deny), a risk in [0, 1] and the
//! reasons; it later reports the outcome (`POST /v1/outcomes`) and riskd
//! learns from it.
//!
//! # Layout: the data path
//!
//! ```text
//!  HTTP (actix-web workers)          http/      parse + validate at the edge (http::request),
//!    │                                          enrich: GeoIP + User-Agent (enrich/, geoip/)
//!    ▼
//!  Router ── partition_of(user_id) ─ partition/router.rs: bounded in-flight per partition
//!    │                                          (full → 429 overloaded, never an unbounded queue)
//!    ├─ score, outcome: on the HTTP worker under the partition's lock if it is free
//!    │    (no thread hop); through the actor's mailbox if it is taken
//!    └─ bulk ingest, erase, user reads: through the partition actor's mailbox
//!    ▼
//!  PartitionActor (one per partition, partition/actor.rs: owns the partition's
//!    lifecycle: log replay at start, background snapshots and compactions)
//!    └─ PartitionCore (partition/core.rs, plain struct, behind the partition's lock)
//!         1. score from memory:  Scorer (score/, one file per factor)
//!                                  reads Projection (projection/) + GlobalState
//!         2. append to the log:  PartitionLog (log/): an offset and a postcard envelope
//!                                  (event/codec.rs) in memory, reaching the sled tree in blocks
//!         3. fold into memory:   Projection::apply
//!    ▼
//!  Durability (log/durability.rs): one thread, group commit: writes the partitions'
//!    waiting records into sled as blocks, sled flush + fdatasync, completes the
//!    tickets that outcome/event/erase replies wait for
//! ```
//!
//! # Invariants
//!
//! - Per user, order: a user's events all go through one partition core,
//!   which appends each event to its log before applying it to its
//!   projection, under one lock. A request sees every earlier event of its
//!   user (read your writes), and the projection is always the fold of a log
//!   prefix.
//! - Durability: `POST /v1/outcomes`, `POST /v1/events` and
//!   `DELETE /v1/users/{id}` reply only after a durability barrier covering
//!   their records. A `/v1/score` reply may precede its attempt record's
//!   barrier unless `log.score_waits_for_durability` is set.
//! - Hot path: scoring reads memory only (projection, global state); the
//!   log append is a write into memory (the durability thread moves it to sled).
//! - Restart = load each partition's snapshot (`snapshot.rs`) + replay the
//!   log tail; a full replay from offset 0 gives the same projection.
//! - Global state (`projection::global`): partitions apply commutative
//!   deltas of their own users; its value is the sum over partitions. A
//!   replaying partition leaves it alone and adds its users once at the end
//!   (nothing reads it until every partition has caught up).
//! - Time: every risk computation uses event time (`timestamp`); the wall
//!   clock (`clock.rs`) only fills in a missing timestamp.

pub mod backtest;
pub mod clock;
pub mod config;
pub mod dataset;
pub mod dead_letter;
pub mod enrich;
pub mod event;
pub mod geoip;
pub mod hash;
pub mod heap;
pub mod http;
pub mod load;
pub mod log;
pub mod metrics;
pub mod partition;
pub mod projection;
pub mod score;
pub mod simulate;
pub mod snapshot;
pub mod startup;
pub mod telemetry;
