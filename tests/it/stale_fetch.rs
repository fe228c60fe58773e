//! A replica fetch answered late by a leader that was replaced meanwhile (issue 13). A
//! follower's long-poll to a leader that is then paused stays open; when that leader
//! resumes it answers from the state it had, in the old epoch. The seeded fault test lost
//! readers this way: the answer reached the follower after it had become the new leader,
//! and the old leader's high watermark capped the new leader's readers below what it had
//! acknowledged, until the next write.

use crate::cluster::wait_for;
use crate::common::{Broker, RawClient, temp_dir};
use crate::replication::{
    consumer_fetch, create_replicated, fast_failing_cluster, in_sync, produce, produce_once_leading,
};

#[test]
fn a_replaced_leaders_late_answer_never_holds_back_the_new_leaders_readers() {
    let root = temp_dir("replication-late-answer");
    let (_cluster, nodes) = fast_failing_cluster(root.path());
    let address = |node: usize| nodes[node].as_ref().unwrap().bootstrap.clone();
    let broker = |node: usize| -> &Broker { nodes[node].as_ref().unwrap() };
    create_replicated(&address(0), 1, 2);
    let leader = wait_for("three in sync", || {
        let (isr, leader) = in_sync(&address(0));
        (isr.len() == 3).then_some(leader)
    });
    let old = (leader / 1000) as usize;
    let followers: Vec<usize> = (0..3).filter(|&node| node != old).collect();
    let mut client = RawClient::connect(&broker(old).core_address(0));
    for i in 0..5 {
        assert_eq!(
            produce(&mut client, 0, &format!("before-{i}"), -1, 10_000),
            (0, i)
        );
    }
    drop(client);

    // Paused with the followers' long-polls open on it, fenced, replaced.
    broker(old).signal(libc::SIGSTOP);
    let new_leader = wait_for("a new leader", || {
        let (_, leader) = in_sync(&address(followers[0]));
        (leader >= 0 && leader / 1000 != old as i32).then_some(leader)
    });
    let new = (new_leader / 1000) as usize;
    let mut client = RawClient::connect(&broker(new).core_address(0));
    let mut acked_end = produce_once_leading(&mut client, 0, "after-0") + 1;
    for i in 1..20 {
        let (code, offset) = produce(&mut client, 0, &format!("after-{i}"), -1, 10_000);
        assert_eq!(code, 0);
        acked_end = offset + 1;
    }
    assert_eq!(consumer_fetch(&mut client, 0, 0).0, acked_end);

    // Resumed: it answers the open long-polls from its old state, learns it was replaced,
    // and rejoins as a follower. Nothing is written after this.
    broker(old).signal(libc::SIGCONT);
    wait_for("three in sync again", || {
        let (isr, leader) = in_sync(&address(new));
        (isr.len() == 3 && leader == new_leader).then_some(())
    });
    // Every replica in sync holds what was acknowledged, so readers see all of it.
    let (high_watermark, _) = consumer_fetch(&mut client, 0, 0);
    assert_eq!(
        high_watermark, acked_end,
        "the new leader's readers stop below what it acknowledged"
    );
}
