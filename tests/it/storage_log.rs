//! Partition log behaviour: round trips across segment rolls, index lookups at every
//! boundary, timestamp lookup, retention, truncation, recovery from a cut at every byte of
//! the last batch, corruption detected on read-back, and group commit.
//!
//! Tests named `dma_*` run the real glommio direct-I/O device on files in a temp dir; the
//! others run the same log over the in-memory simulator, which also checks every write's
//! alignment.

use crate::common::temp_dir;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use spindle::runtime::run_local;
use spindle::server::error_codes::ToErrorCode;
use spindle::storage::sim::{SimFaults, SimStorage};
use spindle::storage::{DmaStorage, FlushPolicy, LogConfig, PartitionLog, Storage, StorageError};
use spindle_protocol::record_batch::{
    RecordBatchHeader, TimedRecord, build_batch, build_batch_with_timestamps, set_base_offset,
    set_partition_leader_epoch,
};

/// A batch of `records` records whose values encode `tag` and whose size grows with `tag`, so
/// boundaries fall everywhere. Timestamps start at `timestamp`.
pub(crate) fn make_batch(tag: u64, records: usize, timestamp: i64) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..records)
        .map(|index| {
            format!(
                "value-{tag}-{index}-{}",
                "x".repeat((tag % 97) as usize * 8)
            )
            .into_bytes()
        })
        .collect();
    let refs: Vec<(Option<&[u8]>, &[u8])> = values.iter().map(|v| (None, v.as_slice())).collect();
    build_batch(timestamp, &refs)
}

/// What the log should hold for a batch appended at `base_offset` (broker-assigned offset,
/// leader epoch 0).
fn as_stored(batch: &[u8], base_offset: i64) -> Vec<u8> {
    let mut stored = batch.to_vec();
    set_base_offset(&mut stored, base_offset);
    set_partition_leader_epoch(&mut stored, 0);
    stored
}

pub(crate) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        index_interval_bytes: 512,
        write_buffer_bytes: 16 << 10,
        dirty_bytes_max: 256 << 10,
        cache_bytes_max: 32 << 10,
        preallocate_bytes: 32 << 10,
        batch_bytes_max: 32 << 10,
        ..LogConfig::default()
    }
}

struct Appended {
    base_offset: i64,
    stored: Vec<u8>,
}

async fn append_all<S: Storage>(log: &PartitionLog<S>, batches: &[Vec<u8>]) -> Vec<Appended> {
    let mut out = Vec::new();
    for batch in batches {
        let info = log
            .append(BytesMut::from(batch.as_slice()))
            .await
            .expect("append");
        out.push(Appended {
            base_offset: info.base_offset,
            stored: as_stored(batch, info.base_offset),
        });
    }
    log.flush().await.expect("flush");
    out
}

/// Reads from every offset and checks the first batch returned is the one holding it, byte
/// for byte, and that following batches are the next ones in order.
async fn check_every_offset<S: Storage>(log: &PartitionLog<S>, appended: &[Appended]) {
    let mut index = 0;
    for offset in log.log_start_offset()..log.high_watermark() {
        while index + 1 < appended.len() && appended[index + 1].base_offset <= offset {
            index += 1;
        }
        let batches = log
            .read(offset, 3000)
            .await
            .unwrap_or_else(|e| panic!("read {offset}: {e}"));
        assert!(!batches.is_empty(), "no batch for offset {offset}");
        for (returned, expected) in batches.iter().zip(&appended[index..]) {
            assert_eq!(
                returned.as_ref(),
                expected.stored.as_slice(),
                "offset {offset}"
            );
        }
        let total: usize = batches.iter().map(Bytes::len).sum();
        assert!(
            batches.len() == 1 || total <= 3000,
            "max_bytes exceeded beyond the first batch"
        );
    }
}

fn log_segment_count(storage: &SimStorage, dir: &Path) -> usize {
    storage
        .list(dir)
        .expect("list")
        .iter()
        .filter(|n| n.ends_with(".log"))
        .count()
}

#[test]
fn dma_round_trip_across_rolls_and_reopen() {
    let temp = temp_dir("storage-log");
    let dir = temp.path().join("topic-0");
    let primer = temp.path().to_path_buf();
    run_local(&primer, async move {
        let batches: Vec<Vec<u8>> = (0..400)
            .map(|tag| make_batch(tag, 1 + (tag % 5) as usize, 1_000 + tag as i64))
            .collect();
        let log = PartitionLog::open(DmaStorage, &dir, small_config())
            .await
            .expect("open");
        let appended = append_all(&log, &batches).await;
        assert!(
            log.segment_count() > 3,
            "expected several segments, got {}",
            log.segment_count()
        );
        assert_eq!(log.high_watermark(), log.log_end_offset());
        check_every_offset(&log, &appended).await;
        let end = log.log_end_offset();
        log.close().await.expect("close");

        // Sealed segments are exactly sized and have index files.
        let bases = {
            let reopened = PartitionLog::open(DmaStorage, &dir, small_config())
                .await
                .expect("reopen");
            assert_eq!(reopened.log_end_offset(), end);
            assert_eq!(reopened.durable_offset(), end);
            check_every_offset(&reopened, &appended).await;
            let bases = reopened.segment_base_offsets();
            // Appending after recovery continues the offsets and survives another reopen.
            let more: Vec<Vec<u8>> = (400..450).map(|tag| make_batch(tag, 2, 5_000)).collect();
            let mut all = appended;
            all.extend(append_all(&reopened, &more).await);
            check_every_offset(&reopened, &all).await;
            reopened.close().await.expect("close");
            let again = PartitionLog::open(DmaStorage, &dir, small_config())
                .await
                .expect("reopen 2");
            check_every_offset(&again, &all).await;
            again.close().await.expect("close");
            bases
        };
        for base in &bases[..bases.len() - 1] {
            for suffix in [".log", ".index", ".timeindex"] {
                let path = dir.join(format!("{base:020}{suffix}"));
                assert!(path.exists(), "{} missing", path.display());
            }
        }
    });
}

#[test]
fn dma_reads_served_from_disk_after_cache_eviction_on_a_fresh_executor() {
    // A new executor whose first segment file is new and empty: the direct-I/O primer in
    // run_local is what keeps reads from failing with EOPNOTSUPP here.
    let temp = temp_dir("storage-log");
    let dir = temp.path().join("t-1");
    run_local(temp.path(), async move {
        let config = LogConfig {
            cache_bytes_max: 0,
            ..small_config()
        };
        let log = PartitionLog::open(DmaStorage, &dir, config)
            .await
            .expect("open");
        let batches: Vec<Vec<u8>> = (0..50).map(|tag| make_batch(tag, 3, 10)).collect();
        let appended = append_all(&log, &batches).await;
        check_every_offset(&log, &appended).await;
        log.close().await.expect("close");
    });
}

#[test]
fn index_lookups_at_every_boundary_on_the_cold_path() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(7, 4096);
        let dir = PathBuf::from("/data/t-0");
        let config = LogConfig {
            cache_bytes_max: 0,
            index_interval_bytes: 1,
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("open");
        let batches: Vec<Vec<u8>> = (0..300)
            .map(|tag| make_batch(tag, 1 + (tag % 3) as usize, 0))
            .collect();
        let appended = append_all(&log, &batches).await;
        check_every_offset(&log, &appended).await;
        // Reads at the segment boundaries and one past the end.
        for base in log.segment_base_offsets() {
            let first = log.read(base, 1).await.expect("read at base");
            assert_eq!(
                RecordBatchHeader::decode(&first[0]).unwrap().base_offset,
                base
            );
            if base > 0 {
                let before = log.read(base - 1, 1).await.expect("read before base");
                assert_eq!(
                    RecordBatchHeader::decode(&before[0]).unwrap().next_offset(),
                    base
                );
            }
        }
        let end = log.log_end_offset();
        assert!(log.read(end, 100).await.expect("read at end").is_empty());
        assert!(matches!(
            log.read(end + 1, 100).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert!(matches!(
            log.read(-1, 100).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        log.close().await.expect("close");
        // Reopened with a coarse index from files: same answers.
        let log = PartitionLog::open(
            storage,
            &dir,
            LogConfig {
                index_interval_bytes: 4096,
                ..config
            },
        )
        .await
        .expect("reopen");
        check_every_offset(&log, &appended).await;
    });
}

#[test]
fn a_sequential_cold_reader_pays_one_device_read_per_fetch() {
    // A consumer behind the cache reads `max_bytes` at a time. The read that fills the
    // budget almost always ends inside the next batch; that batch is not taken (it would
    // pass the budget), so no second device read may be spent on it. Before this was
    // checked, every such fetch read the device twice and threw the second read away.
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(13, 4096);
        let dir = PathBuf::from("/data/t-0");
        let log = PartitionLog::open(storage.clone(), &dir, cold_config())
            .await
            .expect("open");
        let batches: Vec<Vec<u8>> = (0..400)
            .map(|tag| make_batch(tag, 1 + (tag % 5) as usize, 0))
            .collect();
        let appended = append_all(&log, &batches).await;
        let expected: Vec<u8> = appended.iter().flat_map(|a| a.stored.clone()).collect();
        assert_eq!(log.segment_count(), 1, "one segment: one file to read from");
        for max_bytes in [4096, 10_000, 16 << 10] {
            let mut got = Vec::new();
            let mut offset = 0;
            let mut fetches = 0u64;
            let reads_before = storage.stats().reads;
            while offset < log.log_end_offset() {
                let read = log.read(offset, max_bytes).await.expect("read");
                fetches += 1;
                let last = read.last().expect("not at the end");
                offset = RecordBatchHeader::decode(last).unwrap().next_offset();
                let bytes: usize = read.iter().map(|b| b.len()).sum();
                assert!(
                    bytes <= max_bytes || read.len() == 1,
                    "budget {max_bytes} exceeded: {bytes} in {} batches",
                    read.len()
                );
                for batch in read {
                    got.extend_from_slice(&batch);
                }
            }
            assert_eq!(
                got, expected,
                "max_bytes {max_bytes}: the log's bytes, in order"
            );
            let reads = storage.stats().reads - reads_before;
            assert_eq!(
                reads, fetches,
                "max_bytes {max_bytes}: {reads} device reads for {fetches} fetches"
            );
        }
    });
}

/// A log that keeps nothing in memory, in one segment, so every read goes to the device.
fn cold_config() -> LogConfig {
    LogConfig {
        cache_bytes_max: 0,
        segment_bytes: 1 << 20,
        ..small_config()
    }
}

/// A single-segment log of 400 batches under [`cold_config`].
async fn cold_log(storage: &SimStorage, dir: &Path) -> (PartitionLog<SimStorage>, Vec<Appended>) {
    let log = PartitionLog::open(storage.clone(), dir, cold_config())
        .await
        .expect("open");
    let batches: Vec<Vec<u8>> = (0..400)
        .map(|tag| make_batch(tag, 1 + (tag % 5) as usize, 0))
        .collect();
    let appended = append_all(&log, &batches).await;
    assert_eq!(log.segment_count(), 1);
    (log, appended)
}

fn next_offset_after(read: &[Bytes]) -> i64 {
    RecordBatchHeader::decode(read.last().expect("a batch"))
        .unwrap()
        .next_offset()
}

#[test]
fn a_sequential_cold_reader_finds_its_next_chunk_already_read() {
    // While one fetch's answer travels to the client, the device should already be reading
    // the next: the read-ahead a page cache gives Kafka. Before it, the device sat idle
    // between fetches and each fetch waited for a whole read.
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(17, 4096);
        let (log, appended) = cold_log(&storage, Path::new("/data/ahead-0")).await;
        let reads_before = storage.stats().reads;
        let first = log.read(0, 8192).await.expect("read");
        // The client is busy with the answer; the core runs other tasks meanwhile.
        glommio::timer::sleep(Duration::from_millis(2)).await;
        assert_eq!(
            storage.stats().reads - reads_before,
            2,
            "the fetch's own read, and the next chunk read while nobody asked"
        );
        assert!(log.read_ahead_bytes() > 0);
        let next = next_offset_after(&first);
        let second = log.read(next, 8192).await.expect("read");
        glommio::timer::sleep(Duration::from_millis(2)).await;
        assert_eq!(
            storage.stats().reads - reads_before,
            3,
            "the second fetch was answered from the chunk read ahead (one more read: the \
             chunk after it)"
        );
        let index = appended
            .iter()
            .position(|a| a.base_offset == next)
            .expect("fetches end at batch boundaries");
        for (got, want) in second.iter().zip(&appended[index..]) {
            assert_eq!(got.as_ref(), want.stored.as_slice());
        }
        // A reader that jumps elsewhere drops it and gets what it asked for.
        glommio::timer::sleep(Duration::from_millis(2)).await;
        let jumped = log
            .read(appended[300].base_offset, 8192)
            .await
            .expect("read");
        assert_eq!(jumped[0].as_ref(), appended[300].stored.as_slice());
        log.close().await.expect("close");
        assert_eq!(log.read_ahead_bytes(), 0, "closing gives it back");
    });
}

#[test]
fn a_truncation_drops_the_read_ahead_of_positions_it_rewrites() {
    // After a truncation the positions read ahead may hold other batches under the same
    // offsets (a follower truncating to its leader's log): the next fetch must see those.
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(19, 4096);
        let (log, appended) = cold_log(&storage, Path::new("/data/ahead-1")).await;
        let first = log.read(0, 8192).await.expect("read");
        let next = next_offset_after(&first);
        glommio::timer::sleep(Duration::from_millis(2)).await;
        assert!(log.read_ahead_bytes() > 0, "a chunk was read ahead");
        let cut = appended[3].base_offset;
        assert!(cut < next);
        log.truncate_to(cut).await.expect("truncate");
        assert_eq!(log.read_ahead_bytes(), 0);
        // Other batches, with other sizes, now hold the offsets from `cut` on.
        let replacement: Vec<Vec<u8>> = (0..100).map(|tag| make_batch(1000 + tag, 2, 0)).collect();
        let replaced = append_all(&log, &replacement).await;
        assert_eq!(replaced[0].base_offset, cut);
        let holding = replaced
            .iter()
            .rposition(|a| a.base_offset <= next)
            .expect("replaced from below next");
        let read = log.read(next, 8192).await.expect("read");
        assert_eq!(read[0].as_ref(), replaced[holding].stored.as_slice());
    });
}

#[test]
fn the_read_ahead_counts_against_the_core_budget_and_gives_way_first() {
    use spindle::storage::CacheBudget;
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(23, 4096);
        let budget = CacheBudget::new(64 << 10);
        let config = cold_config();
        let open = |dir: PathBuf| {
            let (storage, config, budget) = (storage.clone(), config.clone(), budget.clone());
            async move {
                PartitionLog::open_with_cache_budget(storage, &dir, config, budget)
                    .await
                    .expect("open")
            }
        };
        let reader = open(PathBuf::from("/data/ahead-reader")).await;
        let batches: Vec<Vec<u8>> = (0..200).map(|tag| make_batch(tag, 3, 0)).collect();
        let appended = append_all(&reader, &batches).await;
        let first = reader.read(0, 16 << 10).await.expect("read");
        assert!(reader.read_ahead_bytes() > 0);
        assert_eq!(
            budget.bytes(),
            reader.read_ahead_bytes(),
            "the chunk read ahead is counted"
        );
        // Another log of the core needs the memory: speculation gives way.
        let writer = open(PathBuf::from("/data/ahead-writer")).await;
        let big = LogConfig {
            cache_bytes_max: 1 << 20,
            ..config.clone()
        };
        writer.set_config(big).expect("config");
        let more: Vec<Vec<u8>> = (0..200).map(|tag| make_batch(tag, 4, 0)).collect();
        append_all(&writer, &more).await;
        assert_eq!(reader.read_ahead_bytes(), 0, "dropped under pressure");
        assert!(budget.bytes() <= budget.bytes_max());
        // The reader still gets the right batches, from the device.
        let next = next_offset_after(&first);
        let index = appended.iter().position(|a| a.base_offset == next).unwrap();
        let read = reader.read(next, 16 << 10).await.expect("read");
        assert_eq!(read[0].as_ref(), appended[index].stored.as_slice());
    });
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(1, 4096);
        let dir = PathBuf::from("/data/ts-0");
        let config = LogConfig {
            cache_bytes_max: 0,
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("open");
        // Batch i holds records with timestamps 100*i + {0, 10, 20} except that every 7th
        // batch's timestamps go backwards inside the batch.
        let mut expected: Vec<(i64, i64)> = Vec::new(); // (offset, timestamp)
        let payload = vec![b'p'; 300];
        for batch_index in 0..200i64 {
            let mut stamps = [
                100 * batch_index,
                100 * batch_index + 10,
                100 * batch_index + 20,
            ];
            if batch_index % 7 == 0 {
                stamps.reverse();
            }
            let records: Vec<TimedRecord<'_>> = stamps
                .iter()
                .map(|&t| (t, None, payload.as_slice()))
                .collect();
            let info = log
                .append(BytesMut::from(
                    build_batch_with_timestamps(&records).as_slice(),
                ))
                .await
                .expect("append");
            for (delta, stamp) in stamps.iter().enumerate() {
                expected.push((info.base_offset + delta as i64, *stamp));
            }
        }
        log.flush().await.expect("flush");
        assert!(log.segment_count() > 2);
        let answer = |target: i64| {
            expected
                .iter()
                .find(|&&(_, ts)| ts >= target)
                .map(|&(offset, timestamp)| (offset, timestamp))
        };
        for log_handle in [log.clone()] {
            for target in [
                -5, 0, 1, 10, 15, 20, 21, 99, 100, 700, 705, 710, 715, 5_555, 19_920, 19_921,
                50_000,
            ] {
                let got = log_handle
                    .offset_for_timestamp(target)
                    .await
                    .expect("lookup")
                    .map(|r| (r.offset, r.timestamp));
                assert_eq!(got, answer(target), "target {target}");
            }
        }
        log.close().await.expect("close");
        let log = PartitionLog::open(storage, &dir, config)
            .await
            .expect("reopen");
        for target in (0..20_100).step_by(37) {
            let got = log
                .offset_for_timestamp(target)
                .await
                .expect("lookup")
                .map(|r| (r.offset, r.timestamp));
            assert_eq!(got, answer(target), "target {target} after reopen");
        }
    });
}

#[test]
fn a_config_change_reaches_an_open_log() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(3, 4096);
        let dir = PathBuf::from("/data/reconfigured-0");
        let config = LogConfig {
            retention_bytes: -1,
            retention_ms: -1,
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("open");
        let batches: Vec<Vec<u8>> = (0..300).map(|tag| make_batch(tag, 4, 1_000)).collect();
        append_all(&log, &batches).await;
        assert_eq!(log.apply_retention(0).await.expect("retention"), 0);
        // As AlterConfigs would: the same defaults under a new retention.bytes and
        // max.message.bytes, applied to the log while it stays open.
        log.set_config(LogConfig {
            retention_bytes: 64 << 10,
            batch_bytes_max: 512,
            ..config.clone()
        })
        .expect("set config");
        assert!(log.apply_retention(0).await.expect("retention") > 0);
        assert!(log.size_bytes() < (64 << 10) + (64 << 10));
        let too_large = log
            .append(BytesMut::from(make_batch(96, 4, 1_000).as_slice()))
            .await;
        assert!(
            matches!(
                too_large,
                Err(StorageError::BatchTooLarge {
                    size_bytes_max: 512,
                    ..
                })
            ),
            "{too_large:?}"
        );
        // An invalid config is refused and the log keeps the one it has.
        assert!(
            log.set_config(LogConfig {
                segment_bytes: 0,
                ..config.clone()
            })
            .is_err()
        );
        assert_eq!(log.config().batch_bytes_max, 512);
        log.close().await.expect("close");
    });
}

#[test]
fn retention_by_size_and_by_time_deletes_whole_old_segments() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(3, 4096);
        let dir = PathBuf::from("/data/ret-0");
        let config = LogConfig {
            retention_bytes: 150 << 10,
            retention_ms: -1,
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("open");
        let batches: Vec<Vec<u8>> = (0..600).map(|tag| make_batch(tag, 4, 1_000)).collect();
        let appended = append_all(&log, &batches).await;
        let before = log.segment_count();
        let size_before = log.size_bytes();
        assert!(size_before > 300 << 10);
        let deleted = log.apply_retention(0).await.expect("retention");
        assert!(deleted > 0);
        assert_eq!(log.segment_count(), before - deleted);
        // Kafka's rule: delete the oldest segment only while what remains is still at least
        // retention_bytes, so the log ends within one segment above the limit.
        assert!(
            log.size_bytes() >= 150 << 10,
            "deleted below the limit: {}",
            log.size_bytes()
        );
        assert!(
            log.size_bytes() < (150 << 10) + (64 << 10),
            "size {} still over",
            log.size_bytes()
        );
        let start = log.log_start_offset();
        assert_eq!(start, log.segment_base_offsets()[0]);
        assert!(matches!(
            log.read(start - 1, 10).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        let remaining: Vec<Appended> = appended
            .into_iter()
            .filter(|a| a.base_offset >= start)
            .collect();
        check_every_offset(&log, &remaining).await;
        let names = storage.list(&dir).expect("list");
        assert!(
            !names.iter().any(|n| n.starts_with("00000000000000000000")),
            "first segment still on disk: {names:?}"
        );
        log.close().await.expect("close");
        let reopened = PartitionLog::open(storage.clone(), &dir, config)
            .await
            .expect("reopen");
        assert_eq!(reopened.log_start_offset(), start);
        reopened.close().await.expect("close");

        // By time: segments whose newest record is older than retention_ms go, the active
        // one stays even when expired.
        let dir = PathBuf::from("/data/ret-1");
        let config = LogConfig {
            retention_ms: 1_000,
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), &dir, config)
            .await
            .expect("open");
        let old: Vec<Vec<u8>> = (0..200).map(|tag| make_batch(tag, 4, 10_000)).collect();
        append_all(&log, &old).await;
        let new: Vec<Vec<u8>> = (0..200).map(|tag| make_batch(tag, 4, 50_000)).collect();
        append_all(&log, &new).await;
        let segments = log.segment_count();
        assert_eq!(
            log.apply_retention(10_500).await.expect("retention"),
            0,
            "nothing is older than 1s yet"
        );
        let deleted = log.apply_retention(30_000).await.expect("retention");
        assert!(deleted > 0 && deleted < segments);
        let first_new_segment = log.log_start_offset();
        let first = log.read(first_new_segment, 1).await.expect("read");
        let header = RecordBatchHeader::decode(&first[0]).unwrap();
        assert!(header.max_timestamp >= 10_000);
        let deleted = log.apply_retention(1_000_000).await.expect("retention");
        assert_eq!(
            log.segment_count(),
            1,
            "only the active segment remains ({deleted} more deleted)"
        );
    });
}

#[test]
fn roll_by_age() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(3, 4096);
        let dir = PathBuf::from("/data/age-0");
        let config = LogConfig {
            segment_ms: 60_000,
            ..small_config()
        };
        let log = PartitionLog::open(storage, &dir, config)
            .await
            .expect("open");
        append_all(&log, &[make_batch(1, 1, 0)]).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(!log.roll_if_due(now));
        assert!(log.roll_if_due(now + 60_001));
        assert_eq!(log.segment_count(), 2);
        let appended = append_all(&log, &[make_batch(2, 1, 0)]).await;
        assert_eq!(appended[0].base_offset, 1);
        assert_eq!(log.segment_base_offsets(), vec![0, 1]);
    });
}

#[test]
fn truncate_to_cuts_at_the_batch_holding_the_offset() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(5, 4096);
        let dir = PathBuf::from("/data/tr-0");
        let config = small_config();
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("open");
        let batches: Vec<Vec<u8>> = (0..300).map(|tag| make_batch(tag, 3, 0)).collect();
        let appended = append_all(&log, &batches).await;
        let segments_before = log.segment_count();
        // Offset 301 is inside the batch at 300 (3 records per batch): the cut is at 300.
        let new_end = log.truncate_to(301).await.expect("truncate");
        assert_eq!(new_end, 300);
        assert_eq!(log.log_end_offset(), 300);
        assert_eq!(log.high_watermark(), 300);
        assert!(log.segment_count() < segments_before);
        let kept: Vec<Appended> = appended
            .into_iter()
            .filter(|a| a.base_offset < 300)
            .collect();
        check_every_offset(&log, &kept).await;
        // New appends continue at the cut and survive a reopen.
        let more: Vec<Vec<u8>> = (1000..1040).map(|tag| make_batch(tag, 2, 0)).collect();
        let mut all = kept;
        all.extend(append_all(&log, &more).await);
        assert_eq!(all[100].base_offset, 300);
        check_every_offset(&log, &all).await;
        log.close().await.expect("close");
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("reopen");
        check_every_offset(&log, &all).await;
        // Truncating at a segment's base empties that segment; to 0 empties the log.
        assert_eq!(log.truncate_to(0).await.expect("truncate"), 0);
        assert_eq!(log.log_end_offset(), 0);
        assert!(log.read(0, 10).await.expect("read").is_empty());
        let fresh = append_all(&log, &[make_batch(7, 1, 0)]).await;
        assert_eq!(fresh[0].base_offset, 0);
        check_every_offset(&log, &fresh).await;
    });
}

#[test]
fn a_sync_running_when_a_truncation_starts_never_marks_cut_offsets_durable() {
    // A follower cut back to its high watermark while the flusher's fdatasync of the
    // active segment was still running. That sync then marked durable (and wrote as the
    // recovery point) the offsets written when it began, which the cut had removed: the
    // log's offsets went out of order, and a crash after it found "damaged data below the
    // recovery point" (seen in tests/it/replication.rs's seeded faults).
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(17, 4096);
        let dir = PathBuf::from("/data/sync-cut-0");
        // Only acks=all syncs, so the one below is the only one in flight.
        let config = LogConfig {
            flush: FlushPolicy::Never,
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("open");
        append_all(&log, &[make_batch(1, 5, 0), make_batch(2, 5, 0)]).await;
        log.wait_written(10).await.expect("written");
        assert!(log.durable_offset() < 10, "nothing synced yet");
        // The next fdatasync (the acks=all one below) is slow; the truncation's own are not.
        storage.set_faults(SimFaults {
            slow_fsync: Some((storage.stats().fsyncs + 1, Duration::from_millis(50))),
            ..SimFaults::default()
        });
        // A sync begins (asked for by acks=all) and sleeps in the device...
        let syncing = {
            let log = log.clone();
            glommio::spawn_local(async move { log.wait_durable(10).await }).detach()
        };
        glommio::timer::sleep(Duration::from_millis(10)).await;
        // ...when the cut comes.
        assert_eq!(log.truncate_to(5).await.expect("truncate"), 5);
        let _ = syncing.await;
        storage.set_faults(SimFaults::default());
        assert!(
            log.durable_offset() <= log.log_end_offset(),
            "durable {} past the log end {}",
            log.durable_offset(),
            log.log_end_offset()
        );
        log.close().await.expect("close");
        let image = storage.crash_image(3);
        let reopened = PartitionLog::open(image, &dir, config.clone())
            .await
            .expect("reopen");
        assert_eq!(reopened.log_end_offset(), 5);
        assert!(!reopened.is_failed());
    });
}

#[test]
fn recovery_from_a_cut_at_every_byte_of_the_last_batch() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(9, 4096);
        let dir = PathBuf::from("/data/cut-0");
        let config = LogConfig {
            flush: FlushPolicy::Always,
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("open");
        let batches: Vec<Vec<u8>> = (0..20).map(|tag| make_batch(tag, 3, 0)).collect();
        let appended = append_all(&log, &batches).await;
        log.close().await.expect("close");
        let path = dir.join("00000000000000000000.log");
        let mut whole = storage.file_bytes(&path).expect("segment");
        assert_eq!(log_segment_count(&storage, &dir), 1);
        let logical: usize = appended.iter().map(|a| a.stored.len()).sum();
        assert_eq!(
            whole.len(),
            logical,
            "a clean close trims the preallocated tail"
        );
        whole.truncate(logical);
        let last = appended.last().unwrap();
        let last_start = whole.len() - last.stored.len();
        // Each cut twice: the file ends at the cut, or garbage follows it (a torn write of
        // stale bytes). A cut followed by zeros is not tested: when the cut-off bytes were
        // zeros themselves, that is the intact batch.
        for (cut, garbage) in (last_start..=whole.len()).flat_map(|cut| [(cut, false), (cut, true)])
        {
            let image = SimStorage::new(cut as u64, 4096);
            image.create_dir_all(&dir).unwrap();
            let mut bytes = whole[..cut].to_vec();
            if garbage && cut < whole.len() {
                bytes.extend((0..4096).map(|i| (i * 7 + 3) as u8));
            }
            image.put_file(&path, bytes);
            let log = PartitionLog::open(image.clone(), &dir, config.clone())
                .await
                .expect("recover");
            let survivors = if cut == whole.len() {
                appended.len()
            } else {
                appended.len() - 1
            };
            // Recovery cut the file back to the valid prefix: no stale bytes remain that a
            // later append could line up with.
            let valid: usize = appended[..survivors].iter().map(|a| a.stored.len()).sum();
            assert_eq!(
                image.file_bytes(&path).expect("segment").len(),
                valid,
                "cut {cut} garbage {garbage}"
            );
            assert_eq!(
                log.log_end_offset(),
                if survivors == appended.len() {
                    last.base_offset + 3
                } else {
                    last.base_offset
                },
                "cut {cut}"
            );
            check_every_offset(&log, &appended[..survivors]).await;
            // The file was cut back to the valid prefix and appending works on top.
            let info = log
                .append(BytesMut::from(make_batch(99, 1, 0).as_slice()))
                .await
                .expect("append");
            assert_eq!(info.base_offset, log.log_end_offset() - 1);
            log.flush().await.expect("flush");
            let mut expected = appended[..survivors]
                .iter()
                .map(|a| Appended {
                    base_offset: a.base_offset,
                    stored: a.stored.clone(),
                })
                .collect::<Vec<_>>();
            expected.push(Appended {
                base_offset: info.base_offset,
                stored: as_stored(&make_batch(99, 1, 0), info.base_offset),
            });
            log.close().await.expect("close");
            let log = PartitionLog::open(image, &dir, config.clone())
                .await
                .expect("reopen");
            check_every_offset(&log, &expected).await;
        }
    });
}

#[test]
fn a_flipped_bit_on_disk_is_detected_on_read_back() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(11, 4096);
        let dir = PathBuf::from("/data/flip-0");
        let config = LogConfig {
            cache_bytes_max: 0,
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("open");
        let batches: Vec<Vec<u8>> = (0..300).map(|tag| make_batch(tag, 2, 0)).collect();
        let appended = append_all(&log, &batches).await;
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 3);
        // Flip a bit in the middle of a batch of the first (sealed) and the last (active)
        // segment while the log is open: reads of that batch fail, reads elsewhere work.
        for segment_base in [bases[0], *bases.last().unwrap()] {
            let path = dir.join(format!("{segment_base:020}.log"));
            let mut bytes = storage.file_bytes(&path).expect("segment");
            let victim_index = appended
                .iter()
                .position(|a| a.base_offset >= segment_base + 2)
                .expect("victim");
            let victim = &appended[victim_index];
            let position = bytes
                .windows(victim.stored.len())
                .position(|w| w == victim.stored.as_slice())
                .expect("find victim");
            bytes[position + victim.stored.len() / 2] ^= 0x10;
            storage.put_file(&path, bytes);
            let error = log
                .read(victim.base_offset, 100)
                .await
                .expect_err("corruption must be detected");
            assert!(
                matches!(error, StorageError::CorruptOnDisk { .. }),
                "{error}"
            );
            assert_eq!(error.error_code().code(), 56);
            // Far enough on that an index entry lies between: a reader cannot trust a corrupt
            // batch's length, so it cannot skip it, but it never has to start before it.
            let next = appended.get(victim_index + 30).expect("later batch");
            if let Err(error) = log.read(next.base_offset, 100).await {
                panic!(
                    "read {} after victim {}: {error}",
                    next.base_offset, victim.base_offset
                );
            }
        }
    });
}

#[test]
fn invalid_batches_are_refused_with_typed_errors_and_nothing_is_appended() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(1, 4096);
        let log = PartitionLog::open(storage, Path::new("/data/bad-0"), small_config())
            .await
            .expect("open");
        let mut corrupt = make_batch(1, 2, 0);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let error = log
            .append(BytesMut::from(corrupt.as_slice()))
            .await
            .expect_err("bad crc");
        assert_eq!(error.error_code().code(), 2);
        let huge = make_batch(1, 3000, 0);
        let error = log
            .append(BytesMut::from(huge.as_slice()))
            .await
            .expect_err("too large");
        assert_eq!(error.error_code().code(), 10);
        let error = log
            .append(BytesMut::from(&b"short"[..]))
            .await
            .expect_err("short");
        assert_eq!(error.error_code().code(), 2);
        assert_eq!(log.log_end_offset(), 0);
        let ok = log
            .append(BytesMut::from(make_batch(1, 2, 0).as_slice()))
            .await
            .expect("good batch");
        assert_eq!(ok.base_offset, 0);
    });
}

#[test]
fn group_commit_shares_one_fsync_among_concurrent_appenders() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(2, 4096);
        let config = LogConfig {
            flush: FlushPolicy::Always,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(storage.clone(), Path::new("/data/gc-0"), config)
            .await
            .expect("open");
        // Let the flusher create the first segment file.
        log.flush().await.expect("flush");
        let before = storage.stats();
        let done = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for appender in 0..64u64 {
            let log = log.clone();
            let done = done.clone();
            tasks.push(glommio::spawn_local(async move {
                let info = log
                    .append(BytesMut::from(make_batch(appender, 2, 0).as_slice()))
                    .await
                    .expect("append");
                log.wait_durable(info.last_offset + 1)
                    .await
                    .expect("durable");
                assert!(log.durable_offset() > info.last_offset);
                done.borrow_mut().push(info.base_offset);
            }));
        }
        for task in tasks {
            task.await;
        }
        let after = storage.stats();
        assert_eq!(done.borrow().len(), 64);
        assert_eq!(log.durable_offset(), 128);
        assert_eq!(
            after.fsyncs - before.fsyncs,
            1,
            "64 concurrent appenders should share one fdatasync"
        );
        assert_eq!(after.writes - before.writes, 1, "and one coalesced write");
        // Sequential appenders each pay for their own.
        for appender in 0..4u64 {
            let info = log
                .append(BytesMut::from(make_batch(appender, 1, 0).as_slice()))
                .await
                .expect("append");
            log.wait_durable(info.last_offset + 1)
                .await
                .expect("durable");
        }
        assert_eq!(storage.stats().fsyncs - after.fsyncs, 4);
    });
}

#[test]
fn high_watermark_under_always_covers_only_durable_data() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(2, 4096);
        let config = LogConfig {
            flush: FlushPolicy::Always,
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), Path::new("/data/hw-0"), config)
            .await
            .expect("open");
        let info = log
            .append(BytesMut::from(make_batch(1, 5, 0).as_slice()))
            .await
            .expect("append");
        assert_eq!(log.log_end_offset(), 5);
        assert_eq!(log.high_watermark(), 0, "not durable yet, so not visible");
        assert!(log.read(0, 100).await.expect("read").is_empty());
        log.wait_written(info.last_offset + 1)
            .await
            .expect("written");
        log.wait_durable(info.last_offset + 1)
            .await
            .expect("durable");
        assert_eq!(log.high_watermark(), 5);
        assert_eq!(log.read(0, 100).await.expect("read").len(), 1);
    });
}

#[test]
fn interval_policy_syncs_by_time_without_callers() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(2, 4096);
        let config = LogConfig {
            flush: FlushPolicy::Interval {
                interval: Duration::from_millis(20),
                bytes: 1 << 30,
            },
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), Path::new("/data/iv-0"), config)
            .await
            .expect("open");
        let info = log
            .append(BytesMut::from(make_batch(1, 5, 0).as_slice()))
            .await
            .expect("append");
        log.wait_written(info.last_offset + 1)
            .await
            .expect("written");
        assert_eq!(
            log.high_watermark(),
            5,
            "written data is visible under interval"
        );
        let fsyncs = storage.stats().fsyncs;
        glommio::timer::sleep(Duration::from_millis(80)).await;
        assert!(
            storage.stats().fsyncs > fsyncs,
            "the interval should have synced"
        );
        assert_eq!(log.durable_offset(), 5);
        // Never: no sync unless asked.
        let config = LogConfig {
            flush: FlushPolicy::Never,
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), Path::new("/data/nv-0"), config)
            .await
            .expect("open");
        let info = log
            .append(BytesMut::from(make_batch(1, 5, 0).as_slice()))
            .await
            .expect("append");
        log.wait_written(info.last_offset + 1)
            .await
            .expect("written");
        glommio::timer::sleep(Duration::from_millis(50)).await;
        assert_eq!(log.durable_offset(), 0);
        log.wait_durable(5).await.expect("durable on request");
        assert_eq!(log.durable_offset(), 5);
    });
}

#[test]
fn backpressure_bounds_unwritten_bytes() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(2, 4096);
        let config = LogConfig {
            dirty_bytes_max: 64 << 10,
            write_buffer_bytes: 16 << 10,
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), Path::new("/data/bp-0"), config)
            .await
            .expect("open");
        let batch = make_batch(90, 40, 0);
        let mut max_unwritten = 0i64;
        for _ in 0..500 {
            let info = log
                .append(BytesMut::from(batch.as_slice()))
                .await
                .expect("append");
            max_unwritten = max_unwritten.max(info.last_offset + 1 - log.written_offset());
        }
        let per_batch = 40i64;
        let batch_bytes = batch.len() as i64;
        // Appends wait once 64 KiB are unwritten: at most that plus one batch in flight.
        assert!(
            max_unwritten * batch_bytes / per_batch <= (64 << 10) + batch_bytes,
            "{max_unwritten} offsets unwritten"
        );
        log.flush().await.expect("flush");
    });
}

#[test]
fn failed_fsync_stops_the_log_and_reopening_recovers() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(4, 4096);
        let dir = PathBuf::from("/data/ff-0");
        let config = LogConfig {
            flush: FlushPolicy::Always,
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("open");
        let first = append_all(&log, &[make_batch(1, 2, 0)]).await;
        let fsyncs = storage.stats().fsyncs;
        storage.set_faults(SimFaults {
            fail_fsync: Some(fsyncs + 1),
            ..SimFaults::default()
        });
        let info = log
            .append(BytesMut::from(make_batch(2, 2, 0).as_slice()))
            .await
            .expect("append");
        let error = log
            .wait_durable(info.last_offset + 1)
            .await
            .expect_err("fsync failed");
        assert_eq!(error.error_code().code(), 56);
        assert!(
            log.append(BytesMut::from(make_batch(3, 2, 0).as_slice()))
                .await
                .is_err()
        );
        assert_eq!(
            log.durable_offset(),
            2,
            "the durable offset did not move past the failure"
        );
        storage.set_faults(SimFaults::default());
        let log = PartitionLog::open(storage.process_crash_image(), &dir, config)
            .await
            .expect("reopen");
        let read = log.read(0, 1).await.expect("read");
        assert_eq!(read[0].as_ref(), first[0].stored.as_slice());
        // The second batch was written before its fsync failed: a process crash keeps it.
        assert_eq!(log.log_end_offset(), 4);
    });
}

#[test]
fn short_writes_are_resumed() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(12, 4096);
        storage.set_faults(SimFaults {
            short_write_percent: 40,
            ..SimFaults::default()
        });
        let dir = PathBuf::from("/data/sw-0");
        let log = PartitionLog::open(storage.clone(), &dir, small_config())
            .await
            .expect("open");
        let batches: Vec<Vec<u8>> = (0..300).map(|tag| make_batch(tag, 4, 0)).collect();
        let appended = append_all(&log, &batches).await;
        log.close().await.expect("close");
        let log = PartitionLog::open(storage, &dir, small_config())
            .await
            .expect("reopen");
        check_every_offset(&log, &appended).await;
    });
}

#[test]
fn delete_removes_every_file() {
    let temp = temp_dir("storage-log");
    let dir = temp.path().join("del-0");
    let check_dir = dir.clone();
    run_local(temp.path(), async move {
        let log = PartitionLog::open(DmaStorage, &dir, small_config())
            .await
            .expect("open");
        append_all(
            &log,
            &(0..100)
                .map(|tag| make_batch(tag, 3, 0))
                .collect::<Vec<_>>(),
        )
        .await;
        log.delete().await.expect("delete");
    });
    assert!(!check_dir.exists());
}

#[test]
fn truncate_right_after_a_roll_waits_for_the_roll_and_leaves_no_gap() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        for (index, storage_kind) in ["sim", "dma"].into_iter().enumerate() {
            let config = LogConfig {
                flush: FlushPolicy::Never,
                ..small_config()
            };
            let dir = temp_path_for(storage_kind, index);
            let batches: Vec<Vec<u8>> = (0..30).map(|tag| make_batch(tag, 2, 0)).collect();
            // The same steps over both devices: append, roll, truncate at once into the
            // sealed segment while its seal and the new segment's creation are still queued.
            async fn steps<S: Storage>(log: &PartitionLog<S>, batches: &[Vec<u8>]) -> i64 {
                append_all(log, batches).await;
                assert!(log.roll_if_due(i64::MAX / 2));
                let truncate = log.truncate_to(21);
                let timeout = async {
                    glommio::timer::sleep(Duration::from_secs(10)).await;
                    panic!("truncate_to never finished after a roll");
                };
                futures_lite::future::or(truncate, timeout)
                    .await
                    .expect("truncate")
            }
            let (end, reopened_end) = if storage_kind == "sim" {
                let storage = SimStorage::new(1, 4096);
                let log = PartitionLog::open(storage.clone(), &dir, config.clone())
                    .await
                    .expect("open");
                let end = steps(&log, &batches).await;
                log.close().await.expect("close");
                let reopened = PartitionLog::open(storage, &dir, config)
                    .await
                    .expect("reopen");
                (end, reopened.log_end_offset())
            } else {
                let log = PartitionLog::open(DmaStorage, &dir, config.clone())
                    .await
                    .expect("open");
                let end = steps(&log, &batches).await;
                log.close().await.expect("close");
                let reopened = PartitionLog::open(DmaStorage, &dir, config)
                    .await
                    .expect("reopen");
                (end, reopened.log_end_offset())
            };
            // Offset 21 is inside the batch at 20 (two records per batch).
            assert_eq!(end, 20, "{storage_kind}");
            assert_eq!(
                reopened_end, 20,
                "{storage_kind}: no segment beyond the cut survived"
            );
            if storage_kind == "dma" {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    });
}

fn temp_path_for(kind: &str, index: usize) -> PathBuf {
    match kind {
        "sim" => PathBuf::from(format!("/data/roll-truncate-{index}")),
        _ => std::env::temp_dir().join(format!(
            "spindle-roll-truncate-{}-{index}",
            std::process::id()
        )),
    }
}

/// Writes 100 batches of 2 records into one segment and closes cleanly (the recovery point
/// is then the log end, 200); returns the storage, the directory, the config and what was
/// appended.
async fn closed_log_of_100_batches(seed: u64) -> (SimStorage, PathBuf, LogConfig, Vec<Appended>) {
    let storage = SimStorage::new(seed, 4096);
    let dir = PathBuf::from(format!("/data/damage-{seed}"));
    let config = LogConfig {
        segment_bytes: 8 << 20,
        cache_bytes_max: 0,
        ..small_config()
    };
    let log = PartitionLog::open(storage.clone(), &dir, config.clone())
        .await
        .expect("open");
    let batches: Vec<Vec<u8>> = (0..100).map(|tag| make_batch(tag, 2, 0)).collect();
    let appended = append_all(&log, &batches).await;
    log.close().await.expect("close");
    assert_eq!(log_segment_count(&storage, &dir), 1);
    (storage, dir, config, appended)
}

/// Where `victim`'s bytes start in the segment file.
fn position_of(bytes: &[u8], victim: &Appended) -> usize {
    bytes
        .windows(victim.stored.len())
        .position(|w| w == victim.stored.as_slice())
        .expect("find the victim batch")
}

#[test]
fn damage_below_the_recovery_point_is_kept_reported_and_its_offsets_never_reused() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        // A flipped bit in a record (the length intact) and a flipped bit in the batch's
        // length field (nothing says where the next batch starts): both are found again.
        for (seed, flip_at) in [(31u64, None), (32, Some(9usize))] {
            let (storage, dir, config, appended) = closed_log_of_100_batches(seed).await;
            let path = dir.join("00000000000000000000.log");
            let mut bytes = storage.file_bytes(&path).expect("segment");
            let victim = &appended[40];
            let at = position_of(&bytes, victim);
            bytes[at + flip_at.unwrap_or(victim.stored.len() / 2)] ^= 0x10;
            storage.put_file(&path, bytes.clone());

            let log = PartitionLog::open(storage.clone(), &dir, config.clone())
                .await
                .expect("a damaged partition still opens");
            assert_eq!(log.log_end_offset(), 200, "seed {seed}: nothing was cut");
            assert_eq!(
                storage.file_bytes(&path).expect("segment"),
                bytes,
                "seed {seed}: the damaged bytes are kept"
            );
            // Undamaged ranges before and after are served; the damaged batch is reported.
            check_every_offset_from(&log, &appended[..40]).await;
            check_every_offset_from(&log, &appended[41..]).await;
            let error = log.read(80, 1 << 20).await.expect_err("damaged range");
            assert!(
                matches!(error, StorageError::CorruptOnDisk { .. }),
                "{error}"
            );
            // A new batch gets the next offset, never a damaged one.
            let info = log
                .append(BytesMut::from(make_batch(500, 1, 0).as_slice()))
                .await
                .expect("append");
            assert_eq!(info.base_offset, 200, "seed {seed}");
            log.close().await.expect("close");
            // And all of it holds across another restart.
            let log = PartitionLog::open(storage.clone(), &dir, config.clone())
                .await
                .expect("reopen");
            assert_eq!(log.log_end_offset(), 201);
            assert!(log.read(81, 1 << 20).await.is_err());
            check_every_offset_from(&log, &appended[41..]).await;
            log.close().await.expect("close");
        }
    });
}

#[test]
fn damage_with_nothing_intact_after_it_moves_appends_to_a_new_segment() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let (storage, dir, config, appended) = closed_log_of_100_batches(33).await;
        let path = dir.join("00000000000000000000.log");
        let mut bytes = storage.file_bytes(&path).expect("segment");
        // Garbage over the last ten batches: durable, acknowledged, now unreadable.
        let at = position_of(&bytes, &appended[90]);
        for (i, byte) in bytes[at..].iter_mut().enumerate() {
            *byte = (i * 31 + 7) as u8;
        }
        storage.put_file(&path, bytes.clone());
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("open");
        assert_eq!(log.log_end_offset(), 200);
        assert_eq!(storage.file_bytes(&path).expect("segment"), bytes, "kept");
        check_every_offset_from(&log, &appended[..90]).await;
        for offset in [180, 190, 199] {
            assert!(log.read(offset, 1 << 20).await.is_err(), "{offset}");
        }
        let info = log
            .append(BytesMut::from(make_batch(7, 3, 0).as_slice()))
            .await
            .expect("append");
        assert_eq!(info.base_offset, 200);
        log.flush().await.expect("flush");
        assert_eq!(log.segment_base_offsets(), vec![0, 200]);
        log.close().await.expect("close");
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("reopen");
        assert_eq!(log.log_end_offset(), 203);
        assert!(log.read(190, 1 << 20).await.is_err());
        assert_eq!(log.read(200, 1 << 20).await.expect("read").len(), 1);
    });
}

#[test]
fn a_torn_tail_past_the_recovery_point_is_still_cut() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let (storage, dir, config, appended) = closed_log_of_100_batches(34).await;
        // Ten more batches written after the last recovery point, then a crash that tore
        // the last of them.
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("open");
        let more: Vec<Vec<u8>> = (100..110).map(|tag| make_batch(tag, 2, 0)).collect();
        let more = append_all(&log, &more).await;
        drop(log);
        let path = dir.join("00000000000000000000.log");
        let bytes = storage.file_bytes(&path).expect("segment");
        let torn_at = position_of(&bytes, more.last().unwrap()) + 20;
        let image = SimStorage::new(35, 4096);
        image.create_dir_all(&dir).unwrap();
        for name in ["recovery-point.0", "recovery-point.1"] {
            if let Some(slot) = storage.file_bytes(&dir.join(name)) {
                image.put_file(&dir.join(name), slot);
            }
        }
        image.put_file(&path, bytes[..torn_at].to_vec());
        let log = PartitionLog::open(image.clone(), &dir, config.clone())
            .await
            .expect("recover");
        assert_eq!(log.log_end_offset(), 218, "only the torn batch is cut");
        let mut survivors = appended;
        survivors.extend(more.into_iter().take(9));
        check_every_offset(&log, &survivors).await;
    });
}

/// [`check_every_offset`] for a log whose batches from `appended[0]` on are intact.
async fn check_every_offset_from<S: Storage>(log: &PartitionLog<S>, appended: &[Appended]) {
    let first = appended[0].base_offset;
    let last = appended.last().unwrap();
    for (index, expected) in appended.iter().enumerate() {
        for offset in expected.base_offset
            ..appended
                .get(index + 1)
                .map_or(last.base_offset + 2, |a| a.base_offset)
        {
            let batches = log
                .read(offset, 1)
                .await
                .unwrap_or_else(|e| panic!("read {offset} (intact from {first}): {e}"));
            assert_eq!(
                batches[0].as_ref(),
                expected.stored.as_slice(),
                "offset {offset}"
            );
        }
    }
}

#[test]
fn a_damaged_sealed_segment_leaves_the_rest_of_the_partition_served() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        // The damage found while rebuilding a lost index at open, and found by a read
        // through an intact index.
        for (seed, index_lost) in [(36u64, true), (37, false)] {
            let storage = SimStorage::new(seed, 4096);
            let dir = PathBuf::from(format!("/data/sealed-damage-{seed}"));
            let config = LogConfig {
                cache_bytes_max: 0,
                ..small_config()
            };
            let log = PartitionLog::open(storage.clone(), &dir, config.clone())
                .await
                .expect("open");
            let batches: Vec<Vec<u8>> = (0..300).map(|tag| make_batch(tag, 2, 0)).collect();
            let appended = append_all(&log, &batches).await;
            log.close().await.expect("close");
            let bases = storage_bases(&storage, &dir);
            assert!(bases.len() >= 3, "{bases:?}");
            // Flip a bit in a batch of the second segment.
            let damaged_base = bases[1];
            let path = dir.join(format!("{damaged_base:020}.log"));
            let mut bytes = storage.file_bytes(&path).expect("segment");
            let victim_index = appended
                .iter()
                .position(|a| a.base_offset >= damaged_base + 6)
                .unwrap();
            let victim = &appended[victim_index];
            let at = position_of(&bytes, victim);
            bytes[at + victim.stored.len() / 2] ^= 0x01;
            storage.put_file(&path, bytes);
            if index_lost {
                for suffix in ["index", "timeindex"] {
                    storage
                        .remove(&dir.join(format!("{damaged_base:020}.{suffix}")))
                        .await
                        .unwrap();
                }
            }
            let log = PartitionLog::open(storage.clone(), &dir, config.clone())
                .await
                .expect("a damaged sealed segment does not take the partition offline");
            assert_eq!(log.log_end_offset(), 600);
            check_every_offset_from(&log, &appended[..victim_index]).await;
            check_every_offset_from(&log, &appended[victim_index + 1..]).await;
            let error = log
                .read(victim.base_offset, 1 << 20)
                .await
                .expect_err("the damaged batch is reported");
            assert!(
                matches!(error, StorageError::CorruptOnDisk { .. }),
                "{error}"
            );
        }
    });
}

fn storage_bases(storage: &SimStorage, dir: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = storage
        .list(dir)
        .unwrap()
        .iter()
        .filter_map(|name| name.strip_suffix(".log")?.parse().ok())
        .collect();
    bases.sort_unstable();
    bases
}

#[test]
fn segment_files_reserve_disk_in_steps_that_grow_with_writes() {
    use std::os::unix::fs::MetadataExt;
    let temp = temp_dir("storage-log");
    let root = temp.path().to_path_buf();
    run_local(temp.path(), async move {
        let dir = root.join("prealloc-0");
        let log = PartitionLog::open(DmaStorage, &dir, LogConfig::default())
            .await
            .expect("open");
        let reserved = || {
            std::fs::metadata(dir.join("00000000000000000000.log"))
                .map(|m| m.blocks() * 512)
                .unwrap_or(0)
        };
        log.append(BytesMut::from(make_batch(1, 3, 0).as_slice()))
            .await
            .expect("append");
        log.flush().await.expect("flush");
        // An idle partition holds 64 KiB, not the 64 MiB step a busy one grows to.
        assert!(reserved() <= 64 << 10, "{} bytes reserved", reserved());
        let big = make_batch(96, 1000, 0);
        let mut written = 0;
        while written < 48 << 20 {
            log.append(BytesMut::from(big.as_slice()))
                .await
                .expect("append");
            written += big.len();
        }
        log.flush().await.expect("flush");
        let after = reserved();
        assert!(
            after >= written as u64 && after <= (written as u64) * 2 + (4 << 20),
            "{after} bytes reserved for {written} written"
        );
        log.close().await.expect("close");
    });
}

#[test]
fn logs_of_one_core_share_one_cache_budget_and_the_least_recently_used_give_way() {
    use spindle::storage::CacheBudget;
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(41, 4096);
        // Each log alone may cache 1 MiB; the core allows 256 KiB for all 20.
        let budget = CacheBudget::new(256 << 10);
        let config = LogConfig {
            cache_bytes_max: 1 << 20,
            segment_bytes: 8 << 20,
            ..small_config()
        };
        let mut logs = Vec::new();
        for partition in 0..20 {
            let dir = PathBuf::from(format!("/data/budget-{partition}"));
            logs.push(
                PartitionLog::open_with_cache_budget(
                    storage.clone(),
                    &dir,
                    config.clone(),
                    budget.clone(),
                )
                .await
                .expect("open"),
            );
        }
        let batches: Vec<Vec<u8>> = (0..60).map(|tag| make_batch(tag, 3, 0)).collect();
        let mut appended = Vec::new();
        for log in &logs {
            appended.push(append_all(log, &batches).await);
            // Once written, everything over the budget is given back.
            assert!(
                budget.bytes() <= budget.bytes_max(),
                "{} cached of {}",
                budget.bytes(),
                budget.bytes_max()
            );
        }
        let total: usize = logs.iter().map(|log| log.cached_bytes()).sum();
        assert_eq!(
            total,
            budget.bytes(),
            "the budget counts exactly what logs hold"
        );
        // The most recently written log kept its recent data; the oldest gave all of it.
        assert!(logs[19].cached_bytes() > 0);
        assert_eq!(logs[0].cached_bytes(), 0);
        // Everything is still readable, from the device where the cache let go.
        for (log, appended) in logs.iter().zip(&appended) {
            check_every_offset(log, appended).await;
        }
        // Closing gives a log's share back.
        for log in &logs {
            log.close().await.expect("close");
        }
        assert_eq!(budget.bytes(), 0);
    });
}

#[test]
fn visible_bytes_grow_only_as_data_becomes_visible() {
    let temp = temp_dir("storage-log");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(43, 4096);
        let config = LogConfig {
            flush: FlushPolicy::Always,
            ..small_config()
        };
        let log = PartitionLog::open(storage, Path::new("/data/visible-0"), config)
            .await
            .expect("open");
        assert_eq!(log.visible_bytes(), 0);
        let first = make_batch(1, 3, 0);
        let second = make_batch(2, 5, 0);
        let woken = Rc::new(std::cell::Cell::new(false));
        let waiter = {
            let log = log.clone();
            let woken = woken.clone();
            let target = (first.len() + second.len()) as i64;
            glommio::spawn_local(async move {
                let visible = log.wait_visible_bytes(target).await;
                woken.set(true);
                visible
            })
        };
        let info = log
            .append(BytesMut::from(first.as_slice()))
            .await
            .expect("append");
        log.wait_durable(info.last_offset + 1)
            .await
            .expect("durable");
        assert_eq!(log.visible_bytes(), first.len() as i64);
        glommio::timer::sleep(Duration::from_millis(20)).await;
        assert!(!woken.get(), "one batch is not enough");
        let info = log
            .append(BytesMut::from(second.as_slice()))
            .await
            .expect("append");
        log.wait_durable(info.last_offset + 1)
            .await
            .expect("durable");
        assert!(waiter.await, "woken once both batches are visible");
        assert_eq!(log.visible_bytes(), (first.len() + second.len()) as i64);
    });
}

#[test]
fn recycled_write_buffers_count_against_the_core_budget() {
    use spindle::storage::CacheBudget;
    let temp = temp_dir("storage-log");
    let root = temp.path().to_path_buf();
    run_local(temp.path(), async move {
        // With room, a busy log keeps buffers between writes and the budget counts them;
        // with none, it keeps none.
        for (seed, budget_bytes) in [(47u64, 64usize << 20), (48, 1 << 20)] {
            let budget = CacheBudget::new(budget_bytes);
            let config = LogConfig {
                segment_bytes: 256 << 20,
                write_buffer_bytes: 1 << 20,
                dirty_bytes_max: 8 << 20,
                cache_bytes_max: 1 << 20,
                batch_bytes_max: 1 << 20,
                preallocate_bytes: 4 << 20,
                ..LogConfig::default()
            };
            let dir = root.join(format!("recycled-{seed}"));
            let log =
                PartitionLog::open_with_cache_budget(DmaStorage, &dir, config, budget.clone())
                    .await
                    .expect("open");
            let batch = make_batch(90, 600, 0);
            let mut recycled_max = 0;
            for _ in 0..(64 << 20) / batch.len() {
                log.append(BytesMut::from(batch.as_slice()))
                    .await
                    .expect("append");
                // What the budget counts beyond the cache is recycled write buffers.
                let recycled = budget.bytes() - log.cached_bytes();
                recycled_max = recycled_max.max(recycled);
                assert!(recycled <= budget.bytes_max(), "{recycled} bytes kept");
                glommio::yield_if_needed().await;
            }
            log.flush().await.expect("flush");
            if budget_bytes > 8 << 20 {
                assert!(recycled_max > 0, "buffers were recycled and counted");
            } else {
                assert_eq!(recycled_max, 0, "no buffer kept without room in the budget");
            }
            log.close().await.expect("close");
            assert_eq!(budget.bytes(), 0, "a closed log holds nothing");
        }
    });
}
