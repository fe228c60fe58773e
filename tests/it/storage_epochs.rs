//! A log's leader epochs (issue 13, KIP-101): which epoch wrote which offsets, kept on disk
//! beside the segments so that a replica can tell, after any restart, where its log ends
//! in each epoch, and so where it stops agreeing with a leader's.

use std::path::PathBuf;

use bytes::BytesMut;
use spindle::runtime::run_local;
use spindle::storage::sim::SimStorage;
use spindle::storage::{PartitionLog, StorageError};
use spindle_protocol::record_batch::{set_base_offset, set_partition_leader_epoch};

use crate::common::temp_dir;
use crate::storage_log::{make_batch, small_config};

#[test]
fn leader_epochs_are_kept_across_reopens_and_cut_with_the_log() {
    let temp = temp_dir("storage-epochs");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(11, 4096);
        let dir = PathBuf::from("/data/epochs-0");
        let config = small_config();
        let open = || PartitionLog::open(storage.clone(), &dir, config.clone());
        let log = open().await.expect("open");
        assert_eq!(log.latest_leader_epoch(), None, "an empty log has no epoch");

        // Leading in epoch 3 for ten batches, then in epoch 5 for ten more.
        log.begin_leader_epoch(3).await.expect("epoch 3");
        for tag in 0..10 {
            log.append(BytesMut::from(&make_batch(tag, 2, 0)[..]))
                .await
                .expect("append");
        }
        log.begin_leader_epoch(5).await.expect("epoch 5");
        for tag in 10..20 {
            log.append(BytesMut::from(&make_batch(tag, 2, 0)[..]))
                .await
                .expect("append");
        }
        let check = |log: &PartitionLog<SimStorage>| {
            assert_eq!(log.latest_leader_epoch(), Some(5));
            assert_eq!(log.end_offset_for_leader_epoch(5), (5, 40));
            assert_eq!(log.end_offset_for_leader_epoch(3), (3, 20));
            assert_eq!(log.end_offset_for_leader_epoch(4), (3, 20), "never written");
            assert_eq!(log.end_offset_for_leader_epoch(2), (2, 0));
            assert_eq!(log.end_offset_for_leader_epoch(6), (-1, -1));
        };
        check(&log);
        log.close().await.expect("close");
        let log = open().await.expect("reopen");
        check(&log);

        // Cut back into epoch 3: epoch 5 is gone, from the file too.
        assert_eq!(log.truncate_to(15).await.expect("cut"), 14);
        assert_eq!(log.latest_leader_epoch(), Some(3));
        assert_eq!(log.end_offset_for_leader_epoch(5), (-1, -1));
        // Epoch 3 batches copied in again, past where epoch 5 began: after a restart they
        // are still epoch 3's (the cut reached the file, not only memory).
        log.set_producer_appends(false);
        let mut next = 14;
        for tag in 0..4 {
            let mut copied = make_batch(50 + tag, 3, 0);
            set_base_offset(&mut copied, next);
            set_partition_leader_epoch(&mut copied, 3);
            log.append_replicated(BytesMut::from(&copied[..]))
                .await
                .expect("copy");
            next += 3;
        }
        log.close().await.expect("close");
        let log = open().await.expect("reopen");
        assert_eq!(log.latest_leader_epoch(), Some(3));
        assert_eq!(log.end_offset_for_leader_epoch(3), (3, 26));

        // A follower's copy takes the epochs of the batches it copies.
        log.set_producer_appends(false);
        let mut copied = make_batch(99, 3, 0);
        set_base_offset(&mut copied, 26);
        set_partition_leader_epoch(&mut copied, 7);
        log.append_replicated(BytesMut::from(&copied[..]))
            .await
            .expect("copy");
        assert_eq!(log.end_offset_for_leader_epoch(3), (3, 26));
        assert_eq!(log.end_offset_for_leader_epoch(7), (7, 29));

        // An epoch begun with nothing written in it is not kept past a restart (it starts
        // at the log end, where nothing of it is).
        log.begin_leader_epoch(8).await.expect("epoch 8");
        assert_eq!(log.latest_leader_epoch(), Some(8));
        log.close().await.expect("close");
        let log = open().await.expect("reopen");
        assert_eq!(log.latest_leader_epoch(), Some(7));
        log.close().await.expect("close");
    });
}

#[test]
fn a_cut_at_the_log_end_drops_an_epoch_begun_there_with_nothing_written() {
    let temp = temp_dir("storage-epochs-end");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(12, 4096);
        let dir = PathBuf::from("/data/epochs-1");
        let log = PartitionLog::open(storage.clone(), &dir, small_config())
            .await
            .expect("open");
        log.begin_leader_epoch(1).await.expect("epoch 1");
        for tag in 0..3 {
            log.append(BytesMut::from(&make_batch(tag, 2, 0)[..]))
                .await
                .expect("append");
        }
        // Made leader in epoch 2, then follower before any write: the new leader (epoch 3)
        // holds more of epoch 1 past offset 6. The fetcher's cut lands at the log end.
        log.begin_leader_epoch(2).await.expect("epoch 2");
        assert_eq!(log.truncate_to(6).await.expect("cut"), 6);
        assert_eq!(log.latest_leader_epoch(), Some(1));
        // The leader's epoch 1 batches copied on: they are epoch 1's, here too.
        log.set_producer_appends(false);
        let mut copied = make_batch(40, 2, 0);
        set_base_offset(&mut copied, 6);
        set_partition_leader_epoch(&mut copied, 1);
        log.append_replicated(BytesMut::from(&copied[..]))
            .await
            .expect("copy");
        assert_eq!(log.end_offset_for_leader_epoch(1), (1, 8));
        assert_eq!(log.end_offset_for_leader_epoch(2), (-1, -1), "unknown here");
        log.close().await.expect("close");
    });
}

#[test]
fn a_log_takes_producer_batches_or_copied_ones_never_both() {
    let temp = temp_dir("storage-epochs-roles");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(13, 4096);
        let dir = PathBuf::from("/data/roles-0");
        let log = PartitionLog::open(storage.clone(), &dir, small_config())
            .await
            .expect("open");
        log.append(BytesMut::from(&make_batch(1, 2, 0)[..]))
            .await
            .expect("a leader takes a producer's batch");
        let mut copied = make_batch(2, 2, 0);
        set_base_offset(&mut copied, 2);
        // Leading: a batch from an old leader's late fetch answer must not land here.
        assert!(matches!(
            log.append_replicated(BytesMut::from(&copied[..])).await,
            Err(StorageError::NotFollower)
        ));
        assert_eq!(log.log_end_offset(), 2);
        // Following: copies only.
        log.set_producer_appends(false);
        assert!(matches!(
            log.append(BytesMut::from(&make_batch(3, 2, 0)[..])).await,
            Err(StorageError::NotLeader)
        ));
        log.append_replicated(BytesMut::from(&copied[..]))
            .await
            .expect("a follower takes a copied batch");
        assert_eq!(log.log_end_offset(), 4);
        log.close().await.expect("close");
    });
}

/// A replica holding nothing takes its leader's log from where it starts (the leader's
/// start past 0 after DeleteRecords or retention); one holding records takes only the next
/// batch, since a gap there is a batch lost in between.
#[test]
fn an_empty_replica_copies_from_past_its_end_and_a_holding_one_does_not() {
    let temp = temp_dir("storage-epochs-gap");
    run_local(temp.path(), async move {
        let storage = SimStorage::new(17, 4096);
        let log = PartitionLog::open(
            storage.clone(),
            &PathBuf::from("/data/gap-0"),
            small_config(),
        )
        .await
        .expect("open");
        log.set_producer_appends(false);
        let mut copied = make_batch(1, 2, 0);
        set_base_offset(&mut copied, 500);
        log.append_replicated(BytesMut::from(&copied[..]))
            .await
            .expect("an empty replica starts at its leader's first batch");
        assert_eq!(log.log_end_offset(), 502);
        let mut after_gap = make_batch(2, 2, 0);
        set_base_offset(&mut after_gap, 510);
        assert!(matches!(
            log.append_replicated(BytesMut::from(&after_gap[..])).await,
            Err(StorageError::NotAtLogEnd { .. })
        ));
        let mut next = make_batch(3, 2, 0);
        set_base_offset(&mut next, 502);
        log.append_replicated(BytesMut::from(&next[..]))
            .await
            .expect("the next batch");
        assert_eq!(log.log_end_offset(), 504);
        log.close().await.expect("close");
    });
}
