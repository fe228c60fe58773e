//! One file per Kafka API. Every handler runs on the core that received the request and
//! returns a [`Reply`]: the part that must happen in request order (appends) is done before
//! it returns; what may overlap with later requests (waiting for the device, long-poll
//! fetches) is the returned future. The connection writes replies in request order.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use crate::cluster::control::{ControllerRequest, NewTopic};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;
use spindle_protocol::api::{Request, api_versions_body, encode_response, encode_unsupported};
use spindle_protocol::fetch_response::ChunkedFrame;

mod configs;
mod fetch;
mod groups;
mod list_offsets;
mod metadata;
mod produce;
mod topics;

/// Prefix of a connection-closing reason that a test asked for (see
/// `--fault-drop-produce-response-every`), logged as such rather than as a bug.
pub const FAULT_INJECTION: &str = "fault injection";

/// A response frame, `None` when the request gets no answer (acks=0), or why the
/// connection must close.
pub type Response = Result<Option<ChunkedFrame>, String>;

/// What a handler hands back: a future producing its response, run concurrently with
/// later requests of the same connection.
pub type Reply = Pin<Box<dyn Future<Output = Response>>>;

/// The header facts a response needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl RequestContext {
    pub fn respond(&self, body: ResponseKind) -> Response {
        encode_response(self.api_key, self.api_version, self.correlation_id, &body)
            .map(|frame| Some(ChunkedFrame::from(frame)))
    }
}

fn ready(response: Response) -> Reply {
    Box::pin(std::future::ready(response))
}

/// Runs the in-order part of `request` and returns its reply. `frame` is the request's
/// body buffer; Produce takes its record batches out of it without copying.
pub async fn handle(shard: &Rc<Shard>, request: Request, frame: Bytes, peer: SocketAddr) -> Reply {
    let context = RequestContext {
        api_key: request.api_key,
        api_version: request.api_version,
        correlation_id: request.header.correlation_id,
    };
    // JoinGroup records who joined (DescribeGroups shows it).
    let client = matches!(request.body, RequestKind::JoinGroup(_)).then(|| {
        let client_id = request
            .header
            .client_id
            .as_deref()
            .unwrap_or("")
            .to_string();
        (client_id, format!("/{}", peer.ip()))
    });
    // The header's strings are slices of `frame`; drop them so Produce can own it.
    drop(request.header);
    match request.body {
        RequestKind::ApiVersions(_) => {
            let mut body = api_versions_body(ErrorCode::None);
            if let Some(max) = shard.config.fault_fetch_version_max {
                // Testing only: a client then negotiates this Fetch version at most.
                for api in body.api_keys.iter_mut() {
                    if api.api_key == ApiKey::Fetch as i16 {
                        api.max_version = api.max_version.min(max);
                    }
                }
            }
            ready(context.respond(ResponseKind::ApiVersions(body)))
        }
        RequestKind::Metadata(body) => ready(metadata::metadata(shard, &context, body).await),
        RequestKind::DescribeCluster(body) => {
            ready(metadata::describe_cluster(shard, &context, body))
        }
        RequestKind::Produce(body) => produce::produce(shard, context, body, frame).await,
        RequestKind::Fetch(body) => Box::pin(fetch::fetch(shard.clone(), context, body)),
        RequestKind::ListOffsets(body) => {
            Box::pin(list_offsets::list_offsets(shard.clone(), context, body))
        }
        RequestKind::CreateTopics(body) => {
            ready(topics::create_topics(shard, &context, body).await)
        }
        RequestKind::DeleteTopics(body) => {
            ready(topics::delete_topics(shard, &context, body).await)
        }
        RequestKind::CreatePartitions(body) => {
            ready(topics::create_partitions(shard, &context, body).await)
        }
        RequestKind::DescribeConfigs(body) => {
            ready(configs::describe_configs(shard, &context, body))
        }
        RequestKind::InitProducerId(body) => {
            ready(produce::init_producer_id(shard, &context, body))
        }
        RequestKind::FindCoordinator(body) => {
            ready(groups::find_coordinator(shard, &context, body))
        }
        RequestKind::JoinGroup(body) => {
            let (client_id, client_host) = client.unwrap_or_default();
            groups::join_group(shard, context, body, client_id, client_host)
        }
        RequestKind::SyncGroup(body) => groups::sync_group(shard, context, body),
        RequestKind::Heartbeat(body) => ready(groups::heartbeat(shard, &context, body)),
        RequestKind::LeaveGroup(body) => ready(groups::leave_group(shard, &context, body).await),
        RequestKind::OffsetCommit(body) => {
            ready(groups::offset_commit(shard, &context, body).await)
        }
        RequestKind::OffsetFetch(body) => ready(groups::offset_fetch(shard, &context, body)),
        RequestKind::ListGroups(body) => ready(groups::list_groups(shard, &context, body)),
        RequestKind::DescribeGroups(body) => ready(groups::describe_groups(shard, &context, body)),
        RequestKind::OffsetDelete(body) => {
            ready(groups::offset_delete(shard, &context, body).await)
        }
        RequestKind::DeleteGroups(body) => {
            ready(groups::delete_groups(shard, &context, body).await)
        }
        // decode_request only lets supported APIs through; answer like an unsupported one
        // should the table and this match ever disagree.
        _ => ready(Ok(Some(ChunkedFrame::from(encode_unsupported(
            context.api_key as i16,
            context.correlation_id,
        ))))),
    }
}

/// Creates the topics among `names` that do not exist yet, with the broker's defaults, as
/// Kafka's auto-creation does. Returns once every core sees them.
async fn auto_create_topics(shard: &Shard, names: Vec<String>) {
    if names.is_empty() || !shard.config.auto_create_topics {
        return;
    }
    let topics = names
        .into_iter()
        .map(|name| NewTopic {
            name,
            partitions: -1,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: Vec::new(),
        })
        .collect();
    let outcomes = shard
        .control
        .ask_controller(ControllerRequest::CreateTopics {
            topics,
            validate_only: false,
        })
        .await;
    for outcome in outcomes {
        match outcome.result {
            Ok(_) => tracing::info!(core = shard.core, "auto-created topic {}", outcome.name),
            Err((ErrorCode::TopicAlreadyExists, _)) => {}
            Err((code, message)) => tracing::debug!(
                core = shard.core,
                "auto-creating {} failed: {code:?} {message}",
                outcome.name
            ),
        }
    }
}
