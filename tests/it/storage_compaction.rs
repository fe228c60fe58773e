//! Log compaction (issue 16): after a cleaning pass, reading a compacted log gives exactly
//! the latest record of each key below the cleaned point, plus every record after it, at
//! their original offsets; and a crash at any write or directory operation of a pass
//! leaves a log that reads as before the pass or after it, never with a key brought back.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use spindle::runtime::run_local;
use spindle::storage::sim::{SimFaults, SimRng, SimStorage};
use spindle::storage::{CleanupPolicy, LogConfig, PartitionLog, Storage};
use spindle_protocol::compaction::for_each_keyed_record;
use spindle_protocol::compression::{Codec, compress_batch, decompress_batch};
use spindle_protocol::record_batch::{build_batch_of, for_each_record};

use crate::common::temp_dir;
use crate::storage_log::small_config;

/// Timestamps of the workload's records: far in the past of any `now_ms` the tests pass,
/// except where a test says otherwise.
const T0: i64 = 1_000_000;

fn compacted_config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        segment_bytes: 16 << 10,
        batch_bytes_max: 8 << 10,
        ..small_config()
    }
}

/// One record read back: (offset, key, value; `None` for a tombstone).
type Record = (i64, Vec<u8>, Option<Vec<u8>>);

fn records_of(batch: &[u8]) -> Vec<Record> {
    let plain = decompress_batch(batch).expect("decompresses");
    let mut offsets = Vec::new();
    for_each_keyed_record(&plain, |record| offsets.push(record.offset)).expect("parses");
    let mut out = Vec::new();
    for_each_record(&plain, |index, key, value| {
        out.push((
            offsets[index],
            key.expect("keyed").to_vec(),
            value.map(<[u8]>::to_vec),
        ))
    })
    .expect("uncompressed");
    out
}

/// Every record the log serves, from its start to its high watermark.
async fn read_all<S: Storage>(log: &PartitionLog<S>) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let batches = log.read(offset, 64 << 10).await.expect("read");
        assert!(
            !batches.is_empty(),
            "a read at {offset} below the high watermark came back empty"
        );
        for batch in batches {
            for record in records_of(&batch) {
                if record.0 >= offset {
                    out.push(record);
                }
            }
        }
        offset = out.last().map_or(offset, |record| record.0 + 1);
    }
    for pair in out.windows(2) {
        assert!(
            pair[0].0 < pair[1].0,
            "offsets only grow: {} then {}",
            pair[0].0,
            pair[1].0
        );
    }
    out
}

/// Appends `batches` random batches over `keys` keys (one in ten records a tombstone),
/// every fourth batch lz4-compressed. Returns every record as appended.
async fn append_workload<S: Storage>(
    log: &PartitionLog<S>,
    rng: &mut SimRng,
    batches: usize,
    keys: u64,
) -> Vec<Record> {
    let mut appended = Vec::new();
    for batch_index in 0..batches {
        let count = 1 + rng.below(8) as usize;
        let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..count)
            .map(|_| {
                let key = format!("key-{}", rng.below(keys)).into_bytes();
                let value = (!rng.chance(1, 10))
                    .then(|| format!("value-{batch_index}-{}", rng.next_u64()).into_bytes());
                (key, value)
            })
            .collect();
        let refs: Vec<_> = records
            .iter()
            .map(|(key, value)| {
                (
                    T0 + batch_index as i64,
                    Some(key.as_slice()),
                    value.as_deref(),
                )
            })
            .collect();
        let mut batch = build_batch_of(&refs);
        if batch_index % 4 == 3 {
            batch = compress_batch(&batch, Codec::Lz4).expect("compresses");
        }
        let info = log
            .append(BytesMut::from(&batch[..]))
            .await
            .expect("append");
        for (index, (key, value)) in records.into_iter().enumerate() {
            appended.push((info.base_offset + index as i64, key, value));
        }
    }
    log.flush().await.expect("flush");
    appended
}

/// The latest record of each key among `records`.
fn latest_by_key(records: &[Record]) -> HashMap<Vec<u8>, Record> {
    let mut latest = HashMap::new();
    for record in records {
        latest.insert(record.1.clone(), record.clone());
    }
    latest
}

/// Checks what a compacted log serves against everything appended: every record served is
/// one appended (same offset, key and value); the latest record of each key is served
/// (a tombstone below `cleaned_below` only unless `tombstones_gone`); below `cleaned_below`
/// only the latest record of each key there is left; at and above it everything is.
fn check_compacted(
    served: &[Record],
    appended: &[Record],
    cleaned_below: i64,
    tombstones_gone: bool,
) {
    let by_offset: BTreeMap<i64, &Record> = appended.iter().map(|r| (r.0, r)).collect();
    for record in served {
        assert_eq!(
            by_offset.get(&record.0),
            Some(&record),
            "served as appended"
        );
    }
    let served_offsets: BTreeMap<i64, &Record> = served.iter().map(|r| (r.0, r)).collect();
    let latest = latest_by_key(appended);
    for record in latest.values() {
        let gone = tombstones_gone && record.2.is_none() && record.0 < cleaned_below;
        assert_eq!(
            served_offsets.contains_key(&record.0),
            !gone,
            "latest record of {:?} at {}",
            String::from_utf8_lossy(&record.1),
            record.0
        );
    }
    // The cleaner maps the sealed segments only (as Kafka's, up to the active segment): a
    // record is superseded when a later one of its key is below the cleaned point too.
    let cleaned: Vec<Record> = appended
        .iter()
        .filter(|r| r.0 < cleaned_below)
        .cloned()
        .collect();
    let latest_cleaned = latest_by_key(&cleaned);
    for record in appended {
        if record.0 >= cleaned_below {
            assert!(
                served_offsets.contains_key(&record.0),
                "{} is past the cleaned point",
                record.0
            );
            continue;
        }
        let superseded = latest_cleaned[&record.1].0 != record.0;
        let expired_tombstone = tombstones_gone && record.2.is_none();
        assert_eq!(
            served_offsets.contains_key(&record.0),
            !superseded && !expired_tombstone,
            "record {} (superseded {superseded}, tombstone {})",
            record.0,
            record.2.is_none()
        );
    }
}

/// The offset below which a pass cleans: the active segment's base (everything sealed).
fn active_base<S: Storage>(log: &PartitionLog<S>) -> i64 {
    *log.segment_base_offsets().last().expect("a segment")
}

fn leftovers(storage: &SimStorage, dir: &Path) -> Vec<String> {
    storage
        .list(dir)
        .expect("list")
        .into_iter()
        .filter(|name| name.ends_with(".cleaned") || name.ends_with(".swap"))
        .collect()
}

#[test]
fn a_compacted_log_serves_the_latest_record_per_key_and_everything_after_the_cleaned_point() {
    let temp = temp_dir("storage-compaction");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(5, 4096);
        let dir = PathBuf::from("/data/compact-0");
        let config = compacted_config();
        let open = || PartitionLog::open(storage.clone(), &dir, config.clone());
        let mut rng = SimRng::new(0xc0ffee);
        let log = open().await.expect("open");
        let mut appended = append_workload(&log, &mut rng, 400, 60).await;
        // Reopened, every segment but the last is sealed on disk.
        log.close().await.expect("close");
        let log = open().await.expect("reopen");
        let segments_before = log.segment_count();
        let bytes_before = log.size_bytes();
        assert!(
            segments_before > 5,
            "the workload spans segments: {segments_before}"
        );
        assert!(log.compaction_due(), "a fresh log is all dirty");
        let cleaned_below = active_base(&log);

        let stats = log.compact(T0 + 10_000).await.expect("compact");
        assert_eq!(stats.segments_cleaned, segments_before - 1);
        assert!(
            stats.records_removed > 0 && log.size_bytes() < bytes_before,
            "{stats:?}"
        );
        assert_eq!(log.dirty_ratio(), 0.0);
        assert!(!log.compaction_due());
        check_compacted(&read_all(&log).await, &appended, cleaned_below, false);

        // The same after a restart: the cleaned segments are what is on disk, and the
        // cleaner's position is kept, so nothing reads as dirty.
        log.close().await.expect("close");
        let log = open().await.expect("reopen");
        check_compacted(&read_all(&log).await, &appended, cleaned_below, false);
        assert_eq!(
            log.dirty_ratio(),
            0.0,
            "the cleaner's position survives a restart"
        );
        assert!(!log.compaction_due());

        // More writes, then a pass past delete.retention.ms: old tombstones go too.
        appended.extend(append_workload(&log, &mut rng, 200, 60).await);
        log.close().await.expect("close");
        let log = open().await.expect("reopen");
        let cleaned_below = active_base(&log);
        log.compact(T0 + config.delete_retention_ms + 1_000_000)
            .await
            .expect("compact");
        let served = read_all(&log).await;
        check_compacted(&served, &appended, cleaned_below, true);
        assert!(
            served.iter().all(|r| r.2.is_some() || r.0 >= cleaned_below),
            "no tombstone below the cleaned point"
        );
        assert!(leftovers(&storage, &dir).is_empty());
        log.close().await.expect("close");
    });
}

#[test]
fn a_read_starting_in_a_gap_the_cleaner_left_gets_the_next_batch() {
    let temp = temp_dir("storage-compaction-gap");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(6, 4096);
        let dir = PathBuf::from("/data/compact-gap");
        let log = PartitionLog::open(storage.clone(), &dir, compacted_config())
            .await
            .expect("open");
        // Key "a" overwritten by most batches; every 7th batch has a key of its own,
        // except in a stretch at the start: the first segments lose every batch and go,
        // the others keep every 7th batch, with gaps between and at their ends.
        let mut appended = Vec::new();
        for index in 0..300i64 {
            let value = format!("v{index}-{}", "x".repeat(200));
            let own_key = format!("u{index}");
            let key = if index % 7 == 0 && index >= 150 {
                own_key.as_str()
            } else {
                "a"
            };
            let batch = build_batch_of(&[(T0, Some(key.as_bytes()), Some(value.as_bytes()))]);
            let info = log
                .append(BytesMut::from(&batch[..]))
                .await
                .expect("append");
            appended.push((
                info.base_offset,
                key.as_bytes().to_vec(),
                Some(value.into_bytes()),
            ));
        }
        // Not reopened: the recent batches are still in the log's memory cache, and readers
        // must see the cleaned segments, not the cached batches as appended.
        log.flush().await.expect("flush");
        assert!(log.cached_bytes() > 0);
        let cleaned_below = active_base(&log);
        let stats = log.compact(T0).await.expect("compact");
        assert!(stats.segments_removed > 0, "{stats:?}");
        assert!(log.log_start_offset() > 0, "the emptied first segment went");
        // Every offset below the high watermark, whatever gap it falls in, reads on to the
        // next record there is.
        let served = read_all(&log).await;
        check_compacted(&served, &appended, cleaned_below, false);
        for from in log.log_start_offset()..log.high_watermark() {
            let batches = log.read(from, 1 << 10).await.expect("read");
            let first = records_of(batches.first().expect("a batch"));
            let next = served.iter().find(|r| r.0 >= from).expect("one after");
            assert!(
                first.iter().any(|r| r == next),
                "a read at {from} reaches {}",
                next.0
            );
        }
        log.close().await.expect("close");
    });
}

/// Runs one pass on a copy of `image` that crashes at its `nth` write (`by_write`) or
/// directory operation; `None` once the pass completes without reaching it.
async fn crash_during_pass(
    image: &SimStorage,
    dir: &Path,
    nth: u64,
    by_write: bool,
) -> Option<SimStorage> {
    let storage = image.process_crash_image();
    let log = PartitionLog::open(storage.clone(), dir, compacted_config())
        .await
        .expect("open");
    let stats = storage.stats();
    storage.set_faults(SimFaults {
        crash_at_write: by_write.then_some(stats.writes + nth),
        crash_at_dir_op: (!by_write).then_some(stats.dir_ops + nth),
        ..SimFaults::default()
    });
    let result = log.compact(T0 + (1 << 40)).await;
    if !storage.crashed() {
        result.expect("a pass without a crash succeeds");
        log.close().await.expect("close");
        return None;
    }
    drop(log);
    Some(storage.crash_image(nth.wrapping_mul(0x9e37_79b9)))
}

#[test]
fn a_crash_at_any_point_of_a_pass_leaves_the_old_segment_or_the_new_one() {
    let temp = temp_dir("storage-compaction-crash");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(7, 4096);
        let dir = PathBuf::from("/data/compact-crash");
        let log = PartitionLog::open(storage.clone(), &dir, compacted_config())
            .await
            .expect("open");
        let mut rng = SimRng::new(0xbad5eed);
        let appended = append_workload(&log, &mut rng, 150, 25).await;
        log.close().await.expect("close");
        let latest = latest_by_key(&appended);
        let mut crashes = 0;
        for by_write in [false, true] {
            for nth in 1.. {
                let Some(crashed) = crash_during_pass(&storage, &dir, nth, by_write).await else {
                    break;
                };
                crashes += 1;
                let log = PartitionLog::open(crashed.clone(), &dir, compacted_config())
                    .await
                    .expect("reopen after the crash");
                assert!(
                    leftovers(&crashed, &dir).is_empty(),
                    "recovery finished the swap"
                );
                let served = read_all(&log).await;
                let by_offset: BTreeMap<i64, &Record> = appended.iter().map(|r| (r.0, r)).collect();
                for record in &served {
                    assert_eq!(
                        by_offset.get(&record.0),
                        Some(&record),
                        "served as appended"
                    );
                }
                // No key comes back: its newest record served is its latest, or (for a
                // tombstone removed with everything before it) nothing is.
                let newest_served = latest_by_key(&served);
                for (key, record) in &latest {
                    match newest_served.get(key) {
                        Some(served) => assert_eq!(served, record, "crash at {nth} ({by_write})"),
                        None => assert!(record.2.is_none(), "a live key vanished"),
                    }
                }
                // And a pass after recovery finishes the job.
                let cleaned_below = active_base(&log);
                log.compact(T0 + (1 << 40))
                    .await
                    .expect("compact after recovery");
                check_compacted(&read_all(&log).await, &appended, cleaned_below, true);
                log.close().await.expect("close");
            }
        }
        assert!(crashes >= 10, "the pass was crashed at {crashes} points");
    });
}

/// `batch` as an idempotent producer's: producer id, epoch 0 and base sequence set (they
/// are under the CRC, so it is recomputed).
fn from_producer(mut batch: Vec<u8>, producer_id: i64, base_sequence: i32) -> Vec<u8> {
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&0i16.to_be_bytes());
    batch[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = spindle_protocol::record_batch::compute_crc(&batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// Every batch the log serves, as headers.
async fn batch_headers<S: Storage>(
    log: &PartitionLog<S>,
) -> Vec<spindle_protocol::RecordBatchHeader> {
    let mut out: Vec<spindle_protocol::RecordBatchHeader> = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let batches = log.read(offset, 64 << 10).await.expect("read");
        for batch in &batches {
            let header = spindle_protocol::RecordBatchHeader::decode(batch).expect("a batch");
            if header.base_offset >= offset {
                offset = header.next_offset();
                out.push(header);
            }
        }
    }
    out
}

/// Kafka's cleaner keeps each idempotent producer's last batch, emptied of its records if
/// they all go, so the producer's sequence is still in the log (a restart rebuilds its
/// state from it); a batch that is no longer a producer's last goes as any other.
#[test]
fn a_producers_last_batch_stays_emptied_so_its_sequence_survives() {
    let temp = temp_dir("storage-compaction-producer");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(8, 4096);
        let dir = PathBuf::from("/data/compact-producer");
        let log = PartitionLog::open(storage.clone(), &dir, compacted_config())
            .await
            .expect("open");
        let value = "x".repeat(200);
        let keyed =
            |key: &str| build_batch_of(&[(T0, Some(key.as_bytes()), Some(value.as_bytes()))]);
        // Producer 7 writes key "a" once (sequence 4); producer 8 overwrites it many times.
        let seven = log
            .append(BytesMut::from(&from_producer(keyed("a"), 7, 4)[..]))
            .await
            .expect("append")
            .base_offset;
        for sequence in 0..200 {
            log.append(BytesMut::from(&from_producer(keyed("a"), 8, sequence)[..]))
                .await
                .expect("append");
        }
        log.flush().await.expect("flush");
        log.compact(T0).await.expect("compact");
        let headers = batch_headers(&log).await;
        let kept_seven: Vec<_> = headers.iter().filter(|h| h.producer_id == 7).collect();
        assert_eq!(kept_seven.len(), 1, "producer 7's batch kept");
        assert_eq!(kept_seven[0].base_offset, seven);
        assert_eq!(
            kept_seven[0].records_count, 0,
            "emptied of its overwritten record"
        );
        assert_eq!(kept_seven[0].base_sequence, 4, "its sequence kept");
        assert_eq!(kept_seven[0].compression(), 0);
        // Producer 8's earlier batches went: only those of the segments not cleaned stay.
        let eights = headers.iter().filter(|h| h.producer_id == 8).count();
        assert!(eights < 200, "{eights} of producer 8's batches left");

        // Producer 7 writes again, later: its emptied batch is no longer its last, and goes.
        log.append(BytesMut::from(&from_producer(keyed("b"), 7, 5)[..]))
            .await
            .expect("append");
        for sequence in 200..400 {
            log.append(BytesMut::from(&from_producer(keyed("a"), 8, sequence)[..]))
                .await
                .expect("append");
        }
        log.flush().await.expect("flush");
        log.compact(T0).await.expect("compact");
        let headers = batch_headers(&log).await;
        let sevens: Vec<(i64, i32, i32)> = headers
            .iter()
            .filter(|h| h.producer_id == 7)
            .map(|h| (h.base_offset, h.base_sequence, h.records_count))
            .collect();
        assert_eq!(sevens.len(), 1, "{sevens:?}");
        assert_eq!(
            (sevens[0].1, sevens[0].2),
            (5, 1),
            "its last batch, with key b"
        );
        log.close().await.expect("close");
    });
}
