//! DescribeCluster: every core of every node as a broker on its own port, with its node as
//! its rack, and this node's core 0 as the controller.
//! Answered from this core's snapshot.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, Response, ready};
use crate::shard::Shard;

pub fn describe_cluster(
    shard: &Shard,
    context: &RequestContext,
    _request: DescribeClusterRequest,
) -> Response {
    let snapshot = shard.snapshot();
    let brokers = snapshot
        .brokers()
        .into_iter()
        .map(|broker| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(broker.id as i32))
                .with_host(StrBytes::from_string(broker.host))
                .with_port(i32::from(broker.port))
                .with_rack(Some(StrBytes::from_string(broker.rack)))
        })
        .collect();
    context.respond(ResponseKind::DescribeCluster(
        DescribeClusterResponse::default()
            .with_cluster_id(StrBytes::from_string(snapshot.cluster_id.clone()))
            .with_controller_id(BrokerId(snapshot.local_broker(0) as i32))
            .with_brokers(brokers),
    ))
}

served!(DescribeCluster, 0..=2, |shard, call, body| {
    ready(describe_cluster(shard, &call.context, body))
});
