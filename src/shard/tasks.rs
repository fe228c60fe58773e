//! The shard's tasks by name and kind. Each kind runs in its own glommio task queue with CPU
//! shares, so a busy stretch of one kind cannot starve the others: requests (connections and
//! their replies), flush (every log's flusher) and maintenance (retention, group timeouts,
//! reopening failed logs) and the cleaner (compaction). A gate tracks the tasks that must end before
//! the shard's logs close (connections, unanswered acks=0 appends, maintenance loops), so
//! shutdown waits for exactly those, without polling. Runs on the shard's core.

use std::future::Future;
use std::time::Duration;

use glommio::sync::Gate;
use glommio::{Latency, Shares, TaskQueueHandle};

/// What a task is for; decides its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Connections, request handlers and their replies.
    Requests,
    /// Log flushers: the direct writes and fdatasyncs that acknowledgements wait for.
    Flush,
    /// Periodic upkeep that no request waits for.
    Maintenance,
    /// The log cleaner (compaction): the most CPU and device time of any upkeep, and the
    /// least urgent.
    Cleaner,
}

/// CPU shares per kind when several are runnable. Flushing gets as much as requests: an
/// acknowledgement waits for it. Upkeep gets a tenth: it can always wait.
const REQUESTS_SHARES: usize = 1000;
const FLUSH_SHARES: usize = 1000;
const MAINTENANCE_SHARES: usize = 100;
/// The cleaner gets half of upkeep's share: a busy core gives it about 2% of its time.
const CLEANER_SHARES: usize = 50;

impl TaskKind {
    /// Every kind, in the order the metrics name their queues
    /// (`shard::metrics::TASK_QUEUES`).
    pub const ALL: [TaskKind; 4] = [
        TaskKind::Requests,
        TaskKind::Flush,
        TaskKind::Maintenance,
        TaskKind::Cleaner,
    ];
}

pub struct ShardTasks {
    requests: TaskQueueHandle,
    flush: TaskQueueHandle,
    maintenance: TaskQueueHandle,
    cleaner: TaskQueueHandle,
    gate: Gate,
}

impl ShardTasks {
    /// Creates the queues in the current executor.
    pub fn new(core: u32) -> ShardTasks {
        let queue = |kind: &str, shares: usize| {
            glommio::executor().create_task_queue(
                Shares::Static(shares),
                // Not `Latency::Matters`: that shortens the preempt timer, and a short one
                // can hang glommio 0.9.0 (see `runtime::TASK_QUOTA`).
                Latency::NotImportant,
                &format!("core-{core}-{kind}"),
            )
        };
        ShardTasks {
            requests: queue("requests", REQUESTS_SHARES),
            flush: queue("flush", FLUSH_SHARES),
            maintenance: queue("maintenance", MAINTENANCE_SHARES),
            cleaner: queue("cleaner", CLEANER_SHARES),
            gate: Gate::new(),
        }
    }

    pub fn queue(&self, kind: TaskKind) -> TaskQueueHandle {
        match kind {
            TaskKind::Requests => self.requests,
            TaskKind::Flush => self.flush,
            TaskKind::Maintenance => self.maintenance,
            TaskKind::Cleaner => self.cleaner,
        }
    }

    /// Runs `future` in `kind`'s queue as a task shutdown waits for. False (and `future`
    /// dropped unstarted) once shutdown has closed the gate.
    pub fn spawn_tracked(
        &self,
        kind: TaskKind,
        name: &'static str,
        future: impl Future<Output = ()> + 'static,
    ) -> bool {
        match self.gate.spawn_into(future, self.queue(kind)) {
            Ok(task) => {
                task.detach();
                true
            }
            Err(error) => {
                tracing::debug!(task = name, "not started: {error}");
                false
            }
        }
    }

    /// Runs `future` in `kind`'s queue and waits for its output (so what it spawns lands in
    /// that queue: a log opened this way has its flusher in the flush queue).
    pub async fn run_in<T: 'static>(
        &self,
        kind: TaskKind,
        future: impl Future<Output = T> + 'static,
    ) -> T {
        glommio::spawn_local_into(future, self.queue(kind))
            .expect("the shard's own task queue exists")
            .await
    }

    /// Closes the gate and waits for every tracked task to end, at most `within`. True if
    /// they all did.
    pub async fn close(&self, within: Duration) -> bool {
        futures_lite::future::or(async { self.gate.close().await.is_ok() }, async {
            glommio::timer::sleep(within).await;
            false
        })
        .await
    }
}
