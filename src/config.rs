//! The broker's one configuration: command-line flags (Kafka's names where Kafka has one),
//! checked once at start-up into a [`BrokerConfig`] that every core shares read-only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::cluster::controller::PARTITIONS_PER_TOPIC_MAX;
use crate::cluster::metadata::BROKERS_PER_NODE;
use crate::group::state::GroupConfig;
use crate::producer::ids::NODE_ID_MAX;
use crate::storage::config::{FLUSH_INTERVAL_BYTES_DEFAULT, FLUSH_INTERVAL_DEFAULT};
use crate::storage::{FlushPolicy, LogConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlushArg {
    /// fdatasync after every write round (group commit); consumers see only durable data.
    Always,
    /// fdatasync every --flush-interval-ms or --flush-interval-bytes.
    Interval,
    /// Leave durability to the device; acks=all still waits for an fdatasync.
    Never,
}

/// `spindle serve` flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Bootstrap listener (every core accepts on it).
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// Prometheus metrics endpoint (`GET /metrics`). Port 0 takes a free port (the start-up
    /// line names it).
    #[arg(long, default_value = "127.0.0.1:9644")]
    pub metrics_listen: SocketAddr,
    /// First per-core port: core i listens on this + i. Default: the bootstrap port + 1, or
    /// ephemeral ports when the bootstrap port is 0.
    #[arg(long)]
    pub core_port_base: Option<u16>,
    /// This node's id in a cluster; its cores are brokers `node_id * 1000 + core`.
    #[arg(long, default_value_t = 0)]
    pub node_id: u32,
    /// The metadata quorum's voters, `ID@HOST:PORT,...` (their quorum RPC addresses, this
    /// node's included). Absent: a single node, no quorum.
    #[arg(long)]
    pub quorum: Option<String>,
    /// Kafka `broker.session.timeout.ms`: a node the quorum's leader has not heard from for
    /// this long is fenced (its brokers leave Metadata and get no new partitions) until it
    /// registers again.
    #[arg(long, default_value_t = 9000)]
    pub broker_session_timeout_ms: u64,
    /// Kafka `default.replication.factor`: replicas of a topic created without a count
    /// (auto-created ones too). Default: 3 in a quorum of 3 or more nodes, else 1.
    #[arg(long)]
    pub default_replication_factor: Option<i16>,
    /// Kafka `replica.lag.time.max.ms`: a follower not caught up with its leader for this
    /// long leaves the partition's in-sync replicas until it catches up.
    #[arg(long, default_value_t = 30_000)]
    pub replica_lag_time_max_ms: u64,
    /// Kafka `min.insync.replicas`, for topics that do not set it: acks=all is refused
    /// (NOT_ENOUGH_REPLICAS) while fewer of a partition's replicas are in sync.
    #[arg(long, default_value_t = LogConfig::DEFAULT.min_insync_replicas)]
    pub min_insync_replicas: usize,
    /// Redpanda's `write.caching`, for topics that do not set it: acks=all is answered
    /// once the batch is written to the file and replicated, as Kafka answers it, without
    /// waiting for an fdatasync (the flush policy alone makes it durable). The answer still
    /// survives `kill -9`; a power loss may take what was not synced yet.
    #[arg(long)]
    pub write_caching: bool,
    /// Kafka `offsets.topic.num.partitions`: partitions of `__consumer_offsets`, the
    /// replicated topic holding every group's offsets in a cluster (created at the first
    /// FindCoordinator). Fixed once created. Kafka's default is 50; each partition here is
    /// a log with its own buffers on some core, so the default is smaller.
    #[arg(long, default_value_t = 12)]
    pub offsets_topic_partitions: i32,
    /// Kafka `offsets.topic.replication.factor`: replicas of `__consumer_offsets`. Until
    /// that many nodes are live it is not created and groups wait. Default: 3, or the
    /// quorum's node count when smaller.
    #[arg(long)]
    pub offsets_topic_replication_factor: Option<i16>,
    /// Kafka `auto.leader.rebalance.enable`: leadership returns to each partition's
    /// preferred replica (the one placed first) once it is in sync again, as checked every
    /// `--leader-imbalance-check-interval-ms`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_leader_rebalance_enable: bool,
    /// Kafka `leader.imbalance.check.interval.seconds` (300 s), in milliseconds.
    #[arg(long, default_value_t = 300_000)]
    pub leader_imbalance_check_interval_ms: u64,
    /// Testing only: one tick of the quorum's Raft clock (elections take 10-20 ticks).
    #[arg(long, default_value_t = 100, hide = true)]
    pub quorum_tick_ms: u64,
    /// Host name advertised to clients in Metadata. Default: the listen address's IP.
    #[arg(long)]
    pub advertised_host: Option<String>,
    /// Number of cores (one broker each); default: every CPU this process may run on.
    #[arg(long)]
    pub cores: Option<usize>,
    /// Do not pin executors to CPUs (for shared CI machines and tests).
    #[arg(long)]
    pub no_pin: bool,
    /// Where partitions and metadata live.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Create a topic when a client asks for it by Metadata or Produce.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic or a CreateTopics without a count; default: the
    /// number of cores.
    #[arg(long)]
    pub default_partitions: Option<i32>,
    /// Largest request frame accepted; a bigger one closes the connection.
    #[arg(long, default_value_t = 100 << 20)]
    pub max_request_bytes: usize,
    /// Requests one connection may have in flight before the broker stops reading it.
    #[arg(long, default_value_t = 64)]
    pub max_in_flight_requests: usize,
    /// Connections each core serves at once; more are closed at accept.
    #[arg(long, default_value_t = 4096)]
    pub max_connections_per_core: usize,
    /// Connections one client address may hold on each core (each core is a broker of its
    /// own), so one client cannot take every slot.
    #[arg(long, default_value_t = 1024)]
    pub max_connections_per_ip: usize,
    /// Kafka `connections.max.idle.ms`: a connection with no request in flight that sends
    /// nothing for this long is closed.
    #[arg(long, default_value_t = 600_000)]
    pub connections_max_idle_ms: u64,
    /// A connection whose started frame stops arriving for this long is closed (its
    /// buffered bytes are given back).
    #[arg(long, default_value_t = 30_000)]
    pub request_read_timeout_ms: u64,
    /// Long-poll fetches that may wait for data on each core at once. Past it, a fetch is
    /// answered at once with what there is and a throttle time (the rest of its wait) that
    /// clients honour before fetching again.
    #[arg(long, default_value_t = 16_384)]
    pub max_parked_fetches_per_core: usize,
    /// Client ids whose byte rates each core measures for client quotas at once; past it,
    /// the one idle longest is forgotten (its rate starts again from zero).
    #[arg(long, default_value_t = 10_000)]
    pub max_quota_clients_per_core: usize,
    /// Request bytes each core holds at once across its connections (backpressure).
    #[arg(long, default_value_t = 512 << 20)]
    pub max_buffered_bytes_per_core: usize,
    #[arg(long, value_enum, default_value_t = FlushArg::Interval)]
    pub flush: FlushArg,
    #[arg(long, default_value_t = FLUSH_INTERVAL_DEFAULT.as_millis() as u64)]
    pub flush_interval_ms: u64,
    #[arg(long, default_value_t = FLUSH_INTERVAL_BYTES_DEFAULT)]
    pub flush_interval_bytes: u64,
    /// Kafka `log.segment.bytes`.
    #[arg(long, default_value_t = LogConfig::DEFAULT.segment_bytes)]
    pub segment_bytes: u64,
    /// Kafka `log.retention.ms` (-1: keep forever).
    #[arg(long, default_value_t = LogConfig::DEFAULT.retention_ms)]
    pub retention_ms: i64,
    /// Kafka `log.retention.bytes` per partition (-1: no limit).
    #[arg(long, default_value_t = LogConfig::DEFAULT.retention_bytes)]
    pub retention_bytes: i64,
    /// Most disk a partition's segment file reserves ahead of its writes at a time: the
    /// first reservation is 64 KiB and each next one doubles, up to this (0: none).
    #[arg(long, default_value_t = LogConfig::DEFAULT.preallocate_bytes)]
    pub segment_preallocate_bytes_max: u64,
    /// Memory each core's partitions may keep, together, for serving recent data without a
    /// disk read; the least recently used partitions give theirs up first. Default: a
    /// quarter of the machine's memory, split over the cores.
    #[arg(long)]
    pub cache_bytes_per_core: Option<u64>,
    /// Recent data each partition keeps in memory to serve fetches without a disk read. A
    /// consumer that falls further behind than this reads from the device (slower), so a
    /// partition taking hundreds of MB/s wants more than the default; memory is this times
    /// the partitions of a core.
    #[arg(long, default_value_t = LogConfig::DEFAULT.cache_bytes_max as u64, value_parser = clap::value_parser!(u64).range(1 << 20..=(1 << 34)))]
    pub partition_cache_bytes: u64,
    /// Kafka `group.initial.rebalance.delay.ms`: how long the first generation of an empty
    /// group waits for more members.
    #[arg(long, default_value_t = GroupConfig::DEFAULT.initial_rebalance_delay.as_millis() as u64)]
    pub group_initial_rebalance_delay_ms: u64,
    /// Kafka `group.min.session.timeout.ms`.
    #[arg(long, default_value_t = GroupConfig::DEFAULT.session_timeout_min.as_millis() as u64)]
    pub group_min_session_timeout_ms: u64,
    /// Kafka `group.max.session.timeout.ms`.
    #[arg(long, default_value_t = GroupConfig::DEFAULT.session_timeout_max.as_millis() as u64)]
    pub group_max_session_timeout_ms: u64,
    /// How often each core rolls aged segments and applies retention.
    #[arg(long, default_value_t = 30_000)]
    pub retention_check_interval_ms: u64,
    /// Kafka `log.cleaner.backoff.ms`: how often each core's cleaner looks for compacted
    /// logs whose dirty ratio reached `min.cleanable.dirty.ratio`.
    #[arg(long, default_value_t = 15_000)]
    pub log_cleaner_backoff_ms: u64,
    /// Kafka `log.cleaner.dedupe.buffer.size`: memory one cleaning pass's key map may take
    /// (about 32 bytes a key; each core cleans one log at a time).
    #[arg(long, default_value_t = LogConfig::DEFAULT.cleaner_dedupe_bytes as u64)]
    pub log_cleaner_dedupe_bytes: u64,
    /// Testing only: close the connection instead of sending every Nth produce response
    /// (after the append), so clients retry batches the log already holds. 0 = off.
    #[arg(long, default_value_t = 0, hide = true)]
    pub fault_drop_produce_response_every: u64,
    /// Testing only: a request whose client id is this panics in its handler.
    #[arg(long, hide = true)]
    pub fault_panic_client_id: Option<String>,
    /// Testing only: this core's executor panics outside any connection shortly after start.
    #[arg(long, hide = true)]
    pub fault_panic_core: Option<u32>,
    /// Testing only: advertise at most this Fetch version, so a real client can be tested
    /// at each version it knows.
    #[arg(long, hide = true)]
    pub fault_fetch_version_max: Option<i16>,
    /// Testing only: write every request frame received to a file in this directory (the
    /// fuzz corpus is captured from real clients this way).
    #[arg(long, hide = true)]
    pub capture_requests_dir: Option<PathBuf>,
}

/// Validated, shared by every core.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub node_id: u32,
    /// Voters of the metadata quorum (node id -> `host:port`); `None` on a single node.
    pub quorum: Option<BTreeMap<u32, String>>,
    pub quorum_tick: Duration,
    pub broker_session_timeout: Duration,
    pub replica_lag_time_max: Duration,
    pub default_replication_factor: i16,
    pub offsets_topic_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    /// How often the quorum's leader moves leadership back to preferred replicas
    /// (`None`: `--auto-leader-rebalance-enable false`).
    pub leader_rebalance_interval: Option<Duration>,
    /// Port of core i is `core_port_base + i`; 0 means ephemeral ports.
    pub core_port_base: u16,
    pub advertised_host: String,
    /// CPU of each core, index = core = node id.
    pub cpus: Vec<usize>,
    pub pin: bool,
    pub data_dir: PathBuf,
    pub auto_create_topics: bool,
    pub default_partitions: i32,
    pub request_bytes_max: usize,
    pub in_flight_requests_max: usize,
    pub connections_per_core_max: usize,
    pub connections_per_ip_max: usize,
    pub parked_fetches_per_core_max: usize,
    pub quota_clients_per_core_max: usize,
    pub connections_max_idle: Duration,
    pub request_read_timeout: Duration,
    pub buffered_bytes_per_core_max: usize,
    pub cache_bytes_per_core: usize,
    pub log: LogConfig,
    pub retention_check_interval: Duration,
    pub log_cleaner_backoff: Duration,
    pub groups: GroupConfig,
    pub fault_drop_produce_response_every: u64,
    pub fault_panic_client_id: Option<String>,
    pub fault_panic_core: Option<u32>,
    pub capture_requests_dir: Option<PathBuf>,
    pub fault_fetch_version_max: Option<i16>,
}

impl BrokerConfig {
    /// Checks every limit once; `Err` is a one-line reason for the operator.
    pub fn from_args(args: &ServeArgs) -> Result<BrokerConfig, String> {
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        let allowed_cpus: Vec<usize> = core_affinity::get_core_ids()
            .map(|ids| ids.into_iter().map(|id| id.id).collect())
            .filter(|ids: &Vec<usize>| !ids.is_empty())
            .unwrap_or_else(|| (0..available).collect());
        let cores = args.cores.unwrap_or(allowed_cpus.len());
        if cores == 0 || cores as u32 > BROKERS_PER_NODE {
            return Err(format!(
                "--cores {cores} must be between 1 and {BROKERS_PER_NODE}"
            ));
        }
        if args.node_id > NODE_ID_MAX {
            return Err(format!(
                "--node-id {} must be at most {NODE_ID_MAX}",
                args.node_id
            ));
        }
        let quorum = match &args.quorum {
            None => None,
            Some(text) => Some(parse_quorum(text, args.node_id)?),
        };
        if !(1..=10_000).contains(&args.quorum_tick_ms) {
            return Err("--quorum-tick-ms must be between 1 and 10000".into());
        }
        let voters = quorum.as_ref().map_or(1, BTreeMap::len);
        let default_replication_factor = match args.default_replication_factor {
            None if voters >= 3 => 3,
            None => 1,
            Some(factor) if factor >= 1 && factor as usize <= voters => factor,
            Some(factor) => {
                return Err(format!(
                    "--default-replication-factor {factor} must be between 1 and the {voters} nodes of the quorum"
                ));
            }
        };
        let offsets_topic_replication_factor = match args.offsets_topic_replication_factor {
            None => voters.min(3) as i16,
            Some(factor) if factor >= 1 && factor as usize <= voters => factor,
            Some(factor) => {
                return Err(format!(
                    "--offsets-topic-replication-factor {factor} must be between 1 and the {voters} nodes of the quorum"
                ));
            }
        };
        if !(1..=1000).contains(&args.offsets_topic_partitions) {
            return Err(format!(
                "--offsets-topic-partitions {} must be between 1 and 1000",
                args.offsets_topic_partitions
            ));
        }
        if !(100..=86_400_000).contains(&args.leader_imbalance_check_interval_ms) {
            return Err(format!(
                "--leader-imbalance-check-interval-ms {} must be between 100 and 86400000",
                args.leader_imbalance_check_interval_ms
            ));
        }
        if args.min_insync_replicas == 0 {
            return Err("--min-insync-replicas must be at least 1".into());
        }
        if !(100..=3_600_000).contains(&args.replica_lag_time_max_ms) {
            return Err(format!(
                "--replica-lag-time-max-ms {} must be between 100 and 3600000",
                args.replica_lag_time_max_ms
            ));
        }
        // Below a few elections' time, a healthy node would be fenced by every leader change.
        let session_floor_ms = args.quorum_tick_ms * 20;
        if args.broker_session_timeout_ms < session_floor_ms {
            return Err(format!(
                "--broker-session-timeout-ms {} must be at least {session_floor_ms} (20 quorum ticks)",
                args.broker_session_timeout_ms
            ));
        }
        let pin = !args.no_pin && cores <= allowed_cpus.len();
        let cpus = (0..cores)
            .map(|i| allowed_cpus[i % allowed_cpus.len()])
            .collect();
        let core_port_base = match (args.core_port_base, args.listen.port()) {
            (Some(base), _) => base,
            (None, 0) => 0,
            (None, port) => port.checked_add(1).ok_or(
                "--listen port 65535 leaves no room for per-core ports (set --core-port-base)",
            )?,
        };
        if core_port_base != 0 && u32::from(core_port_base) + cores as u32 - 1 > 65535 {
            return Err(format!(
                "--core-port-base {core_port_base} + {cores} cores runs past port 65535"
            ));
        }
        let advertised_host = match &args.advertised_host {
            Some(host) if host.is_empty() => return Err("--advertised-host is empty".into()),
            Some(host) => host.clone(),
            None if args.listen.ip().is_unspecified() => {
                return Err("--listen on an unspecified address needs --advertised-host".into());
            }
            None => args.listen.ip().to_string(),
        };
        let default_partitions = args.default_partitions.unwrap_or(cores as i32);
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&default_partitions) {
            return Err(format!(
                "--default-partitions {default_partitions} must be between 1 and {PARTITIONS_PER_TOPIC_MAX}"
            ));
        }
        if args.max_request_bytes < 1024 || args.max_request_bytes > i32::MAX as usize {
            return Err(format!(
                "--max-request-bytes {} must be between 1024 and {}",
                args.max_request_bytes,
                i32::MAX
            ));
        }
        if args.max_buffered_bytes_per_core < args.max_request_bytes {
            return Err(format!(
                "--max-buffered-bytes-per-core {} must hold at least one request of --max-request-bytes {}",
                args.max_buffered_bytes_per_core, args.max_request_bytes
            ));
        }
        if args.max_in_flight_requests == 0
            || args.max_connections_per_core == 0
            || args.max_connections_per_ip == 0
            || args.max_quota_clients_per_core == 0
        {
            return Err(
                "--max-in-flight-requests, --max-connections-per-core, --max-connections-per-ip and --max-quota-clients-per-core must be positive".into(),
            );
        }
        if args.connections_max_idle_ms == 0 || args.request_read_timeout_ms == 0 {
            return Err(
                "--connections-max-idle-ms and --request-read-timeout-ms must be positive".into(),
            );
        }
        let cache_bytes_per_core = match args.cache_bytes_per_core {
            Some(bytes) if bytes < 1 << 20 => {
                return Err(format!(
                    "--cache-bytes-per-core {bytes} must be at least 1 MiB"
                ));
            }
            Some(bytes) => bytes as usize,
            None => (physical_memory_bytes() / 4 / cores as u64).max(1 << 20) as usize,
        };
        let flush = match args.flush {
            FlushArg::Always => FlushPolicy::Always,
            FlushArg::Never => FlushPolicy::Never,
            FlushArg::Interval => FlushPolicy::Interval {
                interval: Duration::from_millis(args.flush_interval_ms.max(1)),
                bytes: args.flush_interval_bytes.max(1),
            },
        };
        let log = LogConfig {
            segment_bytes: args.segment_bytes,
            retention_ms: args.retention_ms,
            retention_bytes: args.retention_bytes,
            flush,
            cache_bytes_max: args.partition_cache_bytes as usize,
            preallocate_bytes: args.segment_preallocate_bytes_max,
            min_insync_replicas: args.min_insync_replicas,
            write_caching: args.write_caching,
            cleaner_dedupe_bytes: args.log_cleaner_dedupe_bytes as usize,
            ..LogConfig::default()
        };
        log.validate()?;
        if args.group_min_session_timeout_ms > args.group_max_session_timeout_ms {
            return Err(format!(
                "--group-min-session-timeout-ms {} exceeds --group-max-session-timeout-ms {}",
                args.group_min_session_timeout_ms, args.group_max_session_timeout_ms
            ));
        }
        if args.retention_check_interval_ms == 0 {
            return Err("--retention-check-interval-ms must be positive".into());
        }
        if args.log_cleaner_backoff_ms == 0 {
            return Err("--log-cleaner-backoff-ms must be positive".into());
        }
        if args.log_cleaner_dedupe_bytes < 1 << 20 {
            return Err("--log-cleaner-dedupe-bytes must be at least 1048576".into());
        }
        Ok(BrokerConfig {
            listen: args.listen,
            metrics_listen: args.metrics_listen,
            node_id: args.node_id,
            quorum,
            quorum_tick: Duration::from_millis(args.quorum_tick_ms),
            broker_session_timeout: Duration::from_millis(args.broker_session_timeout_ms),
            replica_lag_time_max: Duration::from_millis(args.replica_lag_time_max_ms),
            default_replication_factor,
            offsets_topic_partitions: args.offsets_topic_partitions,
            offsets_topic_replication_factor,
            leader_rebalance_interval: args
                .auto_leader_rebalance_enable
                .then(|| Duration::from_millis(args.leader_imbalance_check_interval_ms)),
            core_port_base,
            advertised_host,
            cpus,
            pin,
            data_dir: args.data_dir.clone(),
            auto_create_topics: args.auto_create_topics,
            default_partitions,
            request_bytes_max: args.max_request_bytes,
            in_flight_requests_max: args.max_in_flight_requests,
            connections_per_core_max: args.max_connections_per_core,
            connections_per_ip_max: args.max_connections_per_ip,
            parked_fetches_per_core_max: args.max_parked_fetches_per_core,
            quota_clients_per_core_max: args.max_quota_clients_per_core,
            connections_max_idle: Duration::from_millis(args.connections_max_idle_ms),
            request_read_timeout: Duration::from_millis(args.request_read_timeout_ms),
            buffered_bytes_per_core_max: args.max_buffered_bytes_per_core,
            cache_bytes_per_core,
            log,
            retention_check_interval: Duration::from_millis(args.retention_check_interval_ms),
            log_cleaner_backoff: Duration::from_millis(args.log_cleaner_backoff_ms),
            fault_drop_produce_response_every: args.fault_drop_produce_response_every,
            fault_panic_client_id: args.fault_panic_client_id.clone(),
            fault_panic_core: args.fault_panic_core,
            capture_requests_dir: args.capture_requests_dir.clone(),
            fault_fetch_version_max: args.fault_fetch_version_max,
            groups: GroupConfig {
                initial_rebalance_delay: Duration::from_millis(
                    args.group_initial_rebalance_delay_ms,
                ),
                session_timeout_min: Duration::from_millis(args.group_min_session_timeout_ms),
                session_timeout_max: Duration::from_millis(args.group_max_session_timeout_ms),
            },
        })
    }

    pub fn cores(&self) -> usize {
        self.cpus.len()
    }
}

/// Parses `--quorum ID@HOST:PORT,...`; the voters must name `node_id`.
pub fn parse_quorum(text: &str, node_id: u32) -> Result<BTreeMap<u32, String>, String> {
    let mut voters = BTreeMap::new();
    for voter in text.split(',') {
        let bad = || format!("--quorum entry '{voter}' is not ID@HOST:PORT");
        let (id, address) = voter.split_once('@').ok_or_else(bad)?;
        let id: u32 = id.trim().parse().map_err(|_| bad())?;
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |port| port == 0) {
            return Err(bad());
        }
        if id > NODE_ID_MAX {
            return Err(format!(
                "--quorum node id {id} must be at most {NODE_ID_MAX}"
            ));
        }
        if voters.insert(id, address.to_string()).is_some() {
            return Err(format!("--quorum names node {id} twice"));
        }
    }
    if !voters.contains_key(&node_id) {
        return Err(format!(
            "--quorum does not name this node (--node-id {node_id})"
        ));
    }
    Ok(voters)
}

/// The machine's memory, from sysconf (4 GiB if it cannot be read).
fn physical_memory_bytes() -> u64 {
    // SAFETY: sysconf only reads system constants.
    let (pages, page_bytes) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages > 0 && page_bytes > 0 {
        pages as u64 * page_bytes as u64
    } else {
        4 << 30
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn quorum_flags_are_checked() {
        let voters = parse_quorum("0@127.0.0.1:9100,1@localhost:9101,2@[::1]:9102", 1).unwrap();
        assert_eq!(voters[&2], "[::1]:9102");
        for bad in [
            "",
            "0@",
            "x@h:1",
            "0@h",
            "0@h:0",
            "0@:5",
            "0@h:1,0@h:2",
            "9000@h:1",
        ] {
            assert!(parse_quorum(bad, 0).is_err(), "{bad}");
        }
        assert!(parse_quorum("0@h:1,2@h:2", 1).is_err());
    }

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[test]
    fn flag_defaults_are_the_config_structs_defaults() {
        let args = Serve::parse_from(["spindle", "--cache-bytes-per-core", "1048576"]).args;
        let config = BrokerConfig::from_args(&args).expect("defaults are valid");
        assert_eq!(config.log, LogConfig::DEFAULT);
        assert_eq!((config.node_id, config.quorum.is_none()), (0, true));
        assert_eq!(
            format!("{:?}", config.groups),
            format!("{:?}", GroupConfig::DEFAULT)
        );
    }
}
