use std::sync::Arc;
use std::time::Duration;

use super::core::*;
use crate::config::Config;
use crate::dead_letter::DeadLetters;
use crate::event::test_support::sample_attempt;
use crate::event::{Event, LoginAttempt, Outcome, OutcomeReport};
use crate::log::{Durability, GroupCommit, LogStore};
use crate::projection::keys::DeviceKey;
use crate::projection::GlobalState;
use crate::score::Scoring;
use crate::snapshot::SnapshotStore;

struct World {
    store: LogStore,
    durability: Durability,
    dead_letters: Arc<DeadLetters>,
    config: Config,
}

impl World {
    fn open(dir: &std::path::Path) -> World {
        let mut config = Config::embedded().unwrap();
        config.log.partitions = 1;
        config.snapshot.every_events = 0;
        let store = LogStore::open(dir, 1, 8 << 20).unwrap();
        let durability = store
            .start_durability(GroupCommit {
                events_max: 64,
                interval_min: Duration::from_micros(200),
                idle_flush_max: Duration::from_millis(100),
            })
            .unwrap();
        let dead_letters =
            Arc::new(DeadLetters::open(store.dead_letter_tree().unwrap(), 100, 256).unwrap());
        World {
            store,
            durability,
            dead_letters,
            config,
        }
    }

    /// A partition core, recovered (snapshot + tail) and ready.
    fn core(&self, dir: &std::path::Path, global: Arc<GlobalState>) -> PartitionCore {
        let scoring = Arc::new(Scoring::new(self.config.load_ruleset().unwrap(), None));
        let mut core = PartitionCore::open(
            0,
            &self.store,
            &self.config,
            global,
            scoring,
            self.durability.clone(),
            SnapshotStore::open(dir, 1).unwrap(),
            self.dead_letters.clone(),
        )
        .unwrap();
        while core.is_recovering() {
            core.replay_step(7, 0).unwrap();
        }
        core
    }
}

fn attempt(user: &str, id: &str, device: &str, ip: &str, t: i64) -> LoginAttempt {
    let mut a = sample_attempt(user);
    a.attempt_id = id.into();
    a.device_id = Some(device.into());
    a.ip = ip.parse().unwrap();
    a.timestamp_ms += t * 60_000;
    a
}

fn report(user: &str, id: &str, outcome: Outcome) -> OutcomeReport {
    OutcomeReport {
        attempt_id: id.into(),
        user_id: user.into(),
        outcome,
        timestamp_ms: 0,
    }
}

/// A varied stream: scores, every outcome kind, bulk logins, an erasure.
fn drive(core: &mut PartitionCore, from: usize, to: usize) {
    let outcomes = Outcome::ALL;
    for i in from..to {
        let user = format!("u{}", i % 7);
        let id = format!("a{i}");
        let ip = format!("192.0.2.{}", i % 5);
        if i % 4 == 0 {
            core.ingest(vec![(
                attempt(&user, &id, &format!("d{}", i % 3), &ip, i as i64),
                outcomes[i % 5],
            )])
            .unwrap();
        } else {
            core.score(attempt(&user, &id, &format!("d{}", i % 3), &ip, i as i64))
                .unwrap();
            core.outcome(report(&user, &id, outcomes[(i / 2) % 5]))
                .unwrap();
        }
        if i == from + 20 {
            core.erase("u3".into(), 0).unwrap();
        }
    }
}

#[test]
fn a_score_sees_the_users_earlier_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::open(dir.path());
    let mut core = world.core(dir.path(), Arc::new(GlobalState::new()));
    let first = core
        .score(attempt("u", "a1", "d1", "192.0.2.1", 0))
        .unwrap();
    assert!(first
        .assessment
        .reasons
        .iter()
        .any(|r| r.code == "new_device"));
    core.outcome(report("u", "a1", Outcome::Success)).unwrap();
    let again = core
        .score(attempt("u", "a2", "d1", "192.0.2.1", 1))
        .unwrap();
    assert!(
        !again
            .assessment
            .reasons
            .iter()
            .any(|r| r.code == "new_device"),
        "{:?}",
        again.assessment
    );
}

#[test]
fn an_outcome_for_an_unknown_attempt_is_refused_and_not_logged() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::open(dir.path());
    let mut core = world.core(dir.path(), Arc::new(GlobalState::new()));
    let before = core.next_offset();
    assert!(matches!(
        core.outcome(report("u", "nope", Outcome::Success)),
        Err(PartitionError::UnknownAttempt(_))
    ));
    assert_eq!(core.next_offset(), before);
}

#[test]
fn a_repeated_event_id_returns_the_first_answer_and_logs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::open(dir.path());
    let mut core = world.core(dir.path(), Arc::new(GlobalState::new()));
    let first = core
        .score(attempt("u", "e1", "d1", "192.0.2.1", 0))
        .unwrap();
    let offset = core.next_offset();
    let again = core
        .score(attempt("u", "e1", "d9", "198.51.100.1", 5))
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.assessment, first.assessment);
    assert_eq!(core.next_offset(), offset);
    assert!(matches!(
        core.score(attempt("someone-else", "e1", "d1", "192.0.2.1", 0)),
        Err(PartitionError::EventIdConflict(_))
    ));
}

#[test]
fn snapshot_plus_tail_equals_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::open(dir.path());
    let live_global = Arc::new(GlobalState::new());
    let mut live = world.core(dir.path(), live_global.clone());
    drive(&mut live, 0, 60);
    complete_erasures(&mut live);
    live.checkpoint().unwrap();
    assert!(SnapshotStore::open(dir.path(), 1)
        .unwrap()
        .load(0)
        .unwrap()
        .is_some());
    drive(&mut live, 60, 130);

    let from_snapshot_global = Arc::new(GlobalState::new());
    let from_snapshot = world.core(dir.path(), from_snapshot_global.clone());
    std::fs::remove_file(SnapshotStore::open(dir.path(), 1).unwrap().path(0)).unwrap();
    let full_global = Arc::new(GlobalState::new());
    let full = world.core(dir.path(), full_global.clone());

    assert_eq!(from_snapshot.projection(), live.projection());
    assert_eq!(full.projection(), live.projection());
    for global in [&from_snapshot_global, &full_global] {
        assert_eq!(global.model.entries(), live_global.model.entries());
        assert_eq!(global.model.users(), live_global.model.users());
        assert_eq!(global.hostile_ip_count(), live_global.hostile_ip_count());
        assert_eq!(
            global.velocity.sources_len(),
            live_global.velocity.sources_len()
        );
        assert_eq!(
            global.attempt_owner_count(),
            live_global.attempt_owner_count()
        );
    }
    // Failures from one address across users: the windows agree.
    let source = crate::projection::velocity::Sources::of("192.0.2.1".parse().unwrap(), None).ip;
    let (to_ms, window_ms) = (2_000_000_000_000, 1_000_000_000_000);
    let live_stats = live_global.velocity.stats(source, to_ms, window_ms, 2);
    assert!(live_stats.failures > 0, "the probe sees failures");
    for global in [&from_snapshot_global, &full_global] {
        assert_eq!(
            global.velocity.stats(source, to_ms, window_ms, 2),
            live_stats
        );
    }
    // And the model's answers agree, not just its sizes.
    let probe =
        crate::projection::AttemptKeys::of(&attempt("u1", "p", "d1", "192.0.2.1", 0)).observation;
    let user = live.projection().user("u1").unwrap();
    assert_eq!(
        live_global.model.likelihood_ratio(&user.model, &probe),
        full_global.model.likelihood_ratio(&user.model, &probe)
    );
}

#[test]
fn a_snapshot_view_keeps_its_offsets_state_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::open(dir.path());
    let mut live = world.core(dir.path(), Arc::new(GlobalState::new()));
    drive(&mut live, 0, 60);
    complete_erasures(&mut live);
    let store = SnapshotStore::open(dir.path(), 1).unwrap();
    let (offset, view) = live.snapshot_view().unwrap();
    assert_eq!(offset, live.next_offset());
    let encoded_then = store.encode(0, offset, live.projection()).unwrap();

    // The same users change after the view was taken (drive cycles
    // through seven users), and the view does not see it.
    drive(&mut live, 60, 130);
    assert_ne!(&view, live.projection());
    let encoded_later = store.encode(0, offset, &view).unwrap();
    assert_eq!(encoded_later, encoded_then);

    // Written as the snapshot, it plus the tail gives the live state.
    world.durability.sync().unwrap();
    store.write(0, offset, &encoded_later).unwrap();
    assert_eq!(store.load(0).unwrap().unwrap().next_offset, offset);
    let restarted = world.core(dir.path(), Arc::new(GlobalState::new()));
    assert_eq!(restarted.projection(), live.projection());
}

#[test]
fn after_replay_exactly_the_remembered_attempts_own_their_event_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut world = World::open(dir.path());
    // Few remembered attempts: replay evicts most of what it remembers.
    world.config.partition.attempts_max = 8;
    let live_global = Arc::new(GlobalState::new());
    let mut live = world.core(dir.path(), live_global.clone());
    drive(&mut live, 0, 30);
    complete_erasures(&mut live);
    live.checkpoint().unwrap();
    // The tail evicts every attempt the snapshot remembers.
    drive(&mut live, 30, 60);
    assert_eq!(live_global.attempt_owner_count(), 8);

    for from_snapshot in [true, false] {
        if !from_snapshot {
            std::fs::remove_file(SnapshotStore::open(dir.path(), 1).unwrap().path(0)).unwrap();
        }
        let global = Arc::new(GlobalState::new());
        let _replayed = world.core(dir.path(), global.clone());
        assert_eq!(
            global.attempt_owner_count(),
            live_global.attempt_owner_count(),
            "from_snapshot={from_snapshot}"
        );
        for i in 0..60 {
            let id = format!("a{i}");
            assert_eq!(
                global.attempt_owner(&id),
                live_global.attempt_owner(&id),
                "{id}, from_snapshot={from_snapshot}"
            );
        }
    }
}

#[test]
fn a_poison_record_is_set_aside_and_replay_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::open(dir.path());
    {
        let mut core = world.core(dir.path(), Arc::new(GlobalState::new()));
        core.ingest(vec![(
            attempt("u", "a1", "d1", "192.0.2.1", 0),
            Outcome::Success,
        )])
        .unwrap();
    }
    let mut log = world.store.partition(0).unwrap();
    log.append_raw(b"\x01\xff\xff\xff garbage").unwrap();
    let mut core = world.core(dir.path(), Arc::new(GlobalState::new()));
    core.ingest(vec![(
        attempt("u", "a2", "d2", "192.0.2.1", 1),
        Outcome::Success,
    )])
    .unwrap();
    let user = core.projection().user("u").unwrap();
    assert!(
        user.devices.contains(&DeviceKey::Id("d1".into()))
            && user.devices.contains(&DeviceKey::Id("d2".into()))
    );
    let letters = world.dead_letters.list(0, 10).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].source.as_str(), letters[0].offset),
        ("log", Some(1))
    );
    assert!(!letters[0].raw.is_empty(), "the record's bytes are kept");
}

#[test]
fn an_erased_user_leaves_the_log_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::open(dir.path());
    let mut core = world.core(dir.path(), Arc::new(GlobalState::new()));
    core.ingest(vec![
        (
            attempt("gone", "a1", "d1", "192.0.2.1", 0),
            Outcome::Success,
        ),
        (
            attempt("stays", "b1", "d1", "192.0.2.1", 0),
            Outcome::Success,
        ),
    ])
    .unwrap();
    core.score(attempt("gone", "a2", "d2", "192.0.2.2", 1))
        .unwrap();
    core.erase("gone".into(), 0).unwrap();
    complete_erasures(&mut core);

    let log = world.store.partition(0).unwrap();
    let users: Vec<String> = log
        .read_from(0)
        .map(|e| e.unwrap().1.unwrap().user_id().to_owned())
        .collect();
    assert_eq!(users, ["stays"]);
    // A full replay (no snapshot) agrees with the live state.
    std::fs::remove_file(SnapshotStore::open(dir.path(), 1).unwrap().path(0)).unwrap();
    let replayed = world.core(dir.path(), Arc::new(GlobalState::new()));
    assert!(replayed.projection().user("gone").is_none());
    assert_eq!(
        replayed.projection().user("stays"),
        core.projection().user("stays")
    );
    let _ = Event::Erase {
        user_id: String::new(),
        timestamp_ms: 0,
    };
}

#[test]
fn no_snapshot_covers_an_erasure_whose_compaction_has_not_finished() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::open(dir.path());
    let snapshots = SnapshotStore::open(dir.path(), 1).unwrap();
    let mut core = world.core(dir.path(), Arc::new(GlobalState::new()));
    core.ingest(vec![(
        attempt("gone", "a1", "d1", "192.0.2.1", 0),
        Outcome::Success,
    )])
    .unwrap();
    core.erase("gone".into(), 0).unwrap();
    let erasures = core.take_pending_erasures();
    // A checkpoint requested while compaction runs (shutdown, periodic) is skipped...
    core.checkpoint().unwrap();
    assert!(snapshots.load(0).unwrap().is_none());
    // ...so after a crash here, replay meets the erase record again and
    // schedules the compaction anew.
    drop(core);
    let mut restarted = world.core(dir.path(), Arc::new(GlobalState::new()));
    assert_eq!(restarted.take_pending_erasures(), erasures);
}

/// What the actor does in the background after an erasure.
fn complete_erasures(core: &mut PartitionCore) {
    let erasures = core.take_pending_erasures();
    if !erasures.is_empty() {
        let done = core.compaction_job(erasures)().unwrap();
        core.finish_erasures(&done).unwrap();
    }
}

#[test]
fn a_burst_of_erasures_is_compacted_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::open(dir.path());
    let mut core = world.core(dir.path(), Arc::new(GlobalState::new()));
    for user in ["a", "b", "keep"] {
        core.ingest(vec![(
            attempt(user, &format!("{user}-1"), "d1", "192.0.2.1", 0),
            Outcome::Success,
        )])
        .unwrap();
    }
    core.erase("a".into(), 0).unwrap();
    core.erase("b".into(), 0).unwrap();
    let batch = core.take_pending_erasures();
    assert_eq!(batch.len(), 2, "both erasures wait for one job");
    let done = core.compaction_job(batch)().unwrap();
    core.finish_erasures(&done).unwrap();
    let log = world.store.partition(0).unwrap();
    let users: Vec<String> = log
        .read_from(0)
        .map(|e| e.unwrap().1.unwrap().user_id().to_owned())
        .collect();
    assert_eq!(users, ["keep"]);
}
