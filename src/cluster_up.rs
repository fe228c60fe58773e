//! `spindle cluster up`: a local cluster for trying replication-free multi-node Spindle on
//! one machine. Starts `--nodes` copies of this binary as `spindle serve` processes on
//! 127.0.0.1, each with its own data directory and quorum address, prints their bootstrap
//! addresses, and stops them all (SIGTERM, then waits) on Ctrl-C or SIGTERM, or when one
//! of them exits. Runs on the main thread of the launcher process.
//!
//! Ports: node N listens for clients on `base + 100 * N`, its cores on the next ports, and
//! the quorum on `base + 100 * N + 99`.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(clap::Args, Debug)]
pub struct ClusterUpArgs {
    /// Nodes to start (a majority must run for the cluster to serve).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub nodes: u32,
    /// Each node's data lives in `<data-dir>/node-N`.
    #[arg(long, default_value = "./cluster")]
    pub data_dir: PathBuf,
    /// Node 0's client port; node N's is this + 100 * N.
    #[arg(long, default_value_t = 9092, value_parser = clap::value_parser!(u16).range(1..=64_000))]
    pub base_port: u16,
    /// Cores (brokers) per node.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=98))]
    pub cores_per_node: u32,
}

/// The `(client port, quorum port)` of node `node`.
fn ports(args: &ClusterUpArgs, node: u32) -> Option<(u16, u16)> {
    let client = u32::from(args.base_port) + 100 * node;
    let quorum = client + 99;
    Some((u16::try_from(client).ok()?, u16::try_from(quorum).ok()?))
}

pub fn cluster_up(args: &ClusterUpArgs) -> ExitCode {
    let Ok(binary) = std::env::current_exe() else {
        eprintln!("spindle: cannot find this program's path to start the nodes");
        return ExitCode::from(1);
    };
    let Some(nodes) = (0..args.nodes)
        .map(|node| ports(args, node))
        .collect::<Option<Vec<_>>>()
    else {
        eprintln!(
            "spindle: --base-port {} leaves no room for {} nodes",
            args.base_port, args.nodes
        );
        return ExitCode::from(2);
    };
    let quorum = nodes
        .iter()
        .enumerate()
        .map(|(node, (_, quorum))| format!("{node}@127.0.0.1:{quorum}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("spindle: registering signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let mut children: Vec<Child> = Vec::new();
    for (node, (client, _)) in nodes.iter().enumerate() {
        let started = Command::new(&binary)
            .arg("serve")
            .args(["--node-id", &node.to_string()])
            .args(["--quorum", &quorum])
            .args(["--listen", &format!("127.0.0.1:{client}")])
            // Free ports, so the nodes do not contend for 9644: each node's start-up line
            // names its own.
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(["--cores", &args.cores_per_node.to_string()])
            .arg("--no-pin")
            .arg("--data-dir")
            .arg(args.data_dir.join(format!("node-{node}")))
            .stdin(Stdio::null())
            .spawn();
        match started {
            Ok(child) => children.push(child),
            Err(e) => {
                eprintln!("spindle: starting node {node}: {e}");
                stop_all(&mut children);
                return ExitCode::from(1);
            }
        }
    }
    let bootstrap: Vec<String> = nodes
        .iter()
        .map(|(client, _)| format!("127.0.0.1:{client}"))
        .collect();
    println!(
        "cluster of {} nodes; bootstrap servers: {}",
        args.nodes,
        bootstrap.join(",")
    );
    println!("Ctrl-C stops every node");
    loop {
        if signals.pending().next().is_some() {
            stop_all(&mut children);
            return ExitCode::SUCCESS;
        }
        if let Some(node) = children
            .iter_mut()
            .position(|child| child.try_wait().ok().flatten().is_some())
        {
            eprintln!("spindle: node {node} exited; stopping the others");
            stop_all(&mut children);
            return ExitCode::from(1);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop_all(children: &mut [Child]) {
    for child in children.iter() {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    }
    for child in children.iter_mut() {
        let _ = child.wait();
    }
}
