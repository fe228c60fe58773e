//! Executors stay live under CPU contention.
//!
//! glommio 0.9.0 can park an executor forever while it has runnable tasks: if its preempt
//! timer has already fired when a scheduler tick starts (the thread was descheduled for
//! longer than the task quota), the tick runs nothing and the executor sleeps in
//! io_uring_enter with no timeout. `runtime::run_local` (and every Spindle executor)
//! carries a park guard against it. This test oversubscribes the cores with executors whose
//! tasks keep yielding, the situation that hung the storage tests, and fails if any
//! executor does not finish in time.

use crate::common::temp_dir;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use spindle::runtime::run_local;

#[test]
fn oversubscribed_executors_never_park_with_runnable_tasks() {
    let temp = temp_dir("liveness");
    let executors = 8;
    let (done, finished) = mpsc::channel();
    for index in 0..executors {
        let done = done.clone();
        let dir = temp.path().to_path_buf();
        std::thread::spawn(move || {
            run_local(&dir, async move {
                let mut tasks = Vec::new();
                for _ in 0..4 {
                    tasks.push(glommio::spawn_local(async move {
                        let start = Instant::now();
                        let mut spins = 0u64;
                        while start.elapsed() < Duration::from_millis(1500) {
                            // Busy for a while, then cooperate, as a producer does.
                            let until = Instant::now() + Duration::from_micros(200);
                            while Instant::now() < until {
                                spins = spins.wrapping_add(1);
                            }
                            glommio::yield_if_needed().await;
                        }
                        spins
                    }));
                }
                for task in tasks {
                    task.await;
                }
            });
            let _ = done.send(index);
        });
    }
    drop(done);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut finished_count = 0;
    while finished_count < executors {
        let left = deadline.saturating_duration_since(Instant::now());
        match finished.recv_timeout(left) {
            Ok(_) => finished_count += 1,
            Err(_) => panic!(
                "{} of {executors} executors never finished: parked with runnable tasks",
                executors - finished_count
            ),
        }
    }
}
