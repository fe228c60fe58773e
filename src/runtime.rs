//! Start-up facts about the host and glommio that every executor (and every test) goes
//! through: the locked-memory limit, and two workarounds for glommio 0.9.0 bugs, applied by
//! [`prepare_executor`]:
//!
//! - the direct-I/O "primer" against the EOPNOTSUPP read bug (upstream #605/#670);
//! - the park guard against an executor that parks forever with runnable tasks (fixed
//!   upstream in glommio/glommio#53, after 0.9.0).
//!
//! Runs once per process ([`raise_memlock_limit`]) and once per executor, on that executor's
//! core ([`prepare_executor`]).

use std::path::Path;
use std::time::Duration;

use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};

/// Name of the file each executor opens first. It lives in the data directory so that it is
/// on the same filesystem as the segments.
pub const DIRECT_IO_PRIMER_FILE: &str = ".spindle-direct-io-primer";
const DIRECT_IO_PRIMER_BYTES: usize = 4096;

/// Raises the soft RLIMIT_MEMLOCK to the hard limit. glommio locks memory for its rings;
/// the hard limit cannot be raised without privileges we may not have, so we take what is
/// allowed and go on (8 MiB suffices). Returns the limit now in force.
pub fn raise_memlock_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// Works around glommio 0.9's bug where, if the first direct-I/O file an executor opens is
/// new and empty, every later read on that executor fails with EOPNOTSUPP: the executor's
/// first open is an existing, non-empty file. Must run on each executor before it opens any
/// other file with direct I/O. Creates the primer file in `dir` if it is missing.
pub async fn prime_direct_io(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(DIRECT_IO_PRIMER_FILE);
    let needs_write = std::fs::metadata(&path)
        .map(|meta| meta.len() < DIRECT_IO_PRIMER_BYTES as u64)
        .unwrap_or(true);
    if needs_write {
        std::fs::write(&path, [0xA5u8; DIRECT_IO_PRIMER_BYTES])?;
    }
    let file = glommio::io::DmaFile::open(&path)
        .await
        .map_err(std::io::Error::from)?;
    let primed = file.read_at_aligned(0, DIRECT_IO_PRIMER_BYTES).await;
    file.close().await.map_err(std::io::Error::from)?;
    primed.map(|_| ()).map_err(std::io::Error::from)
}

/// How long a task may run before cooperative code (`glommio::yield_if_needed`) yields.
/// glommio submits and reaps io_uring work only between task-queue runs, so a shorter quota
/// retires finished writes sooner while a producer keeps the core busy; but glommio 0.9.0
/// hangs an executor when its thread is descheduled for longer than the quota at the wrong
/// moment (see [`PARK_GUARD_INTERVAL`]). With 0.5 ms that happened about once in ten test
/// runs on 2 busy vCPUs; with glommio's default of 100 ms it has not been seen, and the
/// storage benchmark moved by a few percent at most. Liveness first: 100 ms.
pub const TASK_QUOTA: Duration = Duration::from_millis(100);

/// How often the park guard wakes an idle executor. glommio 0.9.0's scheduler loop parks
/// (sleeps in io_uring_enter) whenever a tick "ran nothing", and a tick that starts after
/// the preempt timer already fired (the thread was descheduled for longer than the task
/// quota) runs nothing even when tasks are runnable; with no timer pending, nothing ever
/// wakes it. A periodic timer gives every park a timeout, so a lost tick costs at most
/// this long instead of hanging the core. It covers one lost tick, not a run of them (the
/// guard task must run to re-arm), which is why [`TASK_QUOTA`] stays long. Cost: one
/// wake-up per interval on an idle core.
pub const PARK_GUARD_INTERVAL: Duration = Duration::from_millis(2);

/// Prepares the current executor for Spindle's work; call first on every executor, before
/// it opens any file with direct I/O: starts the park guard and primes direct I/O in `dir`.
pub async fn prepare_executor(dir: &Path) -> std::io::Result<()> {
    glommio::spawn_local(async {
        loop {
            glommio::timer::sleep(PARK_GUARD_INTERVAL).await;
        }
    })
    .detach();
    prime_direct_io(dir).await
}

/// Builds an executor with Spindle's settings. `cpu` pins it to one core.
pub fn executor_builder(name: &str, cpu: Option<usize>) -> LocalExecutorBuilder {
    let placement = match cpu {
        Some(cpu) => Placement::Fixed(cpu),
        None => Placement::Unbound,
    };
    LocalExecutorBuilder::new(placement)
        .name(name)
        .preempt_timer(TASK_QUOTA)
}

/// Runs `future` to completion on a fresh unpinned executor after raising the memlock limit
/// and preparing the executor ([`prepare_executor`], priming direct I/O in `dir`). Tests and
/// tools use this; the broker builds its pinned executors with [`executor_builder`] and
/// calls [`prepare_executor`] itself.
pub fn run_local<T, F>(dir: &Path, future: F) -> T
where
    F: std::future::Future<Output = T>,
{
    raise_memlock_limit().expect("raise RLIMIT_MEMLOCK");
    let executor: LocalExecutor = executor_builder("spindle-local", None)
        .make()
        .expect("build glommio executor");
    let dir = dir.to_path_buf();
    executor.run(async move {
        prepare_executor(&dir).await.expect("prepare executor");
        future.await
    })
}
