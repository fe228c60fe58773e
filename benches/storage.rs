//! Storage engine benchmark: append and read throughput of `PartitionLog` on the real
//! device, next to the device's own direct-write limit measured in the same run.
//!
//! A custom harness (not criterion): each case moves gigabytes through io_uring on one
//! glommio executor, which criterion's many-short-samples model does not fit.
//!
//! ```text
//! cargo bench --bench storage -- [--dir DIR] [--gib N] [--rounds N] [--markdown FILE] [--cases a,b]
//!     [--in-flight N] [--write-buffer-kib N] [--dirty-mib N] [--preallocate-mib N] [--segment-mib N]
//!     [--no-raw] [--verbose]
//! ```
//!
//! Cases:
//! - `raw`: DmaFile writes of 1 MiB aligned buffers to a preallocated file, 1 and 4 in
//!   flight: the device limit everything else is compared with.
//! - `append-<16k|1m>-<never|interval|always>`: one producer appending batches as fast as
//!   backpressure allows, then a final flush.
//! - `commit64-<interval|always>`: 64 concurrent producers, each awaiting its own batch
//!   (written under interval, durable under always): group commit under load.
//! - `read-memory`, `read-disk`: reading the log back from the in-memory cache and cold
//!   from the device.
//! - `shape-<K>k-x<N>-p<P>-s<S>[-f<F>[-c1]]` (diagnostic, only when named): a raw loop shaped
//!   like the log's flusher: K KiB writes, N in flight, from P distinct buffers, the file
//!   preallocated S MiB at a time (0: all up front); with `f`, each buffer is first filled
//!   by copying 16 KiB pieces from an F MiB source, and with `c1` each piece is CRC-32C'd
//!   first, as append does. It separates what the device does with the log's write
//!   pattern from what the log's own work costs.
//!
//! Every timed section starts after [`settle`], so no case pays for an earlier case's file
//! deletions.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use glommio::io::{DmaFile, OpenOptions};
use spindle::runtime::run_local;
use spindle::storage::{DmaStorage, FlushPolicy, LogConfig, PartitionLog};
use spindle_protocol::record_batch::{RecordBatchHeader, build_batch};

struct Args {
    dir: PathBuf,
    bytes: u64,
    markdown: Option<PathBuf>,
    cases: Option<Vec<String>>,
    /// Overrides of the log's pipeline settings, for tuning sweeps.
    writes_in_flight_max: Option<usize>,
    write_buffer_bytes: Option<usize>,
    dirty_bytes_max: Option<usize>,
    preallocate_bytes: Option<u64>,
    segment_bytes: Option<u64>,
    rounds: usize,
    /// Leave out the raw-1m-x4 case that `--cases` otherwise adds (profiling one case).
    no_raw: bool,
    /// Report each settle and each append case's timed section in CLOCK_MONOTONIC seconds,
    /// for `perf record -k CLOCK_MONOTONIC` + `perf report --time START,END`.
    verbose: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        dir: PathBuf::from("target/bench-storage"),
        bytes: 2 << 30,
        markdown: None,
        cases: None,
        writes_in_flight_max: None,
        write_buffer_bytes: None,
        dirty_bytes_max: None,
        preallocate_bytes: None,
        segment_bytes: None,
        rounds: 3,
        no_raw: false,
        verbose: false,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--dir" => args.dir = PathBuf::from(iter.next().expect("--dir DIR")),
            "--gib" => {
                let gib: f64 = iter.next().and_then(|v| v.parse().ok()).expect("--gib N");
                args.bytes = (gib * (1u64 << 30) as f64) as u64;
            }
            "--markdown" => {
                args.markdown = Some(PathBuf::from(iter.next().expect("--markdown FILE")))
            }
            "--cases" => {
                args.cases = Some(
                    iter.next()
                        .expect("--cases a,b")
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                )
            }
            "--in-flight" => args.writes_in_flight_max = iter.next().and_then(|v| v.parse().ok()),
            "--write-buffer-kib" => {
                args.write_buffer_bytes = iter
                    .next()
                    .and_then(|v| v.parse::<usize>().ok())
                    .map(|k| k << 10)
            }
            "--dirty-mib" => {
                args.dirty_bytes_max = iter
                    .next()
                    .and_then(|v| v.parse::<usize>().ok())
                    .map(|m| m << 20)
            }
            "--rounds" => {
                args.rounds = iter
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&r| r > 0)
                    .expect("--rounds N (N > 0)")
            }
            "--preallocate-mib" => {
                args.preallocate_bytes = iter
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|m| m << 20)
            }
            "--segment-mib" => {
                args.segment_bytes = iter
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|m| m << 20)
            }
            "--no-raw" => args.no_raw = true,
            "--verbose" => args.verbose = true,
            "--bench" => {}
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    args
}

struct Row {
    case: String,
    bytes: u64,
    seconds: f64,
    /// CPU seconds of the executor thread (user + system) during the case.
    cpu_seconds: f64,
    note: String,
    /// The raw-1m-x4 figure measured just before this case (GB/s): its ratio's denominator.
    raw_gbps: Option<f64>,
}

/// CPU time of the calling thread (the executor's), user + system, in seconds.
fn thread_cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

impl Row {
    fn gb_per_sec(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e9
    }
}

fn wanted(args: &Args, case: &str) -> bool {
    args.cases
        .as_ref()
        .is_none_or(|cases| cases.iter().any(|c| case.starts_with(c.as_str())))
}

thread_local! {
    /// `--verbose`, for the helpers that report through it.
    static VERBOSE: Cell<bool> = const { Cell::new(false) };
}

/// CLOCK_MONOTONIC now, in seconds: the clock `perf record -k CLOCK_MONOTONIC` stamps with.
fn monotonic_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// Waits until the file system has finished with earlier deletions. This root file system
/// is mounted with `discard`: a deleted file's blocks are freed once glommio's asynchronous
/// close of its last descriptor runs, and discarded when the journal next commits; on this
/// VM's virtual disk those discards took hundreds of milliseconds and, unsettled, landed in
/// the next case's timed section (the raw file's 1.5 GiB inside an append case). So: let the
/// executor run its pending closes, force the commit with `syncfs`, and repeat until the
/// device's discard counter stops moving. Every case, the raw limit included, then starts on
/// an idle device.
async fn settle(dir: &Path) {
    let started = Instant::now();
    let file = std::fs::File::open(dir).expect("open bench dir");
    let mut last = None;
    for _ in 0..100 {
        glommio::timer::sleep(Duration::from_millis(20)).await;
        // SAFETY: a valid file descriptor owned by `file` for the duration of the call.
        let rc = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&file)) };
        assert_eq!(rc, 0, "syncfs: {}", std::io::Error::last_os_error());
        let now = discard_stats(dir);
        if now == last {
            break;
        }
        last = now;
    }
    if VERBOSE.get() {
        eprintln!(
            "settled in {:?}; device discards (count, ms) so far: {last:?}",
            started.elapsed()
        );
    }
}

/// Discards (completed, milliseconds) of the block device holding `dir`, from sysfs.
fn discard_stats(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let text = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/stat")).ok()?;
    let fields: Vec<u64> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    Some((*fields.get(11)?, *fields.get(14)?))
}

/// Incompressible bytes (xorshift), so a device that compresses or dedupes gets no edge.
fn fill_random(bytes: &mut [u8], seed: u64) {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for chunk in bytes.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

/// A batch of about `bytes` bytes: records of 1000-byte incompressible values (the usual
/// benchmark message size).
fn batch_of(bytes: usize) -> Vec<u8> {
    let records = (bytes / 1024).max(1);
    let values: Vec<Vec<u8>> = (0..records)
        .map(|index| {
            let mut value = vec![0u8; 1000];
            fill_random(&mut value, index as u64 + 1);
            value
        })
        .collect();
    let refs: Vec<(Option<&[u8]>, &[u8])> = values
        .iter()
        .map(|value| (None, value.as_slice()))
        .collect();
    build_batch(1_700_000_000_000, &refs)
}

/// An empty file at `path` for a raw write loop.
async fn fresh_raw_file(path: &Path) -> Rc<DmaFile> {
    let _ = std::fs::remove_file(path);
    Rc::new(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .dma_open(path)
            .await
            .expect("create raw file"),
    )
}

/// Ends a raw loop's timed section with an fdatasync; returns its wall and CPU seconds,
/// then closes and deletes the file (its discards are the next `settle`'s business).
async fn finish_raw_file(
    file: Rc<DmaFile>,
    path: &Path,
    start: Instant,
    cpu_start: f64,
) -> (f64, f64) {
    file.fdatasync().await.expect("fdatasync");
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = thread_cpu_seconds() - cpu_start;
    let file = Rc::try_unwrap(file).unwrap_or_else(|_| panic!("writers still hold the file"));
    file.close().await.expect("close raw file");
    let _ = std::fs::remove_file(path);
    (seconds, cpu_seconds)
}

async fn raw_write(dir: &Path, bytes: u64, in_flight: usize) -> Row {
    let path = dir.join(format!("raw-{in_flight}.bin"));
    let file = fresh_raw_file(&path).await;
    file.pre_allocate(bytes, false).await.expect("preallocate");
    let buffer_bytes = 1usize << 20;
    let count = bytes / buffer_bytes as u64;
    let next = Rc::new(Cell::new(0u64));
    let mut workers = Vec::new();
    settle(dir).await;
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    for _ in 0..in_flight {
        let file = file.clone();
        let next = next.clone();
        // One pre-filled, incompressible buffer per worker, rewritten each time: the device
        // limit with no CPU work in the loop.
        let mut buffer = file.alloc_dma_buffer(buffer_bytes);
        fill_random(
            buffer.as_bytes_mut(),
            in_flight as u64 + workers.len() as u64,
        );
        let buffer = Rc::new(buffer);
        workers.push(glommio::spawn_local(async move {
            loop {
                let index = next.get();
                if index >= count {
                    break;
                }
                next.set(index + 1);
                file.write_rc_at(buffer.clone(), index * buffer_bytes as u64)
                    .await
                    .expect("raw write");
            }
        }));
    }
    for worker in workers {
        worker.await;
    }
    let (seconds, cpu_seconds) = finish_raw_file(file, &path, start, cpu_start).await;
    Row {
        case: format!("raw-1m-x{in_flight}"),
        bytes: count * buffer_bytes as u64,
        seconds,
        cpu_seconds,
        raw_gbps: None,
        note: format!("DmaFile, 1 MiB buffers, {in_flight} in flight, preallocated"),
    }
}

/// The cases of a round after the raw ones, each run after its own raw pair.
enum CaseKind {
    Shape(String),
    Append(usize, &'static str),
    Commit(&'static str),
    /// `read-memory` and `read-disk`, one pair for both.
    Read,
}

/// `read-raw`: the read-disk log's segment files read back with glommio `read_at`, 4 MiB
/// at a time, one in flight, nothing checked or copied: the device's cold-read limit for
/// the log's read pattern.
async fn raw_read(log_dir: &Path, dir: &Path) -> Row {
    let mut names: Vec<PathBuf> = std::fs::read_dir(log_dir)
        .expect("list log")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "log"))
        .collect();
    names.sort();
    let mut files = Vec::new();
    for name in &names {
        files.push(
            OpenOptions::new()
                .read(true)
                .dma_open(name)
                .await
                .expect("open segment"),
        );
    }
    settle(dir).await;
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let mut read = 0u64;
    for file in &files {
        let mut position = 0u64;
        loop {
            let chunk = file.read_at(position, 4 << 20).await.expect("read");
            if chunk.is_empty() {
                break;
            }
            position += chunk.len() as u64;
        }
        read += position;
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = thread_cpu_seconds() - cpu_start;
    for file in files {
        file.close().await.expect("close");
    }
    Row {
        case: "read-raw".into(),
        bytes: read,
        seconds,
        cpu_seconds,
        raw_gbps: None,
        note: "the read-disk segments through DmaFile::read_at, 4 MiB, 1 in flight, no checks"
            .into(),
    }
}

/// The `shape-...` diagnostic case (see the header).
async fn raw_shape(dir: &Path, bytes: u64, name: &str) -> Row {
    let parts: Option<Vec<u64>> = name
        .split('-')
        .skip(1)
        .zip(["", "x", "p", "s", "f", "c"])
        .map(|(part, prefix)| {
            part.strip_prefix(prefix)?
                .trim_end_matches('k')
                .parse()
                .ok()
        })
        .collect();
    let parts = parts
        .filter(|p| p.len() >= 4 && p[0] > 0 && p[0] % 4 == 0 && p[1] > 0 && p[2] >= p[1])
        .unwrap_or_else(|| {
            eprintln!("bad case {name}: want shape-<KiB>k-x<in flight>-p<buffers >= in flight>-s<MiB>[-f<MiB>[-c1]]");
            std::process::exit(2)
        });
    let (buffer_bytes, in_flight, pool, step) = (
        (parts[0] << 10) as usize,
        parts[1] as usize,
        parts[2] as usize,
        parts[3] << 20,
    );
    let source_bytes = parts.get(4).copied().unwrap_or(0) << 20;
    if source_bytes > 0 && source_bytes <= buffer_bytes as u64 {
        eprintln!("bad case {name}: the source must be larger than one buffer");
        std::process::exit(2);
    }
    let crc = parts.get(5) == Some(&1);
    let mut crc_sum = 0u32;
    let mut source = vec![0u8; source_bytes as usize];
    fill_random(&mut source, 5);
    let path = dir.join("shape.bin");
    let file = fresh_raw_file(&path).await;
    let count = bytes / buffer_bytes as u64;
    if step == 0 {
        file.pre_allocate(bytes, false).await.expect("preallocate");
    }
    let mut buffers: Vec<Rc<glommio::io::DmaBuffer>> = (0..pool)
        .map(|i| {
            let mut buffer = file.alloc_dma_buffer(buffer_bytes);
            fill_random(buffer.as_bytes_mut(), 77 + i as u64);
            Rc::new(buffer)
        })
        .collect();
    settle(dir).await;
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let mut pending = std::collections::VecDeque::new();
    let mut preallocated = 0u64;
    for index in 0..count {
        let position = index * buffer_bytes as u64;
        if step > 0 && position + buffer_bytes as u64 > preallocated {
            preallocated += step;
            file.pre_allocate(preallocated, false)
                .await
                .expect("preallocate");
        }
        if pending.len() >= in_flight {
            let oldest: glommio::task::JoinHandle<()> = pending.pop_front().expect("pending");
            oldest.await;
        }
        let file = file.clone();
        if source_bytes > 0 {
            // The write that last used this buffer has finished (pool > in flight).
            let at =
                ((index * buffer_bytes as u64) % (source_bytes - buffer_bytes as u64)) as usize;
            let target = Rc::get_mut(&mut buffers[index as usize % pool])
                .expect("buffer back from its write")
                .as_bytes_mut();
            for (piece, out) in source[at..at + buffer_bytes]
                .chunks(16 << 10)
                .zip(target.chunks_mut(16 << 10))
            {
                if crc {
                    crc_sum ^= spindle_protocol::record_batch::crc32c(piece);
                }
                out.copy_from_slice(piece);
            }
        }
        let buffer = buffers[index as usize % pool].clone();
        pending.push_back(
            glommio::spawn_local(async move {
                file.write_rc_at(buffer, position)
                    .await
                    .expect("shape write");
            })
            .detach(),
        );
    }
    for task in pending {
        task.await;
    }
    let (seconds, cpu_seconds) = finish_raw_file(file, &path, start, cpu_start).await;
    Row {
        case: name.to_string(),
        bytes: count * buffer_bytes as u64,
        seconds,
        cpu_seconds,
        raw_gbps: None,
        // The checksum is printed so the CRC work cannot be optimised away.
        note: format!(
            "raw loop: {} KiB x {in_flight} in flight, {pool} buffers, preallocated {}{} (crc {crc_sum:08x})",
            buffer_bytes >> 10,
            if step == 0 {
                "up front".to_string()
            } else {
                format!("every {} MiB", step >> 20)
            },
            match (source_bytes, crc) {
                (0, _) => String::new(),
                (s, false) => format!(", filled from {} MiB", s >> 20),
                (s, true) => format!(", CRC'd and filled from {} MiB", s >> 20),
            }
        ),
    }
}

/// The default log config with the pipeline overrides given on the command line.
fn log_config(args: &Args, flush: FlushPolicy) -> LogConfig {
    let defaults = LogConfig::default();
    let write_buffer_bytes = args
        .write_buffer_bytes
        .unwrap_or(defaults.write_buffer_bytes);
    let writes_in_flight_max = args
        .writes_in_flight_max
        .unwrap_or(defaults.writes_in_flight_max);
    LogConfig {
        flush,
        write_buffer_bytes,
        writes_in_flight_max,
        dirty_bytes_max: args
            .dirty_bytes_max
            .unwrap_or(defaults.dirty_bytes_max)
            .max(write_buffer_bytes * (writes_in_flight_max + 1)),
        preallocate_bytes: args.preallocate_bytes.unwrap_or(defaults.preallocate_bytes),
        segment_bytes: args.segment_bytes.unwrap_or(defaults.segment_bytes),
        ..defaults
    }
}

fn policy(name: &str) -> FlushPolicy {
    match name {
        "never" => FlushPolicy::Never,
        "interval" => FlushPolicy::Interval {
            interval: Duration::from_millis(100),
            bytes: 64 << 20,
        },
        "always" => FlushPolicy::Always,
        other => panic!("unknown policy {other}"),
    }
}

async fn fresh_log(dir: &Path, name: &str, config: LogConfig) -> PartitionLog<DmaStorage> {
    let dir = dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    PartitionLog::open(DmaStorage, &dir, config)
        .await
        .expect("open log")
}

async fn append_case(
    args: &Args,
    dir: &Path,
    batch_bytes: usize,
    policy_name: &str,
    bytes: u64,
) -> Row {
    let batch = batch_of(batch_bytes);
    let config = log_config(args, policy(policy_name));
    let log = fresh_log(dir, "append", config).await;
    log.flush().await.expect("create first segment");
    let count = bytes / batch.len() as u64;
    // The producers' buffers, filled before timing as socket reads would have filled them:
    // this measures the log (validation, offset assignment, its one copy into direct-I/O
    // buffers, writes, syncs), not the producer.
    let inputs: Vec<BytesMut> = (0..count)
        .map(|_| BytesMut::from(batch.as_slice()))
        .collect();
    settle(dir).await;
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let timed_from = monotonic_seconds();
    for input in inputs {
        log.append(input).await.expect("append");
    }
    log.flush().await.expect("flush");
    let seconds = start.elapsed().as_secs_f64();
    if VERBOSE.get() {
        eprintln!(
            "timed section (CLOCK_MONOTONIC): {timed_from:.6},{:.6}",
            monotonic_seconds()
        );
    }
    let cpu_seconds = thread_cpu_seconds() - cpu_start;
    let total = count * batch.len() as u64;
    log.delete().await.expect("delete");
    Row {
        case: format!(
            "append-{}-{policy_name}",
            if batch_bytes >= 1 << 20 { "1m" } else { "16k" }
        ),
        bytes: total,
        seconds,
        cpu_seconds,
        raw_gbps: None,
        note: format!("1 producer, {} B batches, {count} batches", batch.len()),
    }
}

async fn commit_case(args: &Args, dir: &Path, policy_name: &str, bytes: u64) -> Row {
    let producers = 64u64;
    let batch = Rc::new(batch_of(16 << 10));
    let config = log_config(args, policy(policy_name));
    let log = fresh_log(dir, "commit", config).await;
    log.flush().await.expect("create first segment");
    let per_producer = bytes / batch.len() as u64 / producers;
    let durable = policy_name == "always";
    settle(dir).await;
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let log = log.clone();
        let batch = batch.clone();
        tasks.push(glommio::spawn_local(async move {
            for _ in 0..per_producer {
                let info = log
                    .append(BytesMut::from(batch.as_slice()))
                    .await
                    .expect("append");
                if durable {
                    log.wait_durable(info.last_offset + 1)
                        .await
                        .expect("durable");
                } else {
                    log.wait_written(info.last_offset + 1)
                        .await
                        .expect("written");
                }
            }
        }));
    }
    for task in tasks {
        task.await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = thread_cpu_seconds() - cpu_start;
    let total = per_producer * producers * batch.len() as u64;
    log.delete().await.expect("delete");
    Row {
        case: format!("commit64-{policy_name}"),
        bytes: total,
        seconds,
        cpu_seconds,
        raw_gbps: None,
        note: format!(
            "64 producers, 16 KiB batches, each awaits {}",
            if durable { "durable" } else { "written" }
        ),
    }
}

/// Reads the log from offset 0 to `end` in 4 MiB reads; returns the bytes read.
async fn read_through(log: &PartitionLog<DmaStorage>, end: i64) -> u64 {
    let mut read = 0u64;
    let mut offset = 0;
    while offset < end {
        let batches = log.read(offset, 4 << 20).await.expect("read");
        read += batches.iter().map(|b| b.len() as u64).sum::<u64>();
        offset = next_offset(&batches);
    }
    read
}

fn next_offset(batches: &[bytes::Bytes]) -> i64 {
    RecordBatchHeader::decode(
        batches
            .last()
            .expect("a read below the end returns a batch"),
    )
    .expect("header")
    .next_offset()
}

async fn read_cases(dir: &Path, bytes: u64) -> Vec<Row> {
    let batch = batch_of(1 << 20);
    let mut rows = Vec::new();
    // From memory: a log whose cache holds everything appended.
    let memory_bytes = 256u64 << 20;
    let config = LogConfig {
        cache_bytes_max: memory_bytes as usize + (8 << 20),
        ..LogConfig::default()
    };
    let log = fresh_log(dir, "read-memory", config).await;
    let count = memory_bytes / batch.len() as u64;
    for _ in 0..count {
        log.append(BytesMut::from(batch.as_slice()))
            .await
            .expect("append");
    }
    log.flush().await.expect("flush");
    let end = log.log_end_offset();
    let passes = 8;
    settle(dir).await;
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let mut read = 0u64;
    for _ in 0..passes {
        read += read_through(&log, end).await;
    }
    rows.push(Row { case: "read-memory".into(), bytes: read, seconds: start.elapsed().as_secs_f64(), cpu_seconds: thread_cpu_seconds() - cpu_start, raw_gbps: None, note: format!("{passes} passes over 256 MiB held in the cache, 4 MiB reads: Bytes slices handed out per second, no bytes copied") });
    log.delete().await.expect("delete");

    // Cold: a log reopened with no cache, read sequentially from the device.
    let config = LogConfig {
        cache_bytes_max: 0,
        ..LogConfig::default()
    };
    let log_dir_name = "read-disk";
    let log = fresh_log(dir, log_dir_name, config.clone()).await;
    let count = bytes / batch.len() as u64;
    for _ in 0..count {
        log.append(BytesMut::from(batch.as_slice()))
            .await
            .expect("append");
    }
    log.close().await.expect("close");
    let log = PartitionLog::open(DmaStorage, &dir.join(log_dir_name), config)
        .await
        .expect("reopen");
    let end = log.log_end_offset();
    settle(dir).await;
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let read = read_through(&log, end).await;
    rows.push(Row {
        case: "read-disk".into(),
        bytes: read,
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: thread_cpu_seconds() - cpu_start,
        raw_gbps: None,
        note: "cold, reopened log, 4 MiB reads, CRC checked".into(),
    });
    log.close().await.expect("close");
    drop(log);
    rows.push(raw_read(&dir.join(log_dir_name), dir).await);
    let log = PartitionLog::open(DmaStorage, &dir.join(log_dir_name), LogConfig::default())
        .await
        .expect("reopen");
    log.delete().await.expect("delete");
    rows
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn main() {
    let args = parse_args();
    std::fs::create_dir_all(&args.dir).expect("bench dir");
    let dir = args.dir.canonicalize().expect("bench dir");
    let rounds = args.rounds;
    let markdown = args.markdown.clone();
    // This VM's disk drifts by tens of percent from minute to minute, so every case is
    // compared with a raw-1m-x4 run made just before it (after the same settle), not with one
    // figure per round.
    let rounds_rows: Vec<Vec<Row>> = run_local(&dir.clone(), async move {
        VERBOSE.set(args.verbose);
        let mut all = Vec::new();
        for round in 0..rounds {
            let mut rows = Vec::new();
            let report = |row: &Row| {
                eprintln!("round {round} {}: {:.3} GB/s", row.case, row.gb_per_sec());
            };
            // The raw limit right now, unless refused (profiling one case).
            let paired = |dir: PathBuf| {
                let no_raw = args.no_raw;
                let bytes = args.bytes;
                async move {
                    if no_raw {
                        return None;
                    }
                    let raw = raw_write(&dir, bytes, 4).await;
                    eprintln!("round {round} raw pair: {:.3} GB/s", raw.gb_per_sec());
                    Some(raw.gb_per_sec())
                }
            };
            for in_flight in [1, 4] {
                if wanted(&args, &format!("raw-1m-x{in_flight}")) {
                    let row = raw_write(&dir, args.bytes, in_flight).await;
                    report(&row);
                    rows.push(row);
                }
            }
            let mut cases: Vec<CaseKind> = Vec::new();
            for case in args
                .cases
                .iter()
                .flatten()
                .filter(|c| c.starts_with("shape-"))
            {
                cases.push(CaseKind::Shape(case.clone()));
            }
            for (batch_bytes, size) in [(16 << 10, "16k"), (1 << 20, "1m")] {
                for policy_name in ["never", "interval", "always"] {
                    if wanted(&args, &format!("append-{size}-{policy_name}")) {
                        cases.push(CaseKind::Append(batch_bytes, policy_name));
                    }
                }
            }
            for policy_name in ["interval", "always"] {
                if wanted(&args, &format!("commit64-{policy_name}")) {
                    cases.push(CaseKind::Commit(policy_name));
                }
            }
            if wanted(&args, "read") {
                cases.push(CaseKind::Read);
            }
            for case in cases {
                let raw_gbps = paired(dir.clone()).await;
                let case_rows = match case {
                    CaseKind::Shape(name) => vec![raw_shape(&dir, args.bytes, &name).await],
                    CaseKind::Append(batch_bytes, policy_name) => {
                        vec![append_case(&args, &dir, batch_bytes, policy_name, args.bytes).await]
                    }
                    CaseKind::Commit(policy_name) => {
                        vec![commit_case(&args, &dir, policy_name, args.bytes / 2).await]
                    }
                    CaseKind::Read => read_cases(&dir, args.bytes).await,
                };
                for mut row in case_rows {
                    row.raw_gbps = raw_gbps;
                    report(&row);
                    rows.push(row);
                }
            }
            all.push(rows);
        }
        all
    });
    let mut out = format!(
        "{} rounds of {:.1} GiB per case; median GB/s (min..max), and the median of each run's ratio to a raw-1m-x4 run made just before it\n\n",
        rounds,
        rounds_rows[0]
            .first()
            .map(|r| r.bytes as f64 / (1u64 << 30) as f64)
            .unwrap_or(0.0)
    );
    out.push_str("| case | GB/s median | min..max | of raw (median) | executor CPU busy | what |\n|---|---|---|---|---|---|\n");
    let names: Vec<String> = rounds_rows[0].iter().map(|r| r.case.clone()).collect();
    let mut medians = std::collections::HashMap::new();
    for name in &names {
        let mut speeds: Vec<f64> = rounds_rows
            .iter()
            .filter_map(|rows| rows.iter().find(|r| &r.case == name))
            .map(Row::gb_per_sec)
            .collect();
        let mut ratios: Vec<f64> = rounds_rows
            .iter()
            .filter_map(|rows| {
                let row = rows.iter().find(|r| &r.case == name)?;
                let raw = match row.raw_gbps {
                    Some(raw) => raw,
                    None => rows.iter().find(|r| r.case == "raw-1m-x4")?.gb_per_sec(),
                };
                Some(row.gb_per_sec() / raw)
            })
            .collect();
        let min = speeds.iter().copied().fold(f64::MAX, f64::min);
        let max = speeds.iter().copied().fold(0.0, f64::max);
        let speed = median(&mut speeds);
        medians.insert(name.clone(), speed);
        // A read from memory moves no bytes to a device, so a ratio to the write limit means
        // nothing there.
        let ratio = if ratios.is_empty() || name == "read-memory" {
            "-".to_string()
        } else {
            format!("{:.0}%", 100.0 * median(&mut ratios))
        };
        let note = &rounds_rows[0]
            .iter()
            .find(|r| &r.case == name)
            .expect("named")
            .note;
        let mut busy: Vec<f64> = rounds_rows
            .iter()
            .filter_map(|rows| rows.iter().find(|r| &r.case == name))
            .map(|row| row.cpu_seconds / row.seconds)
            .collect();
        let busy = format!("{:.0}%", 100.0 * median(&mut busy));
        let speed_text = if name == "read-memory" {
            format!("{speed:.1}")
        } else {
            format!("{speed:.3}")
        };
        out.push_str(&format!(
            "| {name} | {speed_text} | {min:.3}..{max:.3} | {ratio} | {busy} | {note} |\n"
        ));
    }
    let mut pairs: Vec<f64> = rounds_rows
        .iter()
        .flatten()
        .filter(|row| row.case != "read-disk")
        .filter_map(|row| row.raw_gbps)
        .collect();
    if !pairs.is_empty() {
        let min = pairs.iter().copied().fold(f64::MAX, f64::min);
        let max = pairs.iter().copied().fold(0.0, f64::max);
        out.push_str(&format!(
            "\nraw-1m-x4 pairs (the runs the ratios divide by): {} runs, median {:.3} GB/s ({min:.3}..{max:.3})\n",
            pairs.len(),
            median(&mut pairs)
        ));
    }
    if let (Some(always), Some(interval)) = (
        medians.get("commit64-always"),
        medians.get("commit64-interval"),
    ) {
        out.push_str(&format!(
            "\ncommit64: always/interval = {:.2} (target: within 2x, i.e. >= 0.50)\n",
            always / interval
        ));
    }
    print!("{out}");
    if let Some(path) = markdown {
        std::fs::write(&path, &out).expect("write markdown");
    }
}
