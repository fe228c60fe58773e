//! Leader elections, decided by the controller: Kafka's automatic return to the preferred
//! replica, the failover when a node is fenced, and unclean elections (asked for, or
//! allowed by `unclean.leader.election.enable`). Pure: runs wherever the controller runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::spell_out_replication;
use crate::cluster::metadata::TopicMetadata;
use crate::cluster::topic_config::{UNCLEAN_LEADER_ELECTION_ENABLE, boolean};

/// Kafka's automatic preferred-leader election: each partition whose preferred leader is
/// not leading, but is on a live node and in sync, is led by it again, in the next leader
/// epoch (the old leader follows it and cuts what it alone took, as after any leader
/// change). So a node that failed and came back leads its share again once caught up.
/// Returns the changed topics.
pub fn elect_preferred_leaders(
    topics: &BTreeMap<String, Arc<TopicMetadata>>,
    live: impl Fn(u32) -> bool,
) -> BTreeMap<String, Arc<TopicMetadata>> {
    elect_preferred_leaders_of(topics, live, |_| true)
}

/// [`elect_preferred_leaders`] for the partitions `wanted` accepts (ElectLeaders).
pub(super) fn elect_preferred_leaders_of(
    topics: &BTreeMap<String, Arc<TopicMetadata>>,
    live: impl Fn(u32) -> bool,
    wanted: impl Fn(i32) -> bool,
) -> BTreeMap<String, Arc<TopicMetadata>> {
    change_replicated_topics(topics, |next| {
        let mut any = false;
        for index in 0..next.partition_brokers.len() {
            let partition = index as i32;
            let Some(preferred) = next.preferred_leader(partition) else {
                continue;
            };
            if wanted(partition)
                && preferred != next.partition_brokers[index]
                && live(preferred)
                && next.isr(partition).contains(&preferred)
            {
                move_leadership(next, index, preferred);
                any = true;
            }
        }
        any
    })
}

/// Kafka's response to a fenced broker: its replicas leave every in-sync set, and each
/// partition it led gets the first in-sync replica on a live node as its leader, with the
/// next leader epoch. A partition with no such replica keeps its leader and waits, unless
/// its topic sets `unclean.leader.election.enable`: then a live replica out of sync leads
/// (see [`elect_leader_of_leaderless`]). `live` says whether a broker's node is registered
/// and not fenced. Returns the changed topics.
pub fn fail_over(
    topics: &BTreeMap<String, Arc<TopicMetadata>>,
    live: impl Fn(u32) -> bool,
    unclean_default: bool,
) -> BTreeMap<String, Arc<TopicMetadata>> {
    change_replicated_topics(topics, |next| {
        let unclean = unclean_election_enabled(next, unclean_default);
        let mut any = false;
        for index in 0..next.partition_brokers.len() {
            let isr = next.isr(index as i32);
            let live_isr: Vec<u32> = isr.iter().copied().filter(|&b| live(b)).collect();
            if live(next.partition_brokers[index]) {
                if live_isr != isr {
                    next.partition_isr[index] = live_isr;
                    any = true;
                }
                continue;
            }
            any |= elect_leader_of_leaderless(next, index, &live, unclean);
        }
        any
    })
}

/// Whether Kafka's `unclean.leader.election.enable` is on for the topic: its own setting,
/// else `default` (the cluster-wide dynamic broker config, false unless set).
pub fn unclean_election_enabled(topic: &TopicMetadata, default: bool) -> bool {
    topic
        .configs
        .get(UNCLEAN_LEADER_ELECTION_ENABLE)
        .map_or(default, |value| boolean(value) == Some(true))
}

/// For each partition `wanted` accepts whose leader is not live:
/// [`elect_leader_of_leaderless`], with `unclean` as the caller decided it (asked for, or
/// [`unclean_election_enabled`]). The changed topic, if any partition got a leader.
pub fn elect_leaders_of_leaderless(
    topic: &TopicMetadata,
    live: impl Fn(u32) -> bool,
    wanted: impl Fn(i32) -> bool,
    unclean: bool,
) -> Option<Arc<TopicMetadata>> {
    if topic.partition_followers.is_empty() || !unclean {
        // One replica: nobody else could lead. Clean elections happened at the failover.
        return None;
    }
    let mut next = topic.clone();
    spell_out_replication(&mut next);
    let mut any = false;
    for index in 0..next.partition_brokers.len() {
        if wanted(index as i32) && !live(next.partition_brokers[index]) {
            any |= elect_leader_of_leaderless(&mut next, index, &live, unclean);
        }
    }
    any.then(|| Arc::new(next))
}

/// Partition `index`, whose leader is not live, gets the first live in-sync replica as its
/// leader, the dead ones leaving the in-sync set. With none, and `unclean`, the first live
/// replica (the preferred one first) leads as the only in-sync replica: Kafka's unclean
/// election. What only the lost in-sync replicas held is given up, and they cut it when
/// they come back and follow, as any replica of an older epoch does. Whether it elected.
fn elect_leader_of_leaderless(
    topic: &mut TopicMetadata,
    index: usize,
    live: &impl Fn(u32) -> bool,
    unclean: bool,
) -> bool {
    let partition = index as i32;
    let live_isr: Vec<u32> = topic
        .isr(partition)
        .into_iter()
        .filter(|&b| live(b))
        .collect();
    if let Some(&new_leader) = live_isr.first() {
        move_leadership(topic, index, new_leader);
        topic.partition_isr[index] = live_isr;
        return true;
    }
    if !unclean {
        return false;
    }
    let candidates: Vec<u32> = topic
        .preferred_leader(partition)
        .into_iter()
        .chain(std::iter::once(topic.partition_brokers[index]))
        .chain(topic.followers(partition).iter().copied())
        .collect();
    let Some(new_leader) = candidates.into_iter().find(|&b| live(b)) else {
        return false;
    };
    tracing::warn!(
        "{}-{partition}: unclean election: broker {new_leader}, not in sync, leads; what only \
         the in-sync replicas held is lost",
        topic.name
    );
    move_leadership(topic, index, new_leader);
    topic.partition_isr[index] = vec![new_leader];
    true
}

/// Applies `change` to a spelled-out copy of every replicated topic (true: it changed
/// something) and returns the changed copies.
fn change_replicated_topics(
    topics: &BTreeMap<String, Arc<TopicMetadata>>,
    mut change: impl FnMut(&mut TopicMetadata) -> bool,
) -> BTreeMap<String, Arc<TopicMetadata>> {
    let mut changed = BTreeMap::new();
    for (name, topic) in topics {
        if topic.partition_followers.is_empty() {
            continue;
        }
        let mut next = (**topic).clone();
        spell_out_replication(&mut next);
        if change(&mut next) {
            changed.insert(name.clone(), Arc::new(next));
        }
    }
    changed
}

/// `new_leader`, one of the partition's replicas, leads partition `index` in the next
/// epoch; the old leader becomes a follower.
pub(super) fn move_leadership(topic: &mut TopicMetadata, index: usize, new_leader: u32) {
    let partition = index as i32;
    let replicas: Vec<u32> = std::iter::once(topic.partition_brokers[index])
        .chain(topic.followers(partition).iter().copied())
        .collect();
    assert!(replicas.contains(&new_leader), "a leader must be a replica");
    topic.partition_brokers[index] = new_leader;
    topic.partition_followers[index] = replicas.into_iter().filter(|&b| b != new_leader).collect();
    topic.partition_epochs[index] += 1;
}
