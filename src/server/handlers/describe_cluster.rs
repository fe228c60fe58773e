//! DescribeCluster: every core as a broker on its own port, and core 0 as the controller.
//! Answered from this core's snapshot.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::metadata::brokers;
use super::{RequestContext, Response, ready};
use crate::shard::Shard;

pub fn describe_cluster(
    shard: &Shard,
    context: &RequestContext,
    _request: DescribeClusterRequest,
) -> Response {
    let brokers = brokers(shard)
        .into_iter()
        .map(|(node_id, host, port)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(node_id))
                .with_host(host)
                .with_port(port)
        })
        .collect();
    context.respond(ResponseKind::DescribeCluster(
        DescribeClusterResponse::default()
            .with_cluster_id(StrBytes::from_string(shard.snapshot().cluster_id.clone()))
            .with_controller_id(BrokerId(0))
            .with_brokers(brokers),
    ))
}

served!(DescribeCluster, 0..=2, |shard, call, body| {
    ready(describe_cluster(shard, &call.context, body))
});
