//! One consumer group's classic-protocol state machine, as Kafka's group coordinator runs
//! it: Empty -> PreparingRebalance -> CompletingRebalance -> Stable (-> Dead when deleted),
//! generations, leader election, protocol selection, static membership, and the session and
//! rebalance timeouts. Time is passed in (`now`), nothing here does I/O: a JoinGroup or
//! SyncGroup that must wait gets a receiver that this machine completes later.
//!
//! Lives on the group's coordinator core, inside `GroupCoordinator`; never shared.
//! Invariants (asserted): the leader is a member; in CompletingRebalance and Stable every
//! member belongs to the current generation; a member has at most one pending join and one
//! pending sync.
//!
//! One file on purpose, though longer than the others: it is one cohesive, I/O-free state
//! machine, and its transitions read best side by side.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use bytes::Bytes;

use spindle_protocol::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// Kafka's names (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a JoinGroup asks.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// `(name, metadata)` in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED and its id.
    pub require_known_member_id: bool,
}

/// What a JoinGroup is answered.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResult {
    pub error: ErrorCode,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only the leader gets the members: `(member id, instance id, protocol metadata)`.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub fn error(error: ErrorCode, member_id: &str) -> JoinResult {
        JoinResult {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncResult {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    fn error(error: ErrorCode) -> SyncResult {
        SyncResult {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// An answer now, or one to wait for.
pub enum Reply<T> {
    Now(T),
    Later(Receiver<T>),
}

#[derive(Debug)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    last_seen: Instant,
    pending_join: Option<Sender<JoinResult>>,
    pending_sync: Option<Sender<SyncResult>>,
}

impl Member {
    /// A member restored from the group log (it must heartbeat within its session timeout).
    #[allow(clippy::too_many_arguments)]
    pub fn restored(
        member_id: String,
        group_instance_id: Option<String>,
        client_id: String,
        client_host: String,
        session_timeout: Duration,
        rebalance_timeout: Duration,
        protocol_type: String,
        protocols: Vec<(String, Bytes)>,
        assignment: Bytes,
        now: Instant,
    ) -> Member {
        Member {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            session_timeout,
            rebalance_timeout,
            protocol_type,
            protocols,
            assignment,
            last_seen: now,
            pending_join: None,
            pending_sync: None,
        }
    }

    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }
}

/// Group-coordinator settings (Kafka's `group.*` broker configs).
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// Delay before the first generation of an empty group completes, so members starting
    /// together land in one generation (Kafka `group.initial.rebalance.delay.ms`).
    pub initial_rebalance_delay: Duration,
    pub session_timeout_min: Duration,
    pub session_timeout_max: Duration,
}

impl GroupConfig {
    /// Kafka's defaults; the `--group-*` flags take theirs from here.
    pub const DEFAULT: GroupConfig = GroupConfig {
        initial_rebalance_delay: Duration::from_millis(3000),
        session_timeout_min: Duration::from_millis(6000),
        session_timeout_max: Duration::from_millis(1_800_000),
    };
}

#[derive(Debug)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// In join order (the first becomes leader when none is left).
    pub members: Vec<Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pending_member_ids: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    initial_delay_until: Option<Instant>,
    /// Set when the group's persisted record (generation, members, assignments) is stale.
    pub dirty: bool,
}

impl Group {
    pub fn new(group_id: &str) -> Group {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: Vec::new(),
            pending_member_ids: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            dirty: false,
        }
    }

    fn member_index(&self, member_id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.member_id == member_id)
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    fn check_invariants(&self) {
        if let Some(leader) = &self.leader {
            assert!(
                self.member_index(leader).is_some(),
                "leader {leader} is a member"
            );
        }
        if matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) {
            assert!(!self.members.is_empty() && self.leader.is_some());
        }
    }

    /// Handles a JoinGroup.
    pub fn join(
        &mut self,
        request: JoinRequest,
        config: &GroupConfig,
        new_member_id: impl FnOnce() -> String,
        now: Instant,
    ) -> Reply<JoinResult> {
        let reply = self.join_inner(request, config, new_member_id, now);
        self.check_invariants();
        reply
    }

    fn join_inner(
        &mut self,
        request: JoinRequest,
        config: &GroupConfig,
        new_member_id: impl FnOnce() -> String,
        now: Instant,
    ) -> Reply<JoinResult> {
        let fail = |code| Reply::Now(JoinResult::error(code, &request.member_id));
        if self.state == GroupState::Dead {
            return fail(ErrorCode::CoordinatorNotAvailable);
        }
        if request.session_timeout < config.session_timeout_min
            || request.session_timeout > config.session_timeout_max
        {
            return fail(ErrorCode::InvalidSessionTimeout);
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return fail(ErrorCode::InconsistentGroupProtocol);
        }
        if !self.members.is_empty() && !self.supports(&request) {
            return fail(ErrorCode::InconsistentGroupProtocol);
        }
        if request.member_id.is_empty() {
            // A static member coming back under a new member id takes its old place.
            if let Some(instance) = &request.group_instance_id
                && let Some(index) = self
                    .members
                    .iter()
                    .position(|m| m.group_instance_id.as_ref() == Some(instance))
            {
                return self.rejoin_static(index, request, new_member_id(), now);
            }
            let member_id = new_member_id();
            if request.require_known_member_id && request.group_instance_id.is_none() {
                self.pending_member_ids.insert(member_id.clone(), now);
                return Reply::Now(JoinResult::error(ErrorCode::MemberIdRequired, &member_id));
            }
            return self.add_member(member_id, request, config, now);
        }
        if self.pending_member_ids.remove(&request.member_id).is_some() {
            let member_id = request.member_id.clone();
            return self.add_member(member_id, request, config, now);
        }
        let Some(index) = self.member_index(&request.member_id) else {
            return fail(ErrorCode::UnknownMemberId);
        };
        if let (Some(known), Some(asked)) = (
            &self.members[index].group_instance_id,
            &request.group_instance_id,
        ) && known != asked
        {
            return fail(ErrorCode::FencedInstanceId);
        }
        let unchanged = self.members[index].protocols == request.protocols;
        let member = &mut self.members[index];
        member.last_seen = now;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        match self.state {
            GroupState::PreparingRebalance => {
                let (sender, receiver) = async_channel::bounded(1);
                member.protocols = request.protocols;
                member.pending_join = Some(sender);
                self.try_complete_join(now);
                Reply::Later(receiver)
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if unchanged && Some(&request.member_id) != self.leader.as_ref() =>
            {
                // Nothing changed for a follower: it gets the current generation back.
                Reply::Now(self.join_result_for(&request.member_id))
            }
            _ => {
                let (sender, receiver) = async_channel::bounded(1);
                member.protocols = request.protocols;
                member.pending_join = Some(sender);
                self.prepare_rebalance(config, now);
                self.try_complete_join(now);
                Reply::Later(receiver)
            }
        }
    }

    /// Whether `request` shares the group's protocol type and at least one protocol with
    /// every current member.
    fn supports(&self, request: &JoinRequest) -> bool {
        // An empty group keeps its last protocol type but takes members of any type.
        if self.state != GroupState::Empty
            && self
                .protocol_type
                .as_deref()
                .is_some_and(|t| t != request.protocol_type)
        {
            return false;
        }
        request.protocols.iter().any(|(name, _)| {
            self.members
                .iter()
                .filter(|m| m.member_id != request.member_id)
                .all(|m| m.protocols.iter().any(|(other, _)| other == name))
        })
    }

    fn add_member(
        &mut self,
        member_id: String,
        request: JoinRequest,
        config: &GroupConfig,
        now: Instant,
    ) -> Reply<JoinResult> {
        let (sender, receiver) = async_channel::bounded(1);
        self.members.push(Member {
            member_id,
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout: request.session_timeout,
            rebalance_timeout: request.rebalance_timeout,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            last_seen: now,
            pending_join: Some(sender),
            pending_sync: None,
        });
        self.prepare_rebalance(config, now);
        self.try_complete_join(now);
        Reply::Later(receiver)
    }

    /// A static member rejoined with a new member id: the old id is fenced. With the same
    /// protocols in a settled group it keeps its assignment without a rebalance.
    fn rejoin_static(
        &mut self,
        index: usize,
        request: JoinRequest,
        member_id: String,
        now: Instant,
    ) -> Reply<JoinResult> {
        let old_id = std::mem::replace(&mut self.members[index].member_id, member_id.clone());
        if self.leader.as_ref() == Some(&old_id) {
            self.leader = Some(member_id.clone());
        }
        let member = &mut self.members[index];
        member.last_seen = now;
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        if let Some(old_join) = member.pending_join.take() {
            let _ = old_join.try_send(JoinResult::error(ErrorCode::FencedInstanceId, &old_id));
        }
        if let Some(old_sync) = member.pending_sync.take() {
            let _ = old_sync.try_send(SyncResult::error(ErrorCode::FencedInstanceId));
        }
        self.dirty = true;
        let unchanged = member.protocols == request.protocols;
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance if unchanged => {
                Reply::Now(self.join_result_for(&member_id))
            }
            _ => {
                let (sender, receiver) = async_channel::bounded(1);
                let member = &mut self.members[index];
                member.protocols = request.protocols;
                member.pending_join = Some(sender);
                if self.state != GroupState::PreparingRebalance {
                    let config = GroupConfig {
                        initial_rebalance_delay: Duration::ZERO,
                        session_timeout_min: Duration::ZERO,
                        session_timeout_max: Duration::MAX,
                    };
                    self.prepare_rebalance(&config, now);
                }
                self.try_complete_join(now);
                Reply::Later(receiver)
            }
        }
    }

    fn join_result_for(&self, member_id: &str) -> JoinResult {
        let is_leader = self.leader.as_deref() == Some(member_id);
        let protocol = self.protocol_name.clone().unwrap_or_default();
        JoinResult {
            error: ErrorCode::None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader {
                self.members
                    .iter()
                    .map(|m| {
                        (
                            m.member_id.clone(),
                            m.group_instance_id.clone(),
                            m.metadata_for(&protocol),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    fn prepare_rebalance(&mut self, config: &GroupConfig, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            for member in &mut self.members {
                if let Some(sync) = member.pending_sync.take() {
                    let _ = sync.try_send(SyncResult::error(ErrorCode::RebalanceInProgress));
                }
            }
        }
        let timeout = self
            .members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        match self.state {
            GroupState::PreparingRebalance => {
                // A member joining an empty group's first round pushes the delay out (up to
                // the rebalance timeout), as Kafka's delayed initial join does.
                if let Some(until) = self.initial_delay_until {
                    let limit = self.rebalance_deadline.unwrap_or(until);
                    self.initial_delay_until =
                        Some((now + config.initial_rebalance_delay).min(limit).max(until));
                }
            }
            previous => {
                self.rebalance_deadline = Some(now + timeout);
                self.initial_delay_until = (previous == GroupState::Empty
                    && !config.initial_rebalance_delay.is_zero())
                .then(|| (now + config.initial_rebalance_delay).min(now + timeout));
                self.state = GroupState::PreparingRebalance;
            }
        }
    }

    /// Completes the join phase once every member has rejoined (after the initial delay of
    /// an empty group), or at the rebalance deadline, dropping members that did not rejoin.
    fn try_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let deadline_passed = self.rebalance_deadline.is_some_and(|d| now >= d);
        let all_joined = self.members.iter().all(|m| m.pending_join.is_some());
        let delay_passed = self.initial_delay_until.is_none_or(|d| now >= d);
        if !(deadline_passed || (all_joined && delay_passed)) {
            return;
        }
        self.members.retain(|m| m.pending_join.is_some());
        self.generation_id += 1;
        self.rebalance_deadline = None;
        self.initial_delay_until = None;
        self.dirty = true;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.leader = None;
            // Kafka keeps the protocol type of a group that empties; clients list it as a
            // consumer group by it.
            self.protocol_name = None;
            return;
        }
        self.protocol_type = Some(self.members[0].protocol_type.clone());
        self.protocol_name = Some(self.select_protocol());
        if self
            .leader
            .as_ref()
            .is_none_or(|leader| self.member_index(leader).is_none())
        {
            self.leader = Some(self.members[0].member_id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let ids: Vec<String> = self.members.iter().map(|m| m.member_id.clone()).collect();
        for id in ids {
            let result = self.join_result_for(&id);
            let index = self.member_index(&id).expect("member");
            self.members[index].last_seen = now;
            if let Some(join) = self.members[index].pending_join.take() {
                let _ = join.try_send(result);
            }
        }
    }

    /// The protocol every member supports that most members prefer (each member votes for
    /// its first supported choice), ties broken by the first member's preference.
    fn select_protocol(&self) -> String {
        let candidates: Vec<&String> = self.members[0]
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(other, _)| other == *name))
            })
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for member in &self.members {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(name, _)| candidates.contains(&name))
            {
                *votes.entry(name).or_default() += 1;
            }
        }
        candidates
            .iter()
            .max_by_key(|name| {
                let rank =
                    candidates.len() - candidates.iter().position(|c| c == *name).unwrap_or(0);
                (votes.get(*name).copied().unwrap_or(0), rank)
            })
            .map(|name| (*name).clone())
            .unwrap_or_default()
    }

    /// Handles a SyncGroup. `assignments` count only from the leader.
    pub fn sync(
        &mut self,
        member_id: &str,
        generation_id: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<SyncResult> {
        let Some(index) = self.member_index(member_id) else {
            return Reply::Now(SyncResult::error(ErrorCode::UnknownMemberId));
        };
        if generation_id != self.generation_id {
            return Reply::Now(SyncResult::error(ErrorCode::IllegalGeneration));
        }
        self.members[index].last_seen = now;
        let reply = match self.state {
            GroupState::Empty | GroupState::Dead => {
                Reply::Now(SyncResult::error(ErrorCode::UnknownMemberId))
            }
            GroupState::PreparingRebalance => {
                Reply::Now(SyncResult::error(ErrorCode::RebalanceInProgress))
            }
            GroupState::Stable => Reply::Now(self.sync_result_for(index)),
            GroupState::CompletingRebalance => {
                let (sender, receiver) = async_channel::bounded(1);
                self.members[index].pending_sync = Some(sender);
                if self.leader.as_deref() == Some(member_id) {
                    let mut assigned: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for member in &mut self.members {
                        member.assignment = assigned.remove(&member.member_id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    self.dirty = true;
                    for index in 0..self.members.len() {
                        let result = self.sync_result_for(index);
                        if let Some(sync) = self.members[index].pending_sync.take() {
                            let _ = sync.try_send(result);
                        }
                    }
                }
                Reply::Later(receiver)
            }
        };
        self.check_invariants();
        reply
    }

    fn sync_result_for(&self, index: usize) -> SyncResult {
        SyncResult {
            error: ErrorCode::None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self.members[index].assignment.clone(),
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(&mut self, member_id: &str, generation_id: i32, now: Instant) -> ErrorCode {
        let Some(index) = self.member_index(member_id) else {
            return ErrorCode::UnknownMemberId;
        };
        if generation_id != self.generation_id {
            return ErrorCode::IllegalGeneration;
        }
        self.members[index].last_seen = now;
        match self.state {
            GroupState::PreparingRebalance => ErrorCode::RebalanceInProgress,
            GroupState::Empty | GroupState::Dead => ErrorCode::UnknownMemberId,
            _ => ErrorCode::None,
        }
    }

    /// Handles one member of a LeaveGroup (by member id, or by instance id for a static
    /// member).
    pub fn leave(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        config: &GroupConfig,
        now: Instant,
    ) -> ErrorCode {
        let index = match (member_id.is_empty(), group_instance_id) {
            (_, Some(instance)) => {
                match self
                    .members
                    .iter()
                    .position(|m| m.group_instance_id.as_deref() == Some(instance))
                {
                    Some(index)
                        if member_id.is_empty() || self.members[index].member_id == member_id =>
                    {
                        index
                    }
                    Some(_) => return ErrorCode::FencedInstanceId,
                    None => return ErrorCode::UnknownMemberId,
                }
            }
            (false, None) => match self.member_index(member_id) {
                Some(index) => index,
                None => return ErrorCode::UnknownMemberId,
            },
            (true, None) => return ErrorCode::UnknownMemberId,
        };
        self.remove_member(index, config, now);
        ErrorCode::None
    }

    fn remove_member(&mut self, index: usize, config: &GroupConfig, now: Instant) {
        let member = self.members.remove(index);
        if let Some(join) = member.pending_join {
            let _ = join.try_send(JoinResult::error(
                ErrorCode::UnknownMemberId,
                &member.member_id,
            ));
        }
        if let Some(sync) = member.pending_sync {
            let _ = sync.try_send(SyncResult::error(ErrorCode::UnknownMemberId));
        }
        if self.leader.as_deref() == Some(member.member_id.as_str()) {
            self.leader = None;
        }
        self.dirty = true;
        match self.state {
            GroupState::Empty | GroupState::Dead => {}
            _ => {
                // A new leader is chosen when the join phase completes.
                self.prepare_rebalance(config, now);
                self.try_complete_join(now);
            }
        }
        self.check_invariants();
    }

    /// Expires silent members, times out the join phase, forgets unused pending member
    /// ids. Returns whether anything changed.
    pub fn tick(&mut self, config: &GroupConfig, now: Instant) -> bool {
        let before = (self.state, self.generation_id, self.members.len());
        self.pending_member_ids
            .retain(|_, issued| now.duration_since(*issued) < Duration::from_secs(300));
        // During the join phase a member waiting in JoinGroup is not expired by its session
        // timeout; the rebalance deadline handles it.
        while let Some(index) = self.members.iter().position(|m| {
            m.pending_join.is_none() && now.duration_since(m.last_seen) > m.session_timeout
        }) {
            tracing::info!(
                group = self.group_id,
                member = self.members[index].member_id,
                "member evicted: no heartbeat within its session timeout"
            );
            self.remove_member(index, config, now);
        }
        self.try_complete_join(now);
        before != (self.state, self.generation_id, self.members.len())
    }
}

/// The topics of a consumer's subscription (the `consumer` protocol's member metadata:
/// version i16, then an array of topic names in every version), or `None` if it does not
/// parse.
pub fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut at = 2usize;
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let bytes = metadata.get(*at..at.checked_add(n)?)?;
        *at += n;
        Some(bytes)
    };
    let count = i32::from_be_bytes(take(&mut at, 4)?.try_into().ok()?);
    let mut topics = Vec::with_capacity(count.clamp(0, 1024) as usize);
    for _ in 0..count.max(0) {
        let length = i16::from_be_bytes(take(&mut at, 2)?.try_into().ok()?);
        let name = take(&mut at, usize::try_from(length).ok()?)?;
        topics.push(String::from_utf8(name.to_vec()).ok()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests;
