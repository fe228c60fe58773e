//! `spindle serve`: one pinned glommio executor per core, each a Kafka broker of its own.
//!
//! Start-up (main thread): raise memlock, load topic metadata, bind every listener (so the
//! ports are known before any core answers Metadata), then start the cores and wait for
//! SIGINT/SIGTERM on a signal thread. Each core: prime direct I/O, open the logs it owns,
//! accept on its own port and on the shared bootstrap port (SO_REUSEPORT spreads bootstrap
//! connections over the cores), and run its control task. Core 0 also runs the controller.
//!
//! Shutdown: every core stops accepting and reading, finishes the requests in flight,
//! flushes and closes its logs; the process exits 0.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socket2::{Domain, Socket, Type};

use crate::cluster::control::{ControlHandle, CoreMessage, CoreReceivers, control_plane};
use crate::cluster::controller::{load_metadata, run_controller};
use crate::cluster::metadata::{ClusterSnapshot, NodeEndpoints};
use crate::cluster::quorum::controller::run_quorum_controller;
use crate::cluster::quorum::{Applied, LocalNode, QuorumConfig, QuorumHandle, start_quorum};
use crate::config::BrokerConfig;
use crate::group::GroupCoordinator;
use crate::group::coordinator::GROUP_LOG_COMPACT_BYTES_MIN;
use crate::producer::ProducerIdAllocator;
use crate::runtime::{executor_builder, prepare_executor, raise_memlock_limit};

mod connection;
pub mod error_codes;
pub mod handlers;
mod metrics;
mod offsets_topic;
mod replica_fetcher;

use crate::shard::Shard;
use crate::shard::metrics::CoreMetrics;
use crate::shard::tasks::TaskKind;

/// How often group timeouts are checked: the slack on session and rebalance timeouts.
const GROUP_TICK_INTERVAL: Duration = Duration::from_millis(50);

/// How soon, and at most how long after, a log whose writes failed is opened again.
const FAILED_LOG_RETRY_MIN: Duration = Duration::from_secs(1);
const FAILED_LOG_RETRY_MAX: Duration = Duration::from_secs(30);

/// How long shutdown waits for connections to finish their in-flight requests.
const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(35);

/// Runs the broker until SIGINT/SIGTERM. `Err` is a one-line reason (exit non-zero).
pub fn serve(config: BrokerConfig) -> Result<(), String> {
    let memlock = raise_memlock_limit().map_err(|e| format!("raising RLIMIT_MEMLOCK: {e}"))?;
    tracing::debug!("RLIMIT_MEMLOCK soft limit {memlock} bytes");
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("data directory {}: {e}", config.data_dir.display()))?;
    // Before anything reads or writes it; held until this function returns.
    let _data_dir_lock = crate::storage::dir_lock::lock_data_dir(&config.data_dir)?;
    let cores = config.cores();

    // Per-core ports first (exclusive), then the shared bootstrap port.
    let mut core_listeners = Vec::with_capacity(cores);
    let mut core_ports = Vec::with_capacity(cores);
    for core in 0..cores {
        let port = match config.core_port_base {
            0 => 0,
            base => base + core as u16,
        };
        let address = SocketAddr::new(config.listen.ip(), port);
        let socket = bind_listener(address, false)
            .map_err(|e| format!("binding core {core}'s listener on {address}: {e}"))?;
        core_ports.push(local_port(&socket)?);
        core_listeners.push(socket.into_raw_fd());
    }
    let mut bootstrap_listeners = Vec::with_capacity(cores);
    let mut bootstrap = config.listen;
    for _ in 0..cores {
        let socket = bind_listener(bootstrap, true)
            .map_err(|e| format!("binding the bootstrap listener on {bootstrap}: {e}"))?;
        bootstrap.set_port(local_port(&socket)?);
        bootstrap_listeners.push(socket.into_raw_fd());
    }
    let core_metrics: Vec<Arc<CoreMetrics>> = (0..cores)
        .map(|core| Arc::new(CoreMetrics::new(core as u32)))
        .collect();
    let metrics_address = metrics::start(config.metrics_listen, core_metrics.clone())?;
    let ports: Vec<String> = core_ports.iter().map(u16::to_string).collect();
    // From here on SIGINT/SIGTERM mean "shut down cleanly": a signal that arrives before the
    // signal thread runs waits in `signals`.
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).map_err(|e| format!("registering signal handlers: {e}"))?;
    let local = NodeEndpoints {
        host: config.advertised_host.clone(),
        ports: core_ports,
    };
    let (snapshot, mut quorum) = match &config.quorum {
        None => {
            let nodes = BTreeMap::from([(config.node_id, local)]);
            let snapshot = load_metadata(&config.data_dir, cores as u32)?
                .with_nodes(config.node_id, Arc::new(nodes));
            (Arc::new(snapshot), None)
        }
        Some(voters) => {
            let (snapshot, handle, applied) = join_quorum(&config, voters, local, &mut signals)?;
            (snapshot, Some((handle, applied)))
        }
    };
    // Scripts and tests read this line to learn the ports. Nobody reading stdout is no
    // reason to stop (println! would panic on a closed pipe).
    {
        use std::io::Write;
        let mut stdout = std::io::stdout();
        let _ = writeln!(
            stdout,
            "spindle listening on {bootstrap} (cores {cores}, core ports {}, data {}, metrics http://{metrics_address}/metrics)",
            ports.join(","),
            config.data_dir.display()
        );
        let _ = stdout.flush();
    }

    let config = Arc::new(config);
    let (control, receivers) = control_plane(cores);
    let mut executors = Vec::with_capacity(cores);
    for (core, receivers) in receivers.into_iter().enumerate() {
        let cpu = config.pin.then(|| config.cpus[core]);
        let config = config.clone();
        let control = control.clone();
        let snapshot = snapshot.clone();
        let listeners = [core_listeners[core], bootstrap_listeners[core]];
        // Core 0 runs the controller, and in a quorum talks to the quorum thread.
        let quorum = if core == 0 { quorum.take() } else { None };
        let metrics = core_metrics[core].clone();
        let handle = executor_builder(&format!("spindle-core-{core}"), cpu)
            .spawn(move || async move {
                run_core(
                    core as u32,
                    config,
                    control,
                    receivers,
                    snapshot,
                    CoreOutside { listeners, metrics },
                    quorum,
                )
                .await
            })
            .map_err(|e| format!("starting core {core}: {e}"))?;
        executors.push(handle);
    }
    let signal_control = control.clone();
    std::thread::Builder::new()
        .name("spindle-signals".into())
        .spawn(move || wait_for_shutdown_signal(signals, signal_control))
        .map_err(|e| format!("starting the signal thread: {e}"))?;
    // One watcher thread per core reports when its executor ends, however it ends (a panic
    // anywhere on that core unwinds out of its executor), so the first failure is seen at
    // once, not when the cores before it in line have been joined.
    let (exits, exited) = std::sync::mpsc::channel();
    for (core, handle) in executors.into_iter().enumerate() {
        let exits = exits.clone();
        std::thread::Builder::new()
            .name(format!("spindle-watch-{core}"))
            .spawn(move || {
                let outcome = match handle.join() {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(reason)) => Err(reason),
                    Err(e) => Err(format!("stopped: {e}")),
                };
                let _ = exits.send((core, outcome));
            })
            .map_err(|e| format!("starting core {core}'s watcher: {e}"))?;
    }
    drop(exits);
    let mut failure: Option<String> = None;
    for ended in 0..cores {
        // Once a core has failed, the others get a bounded time to stop cleanly: a core
        // that died may hold what they wait for, and a half-alive broker must not linger.
        let next = match &failure {
            None => exited.recv().ok(),
            Some(_) => exited.recv_timeout(SHUTDOWN_DRAIN_MAX).ok(),
        };
        let Some((core, outcome)) = next else {
            tracing::error!("{} cores did not stop in time", cores - ended);
            break;
        };
        if let Err(reason) = outcome {
            tracing::error!(core, "core failed: {reason}; stopping the broker");
            failure.get_or_insert(format!("core {core}: {reason}"));
            control.shutdown_all();
        }
    }
    match failure {
        Some(reason) => Err(reason),
        None => {
            tracing::info!("shut down cleanly");
            Ok(())
        }
    }
}

/// How often start-up says it is still waiting for the quorum.
const QUORUM_WAIT_REPORT: Duration = Duration::from_secs(5);

/// Starts this node's quorum member and waits until the quorum has applied this node's
/// registration (so the first snapshot the cores serve knows every node registered so far
/// and this node's ports). SIGINT/SIGTERM while waiting end start-up.
fn join_quorum(
    config: &BrokerConfig,
    voters: &BTreeMap<u32, String>,
    local: NodeEndpoints,
    signals: &mut Signals,
) -> Result<
    (
        Arc<ClusterSnapshot>,
        QuorumHandle,
        async_channel::Receiver<Applied>,
    ),
    String,
> {
    let quorum_config = QuorumConfig {
        node_id: config.node_id,
        voters: voters.clone(),
        dir: config.data_dir.join("quorum"),
        tick: config.quorum_tick,
        session_timeout: config.broker_session_timeout,
        leader_rebalance_interval: config.leader_rebalance_interval,
    };
    let local_node = LocalNode {
        endpoints: local.clone(),
        cluster_id_candidate: crate::cluster::controller::new_cluster_id(),
        incarnation: crate::cluster::metadata::new_incarnation(),
    };
    let (handle, applied) = start_quorum(quorum_config, local_node)?;
    let started = std::time::Instant::now();
    let mut reported = started;
    // The newest snapshot seen: the one that applies this process's registration may come
    // before (it changed the metadata) the registration is known to be this process's.
    let mut latest: Option<Arc<ClusterSnapshot>> = None;
    loop {
        match applied.try_recv() {
            Ok(Applied {
                snapshot,
                registered,
                ..
            }) => {
                if snapshot.is_some() {
                    latest = snapshot;
                }
                // A restarted node replays its own log first, which already names it:
                // it serves only once its new registration went through a majority.
                let Some(snapshot) = latest.clone().filter(|snapshot| {
                    registered && snapshot.nodes.get(&config.node_id) == Some(&local)
                }) else {
                    continue;
                };
                tracing::info!(
                    "joined the metadata quorum in {:?}: {} nodes registered",
                    started.elapsed(),
                    snapshot.nodes.len()
                );
                return Ok((snapshot, handle, applied));
            }
            Err(async_channel::TryRecvError::Closed) => {
                return Err("the quorum thread stopped during start-up".into());
            }
            Err(async_channel::TryRecvError::Empty) => {}
        }
        if signals.pending().next().is_some() {
            return Err("stopped by a signal while waiting for the metadata quorum".into());
        }
        if reported.elapsed() >= QUORUM_WAIT_REPORT {
            reported = std::time::Instant::now();
            tracing::warn!(
                "waiting for the metadata quorum ({} voters; a majority must be up) for {:?}",
                voters.len(),
                started.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn bind_listener(address: SocketAddr, reuse_port: bool) -> std::io::Result<Socket> {
    let domain = if address.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket)
}

fn local_port(socket: &Socket) -> Result<u16, String> {
    socket
        .local_addr()
        .ok()
        .and_then(|address| address.as_socket())
        .map(|address| address.port())
        .ok_or_else(|| "reading a listener's port".to_string())
}

/// Waits for SIGINT or SIGTERM (registered before the broker announced itself, so one sent
/// the moment the "listening" line appears is not lost), then stops every core.
fn wait_for_shutdown_signal(mut signals: Signals, control: ControlHandle) {
    if let Some(signal) = signals.forever().next() {
        tracing::info!("signal {signal}: shutting down");
        control.shutdown_all();
    }
}

/// What a core is handed from the process: its two listening sockets (its own port,
/// the shared bootstrap port) and the counters the metrics thread reads.
struct CoreOutside {
    listeners: [RawFd; 2],
    metrics: Arc<CoreMetrics>,
}

async fn run_core(
    core: u32,
    config: Arc<BrokerConfig>,
    control: ControlHandle,
    receivers: CoreReceivers,
    snapshot: Arc<ClusterSnapshot>,
    outside: CoreOutside,
    quorum: Option<(QuorumHandle, async_channel::Receiver<Applied>)>,
) -> Result<(), String> {
    let CoreOutside { listeners, metrics } = outside;
    prepare_executor(&config.data_dir)
        .await
        .map_err(|e| format!("preparing direct I/O in {}: {e}", config.data_dir.display()))?;
    // In a cluster, groups live in the replicated `__consumer_offsets` partitions this core
    // comes to lead; on one node, in the core's own group log.
    let groups = if config.quorum.is_some() {
        GroupCoordinator::in_offsets_topic(core, config.groups)
    } else {
        GroupCoordinator::open(
            core,
            &config.data_dir,
            config.groups,
            GROUP_LOG_COMPACT_BYTES_MIN,
        )
        .await
        .map_err(|e| format!("opening the group log: {e}"))?
    };
    let producer_ids = ProducerIdAllocator::open(&config.data_dir, config.node_id, core)
        .map_err(|e| format!("opening producer ids: {e}"))?;
    let shard = Rc::new(Shard::new(
        core,
        config.clone(),
        control.clone(),
        snapshot.clone(),
        groups,
        producer_ids,
        metrics,
    ));
    offsets_topic::adopt_snapshot(&shard, snapshot.clone()).await;
    match (receivers.controller_inbox, quorum) {
        (Some(inbox), Some((handle, applied))) => {
            shard.tasks.spawn_tracked(
                TaskKind::Requests,
                "controller",
                run_quorum_controller(
                    inbox,
                    applied,
                    control.clone(),
                    handle,
                    snapshot,
                    config.default_partitions,
                    config.default_replication_factor,
                ),
            );
        }
        // Ends when shutdown closes its inbox; a metadata change in progress completes.
        (Some(inbox), None) => {
            shard.tasks.spawn_tracked(
                TaskKind::Requests,
                "controller",
                run_controller(
                    inbox,
                    control.clone(),
                    config.data_dir.clone(),
                    snapshot,
                    config.default_partitions,
                ),
            );
        }
        _ => {}
    }
    let control_task = {
        let shard = shard.clone();
        let inbox = receivers.inbox;
        glommio::spawn_local(async move {
            while let Ok(message) = inbox.recv().await {
                match message {
                    CoreMessage::Apply { snapshot, ack } => {
                        offsets_topic::adopt_snapshot(&shard, snapshot).await;
                        let _ = ack.send(()).await;
                    }
                    CoreMessage::Shutdown => {
                        shard.begin_shutdown();
                    }
                }
            }
        })
    };
    spawn_maintenance(&shard);
    if config.fault_panic_core == Some(core) {
        glommio::spawn_local(async move {
            glommio::timer::sleep(Duration::from_millis(200)).await;
            panic!("fault injection: core {core} panics outside any connection");
        })
        .detach();
    }
    let mut accept_tasks = Vec::new();
    for fd in listeners {
        // SAFETY: `fd` is a bound, listening socket this core alone owns from here on.
        let listener = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
        let shard = shard.clone();
        let queue = shard.tasks.queue(TaskKind::Requests);
        accept_tasks.push(
            glommio::spawn_local_into(accept_loop(shard, listener), queue)
                .map_err(|e| format!("starting core {core}'s accept loop: {e}"))?,
        );
    }
    tracing::info!(core, "serving");
    shard.shutdown_started().await;
    for task in accept_tasks {
        task.await;
    }
    // Connections finish the requests they have read; maintenance ends its round.
    if !shard.tasks.close(SHUTDOWN_DRAIN_MAX).await {
        tracing::warn!(
            core,
            "connections still busy after {SHUTDOWN_DRAIN_MAX:?}; closing the logs under them"
        );
    }
    shard.close_all().await;
    drop(control_task);
    tracing::info!(core, "stopped");
    Ok(())
}

async fn accept_loop(shard: Rc<Shard>, listener: glommio::net::TcpListener) {
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            shard.shutdown_started().await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok(stream)) => {
                let peer = stream
                    .peer_addr()
                    .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                shard.tasks.spawn_tracked(
                    TaskKind::Requests,
                    "connection",
                    connection::serve_connection(shard.clone(), stream, peer),
                );
            }
            Some(Err(e)) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(core = shard.core, "accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The shard's upkeep: named loops in the maintenance queue, each ending as soon as
/// shutdown begins (the shard's gate waits for the round in progress).
fn spawn_maintenance(shard: &Rc<Shard>) {
    let tasks = &shard.tasks;
    tasks.spawn_tracked(
        TaskKind::Requests,
        "replica-fetchers",
        replica_fetcher::run_replica_fetchers(shard.clone()),
    );
    tasks.spawn_tracked(
        TaskKind::Maintenance,
        "housekeeping",
        housekeeping(shard.clone()),
    );
    tasks.spawn_tracked(TaskKind::Cleaner, "log-cleaner", log_cleaner(shard.clone()));
    tasks.spawn_tracked(
        TaskKind::Maintenance,
        "reopen-failed-logs",
        reopen_failed_logs(shard.clone()),
    );
    tasks.spawn_tracked(
        TaskKind::Maintenance,
        "group-timeouts",
        group_timeouts(shard.clone()),
    );
    tasks.spawn_tracked(
        TaskKind::Maintenance,
        "in-sync-replicas",
        report_in_sync_replicas(shard.clone()),
    );
    tasks.spawn_tracked(
        TaskKind::Maintenance,
        "partition-gauges",
        publish_partition_gauges(shard.clone()),
    );
}

/// Copies the partitions' offsets and sizes for the metrics endpoint, once a second.
async fn publish_partition_gauges(shard: Rc<Shard>) {
    while sleep_unless_shutdown(&shard, Duration::from_secs(1)).await {
        shard.publish_partition_gauges();
    }
}

/// Retention and segment rolling.
async fn housekeeping(shard: Rc<Shard>) {
    while sleep_unless_shutdown(&shard, shard.config.retention_check_interval).await {
        shard.housekeeping(now_ms()).await;
    }
}

/// Compaction: every `--log-cleaner-backoff-ms`, cleans the compacted logs that are due.
async fn log_cleaner(shard: Rc<Shard>) {
    while sleep_unless_shutdown(&shard, shard.config.log_cleaner_backoff).await {
        shard.clean_logs(now_ms()).await;
    }
}

/// Logs whose writes failed (a full disk) are opened again, with a backoff that grows
/// while the cause lasts, so appends resume when space returns.
async fn reopen_failed_logs(shard: Rc<Shard>) {
    let mut backoff = FAILED_LOG_RETRY_MIN;
    while sleep_unless_shutdown(&shard, backoff).await {
        let (_, still_failed) = shard.reopen_failed_logs().await;
        backoff = if still_failed > 0 {
            (backoff * 2).min(FAILED_LOG_RETRY_MAX)
        } else {
            FAILED_LOG_RETRY_MIN
        };
    }
}

/// How often leaders check their followers against the lag limit (and let the high
/// watermark follow their own writes when no follower is in sync).
const IN_SYNC_CHECK_INTERVAL: Duration = Duration::from_millis(100);

async fn report_in_sync_replicas(shard: Rc<Shard>) {
    while sleep_unless_shutdown(&shard, IN_SYNC_CHECK_INTERVAL).await {
        shard.report_in_sync_replicas().await;
    }
}

/// Session and rebalance timeouts, and persisting groups that settled.
async fn group_timeouts(shard: Rc<Shard>) {
    while sleep_unless_shutdown(&shard, GROUP_TICK_INTERVAL).await {
        shard.groups.tick().await;
    }
}

/// Sleeps `interval`; false (at once) if shutdown begins first.
async fn sleep_unless_shutdown(shard: &Shard, interval: Duration) -> bool {
    futures_lite::future::or(
        async {
            glommio::timer::sleep(interval).await;
            true
        },
        async {
            shard.shutdown_started().await;
            false
        },
    )
    .await
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
