//! Segment sizes a topic may set: `segment.bytes` below `max.message.bytes` (Kafka allows
//! it, and Kafka Streams and compacted topics set small segments). A batch larger than a
//! segment gets a segment of its own, and the log opens, serves and reopens as any other.

use std::path::PathBuf;

use bytes::BytesMut;
use spindle::runtime::run_local;
use spindle::storage::sim::SimStorage;
use spindle::storage::{LogConfig, PartitionLog};
use spindle_protocol::record_batch::{build_batch, set_base_offset, set_partition_leader_epoch};

use crate::common::temp_dir;
use crate::storage_log::small_config;

#[test]
fn a_batch_larger_than_a_segment_gets_a_segment_of_its_own() {
    let temp = temp_dir("storage-segments");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(3, 4096);
        let dir = PathBuf::from("/data/segments-0");
        let config = LogConfig {
            segment_bytes: 16 << 10,
            batch_bytes_max: 1 << 20,
            ..small_config()
        };
        let open = || PartitionLog::open(storage.clone(), &dir, config.clone());
        let log = open()
            .await
            .expect("a log whose batches may exceed its segments opens");
        let small = build_batch(1, &[(Some(&b"k"[..]), &b"small"[..])]);
        let big_value = vec![7u8; 40 << 10];
        let big = build_batch(2, &[(Some(&b"k"[..]), &big_value[..])]);
        let mut expected = Vec::new();
        for batch in [&small, &big, &small] {
            let info = log
                .append(BytesMut::from(&batch[..]))
                .await
                .expect("append");
            let mut stored = batch.to_vec();
            set_base_offset(&mut stored, info.base_offset);
            set_partition_leader_epoch(&mut stored, 0);
            expected.push(stored);
        }
        log.flush().await.expect("flush");
        assert_eq!(log.segment_base_offsets(), vec![0, 1, 2]);
        let read_back = |log: PartitionLog<SimStorage>| async move {
            let mut out = Vec::new();
            for offset in 0..3 {
                let batches = log.read(offset, 1 << 20).await.expect("read");
                out.push(batches[0].to_vec());
            }
            out
        };
        assert_eq!(read_back(log.clone()).await, expected);
        log.close().await.expect("close");
        let log = open().await.expect("reopen");
        assert_eq!(read_back(log.clone()).await, expected);
        log.close().await.expect("close");
    });
}
