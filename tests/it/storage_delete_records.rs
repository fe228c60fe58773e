//! DeleteRecords in the log (issue 16): the log start offset raised inside a segment, kept
//! across a restart and a crash at any directory operation, with the whole segments below
//! it removed and reads below it refused as out of range.

use std::path::PathBuf;

use bytes::BytesMut;
use spindle::runtime::run_local;
use spindle::storage::sim::{SimFaults, SimStorage};
use spindle::storage::{PartitionLog, StorageError};

use crate::common::temp_dir;
use crate::storage_log::{make_batch, small_config};

#[test]
fn deleted_records_stay_deleted_across_restarts_and_crashes() {
    let temp = temp_dir("storage-delete-records");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(21, 4096);
        let dir = PathBuf::from("/data/delete-records-0");
        let config = small_config();
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("open");
        for tag in 0..300 {
            log.append(BytesMut::from(&make_batch(tag, 3, 1_000)[..]))
                .await
                .expect("append");
        }
        log.close().await.expect("close");
        let image = storage.process_crash_image();
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("reopen");
        let segments = log.segment_count();
        assert!(segments > 3, "the records span segments: {segments}");
        let end = log.high_watermark();
        let target = end / 2 + 1; // inside a batch and a segment

        // Past the high watermark: refused.
        assert!(matches!(
            log.delete_records_before(end + 1).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert_eq!(
            log.delete_records_before(target).await.expect("delete"),
            target
        );
        assert_eq!(log.log_start_offset(), target);
        assert!(
            log.segment_count() < segments,
            "whole segments below the start went"
        );
        assert!(matches!(
            log.read(target - 1, 1 << 20).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        let first = log.read(target, 1 << 20).await.expect("read at the start");
        assert!(!first.is_empty());
        // Lower than the start: nothing changes.
        assert_eq!(log.delete_records_before(3).await.expect("no-op"), target);
        log.close().await.expect("close");
        let log = PartitionLog::open(storage.clone(), &dir, config.clone())
            .await
            .expect("reopen");
        assert_eq!(log.log_start_offset(), target, "persisted");
        assert_eq!(
            log.delete_records_before(-1).await.expect("to the end"),
            end
        );
        log.close().await.expect("close");

        // A crash at each directory operation of a deletion: the start is the old one or
        // the new one, and every offset from it on reads back.
        let mut crashes = 0;
        for nth in 1.. {
            let storage = image.process_crash_image();
            let log = PartitionLog::open(storage.clone(), &dir, config.clone())
                .await
                .expect("open the copy");
            let before = log.log_start_offset();
            storage.set_faults(SimFaults {
                crash_at_dir_op: Some(storage.stats().dir_ops + nth),
                ..SimFaults::default()
            });
            let result = log.delete_records_before(target).await;
            if !storage.crashed() {
                result.expect("a deletion without a crash succeeds");
                break;
            }
            crashes += 1;
            drop(log);
            let crashed = storage.crash_image(nth);
            let log = PartitionLog::open(crashed, &dir, config.clone())
                .await
                .expect("reopen after the crash");
            let start = log.log_start_offset();
            assert!(
                start == before || start == target,
                "start {start} after a crash at {nth}"
            );
            let mut offset = start;
            while offset < log.high_watermark() {
                let batches = log.read(offset, 1 << 20).await.expect("every offset reads");
                let last = batches.last().expect("a batch");
                let header = spindle_protocol::RecordBatchHeader::decode(last).expect("header");
                offset = header.next_offset();
            }
        }
        assert!(crashes >= 2, "crashed at {crashes} points");
    });
}
