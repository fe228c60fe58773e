//! The controller task of a node in a quorum: on core 0, in place of the single-node
//! controller. A topic change asked through any core becomes a command proposed to the
//! quorum; what the quorum applies comes back as snapshots, which this task publishes to
//! every core before it answers the proposals they settle, so a topic created through a
//! core is known to all of this node's cores when CreateTopics returns. Other nodes learn
//! it when they apply the same entry.

use std::sync::Arc;
use std::time::Duration;

use async_channel::Receiver;
use futures_lite::future;

use super::{Applied, Command, QuorumHandle};
use crate::cluster::control::{ControlHandle, ControllerMessage, ControllerRequest};
use crate::cluster::metadata::{ClusterSnapshot, new_topic_id};
use spindle_protocol::ErrorCode;

/// How long a client's topic change waits for the quorum before REQUEST_TIMED_OUT (it
/// may still apply later, as with Kafka's controller).
const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs until shutdown closes `inbox`.
pub async fn run_quorum_controller(
    inbox: Receiver<ControllerMessage>,
    applied: Receiver<Applied>,
    control: ControlHandle,
    quorum: QuorumHandle,
    snapshot: Arc<ClusterSnapshot>,
    default_partitions: i32,
    default_replication_factor: i16,
) {
    let publish = async {
        let mut version = snapshot.version;
        while let Ok(Applied {
            snapshot, replies, ..
        }) = applied.recv().await
        {
            if let Some(snapshot) = snapshot
                && snapshot.version > version
            {
                version = snapshot.version;
                control.publish(snapshot).await;
            }
            for (reply, outcomes) in replies {
                let _ = reply.send(outcomes).await;
            }
        }
    };
    let requests = async {
        while let Ok(message) = inbox.recv().await {
            let outcomes = propose(
                &quorum,
                message.request,
                default_partitions,
                default_replication_factor,
            )
            .await;
            let _ = message.reply.send(outcomes).await;
        }
    };
    future::or(requests, publish).await;
}

async fn propose(
    quorum: &QuorumHandle,
    request: ControllerRequest,
    default_partitions: i32,
    default_replication_factor: i16,
) -> Vec<crate::cluster::control::TopicOutcome> {
    let topic_ids = match &request {
        ControllerRequest::CreateTopics { topics, .. } => {
            topics.iter().map(|_| new_topic_id()).collect()
        }
        _ => Vec::new(),
    };
    let (reply, answer) = async_channel::bounded(1);
    quorum.propose(
        Command::Topics {
            request: request.clone(),
            topic_ids,
            default_partitions,
            default_replication_factor,
        },
        reply,
    );
    let timeout = async {
        glommio::timer::sleep(PROPOSAL_TIMEOUT).await;
        None
    };
    match future::or(async { answer.recv().await.ok() }, timeout).await {
        Some(outcomes) => outcomes,
        None => request.refuse(
            ErrorCode::RequestTimedOut,
            "the metadata quorum did not apply the change in time",
        ),
    }
}
