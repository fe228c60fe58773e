//! The group log: committed offsets and group metadata survive a reopen, the log is
//! compacted to its live records once it grows, and a compaction interrupted by a crash is
//! finished or undone at the next start.

use crate::common::temp_dir;
use std::time::Duration;

use spindle::group::GroupCoordinator;
use spindle::group::coordinator::recover_compaction;
use spindle::group::records::CommittedOffset;
use spindle::group::state::{GroupConfig, GroupState, JoinRequest, Reply};
use spindle::runtime::run_local;

const CONFIG: GroupConfig = GroupConfig {
    initial_rebalance_delay: Duration::ZERO,
    session_timeout_min: Duration::from_millis(1),
    session_timeout_max: Duration::from_secs(3600),
};

fn committed(offset: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: Some(format!("m{offset}")),
        commit_timestamp_ms: 1,
    }
}

#[test]
fn offsets_and_groups_survive_reopen_and_compaction() {
    let dir = temp_dir("group-log");
    let data = dir.path().to_path_buf();
    run_local(dir.path(), async move {
        let coordinator = GroupCoordinator::open(0, &data, CONFIG, 64 << 10)
            .await
            .unwrap();
        // A settled group with one member.
        let join = JoinRequest {
            member_id: String::new(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(600),
            rebalance_timeout: Duration::from_secs(600),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), bytes::Bytes::from_static(b"sub"))],
            require_known_member_id: false,
        };
        let Reply::Later(joined) = coordinator.join("settled", join, || "m1".into()) else {
            panic!("a new member waits for the join phase");
        };
        let joined = joined.recv().await.unwrap();
        assert_eq!(joined.generation_id, 1);
        let Reply::Later(synced) = coordinator.sync(
            "settled",
            "m1",
            1,
            vec![("m1".into(), bytes::Bytes::from_static(b"A"))],
        ) else {
            panic!("CompletingRebalance answers through the receiver");
        };
        synced.recv().await.unwrap();
        coordinator.persist_settled_groups().await;

        // Many commits of a few keys: the log grows far past the live state.
        for round in 0..2_000i64 {
            let offsets = (0..4)
                .map(|p| {
                    (
                        "orders".to_string(),
                        p,
                        committed(round * 10 + i64::from(p)),
                    )
                })
                .collect();
            coordinator.commit("g", offsets).await.unwrap();
        }
        let grown = coordinator.log_size_bytes();
        assert!(grown > 256 << 10, "log grew to {grown}");
        coordinator.maybe_compact().await;
        let compacted = coordinator.log_size_bytes();
        assert!(compacted < grown / 10, "compacted {grown} -> {compacted}");
        // Commits keep working on the new log.
        coordinator
            .commit("g", vec![("orders".to_string(), 0, committed(99_999))])
            .await
            .unwrap();
        coordinator.close().await;

        let reopened = GroupCoordinator::open(0, &data, CONFIG, 64 << 10)
            .await
            .unwrap();
        let offsets = reopened.committed("g", None);
        assert_eq!(offsets.len(), 4);
        let by_partition: Vec<i64> = offsets
            .iter()
            .map(|(_, _, c)| c.as_ref().unwrap().offset)
            .collect();
        assert_eq!(by_partition, vec![99_999, 19_991, 19_992, 19_993]);
        assert_eq!(
            offsets[1].2.as_ref().unwrap().metadata.as_deref(),
            Some("m19991")
        );
        let state = reopened.with_group("settled", |g| (g.state, g.generation_id, g.members.len()));
        assert_eq!(state, Some((GroupState::Stable, 1, 1)));
        // A deleted group stays deleted.
        reopened.leave("settled", &[("m1".into(), None)]);
        reopened.persist_settled_groups().await;
        assert_eq!(
            reopened.delete("settled").await,
            spindle_protocol::ErrorCode::None
        );
        reopened.close().await;
        let again = GroupCoordinator::open(0, &data, CONFIG, 64 << 10)
            .await
            .unwrap();
        assert!(again.with_group("settled", |_| ()).is_none());
        assert_eq!(again.committed("g", None).len(), 4);
        again.close().await;
    });
}

#[test]
fn an_interrupted_compaction_is_finished_or_undone() {
    let root = temp_dir("group-log");
    let dir = root.path().join("core-0");
    let fresh = root.path().join("core-0.compact");
    let old = root.path().join("core-0.old");
    let mark = |path: &std::path::Path, what: &str| {
        std::fs::create_dir_all(path).unwrap();
        std::fs::write(path.join("which"), what).unwrap();
    };
    let which = || std::fs::read_to_string(dir.join("which")).unwrap();
    // Crash while writing the fresh log: the current one stays, the fresh one goes.
    mark(&dir, "current");
    mark(&fresh, "fresh");
    recover_compaction(&dir).unwrap();
    assert_eq!(which(), "current");
    assert!(!fresh.exists());
    // Crash after the current log was moved aside: the (durable) fresh one is installed.
    std::fs::rename(&dir, &old).unwrap();
    mark(&fresh, "fresh");
    recover_compaction(&dir).unwrap();
    assert_eq!(which(), "fresh");
    assert!(!old.exists() && !fresh.exists());
    // Only the old one left (fresh lost): it is put back.
    std::fs::rename(&dir, &old).unwrap();
    recover_compaction(&dir).unwrap();
    assert_eq!(which(), "fresh");
}
