//! Replication state of a partition replica this core holds (issue 13): whether it leads
//! the partition or follows another broker, and, when it leads, how far each follower got
//! and which followers are in sync. Lives on the replica's core with its log (`Rc`,
//! `Cell`, no locks).
//!
//! Kafka's rules:
//! - The high watermark is the lowest log end offset over the in-sync replicas, the
//!   leader's included. Consumers read below it, and acks=all is answered once it passes
//!   the batch, so what a consumer saw or a producer was promised is on every in-sync
//!   replica. A follower reports its log end in each fetch (its fetch offset).
//! - A follower is caught up when a fetch asks from at least where the leader's log ended
//!   at its previous fetch. One not caught up for `replica.lag.time.max.ms` leaves the
//!   in-sync set; an out-of-sync follower that reaches the high watermark (and is caught
//!   up) rejoins. The leader proposes each change to the quorum (AlterIsr) and applies it
//!   when the quorum's snapshot brings it back, so the set every node sees is the one a
//!   new leader would be chosen from.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::shard::Log;
use crate::storage::wait::{Event, Watermark};

/// Whether this core's replica leads its partition.
#[derive(Clone)]
pub enum Role {
    /// Leads; `None` for a partition with one replica (no followers, no cap on readers).
    Leader(Option<std::rc::Rc<LeaderState>>),
    /// Copies the log of `leader` (a broker id) in its `epoch`; clients are sent to it.
    Follower { leader: u32, epoch: i32 },
}

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// Its log end, as its last fetch reported it.
    log_end_offset: i64,
    /// The leader's log end when that fetch was answered.
    leader_end_at_last_fetch: i64,
    /// Its log start, as its last fetch reported it (-1 before it reported one).
    log_start_offset: i64,
    /// When a fetch last found it caught up.
    caught_up_at: Instant,
}

/// A leader's view of its followers.
pub struct LeaderState {
    /// The leader epoch this replica leads in.
    pub epoch: i32,
    followers: RefCell<BTreeMap<u32, Progress>>,
    /// Followers in the in-sync set (the leader always is), as the quorum last said.
    in_sync: RefCell<BTreeSet<u32>>,
    /// Offsets below this are on every in-sync replica.
    high_watermark: Watermark,
    /// An in-sync set change is on its way through the quorum.
    altering: Cell<bool>,
    /// A follower reported a new log start (DeleteRecords waits for it).
    log_starts_changed: Event,
}

impl LeaderState {
    /// A leader in `epoch` of `followers`, `in_sync` of them in sync, whose log is `log`,
    /// starting from `high_watermark` (what it knew was replicated: the log start for a
    /// log just opened, the old leader's mark for a promoted follower). Readers see no
    /// further until the in-sync followers report.
    pub fn new(
        epoch: i32,
        followers: &[u32],
        in_sync: &[u32],
        log: &Log,
        high_watermark: i64,
    ) -> LeaderState {
        assert!(!followers.is_empty(), "a leader state needs followers");
        let start = high_watermark.max(log.log_start_offset());
        let now = Instant::now();
        let progress = Progress {
            log_end_offset: start,
            leader_end_at_last_fetch: start,
            log_start_offset: -1,
            // A new leader gives every follower a whole lag time to show up.
            caught_up_at: now,
        };
        let state = LeaderState {
            epoch,
            followers: RefCell::new(followers.iter().map(|&f| (f, progress)).collect()),
            in_sync: RefCell::new(
                in_sync
                    .iter()
                    .copied()
                    .filter(|f| followers.contains(f))
                    .collect(),
            ),
            high_watermark: Watermark::new(start),
            altering: Cell::new(false),
            log_starts_changed: Event::default(),
        };
        log.set_replication_high_watermark(Some(start));
        state.refresh(log);
        state
    }

    pub fn is_follower(&self, broker: u32) -> bool {
        self.followers.borrow().contains_key(&broker)
    }

    /// Replicas of the partition, the leader included.
    pub fn replica_count(&self) -> usize {
        1 + self.followers.borrow().len()
    }

    /// Replicas in sync, the leader included.
    pub fn in_sync_count(&self) -> usize {
        1 + self.in_sync.borrow().len()
    }

    /// In-sync replicas (leader included) that are still caught up within `lag_time_max`
    /// as this leader sees them now. Lower than [`Self::in_sync_count`] while a shrink has
    /// not reached the quorum (or cannot: with most nodes down it has no majority), so
    /// acks=all is refused at once rather than left waiting for replicas that are gone.
    pub fn in_sync_now(&self, lag_time_max: Duration) -> usize {
        let now = Instant::now();
        let followers = self.followers.borrow();
        1 + self
            .in_sync
            .borrow()
            .iter()
            .filter_map(|f| followers.get(f))
            .filter(|progress| now.duration_since(progress.caught_up_at) <= lag_time_max)
            .count()
    }

    /// A follower fetched from `log_end_offset`: it holds everything below, and nothing
    /// below `log_start_offset` (-1: not reported).
    pub fn follower_fetched(
        &self,
        broker: u32,
        log_end_offset: i64,
        log_start_offset: i64,
        log: &Log,
    ) {
        {
            let mut followers = self.followers.borrow_mut();
            let Some(progress) = followers.get_mut(&broker) else {
                return;
            };
            if log_start_offset != progress.log_start_offset {
                progress.log_start_offset = log_start_offset;
                self.log_starts_changed.notify();
            }
            // Never past what the leader itself has written: a follower cannot hold more.
            let log_end_offset = log_end_offset.min(log.local_high_watermark());
            progress.log_end_offset = progress.log_end_offset.max(log_end_offset);
            if log_end_offset >= progress.leader_end_at_last_fetch {
                progress.caught_up_at = Instant::now();
            }
            progress.leader_end_at_last_fetch = log.log_end_offset();
        }
        self.refresh(log);
    }

    /// Kafka's low watermark: the lowest log start over this replica and the followers
    /// `live` accepts, as each last reported it (-1 for one that has not reported yet).
    pub fn low_watermark(&self, log: &Log, live: impl Fn(u32) -> bool) -> i64 {
        self.followers
            .borrow()
            .iter()
            .filter(|(follower, _)| live(**follower))
            .map(|(_, progress)| progress.log_start_offset)
            .fold(log.log_start_offset(), i64::min)
    }

    /// Resolves once [`Self::low_watermark`] may have changed.
    pub async fn log_start_reported(&self) {
        self.log_starts_changed.listen().await;
    }

    /// Moves the high watermark (and the log's cap on readers) to the lowest log end over
    /// the in-sync replicas, the leader's written data included.
    pub fn refresh(&self, log: &Log) {
        let local = log.local_high_watermark();
        let lowest = {
            let followers = self.followers.borrow();
            self.in_sync
                .borrow()
                .iter()
                .filter_map(|f| followers.get(f))
                .map(|progress| progress.log_end_offset)
                .min()
                .unwrap_or(local)
        };
        let high_watermark = lowest.min(local);
        if high_watermark > self.high_watermark.get() {
            self.high_watermark.advance(high_watermark);
            log.set_replication_high_watermark(Some(high_watermark));
        }
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.get()
    }

    /// Resolves once every in-sync replica holds the offsets below `offset` (acks=all).
    /// Without in-sync followers the leader's own write is all there is to wait for.
    /// `false` if this replica stopped leading in this epoch first ([`Self::resign`]).
    pub async fn wait_replicated(&self, offset: i64, log: &Log) -> bool {
        self.refresh(log);
        self.high_watermark.wait_for(offset).await
    }

    /// This replica no longer leads in this epoch: whoever waits for the followers is
    /// answered now (Kafka completes a demoted leader's delayed produces with
    /// NOT_LEADER_OR_FOLLOWER) rather than at their timeout, since no follower copies
    /// from it any more.
    pub fn resign(&self) {
        self.high_watermark.fail();
    }

    /// The partition's followers are now `followers`, the leader unchanged (a reassignment
    /// added or removed replicas): a new one starts from the log start, with a whole lag
    /// time to catch up; a removed one leaves the in-sync set with its progress.
    pub fn set_followers(&self, followers: &[u32], log: &Log) {
        let start = log.log_start_offset();
        let now = Instant::now();
        {
            let mut known = self.followers.borrow_mut();
            known.retain(|follower, _| followers.contains(follower));
            for &follower in followers {
                known.entry(follower).or_insert(Progress {
                    log_end_offset: start,
                    leader_end_at_last_fetch: start,
                    log_start_offset: -1,
                    caught_up_at: now,
                });
            }
        }
        self.in_sync
            .borrow_mut()
            .retain(|follower| followers.contains(follower));
        self.refresh(log);
    }

    /// The quorum's in-sync set for this partition (leader included, or not) now holds.
    /// Returns how it changed: followers dropped, followers taken back.
    pub fn set_in_sync(&self, in_sync: &[u32], log: &Log) -> (usize, usize) {
        let followers = self.followers.borrow();
        let new: BTreeSet<u32> = in_sync
            .iter()
            .copied()
            .filter(|f| followers.contains_key(f))
            .collect();
        drop(followers);
        let old = std::mem::replace(&mut *self.in_sync.borrow_mut(), new.clone());
        self.altering.set(false);
        self.refresh(log);
        (old.difference(&new).count(), new.difference(&old).count())
    }

    /// The in-sync followers this leader should report now, if they differ from the
    /// quorum's and no change is already on its way: lagging ones out, caught-up ones
    /// that reached the high watermark in, if `eligible` (a follower on a fenced node is
    /// not, however recent its last fetch: the quorum would refuse it).
    pub fn wanted_in_sync(
        &self,
        lag_time_max: Duration,
        log: &Log,
        eligible: impl Fn(u32) -> bool,
    ) -> Option<Vec<u32>> {
        if self.altering.get() {
            return None;
        }
        self.refresh(log);
        let now = Instant::now();
        let high_watermark = self.high_watermark.get();
        let followers = self.followers.borrow();
        let current = self.in_sync.borrow().clone();
        let wanted: BTreeSet<u32> = followers
            .iter()
            .filter(|(_, progress)| now.duration_since(progress.caught_up_at) <= lag_time_max)
            .filter(|(follower, progress)| {
                current.contains(follower)
                    || (eligible(**follower) && progress.log_end_offset >= high_watermark)
            })
            .map(|(&follower, _)| follower)
            .collect();
        (wanted != current).then(|| {
            self.altering.set(true);
            wanted.into_iter().collect()
        })
    }

    /// The change proposed by [`Self::wanted_in_sync`] was refused or lost: try again.
    pub fn alter_failed(&self) {
        self.altering.set(false);
    }
}
