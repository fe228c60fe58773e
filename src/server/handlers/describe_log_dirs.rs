//! DescribeLogDirs (`kafka-log-dirs --describe`): the broker's one log directory (the data
//! directory) with the replicas this core holds, their bytes on disk and offset lag, and
//! (v4+) the file system's total and usable bytes. A request naming topics gets only
//! those partitions; null asks for all.

use std::collections::BTreeMap;
use std::path::Path;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::topic_outcomes::topic_name;
use super::{RequestContext, Response, ready};
use crate::shard::Shard;

/// `(total, usable)` bytes of the file system holding `dir`, or -1 each if unknown.
fn file_system_bytes(dir: &Path) -> (i64, i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return (-1, -1);
    };
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `stats` a valid statvfs to fill.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return (-1, -1);
    }
    let block = stats.f_frsize as i64;
    (stats.f_blocks as i64 * block, stats.f_bavail as i64 * block)
}

pub fn describe_log_dirs(
    shard: &Shard,
    context: &RequestContext,
    request: DescribeLogDirsRequest,
) -> Response {
    let wanted: Option<BTreeMap<String, Vec<i32>>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|topic| (topic.topic.to_string(), topic.partitions))
            .collect()
    });
    let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for (topic, partition, size, lag) in shard.replica_sizes() {
        let asked = wanted.as_ref().is_none_or(|wanted| {
            wanted
                .get(&topic)
                .is_some_and(|partitions| partitions.contains(&partition))
        });
        if asked {
            topics.entry(topic).or_default().push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(partition)
                    .with_partition_size(size as i64)
                    .with_offset_lag(lag),
            );
        }
    }
    let dir = std::fs::canonicalize(&shard.config.data_dir)
        .unwrap_or_else(|_| shard.config.data_dir.clone());
    let (total_bytes, usable_bytes) = file_system_bytes(&dir);
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    DescribeLogDirsTopic::default()
                        .with_name(topic_name(&name))
                        .with_partitions(partitions)
                })
                .collect(),
        )
        .with_total_bytes(total_bytes)
        .with_usable_bytes(usable_bytes);
    context.respond(ResponseKind::DescribeLogDirs(
        DescribeLogDirsResponse::default().with_results(vec![result]),
    ))
}

served!(DescribeLogDirs, 1..=4, |shard, call, body| {
    ready(describe_log_dirs(shard, &call.context, body))
});
