//! Replication state of a partition replica this core holds (issue 13): whether it leads
//! the partition or follows another broker, and, when it leads, where each follower's log
//! ends. Lives on the replica's core with its log (`Rc`, `Cell`, no locks).
//!
//! Kafka's rule: the high watermark is the lowest log end offset over the in-sync
//! replicas, the leader's included. Consumers read below it and acks=all is answered once
//! it passes the batch, so what a consumer saw or a producer was promised is on every
//! in-sync replica. A follower reports its log end in each fetch (its fetch offset), so
//! the mark moves when followers fetch. The in-sync set is every replica for now: a
//! follower that stops fetching holds acks=all back until it returns (shrinking the set
//! through the quorum, and leader failover, are the next part of the issue).

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::shard::Log;
use crate::storage::wait::Watermark;

/// Whether this core's replica leads its partition.
#[derive(Clone)]
pub enum Role {
    /// Leads; `None` for a partition with one replica (no followers, no cap on readers).
    Leader(Option<std::rc::Rc<LeaderState>>),
    /// Copies the log of `leader` (a broker id); clients are sent to the leader.
    Follower { leader: u32 },
}

/// A leader's view of its followers.
pub struct LeaderState {
    /// Each follower's log end offset as its last fetch reported it (0 until then).
    followers: RefCell<BTreeMap<u32, i64>>,
    /// Offsets below this are on every replica.
    high_watermark: Watermark,
}

impl LeaderState {
    /// A leader of `followers` whose log is `log`. Until every follower has fetched,
    /// nothing is known to be replicated: readers see nothing new until they report.
    pub fn new(followers: &[u32], log: &Log) -> LeaderState {
        assert!(!followers.is_empty(), "a leader state needs followers");
        let start = log.log_start_offset();
        let state = LeaderState {
            followers: RefCell::new(followers.iter().map(|&f| (f, start)).collect()),
            high_watermark: Watermark::new(start),
        };
        log.set_replication_high_watermark(Some(start));
        state
    }

    pub fn is_follower(&self, broker: u32) -> bool {
        self.followers.borrow().contains_key(&broker)
    }

    /// A follower fetched from `log_end_offset`: it holds everything below. Moves the high
    /// watermark (and the log's cap on readers) to the lowest log end over the replicas.
    pub fn follower_fetched(&self, broker: u32, log_end_offset: i64, log: &Log) -> i64 {
        let lowest = {
            let mut followers = self.followers.borrow_mut();
            if let Some(known) = followers.get_mut(&broker) {
                // A fetch offset only grows while this broker leads (no truncation yet).
                *known = (*known).max(log_end_offset.min(log.local_high_watermark()));
            }
            followers.values().copied().min().unwrap_or(i64::MAX)
        };
        let high_watermark = lowest.min(log.local_high_watermark());
        if high_watermark > self.high_watermark.get() {
            self.high_watermark.advance(high_watermark);
            log.set_replication_high_watermark(Some(high_watermark));
        }
        self.high_watermark.get()
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.get()
    }

    /// Resolves once every replica holds the offsets below `offset` (acks=all).
    pub async fn wait_replicated(&self, offset: i64) {
        self.high_watermark.wait_for(offset).await;
    }
}
