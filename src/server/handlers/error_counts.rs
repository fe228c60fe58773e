//! Which error codes a response carries, for the metrics' errors per API (Kafka's
//! ErrorsPerSec by request and error): the top-level code and every topic's, partition's,
//! group's or resource's, wherever the response has them. Pure; runs on the core that
//! answers, before the response is encoded.

use kafka_protocol::messages::ResponseKind;

/// Calls `visit` with every non-zero error code in `body`.
pub fn error_codes(body: &ResponseKind, visit: &mut dyn FnMut(i16)) {
    let mut each = |code: i16| {
        if code != 0 {
            visit(code);
        }
    };
    match body {
        ResponseKind::Produce(r) => r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .for_each(|p| each(p.error_code)),
        ResponseKind::Fetch(r) => {
            each(r.error_code);
            r.responses
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| each(p.error_code));
        }
        ResponseKind::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| each(p.error_code)),
        ResponseKind::Metadata(r) => r.topics.iter().for_each(|t| {
            each(t.error_code);
            t.partitions.iter().for_each(|p| each(p.error_code));
        }),
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| each(p.error_code)),
        ResponseKind::OffsetFetch(r) => {
            each(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| each(p.error_code));
            r.groups.iter().for_each(|g| {
                each(g.error_code);
                g.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .for_each(|p| each(p.error_code));
            });
        }
        ResponseKind::FindCoordinator(r) => {
            each(r.error_code);
            r.coordinators.iter().for_each(|c| each(c.error_code));
        }
        ResponseKind::JoinGroup(r) => each(r.error_code),
        ResponseKind::SyncGroup(r) => each(r.error_code),
        ResponseKind::Heartbeat(r) => each(r.error_code),
        ResponseKind::LeaveGroup(r) => {
            each(r.error_code);
            r.members.iter().for_each(|m| each(m.error_code));
        }
        ResponseKind::DescribeGroups(r) => r.groups.iter().for_each(|g| each(g.error_code)),
        ResponseKind::ListGroups(r) => each(r.error_code),
        ResponseKind::DeleteGroups(r) => r.results.iter().for_each(|g| each(g.error_code)),
        ResponseKind::OffsetDelete(r) => {
            each(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| each(p.error_code));
        }
        ResponseKind::CreateTopics(r) => r.topics.iter().for_each(|t| each(t.error_code)),
        ResponseKind::DeleteTopics(r) => r.responses.iter().for_each(|t| each(t.error_code)),
        ResponseKind::CreatePartitions(r) => r.results.iter().for_each(|t| each(t.error_code)),
        ResponseKind::DescribeConfigs(r) => r.results.iter().for_each(|t| each(t.error_code)),
        ResponseKind::AlterConfigs(r) => r.responses.iter().for_each(|t| each(t.error_code)),
        ResponseKind::IncrementalAlterConfigs(r) => {
            r.responses.iter().for_each(|t| each(t.error_code))
        }
        ResponseKind::DeleteRecords(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| each(p.error_code)),
        ResponseKind::DescribeLogDirs(r) => {
            each(r.error_code);
            r.results.iter().for_each(|d| each(d.error_code));
        }
        ResponseKind::InitProducerId(r) => each(r.error_code),
        ResponseKind::OffsetForLeaderEpoch(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| each(p.error_code)),
        ResponseKind::ElectLeaders(r) => {
            each(r.error_code);
            r.replica_election_results
                .iter()
                .flat_map(|t| &t.partition_result)
                .for_each(|p| each(p.error_code));
        }
        ResponseKind::DescribeCluster(r) => each(r.error_code),
        ResponseKind::ApiVersions(r) => each(r.error_code),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{HeartbeatResponse, ProduceResponse};

    fn codes(body: &ResponseKind) -> Vec<i16> {
        let mut out = Vec::new();
        error_codes(body, &mut |code| out.push(code));
        out
    }

    #[test]
    fn every_failed_partition_counts_and_successes_do_not() {
        let produce = ProduceResponse::default().with_responses(vec![
            TopicProduceResponse::default().with_partition_responses(vec![
                PartitionProduceResponse::default().with_error_code(0),
                PartitionProduceResponse::default().with_error_code(6),
                PartitionProduceResponse::default().with_error_code(87),
            ]),
        ]);
        assert_eq!(codes(&ResponseKind::Produce(produce)), vec![6, 87]);
        let heartbeat = HeartbeatResponse::default().with_error_code(27);
        assert_eq!(codes(&ResponseKind::Heartbeat(heartbeat)), vec![27]);
        assert!(codes(&ResponseKind::Heartbeat(HeartbeatResponse::default())).is_empty());
    }
}
