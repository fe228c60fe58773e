//! One file per Kafka API, each declaring its registry entry once with `served!` (`API`:
//! key, versions served, the function that serves it); [`APIS`] lists them, and both
//! dispatch ([`handle`]) and ApiVersions ([`SERVED_APIS`]) come from that list. Adding an
//! API is a new file and a line in `APIS` (its request schema must be in
//! `spindle_protocol::request_schema`).
//!
//! Every handler runs on the core that received the request and returns a [`Reply`]: the
//! part that must happen in request order (appends) is done before it returns; what may
//! overlap with later requests (waiting for the device, long-poll fetches) is the returned
//! future. The connection writes replies in request order.

// Every `serve` is an async block (the in-order part) whose output is the Reply future
// (what may overlap with later requests): yielding a future is the design.
#![allow(clippy::async_yields_async)]

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestKind, ResponseKind};

use crate::cluster::client_quotas::{CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE, quota_for};
use crate::cluster::control::{ControllerRequest, NewTopic};
use crate::shard::Shard;
use crate::shard::metrics::CoreMetrics;
use crate::shard::quotas::{QuotaCharge, QuotaKind};
use spindle_protocol::ErrorCode;
use spindle_protocol::api::{
    ApiVersionTable, Request, api_versions_body, encode_response, encode_unsupported,
};
use spindle_protocol::fetch_response::ChunkedFrame;

/// A handler module's registry entry, once: `served!(Key, MIN..=MAX, |shard, call, body| reply)`
/// defines `API` (key, versions, serve function) and `serve`, which takes the request's body of
/// kind `Key` out of `call` and evaluates `reply` (a [`Reply`]; it may `.await` the in-order
/// part). `served!(Key, MIN..=MAX, client_id, ...)` also asks for the header's client id.
macro_rules! served {
    ($key:ident, $min:literal ..= $max:literal, |$shard:ident, $call:ident, $body:pat_param| $reply:expr) => {
        served!(@entry false, $key, $min, $max, |$shard, $call, $body| $reply);
    };
    ($key:ident, $min:literal ..= $max:literal, client_id, |$shard:ident, $call:ident, $body:pat_param| $reply:expr) => {
        served!(@entry true, $key, $min, $max, |$shard, $call, $body| $reply);
    };
    (@entry $wants_client_id:literal, $key:ident, $min:literal, $max:literal, |$shard:ident, $call:ident, $body:pat_param| $reply:expr) => {
        /// This API's entry in the registry (`super::APIS`).
        pub const API: $crate::server::handlers::Api = $crate::server::handlers::Api {
            key: ::kafka_protocol::messages::ApiKey::$key,
            min_version: $min,
            max_version: $max,
            wants_client_id: $wants_client_id,
            serve,
        };

        fn serve(
            $shard: &::std::rc::Rc<$crate::shard::Shard>,
            $call: $crate::server::handlers::Call,
        ) -> $crate::server::handlers::InOrder<'_> {
            Box::pin(async move {
                let ::kafka_protocol::messages::RequestKind::$key($body) = $call.body else {
                    return $call.context.mismatched();
                };
                $reply
            })
        }
    };
}

mod alter_client_quotas;
mod alter_configs;
mod alter_partition_reassignments;
mod api_versions;
mod configs;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_client_quotas;
mod describe_cluster;
mod describe_groups;
mod describe_log_dirs;
mod elect_leaders;
mod error_counts;
mod fetch;
mod find_coordinator;
mod group_lookup;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod replica_fetch;
mod sync_group;
mod topic_outcomes;

/// Every API this broker serves, in the order ApiVersions lists them.
pub const APIS: &[Api] = &[
    produce::API,
    fetch::API,
    list_offsets::API,
    metadata::API,
    api_versions::API,
    create_topics::API,
    delete_topics::API,
    delete_records::API,
    configs::API,
    alter_configs::API,
    incremental_alter_configs::API,
    create_partitions::API,
    describe_cluster::API,
    find_coordinator::API,
    join_group::API,
    sync_group::API,
    heartbeat::API,
    leave_group::API,
    offset_commit::API,
    offset_fetch::API,
    list_groups::API,
    describe_groups::API,
    delete_groups::API,
    offset_delete::API,
    init_producer_id::API,
    offset_for_leader_epoch::API,
    elect_leaders::API,
    describe_log_dirs::API,
    describe_client_quotas::API,
    alter_client_quotas::API,
    alter_partition_reassignments::API,
    list_partition_reassignments::API,
];

/// [`APIS`] as `(key, min version, max version)`: what ApiVersions advertises and what
/// request decoding accepts.
pub const SERVED_APIS: &ApiVersionTable = &served_apis();

const fn served_apis() -> [(ApiKey, i16, i16); APIS.len()] {
    let mut table = [(ApiKey::Produce, 0, 0); APIS.len()];
    let mut index = 0;
    while index < APIS.len() {
        let api = &APIS[index];
        table[index] = (api.key, api.min_version, api.max_version);
        index += 1;
    }
    table
}

/// The entry serving `api_key`. Indexed by key, since every request looks here.
fn api_for(api_key: ApiKey) -> Option<&'static Api> {
    const SLOTS: usize = 128;
    const BY_KEY: [Option<&Api>; SLOTS] = {
        let mut slots: [Option<&Api>; SLOTS] = [None; SLOTS];
        let mut index = 0;
        while index < APIS.len() {
            let key = APIS[index].key as usize;
            assert!(key < SLOTS && slots[key].is_none(), "one entry per API key");
            slots[key] = Some(&APIS[index]);
            index += 1;
        }
        slots
    };
    BY_KEY.get(api_key as usize).copied().flatten()
}

/// One API's registry entry.
pub struct Api {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
    /// Whether its handler needs the request header's client id (kept only then: the
    /// header's strings share the request buffer, which Produce wants unshared).
    pub wants_client_id: bool,
    /// Runs the in-order part of a request and returns its reply.
    pub serve: Serve,
}

/// A handler's entry point: the in-order part of a request, returning its reply.
pub type Serve = for<'a> fn(&'a Rc<Shard>, Call) -> InOrder<'a>;

/// A decoded request as its handler receives it.
pub struct Call {
    pub context: RequestContext,
    pub body: RequestKind,
    /// The request's body buffer; Produce takes its record batches out of it.
    pub frame: Bytes,
    pub peer: SocketAddr,
    /// The header's client id, for APIs that ask for it.
    pub client_id: Option<String>,
    /// Produce and Fetch from a client id with a byte-rate quota: its charge.
    pub quota: Option<QuotaCharge>,
}

/// The in-order part of a request: it runs before the next request of the connection is
/// read, and resolves to the [`Reply`] that may overlap with later requests.
pub type InOrder<'a> = Pin<Box<dyn Future<Output = Reply> + 'a>>;

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
    /// The answer to a request whose body is not the one its key names (the registry and
    /// decoding disagree: a bug), as to an unsupported one.
    pub fn mismatched(&self) -> Reply {
        ready(Ok(Some(ChunkedFrame::from(encode_unsupported(
            self.api_key as i16,
            self.correlation_id,
            SERVED_APIS,
        )))))
    }

    pub fn respond(&self, body: ResponseKind) -> Response {
        crate::shard::metrics::count_errors(self.api_key as i16, |visit| {
            error_counts::error_codes(&body, visit)
        });
        encode_response(self.api_key, self.api_version, self.correlation_id, &body)
            .map(|frame| Some(ChunkedFrame::from(frame)))
    }
}

fn ready(response: Response) -> Reply {
    Box::pin(std::future::ready(response))
}

/// Runs the in-order part of `request` and returns its reply. `frame` is the request's
/// body buffer; Produce takes its record batches out of it without copying.
pub async fn handle(
    shard: &Rc<Shard>,
    request: Request,
    frame: Bytes,
    peer: SocketAddr,
    muted_until: &Rc<Cell<Option<Instant>>>,
) -> Reply {
    let context = RequestContext {
        api_key: request.api_key,
        api_version: request.api_version,
        correlation_id: request.header.correlation_id,
    };
    // decode_request lets only SERVED_APIS through, so every request has its entry.
    let Some(api) = api_for(request.api_key) else {
        return context.mismatched();
    };
    let client_id = api.wants_client_id.then(|| {
        request
            .header
            .client_id
            .as_deref()
            .unwrap_or("")
            .to_string()
    });
    let quota = quota_charge(shard, &request, muted_until);
    // The header's strings are slices of `frame`; drop them so Produce can own it.
    drop(request.header);
    let call = Call {
        context,
        body: request.body,
        frame,
        peer,
        client_id,
        quota,
    };
    shard
        .metrics
        .request(context.api_key as i16, context.api_version);
    if !CoreMetrics::is_timed(context.api_key) {
        return (api.serve)(shard, call).await;
    }
    // Timed from the request's decoding to its answer, the in-order part included.
    let started = std::time::Instant::now();
    let reply = (api.serve)(shard, call).await;
    let metrics = shard.metrics.clone();
    Box::pin(async move {
        let response = reply.await;
        metrics.observe(context.api_key, started.elapsed());
        response
    })
}

/// The quota a Produce or Fetch counts against, if its client id has one. One emptiness
/// check when no quota is set, which is the usual case.
fn quota_charge(
    shard: &Rc<Shard>,
    request: &Request,
    muted_until: &Rc<Cell<Option<Instant>>>,
) -> Option<QuotaCharge> {
    let (kind, key) = match request.api_key {
        ApiKey::Produce => (QuotaKind::Produce, PRODUCER_BYTE_RATE),
        ApiKey::Fetch => (QuotaKind::Fetch, CONSUMER_BYTE_RATE),
        _ => return None,
    };
    let snapshot = shard.snapshot();
    if snapshot.client_quotas.is_empty() {
        return None;
    }
    let client_id = request.header.client_id.as_deref().unwrap_or("");
    let quota = quota_for(&snapshot.client_quotas, client_id, key)?;
    Some(QuotaCharge {
        tracker: shard.quotas.clone(),
        client_id: client_id.to_string(),
        kind,
        quota,
        muted_until: muted_until.clone(),
    })
}

/// The ApiVersions body listing [`SERVED_APIS`].
pub fn api_versions_response(error_code: ErrorCode) -> ApiVersionsResponse {
    api_versions_body(error_code, SERVED_APIS)
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

#[cfg(test)]
mod tests {
    use super::*;
    use spindle_protocol::api::{DECODABLE_APIS, versions_in};

    #[test]
    fn every_served_version_can_be_checked_and_decoded() {
        for &(key, min, max) in SERVED_APIS {
            let (decodable_min, decodable_max) =
                versions_in(DECODABLE_APIS, key as i16).expect("a request schema");
            assert!(
                decodable_min <= min && min <= max && max <= decodable_max,
                "{key:?} {min}..={max} within {decodable_min}..={decodable_max}"
            );
        }
    }

    #[test]
    fn dispatch_finds_each_entry_by_its_own_key() {
        for api in APIS {
            assert_eq!(api_for(api.key).map(|found| found.key), Some(api.key));
        }
        assert!(api_for(ApiKey::AddPartitionsToTxn).is_none());
    }
}
