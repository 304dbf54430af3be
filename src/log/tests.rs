use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::event::test_support::{sample_attempt, sample_events};
use crate::event::Outcome;

const CACHE_BYTES: u64 = 8 << 20;

fn login(user: &str, n: u32) -> Event {
    let mut attempt = sample_attempt(user);
    attempt.attempt_id = format!("{user}-{n}");
    attempt.timestamp_ms += i64::from(n);
    Event::Login {
        attempt,
        outcome: if n.is_multiple_of(3) {
            Outcome::Failure
        } else {
            Outcome::Success
        },
    }
}

/// Barriers as soon as requested; records nobody asks a barrier for are
/// written out after `idle_flush_max`.
fn immediate_barriers(store: &LogStore, idle_flush_max: Duration) -> durability::Durability {
    store
        .start_durability(GroupCommit {
            events_max: 64,
            interval_min: Duration::ZERO,
            idle_flush_max,
        })
        .unwrap()
}

fn read_all(log: &PartitionLog) -> Vec<(u64, Event)> {
    log.read_from(0)
        .map(|entry| {
            let (offset, event) = entry.unwrap();
            (offset, event.unwrap())
        })
        .collect()
}

#[test]
fn appends_get_consecutive_offsets_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), 4, CACHE_BYTES).unwrap();
    let mut log = store.partition(2).unwrap();
    let events = sample_events();
    for (i, event) in events.iter().enumerate() {
        assert_eq!(log.append(event).unwrap(), i as u64);
    }
    let read = read_all(&log);
    assert_eq!(read.len(), events.len());
    for (i, (offset, event)) in read.into_iter().enumerate() {
        assert_eq!(offset, i as u64);
        assert_eq!(event, events[i]);
    }
    assert_eq!(
        read_all(&store.partition(1).unwrap()).len(),
        0,
        "partitions are separate"
    );
}

#[test]
fn a_different_partition_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(LogStore::open(dir.path(), 8, CACHE_BYTES).unwrap());
    match LogStore::open(dir.path(), 4, CACHE_BYTES) {
        Err(LogError::PartitionMismatch {
            recorded: 8,
            configured: 4,
        }) => {}
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("opened with a different partition count"),
    }
    assert!(LogStore::open(dir.path(), 8, CACHE_BYTES).is_ok());
}

#[test]
fn append_all_assigns_a_contiguous_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), 1, CACHE_BYTES).unwrap();
    let mut log = store.partition(0).unwrap();
    log.append(&login("a", 0)).unwrap();
    let batch: Vec<Event> = (1..=5).map(|n| login("a", n)).collect();
    assert_eq!(log.append_all(&batch).unwrap(), 1);
    assert_eq!(log.next_offset(), 6);
    assert_eq!(
        read_all(&log)
            .into_iter()
            .map(|(o, _)| o)
            .collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
}

#[test]
fn the_barrier_completes_every_waiter_of_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), 1, CACHE_BYTES).unwrap();
    let durability = store
        .start_durability(GroupCommit {
            events_max: 64,
            interval_min: Duration::from_millis(2),
            idle_flush_max: Duration::from_millis(100),
        })
        .unwrap();
    let mut log = store.partition(0).unwrap();
    let tickets: Vec<Ticket> = (0..100)
        .map(|n| {
            log.append(&login("a", n)).unwrap();
            durability.barrier()
        })
        .collect();
    for ticket in tickets {
        ticket.wait_blocking().unwrap();
    }
    assert!(durability.is_healthy());
    durability.shutdown();
    assert!(matches!(
        durability.barrier().wait_blocking(),
        Err(LogError::BarrierStopped)
    ));
}

#[test]
fn records_made_durable_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path(), 2, CACHE_BYTES).unwrap();
        let durability = store
            .start_durability(GroupCommit {
                events_max: 8,
                interval_min: Duration::from_micros(100),
                idle_flush_max: Duration::from_millis(100),
            })
            .unwrap();
        let mut log = store.partition(1).unwrap();
        for n in 0..10 {
            log.append(&login("a", n)).unwrap();
        }
        durability.barrier().wait_blocking().unwrap();
        durability.shutdown();
    }
    let store = LogStore::open(dir.path(), 2, CACHE_BYTES).unwrap();
    let log = store.partition(1).unwrap();
    assert_eq!(log.next_offset(), 10);
    assert_eq!(read_all(&log).len(), 10);
}

#[derive(Clone, Debug)]
enum Op {
    Append(u8, u32),
    AppendBatch(u8, u32, u8),
    Remove(u8),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, 0u32..1000).prop_map(|(p, n)| Op::Append(p, n)),
        2 => (0u8..3, 0u32..1000, 1u8..6).prop_map(|(p, n, k)| Op::AppendBatch(p, n, k)),
        1 => (0u8..3).prop_map(Op::Remove),
        1 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The log behaves like a Vec per partition (with compaction as removal),
    /// across reopenings of the store: offsets, order and contents.
    #[test]
    fn the_log_matches_a_vec_model_across_restarts(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let partitions = 3;
        let mut model: Vec<Vec<Option<Event>>> = vec![Vec::new(); partitions];
        let mut store = LogStore::open(dir.path(), partitions as u32, CACHE_BYTES).unwrap();
        let mut logs: Vec<PartitionLog> = (0..partitions as u32).map(|p| store.partition(p).unwrap()).collect();
        for op in ops {
            match op {
                Op::Append(p, n) => {
                    let event = login(&format!("u{p}"), n);
                    let offset = logs[p as usize].append(&event).unwrap();
                    prop_assert_eq!(offset, model[p as usize].len() as u64);
                    model[p as usize].push(Some(event));
                }
                Op::AppendBatch(p, n, k) => {
                    let events: Vec<Event> = (0..u32::from(k)).map(|i| login(&format!("u{p}"), n + i)).collect();
                    let first = logs[p as usize].append_all(&events).unwrap();
                    prop_assert_eq!(first, model[p as usize].len() as u64);
                    model[p as usize].extend(events.into_iter().map(Some));
                }
                Op::Remove(p) => {
                    // Compaction removes a record but never reuses its offset.
                    if let Some(offset) = model[p as usize].iter().position(Option::is_some) {
                        logs[p as usize].remove(offset as u64).unwrap();
                        model[p as usize][offset] = None;
                    }
                }
                Op::Restart => {
                    store.db.flush().unwrap();
                    drop(logs);
                    drop(store);
                    store = LogStore::open(dir.path(), partitions as u32, CACHE_BYTES).unwrap();
                    logs = (0..partitions as u32).map(|p| store.partition(p).unwrap()).collect();
                }
            }
            for p in 0..partitions {
                let expected: Vec<(u64, Event)> = model[p]
                    .iter()
                    .enumerate()
                    .filter_map(|(o, e)| e.clone().map(|e| (o as u64, e)))
                    .collect();
                prop_assert_eq!(read_all(&logs[p]), expected);
                // Removed offsets, the last one included, are never reused.
                prop_assert_eq!(logs[p].next_offset(), model[p].len() as u64);
            }
        }
    }
}

#[test]
fn appends_wait_in_memory_and_a_barrier_writes_them_out_as_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), 1, CACHE_BYTES).unwrap();
    let durability = immediate_barriers(&store, Duration::from_secs(3600));
    let mut log = store.partition(0).unwrap();
    for n in 0..40 {
        log.append(&login("a", n)).unwrap();
    }
    assert!(log.tree.is_empty(), "an append does not touch sled");
    durability.barrier().wait_blocking().unwrap();
    assert!(log.pending.is_empty());
    let blocks = log.tree.len();
    assert!(
        (2..40).contains(&blocks),
        "40 records of ~300 B in blocks of at most {} B: {blocks} keys",
        block::BLOCK_BYTES_MAX
    );
    assert_eq!(read_all(&log).len(), 40);
    durability.shutdown();
}

#[test]
fn with_no_barrier_requested_appends_are_written_out_within_the_idle_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), 1, CACHE_BYTES).unwrap();
    let durability = immediate_barriers(&store, Duration::from_millis(20));
    let mut log = store.partition(0).unwrap();
    log.append(&login("a", 0)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log.tree.is_empty() {
        assert!(std::time::Instant::now() < deadline, "never written out");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(log.pending.is_empty());
    durability.shutdown();
}

#[test]
fn records_never_written_out_are_lost_whole_and_their_offsets_reused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path(), 1, CACHE_BYTES).unwrap();
        let durability = immediate_barriers(&store, Duration::from_secs(3600));
        let mut log = store.partition(0).unwrap();
        log.append_all(&[login("a", 0), login("a", 1)]).unwrap();
        durability.barrier().wait_blocking().unwrap();
        durability.shutdown();
        // Never written out: as in a crash before the next barrier.
        log.append_all(&[login("a", 2), login("a", 3)]).unwrap();
    }
    let store = LogStore::open(dir.path(), 1, CACHE_BYTES).unwrap();
    let log = store.partition(0).unwrap();
    let offsets: Vec<u64> = read_all(&log).into_iter().map(|(o, _)| o).collect();
    assert_eq!(offsets, [0, 1], "a prefix: the durable records");
    assert_eq!(log.next_offset(), 2);
}

#[test]
fn a_block_that_does_not_decode_is_one_poison_entry_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), 1, CACHE_BYTES).unwrap();
    let mut log = store.partition(0).unwrap();
    log.append(&login("a", 0)).unwrap();
    let garbage = [block::BLOCK_MARKER, 0xff, 0xff, 0x01];
    log.insert_raw_value(1, &garbage).unwrap();
    log.pending = Arc::new(pending::Pending::new(log.tree.clone(), 2));
    log.append(&login("a", 2)).unwrap();
    let entries: Vec<(u64, bool)> = log
        .read_from(0)
        .map(|entry| {
            let (offset, event) = entry.unwrap();
            (offset, event.is_ok())
        })
        .collect();
    assert_eq!(entries, [(0, true), (1, false), (2, true)]);
    assert_eq!(
        log.raw(1).unwrap().unwrap(),
        garbage,
        "the whole block is kept"
    );
}

#[test]
fn values_written_one_record_per_key_read_back_beside_blocks() {
    // Logs written before blocks hold one codec envelope per key.
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), 1, CACHE_BYTES).unwrap();
    let mut log = store.partition(0).unwrap();
    for n in 0..3u32 {
        log.insert_raw_value(u64::from(n), &codec::encode(&login("old", n)).unwrap())
            .unwrap();
    }
    drop(log);
    drop(store);
    let store = LogStore::open(dir.path(), 1, CACHE_BYTES).unwrap();
    let mut log = store.partition(0).unwrap();
    assert_eq!(log.next_offset(), 3);
    log.append(&login("new", 3)).unwrap();
    let read = read_all(&log);
    assert_eq!(
        read.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert_eq!(read[1].1, login("old", 1));
    log.remove(1).unwrap();
    assert_eq!(read_all(&log).len(), 3);
}
