//! `flush.messages` (issue 16) in the partition log: a sync as soon as that many records
//! wait for one, even under a policy that never syncs by itself, and none before.

use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use spindle::runtime::run_local;
use spindle::storage::sim::SimStorage;
use spindle::storage::{FlushPolicy, LogConfig, PartitionLog};

use crate::common::temp_dir;
use crate::storage_log::{make_batch, small_config};

#[test]
fn flush_messages_syncs_once_that_many_records_wait() {
    let temp = temp_dir("storage-flush");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(2, 4096);
        let config = LogConfig {
            flush: FlushPolicy::Never,
            flush_messages: Some(10),
            ..small_config()
        };
        let log = PartitionLog::open(storage.clone(), Path::new("/data/fm-0"), config)
            .await
            .expect("open");
        // 6 records: under the bound, nothing is synced.
        let info = log
            .append(BytesMut::from(make_batch(1, 6, 0).as_slice()))
            .await
            .expect("append");
        log.wait_written(info.last_offset + 1)
            .await
            .expect("written");
        glommio::timer::sleep(Duration::from_millis(50)).await;
        assert_eq!(log.durable_offset(), 0, "6 of 10 records: no sync yet");
        let fsyncs = storage.stats().fsyncs;
        // 6 more: 12 wait, so the flusher syncs them by itself.
        let info = log
            .append(BytesMut::from(make_batch(2, 6, 0).as_slice()))
            .await
            .expect("append");
        log.wait_written(info.last_offset + 1)
            .await
            .expect("written");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while log.durable_offset() < 12 && std::time::Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(log.durable_offset(), 12);
        assert!(storage.stats().fsyncs > fsyncs);
        log.close().await.expect("close");
    });
}
