//! The control plane between cores: bounded inboxes carrying metadata changes, never record
//! data. Each core has one inbox (snapshots to apply, shutdown); the controller on core 0
//! has its own (topic changes asked for by any core). Replies travel on one-slot channels.
//!
//! Channels are `async-channel`: bounded, `Send`, and their wakers work across glommio
//! executors (glommio routes a wake from another thread to the task's own executor).

use std::sync::Arc;

use async_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};

use crate::cluster::broker_config::BrokerScope;
use crate::cluster::client_quotas::{ClientQuotas, QuotaAlteration, apply_alterations};
use crate::cluster::metadata::{ClusterSnapshot, TopicMetadata};
use spindle_protocol::ErrorCode;

/// Messages queued per inbox before a sender waits (backpressure on the control plane).
pub const INBOX_MESSAGES_MAX: usize = 64;

/// A topic to create, as CreateTopics (or auto-creation) asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's default.
    pub partitions: i32,
    /// -1 or 1: a single-node broker keeps one replica.
    pub replication_factor: i16,
    /// Optional manual assignment: for each partition, its replicas' broker ids.
    pub assignments: Vec<Vec<i32>>,
    pub configs: Vec<(String, Option<String>)>,
}

/// One change of IncrementalAlterConfigs, with Kafka's operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConfigOp {
    Set(String, String),
    /// Back to the default.
    Delete(String),
    /// Adds an item to a list config (`cleanup.policy`).
    Append(String, String),
    /// Removes an item from a list config.
    Subtract(String, String),
}

/// How a topic's overrides change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TopicConfigChange {
    /// AlterConfigs: these become the topic's overrides, all others are dropped.
    Replace(Vec<(String, String)>),
    /// IncrementalAlterConfigs: these operations, in order, on the current overrides.
    Incremental(Vec<ConfigOp>),
}

/// One partition's reassignment as asked: its index and the replicas to move it to (broker
/// ids, the preferred leader first), or `None` to cancel the move under way.
pub type PartitionMove = (i32, Option<Vec<i32>>);

/// A change only the controller makes (in a quorum, a command in the metadata log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControllerRequest {
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    CreatePartitions {
        /// `(topic, new total count, optional assignment of the new partitions)`.
        topics: Vec<(String, i32, Vec<Vec<i32>>)>,
        validate_only: bool,
    },
    /// ElectLeaders (preferred): these partitions of each topic move to their preferred
    /// replica where it is live, in sync and not leading already.
    ElectPreferredLeaders {
        partitions: Vec<(String, Vec<i32>)>,
    },
    /// ElectLeaders (unclean): each of these partitions whose leader is down is led by a
    /// live in-sync replica, or failing that by any live replica, which then is the only
    /// one in sync (what only the lost in-sync replicas held is given up).
    ElectUncleanLeaders {
        partitions: Vec<(String, Vec<i32>)>,
    },
    /// AlterPartitionReassignments: for each topic, the partitions to move or whose move
    /// is cancelled.
    ReassignPartitions {
        topics: Vec<(String, Vec<PartitionMove>)>,
    },
    /// A replicated partition's leader reports its in-sync replicas.
    AlterIsr {
        topic: String,
        partition: i32,
        leader: u32,
        /// The epoch it leads in: a report from an earlier term of the same broker is
        /// refused.
        leader_epoch: i32,
        isr: Vec<u32>,
    },
    /// AlterConfigs and IncrementalAlterConfigs on topics: the new overrides reach every
    /// open log of the topic with the snapshot.
    AlterTopicConfigs {
        topics: Vec<(String, TopicConfigChange)>,
        validate_only: bool,
    },
    /// AlterClientQuotas: client-id quotas set or removed, already validated by the
    /// handler. One outcome per alteration, named by its entity.
    AlterClientQuotas {
        alterations: Vec<QuotaAlteration>,
        validate_only: bool,
    },
    /// AlterConfigs and IncrementalAlterConfigs on one broker resource: the dynamic
    /// configs of the whole cluster (`None`) or of one broker. One outcome, named by the
    /// resource name ("" or the id).
    AlterBrokerConfigs {
        scope: BrokerScope,
        change: TopicConfigChange,
        validate_only: bool,
    },
}

impl ControllerRequest {
    /// For AlterClientQuotas: the quotas after it (`None` for any other request, or when
    /// it only validates), and its outcome for each alteration, all accepted.
    pub fn apply_client_quotas(
        &self,
        quotas: &ClientQuotas,
    ) -> Option<(Option<ClientQuotas>, Vec<TopicOutcome>)> {
        let ControllerRequest::AlterClientQuotas {
            alterations,
            validate_only,
        } = self
        else {
            return None;
        };
        let outcomes = self
            .topic_names()
            .into_iter()
            .map(|name| TopicOutcome {
                name,
                result: Ok(None),
            })
            .collect();
        let next = (!validate_only).then(|| apply_alterations(quotas, alterations));
        Some((next.filter(|next| next != quotas), outcomes))
    }

    /// The topics named, in request order: one outcome each.
    pub fn topic_names(&self) -> Vec<String> {
        match self {
            ControllerRequest::CreateTopics { topics, .. } => {
                topics.iter().map(|topic| topic.name.clone()).collect()
            }
            ControllerRequest::DeleteTopics { names } => names.clone(),
            ControllerRequest::CreatePartitions { topics, .. } => {
                topics.iter().map(|(name, _, _)| name.clone()).collect()
            }
            ControllerRequest::AlterIsr { topic, .. } => vec![topic.clone()],
            ControllerRequest::ReassignPartitions { topics } => {
                topics.iter().map(|(name, _)| name.clone()).collect()
            }
            ControllerRequest::ElectPreferredLeaders { partitions }
            | ControllerRequest::ElectUncleanLeaders { partitions } => {
                partitions.iter().map(|(name, _)| name.clone()).collect()
            }
            ControllerRequest::AlterTopicConfigs { topics, .. } => {
                topics.iter().map(|(name, _)| name.clone()).collect()
            }
            ControllerRequest::AlterClientQuotas { alterations, .. } => alterations
                .iter()
                .map(|alteration| alteration.entity.describe())
                .collect(),
            ControllerRequest::AlterBrokerConfigs { scope, .. } => {
                vec![scope.map(|id| id.to_string()).unwrap_or_default()]
            }
        }
    }

    /// The same outcome for every topic named (a request that could not be decided).
    pub fn refuse(&self, code: ErrorCode, message: &str) -> Vec<TopicOutcome> {
        self.topic_names()
            .into_iter()
            .map(|name| TopicOutcome {
                name,
                result: Err((code, message.to_string())),
            })
            .collect()
    }
}

/// The outcome for one topic of a controller request.
#[derive(Debug, Clone)]
pub struct TopicOutcome {
    pub name: String,
    pub result: Result<Option<Arc<TopicMetadata>>, (ErrorCode, String)>,
}

pub struct ControllerMessage {
    pub request: ControllerRequest,
    pub reply: Sender<Vec<TopicOutcome>>,
}

pub enum CoreMessage {
    /// Adopt this snapshot (open logs for new partitions this core owns, delete those of
    /// deleted topics), then acknowledge.
    Apply {
        snapshot: Arc<ClusterSnapshot>,
        ack: Sender<()>,
    },
    /// Stop accepting, finish in-flight requests, flush and close every log.
    Shutdown,
}

/// Senders to every core's inbox and to the controller. Cheap to clone, `Send`.
#[derive(Clone)]
pub struct ControlHandle {
    inner: Arc<ControlInner>,
}

struct ControlInner {
    core_inboxes: Vec<Sender<CoreMessage>>,
    controller_inbox: Sender<ControllerMessage>,
}

/// What one core's tasks read from.
pub struct CoreReceivers {
    pub inbox: Receiver<CoreMessage>,
    /// Only core 0 gets this.
    pub controller_inbox: Option<Receiver<ControllerMessage>>,
}

/// Builds the inboxes for `cores` cores.
pub fn control_plane(cores: usize) -> (ControlHandle, Vec<CoreReceivers>) {
    assert!(cores > 0);
    let (controller_sender, controller_receiver) = async_channel::bounded(INBOX_MESSAGES_MAX);
    let mut controller_receiver = Some(controller_receiver);
    let mut senders = Vec::with_capacity(cores);
    let mut receivers = Vec::with_capacity(cores);
    for _ in 0..cores {
        let (sender, receiver) = async_channel::bounded(INBOX_MESSAGES_MAX);
        senders.push(sender);
        receivers.push(CoreReceivers {
            inbox: receiver,
            controller_inbox: controller_receiver.take(),
        });
    }
    let handle = ControlHandle {
        inner: Arc::new(ControlInner {
            core_inboxes: senders,
            controller_inbox: controller_sender,
        }),
    };
    (handle, receivers)
}

impl ControlHandle {
    pub fn cores(&self) -> usize {
        self.inner.core_inboxes.len()
    }

    /// Asks the controller for a change and waits for its outcome. Returns once every core
    /// has applied the resulting snapshot.
    pub async fn ask_controller(&self, request: ControllerRequest) -> Vec<TopicOutcome> {
        let (reply, replies) = async_channel::bounded(1);
        let sent = self
            .inner
            .controller_inbox
            .send(ControllerMessage { request, reply })
            .await;
        let outcome = match sent {
            Ok(()) => replies.recv().await.ok(),
            Err(_) => None,
        };
        outcome.unwrap_or_default()
    }

    /// Pushes `snapshot` to every core and waits until all have applied it.
    pub async fn publish(&self, snapshot: Arc<ClusterSnapshot>) {
        let (ack, acks) = async_channel::bounded(self.cores());
        let mut sent = 0;
        for inbox in &self.inner.core_inboxes {
            let message = CoreMessage::Apply {
                snapshot: snapshot.clone(),
                ack: ack.clone(),
            };
            if inbox.send(message).await.is_ok() {
                sent += 1;
            }
        }
        drop(ack);
        for _ in 0..sent {
            if acks.recv().await.is_err() {
                break;
            }
        }
    }

    /// Tells every core to shut down (from the signal thread; does not wait).
    pub fn shutdown_all(&self) {
        for inbox in &self.inner.core_inboxes {
            // Blocking send from a plain thread: the inbox is bounded and drained by the
            // core's control task.
            let _ = inbox.send_blocking(CoreMessage::Shutdown);
        }
        self.inner.controller_inbox.close();
    }
}
