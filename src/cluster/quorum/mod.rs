//! The metadata quorum (Kafka's KRaft role): the nodes named by `--quorum` keep one
//! replicated log of metadata commands (node registrations, topic changes) with TiKV's
//! Raft, and each node applies the committed commands to its own [`MetadataState`] and
//! hands the result to its cores as a [`ClusterSnapshot`].
//!
//! Runs on one plain thread per node ("spindle-quorum"), off the cores: it ticks Raft,
//! steps messages from peers ([`transport`]), persists entries and hard state before
//! acting on them ([`log_file`]), and applies committed entries ([`state`]). Core 0 talks
//! to it through [`QuorumHandle`] (proposals in) and the [`Applied`] channel (snapshots
//! and answers out); its side is [`controller`].
//!
//! Raft ids are node ids + 1 (Raft reserves 0).

pub mod controller;
pub mod log_file;
pub mod state;
pub mod transport;

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use async_channel::Sender;
use raft::eraftpb::{Entry, EntryType, Message};
use raft::storage::MemStorage;
use raft::{INVALID_ID, RawNode};

use crate::cluster::control::TopicOutcome;
use crate::cluster::metadata::{ClusterSnapshot, NodeEndpoints};
use log_file::QuorumLogFile;
use spindle_protocol::ErrorCode;
pub use state::{Command, Envelope, MetadataState};
use transport::Outbound;

/// Events queued for the quorum thread before peers' readers wait.
const EVENTS_MAX: usize = 1024;
/// Outputs queued for core 0 before the quorum thread waits.
const APPLIED_MAX: usize = 64;
/// How long a proposal's answer is kept waiting for its entry to apply.
const PENDING_MAX_AGE: Duration = Duration::from_secs(60);
/// Most proposals of this node waiting to apply at once; more are refused.
const PENDING_MAX: usize = 1024;
/// How often an unregistered node proposes its registration again.
const REGISTER_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct QuorumConfig {
    pub node_id: u32,
    /// Every voter: node id -> quorum RPC address (`host:port`), this node included.
    pub voters: BTreeMap<u32, String>,
    /// Where the log lives (`<data>/quorum`).
    pub dir: PathBuf,
    /// One Raft tick; elections time out after 10-20 ticks, leaders heartbeat every 2.
    pub tick: Duration,
    /// Kafka's `broker.session.timeout.ms`: the leader fences a node it has not heard from
    /// for this long.
    pub session_timeout: Duration,
    /// Kafka's `leader.imbalance.check.interval.seconds` with `auto.leader.rebalance.enable`:
    /// how often the leader moves partitions back to their preferred leaders (`None`:
    /// never).
    pub leader_rebalance_interval: Option<Duration>,
}

/// What this node registers: where its cores answer.
#[derive(Debug, Clone)]
pub struct LocalNode {
    pub endpoints: NodeEndpoints,
    /// Used only if this node's registration is the first: the new cluster's id.
    pub cluster_id_candidate: String,
    /// This process's incarnation (see `Command::RegisterNode`).
    pub incarnation: u64,
}

pub enum Event {
    Raft(Box<Message>),
    Propose {
        command: Command,
        reply: Option<Sender<Vec<TopicOutcome>>>,
    },
}

/// What applying committed commands produced, for core 0: a snapshot to publish (if the
/// metadata changed), then the answers for this node's proposals.
pub struct Applied {
    pub snapshot: Option<Arc<ClusterSnapshot>>,
    pub replies: Vec<(Sender<Vec<TopicOutcome>>, Vec<TopicOutcome>)>,
    /// This process's own registration (its incarnation, not one of an earlier run of
    /// the node replayed from the log) has applied, and the node is not fenced.
    pub registered: bool,
}

/// Proposals into the quorum thread. Cheap to clone, `Send`.
#[derive(Clone)]
pub struct QuorumHandle {
    events: SyncSender<Event>,
}

impl QuorumHandle {
    /// Proposes `command`; its outcomes come back on `reply` once it applies here (or at
    /// once, refused, when there is no leader to take it). Never blocks: a full queue is a
    /// refusal.
    pub fn propose(&self, command: Command, reply: Sender<Vec<TopicOutcome>>) {
        let refusal = refusal(&command, ErrorCode::RequestTimedOut, "the quorum is busy");
        match self.events.try_send(Event::Propose {
            command,
            reply: Some(reply.clone()),
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let _ = reply.try_send(refusal);
            }
        }
    }
}

fn refusal(command: &Command, code: ErrorCode, message: &str) -> Vec<TopicOutcome> {
    match command {
        Command::Topics { request, .. } => request.refuse(code, message),
        Command::RegisterNode { .. }
        | Command::FenceNode { .. }
        | Command::ElectPreferredLeaders => Vec::new(),
    }
}

/// Binds this node's quorum address, loads its log, and starts the quorum thread.
pub fn start_quorum(
    config: QuorumConfig,
    local: LocalNode,
) -> Result<(QuorumHandle, async_channel::Receiver<Applied>), String> {
    let own = config
        .voters
        .get(&config.node_id)
        .ok_or_else(|| format!("--quorum does not name node {}", config.node_id))?;
    let listener =
        TcpListener::bind(own).map_err(|e| format!("binding the quorum address {own}: {e}"))?;
    let voters: Vec<u64> = config.voters.keys().map(|&node| raft_id(node)).collect();
    let storage = MemStorage::new_with_conf_state((voters, vec![]));
    let log = QuorumLogFile::open(&config.dir, &storage)?;
    let raft_config = raft::Config {
        id: raft_id(config.node_id),
        election_tick: 10,
        heartbeat_tick: 2,
        // Every start replays the log from the beginning into a fresh state.
        applied: 0,
        pre_vote: true,
        check_quorum: true,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        ..Default::default()
    };
    raft_config
        .validate()
        .map_err(|e| format!("quorum configuration: {e}"))?;
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let node = RawNode::new(&raft_config, storage, &logger)
        .map_err(|e| format!("starting the quorum's Raft node: {e}"))?;
    let (events, events_received) = std::sync::mpsc::sync_channel(EVENTS_MAX);
    transport::start_inbound(listener, events.clone())?;
    let peers = config
        .voters
        .iter()
        .filter(|(node, _)| **node != config.node_id)
        .map(|(&node, address)| (raft_id(node), address.clone()))
        .collect();
    let outbound = Outbound::start(&peers)?;
    let (applied, applied_received) = async_channel::bounded(APPLIED_MAX);
    let mut driver = Driver {
        node,
        log,
        outbound,
        state: MetadataState::default(),
        pending: HashMap::new(),
        next_request: 1,
        applied,
        local,
        node_id: config.node_id,
        last_registration: None,
        applied_index: 0,
        session_timeout: config.session_timeout,
        leader_rebalance_interval: config.leader_rebalance_interval,
        last_rebalance_check: Instant::now(),
        last_heard: HashMap::new(),
        fence_proposed: HashMap::new(),
        was_leader: false,
    };
    let tick = config.tick;
    std::thread::Builder::new()
        .name("spindle-quorum".into())
        .spawn(move || {
            if let Err(e) = driver.run(events_received, tick) {
                // The node can no longer keep its promises to the quorum (its log did not
                // persist); stopping whole is safer than serving on.
                tracing::error!("the metadata quorum failed: {e}; stopping");
                std::process::exit(1);
            }
        })
        .map_err(|e| format!("starting the quorum thread: {e}"))?;
    Ok((QuorumHandle { events }, applied_received))
}

fn raft_id(node: u32) -> u64 {
    u64::from(node) + 1
}

struct Driver {
    node: RawNode<MemStorage>,
    log: QuorumLogFile,
    outbound: Outbound,
    state: MetadataState,
    /// This node's proposals waiting to apply, by request id.
    pending: HashMap<u64, Pending>,
    next_request: u64,
    applied: Sender<Applied>,
    local: LocalNode,
    node_id: u32,
    last_registration: Option<Instant>,
    applied_index: u64,
    session_timeout: Duration,
    leader_rebalance_interval: Option<Duration>,
    last_rebalance_check: Instant,
    /// When each peer node was last heard from (any Raft message), for fencing.
    last_heard: HashMap<u32, Instant>,
    /// When this node, as leader, last proposed fencing each node.
    fence_proposed: HashMap<u32, Instant>,
    was_leader: bool,
}

/// A proposal of this node waiting to apply.
struct Pending {
    reply: Sender<Vec<TopicOutcome>>,
    proposed_at: Instant,
    /// The quorum's leader when it was proposed (Raft id).
    leader: u64,
    /// Its answer should that leader change first.
    if_leader_changes: Vec<TopicOutcome>,
}

/// What one round of applying produced.
#[derive(Default)]
struct Changes {
    changed: bool,
    replies: Vec<(Sender<Vec<TopicOutcome>>, Vec<TopicOutcome>)>,
}

impl Driver {
    fn run(&mut self, events: Receiver<Event>, tick: Duration) -> Result<(), String> {
        let mut last_tick = Instant::now();
        loop {
            let wait = tick.saturating_sub(last_tick.elapsed());
            match events.recv_timeout(wait) {
                Ok(event) => self.handle_event(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            // Everything already queued is taken before the clock moves: after a stall of
            // this thread, peers' messages waiting here are news, not silence to fence.
            while let Ok(event) = events.try_recv() {
                self.handle_event(event);
            }
            if last_tick.elapsed() >= tick {
                self.node.tick();
                last_tick = Instant::now();
                self.maintain();
            }
            self.handle_ready()
                .map_err(|e| format!("writing the quorum log: {e}"))?;
        }
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Raft(message) => {
                if let Some(node) = message.from.checked_sub(1) {
                    self.last_heard.insert(node as u32, Instant::now());
                }
                // A stale or misdirected message is Raft's to ignore.
                let _ = self.node.step(*message);
            }
            Event::Propose { command, reply } => self.propose(command, reply),
        }
    }

    fn leader_known(&self) -> bool {
        self.node.raft.leader_id != INVALID_ID
    }

    fn propose(&mut self, command: Command, reply: Option<Sender<Vec<TopicOutcome>>>) {
        let refuse = |reply: &Option<Sender<Vec<TopicOutcome>>>, code, message| {
            if let Some(reply) = reply {
                let _ = reply.try_send(refusal(&command, code, message));
            }
        };
        if !self.leader_known() {
            refuse(
                &reply,
                ErrorCode::NotController,
                "the metadata quorum has no leader now",
            );
            return;
        }
        if self.pending.len() >= PENDING_MAX {
            refuse(
                &reply,
                ErrorCode::RequestTimedOut,
                "too many metadata changes waiting",
            );
            return;
        }
        let request_id = self.next_request;
        self.next_request += 1;
        let envelope = Envelope {
            origin: self.node_id,
            request_id,
            command: command.clone(),
        };
        match self.node.propose(vec![], envelope.encode()) {
            Ok(()) => {
                if let Some(reply) = reply {
                    let if_leader_changes = refusal(
                        &command,
                        ErrorCode::NotController,
                        "the metadata quorum's leader changed before the change applied; ask again",
                    );
                    self.pending.insert(
                        request_id,
                        Pending {
                            reply,
                            proposed_at: Instant::now(),
                            leader: self.node.raft.leader_id,
                            if_leader_changes,
                        },
                    );
                }
            }
            Err(e) => refuse(
                &reply,
                ErrorCode::NotController,
                &format!("the metadata quorum refused the change: {e}"),
            ),
        }
    }

    /// Once a tick: register this node until its registration has applied (again after
    /// it was fenced), fence silent nodes when leading, and forget answers nobody waits
    /// for any more.
    fn maintain(&mut self) {
        self.fence_silent_nodes();
        self.rebalance_leaders();
        let registered = self.state.nodes.get(&self.node_id) == Some(&self.local.endpoints)
            && self.state.incarnations.get(&self.node_id) == Some(&self.local.incarnation)
            && !self.state.fenced.contains(&self.node_id);
        let due = self
            .last_registration
            .is_none_or(|at| at.elapsed() >= REGISTER_RETRY);
        if !registered && due && self.leader_known() {
            self.last_registration = Some(Instant::now());
            let command = Command::RegisterNode {
                node: self.node_id,
                host: self.local.endpoints.host.clone(),
                ports: self.local.endpoints.ports.clone(),
                cluster_id: self.local.cluster_id_candidate.clone(),
                incarnation: self.local.incarnation,
            };
            self.propose(command, None);
        }
        self.pending
            .retain(|_, pending| pending.proposed_at.elapsed() < PENDING_MAX_AGE);
        self.answer_proposals_of_a_lost_leader();
    }

    /// A proposal sent to a leader that then lost its place (stopped, cut off) may be
    /// gone with it, and would keep its client waiting for the controller's whole timeout.
    /// Once another leader is elected, such proposals are answered NOT_CONTROLLER, which
    /// Kafka's clients retry at once, as they do when a controller fails over. One that
    /// was in the log after all still applies; a retry then finds it done (a topic that
    /// exists, a move already under way).
    fn answer_proposals_of_a_lost_leader(&mut self) {
        let leader = self.node.raft.leader_id;
        if leader == INVALID_ID {
            return;
        }
        let lost: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, pending)| pending.leader != leader)
            .map(|(&request_id, _)| request_id)
            .collect();
        for request_id in lost {
            let pending = self.pending.remove(&request_id).expect("listed");
            let _ = pending.reply.try_send(pending.if_leader_changes);
        }
    }

    /// The leader fences every registered node it has not heard from within the session
    /// timeout. A new leader first gives every node a whole timeout from its election.
    fn fence_silent_nodes(&mut self) {
        let leading = self.node.raft.leader_id == raft_id(self.node_id);
        if !leading {
            self.was_leader = false;
            return;
        }
        let now = Instant::now();
        if !self.was_leader {
            self.was_leader = true;
            for &node in self.state.nodes.keys() {
                self.last_heard.insert(node, now);
            }
        }
        let silent: Vec<u32> = self
            .state
            .nodes
            .keys()
            .copied()
            .filter(|node| *node != self.node_id && !self.state.fenced.contains(node))
            .filter(|node| {
                self.last_heard
                    .get(node)
                    .is_none_or(|heard| now.duration_since(*heard) >= self.session_timeout)
            })
            .filter(|node| {
                self.fence_proposed
                    .get(node)
                    .is_none_or(|at| now.duration_since(*at) >= self.session_timeout)
            })
            .collect();
        for node in silent {
            tracing::warn!(
                node,
                "no word from node {node} for {:?}: fencing it",
                self.session_timeout
            );
            self.fence_proposed.insert(node, now);
            self.propose(Command::FenceNode { node }, None);
        }
    }

    /// As the leader, once an interval: moves leadership back to preferred leaders that
    /// are in sync again, if any partition has one.
    fn rebalance_leaders(&mut self) {
        let Some(interval) = self.leader_rebalance_interval else {
            return;
        };
        if self.node.raft.leader_id != raft_id(self.node_id)
            || self.last_rebalance_check.elapsed() < interval
        {
            return;
        }
        self.last_rebalance_check = Instant::now();
        if self.state.preferred_leaders_due() {
            tracing::info!("moving partitions back to their preferred leaders");
            self.propose(Command::ElectPreferredLeaders, None);
        }
    }

    fn handle_ready(&mut self) -> std::io::Result<()> {
        if !self.node.has_ready() {
            return Ok(());
        }
        let mut ready = self.node.ready();
        // A leader may send before it persists (Raft's own rule); followers' answers are
        // in the persisted messages below.
        for message in ready.take_messages() {
            self.outbound.send(message);
        }
        let mut changes = Changes::default();
        self.apply_committed(ready.take_committed_entries(), &mut changes);
        let entries = ready.entries().clone();
        let hard_state = ready.hs().cloned();
        if !entries.is_empty() || hard_state.is_some() {
            self.log.append(&entries, hard_state.as_ref())?;
            let mut store = self.node.mut_store().wl();
            store
                .append(&entries)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            if let Some(hard_state) = hard_state {
                store.set_hardstate(hard_state);
            }
        }
        for message in ready.take_persisted_messages() {
            self.outbound.send(message);
        }
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut hard_state = self.node.store().rl().hard_state().clone();
            hard_state.commit = commit;
            self.log.append(&[], Some(&hard_state))?;
            self.node.mut_store().wl().set_hardstate(hard_state);
        }
        for message in light.take_messages() {
            self.outbound.send(message);
        }
        self.apply_committed(light.take_committed_entries(), &mut changes);
        self.node.advance_apply();
        self.publish(changes);
        Ok(())
    }

    fn apply_committed(&mut self, entries: Vec<Entry>, changes: &mut Changes) {
        for entry in entries {
            assert!(
                entry.index > self.applied_index,
                "entries apply once, in order"
            );
            self.applied_index = entry.index;
            if entry.data.is_empty() || entry.get_entry_type() != EntryType::EntryNormal {
                // A new leader's empty entry; membership changes are not used.
                continue;
            }
            let envelope = match Envelope::decode(&entry.data) {
                Ok(envelope) => envelope,
                Err(e) => {
                    // Every node skips the same entry, so they stay equal.
                    tracing::warn!(index = entry.index, "skipping an unreadable command: {e}");
                    continue;
                }
            };
            let (changed, outcomes) = self.state.apply(&envelope);
            changes.changed |= changed;
            if envelope.origin == self.node_id
                && let Some(pending) = self.pending.remove(&envelope.request_id)
            {
                changes.replies.push((pending.reply, outcomes));
            }
        }
    }

    fn publish(&mut self, changes: Changes) {
        let snapshot = match (&self.state.cluster_id, changes.changed) {
            (Some(cluster_id), true) => Some(Arc::new(
                ClusterSnapshot::new(
                    self.applied_index,
                    cluster_id.clone(),
                    self.local.endpoints.ports.len() as u32,
                    self.state.topics.clone(),
                )
                .with_nodes(self.node_id, Arc::new(self.state.nodes.clone()))
                .with_fenced(Arc::new(self.state.fenced.clone()))
                .with_client_quotas(Arc::new(self.state.client_quotas.clone()))
                .with_broker_configs(Arc::new(self.state.broker_configs.clone())),
            )),
            _ => None,
        };
        if snapshot.is_none() && changes.replies.is_empty() {
            return;
        }
        // Core 0 drains this; waiting here (rarely) holds back only the metadata path.
        let registered = self.state.incarnations.get(&self.node_id)
            == Some(&self.local.incarnation)
            && !self.state.fenced.contains(&self.node_id);
        let _ = self.applied.send_blocking(Applied {
            snapshot,
            replies: changes.replies,
            registered,
        });
    }
}
