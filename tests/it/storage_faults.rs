//! Fault injection: the real `PartitionLog` over the simulated device, driven from a seed.
//!
//! Each seed picks a flush policy and segment sizes, runs concurrent producers that await
//! `written` or `durable` at random, and crashes the device at a chosen write (power loss:
//! unsynced writes survive, tear at sector granularity or vanish; or a process kill: every
//! completed write survives). After recovery the invariants are:
//!
//! 1. the log holds exactly a prefix of what was appended, byte for byte (no garbage, no
//!    reordering, no gaps);
//! 2. nothing acknowledged is lost: after a power loss every offset acknowledged durable is
//!    there, after a process kill every offset acknowledged written is;
//! 3. the recovered log takes new appends, and a second crash and recovery keep 1 and 2.
//!
//! A failing seed replays exactly: `SPINDLE_FAULT_SEED=<seed> cargo test --release --test it storage_faults`.

use crate::common::temp_dir;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use spindle::runtime::run_local;
use spindle::storage::sim::{SimFaults, SimRng, SimStorage};
use spindle::storage::{FlushPolicy, LogConfig, PartitionLog};
use spindle_protocol::record_batch::{
    RecordBatchHeader, build_batch, set_base_offset, set_partition_leader_epoch,
};

#[derive(Default)]
struct Model {
    /// Stored bytes of every batch the log accepted, by base offset.
    appended: BTreeMap<i64, Vec<u8>>,
    /// Highest next-offset acknowledged written / durable.
    acked_written: i64,
    acked_durable: i64,
}

fn config_for(rng: &mut SimRng) -> LogConfig {
    let flush = match rng.below(3) {
        0 => FlushPolicy::Always,
        1 => FlushPolicy::Interval {
            interval: Duration::from_millis(1 + rng.below(5)),
            bytes: 8 << 10,
        },
        _ => FlushPolicy::Never,
    };
    LogConfig {
        segment_bytes: [16 << 10, 40 << 10, 1 << 20][rng.below(3) as usize],
        index_interval_bytes: 256,
        write_buffer_bytes: [4 << 10, 8 << 10, 64 << 10][rng.below(3) as usize],
        dirty_bytes_max: 128 << 10,
        cache_bytes_max: [0, 16 << 10][rng.below(2) as usize],
        preallocate_bytes: 16 << 10,
        batch_bytes_max: 16 << 10,
        flush,
        ..LogConfig::default()
    }
}

/// A random batch; with `uniform`, every batch has the same size and record count, which
/// is when stale bytes left after a crash line up exactly behind new appends.
fn random_batch(rng: &mut SimRng, uniform: bool) -> Vec<u8> {
    let records = if uniform {
        3
    } else {
        1 + rng.below(6) as usize
    };
    let values: Vec<Vec<u8>> = (0..records)
        .map(|_| {
            let len = if uniform { 300 } else { rng.below(900) };
            (0..len).map(|_| rng.next_u64() as u8).collect()
        })
        .collect();
    let refs: Vec<(Option<&[u8]>, &[u8])> = values.iter().map(|v| (None, v.as_slice())).collect();
    build_batch(rng.below(1 << 40) as i64, &refs)
}

/// Runs producers against `log` until they have sent `batches_per_producer` each or the log
/// fails (the device crashed).
async fn produce(
    log: &PartitionLog<SimStorage>,
    model: &Rc<RefCell<Model>>,
    seed: u64,
    producers: u64,
    batches_per_producer: u64,
    uniform: bool,
) {
    let mut tasks = Vec::new();
    for producer in 0..producers {
        let log = log.clone();
        let model = model.clone();
        tasks.push(glommio::spawn_local(async move {
            let mut rng = SimRng::new(seed.wrapping_mul(31).wrapping_add(producer));
            for _ in 0..batches_per_producer {
                let batch = random_batch(&mut rng, uniform);
                let Ok(info) = log.append(BytesMut::from(batch.as_slice())).await else {
                    return;
                };
                let mut stored = batch.clone();
                set_base_offset(&mut stored, info.base_offset);
                set_partition_leader_epoch(&mut stored, 0);
                model.borrow_mut().appended.insert(info.base_offset, stored);
                let next = info.last_offset + 1;
                match rng.below(4) {
                    0 => {
                        if log.wait_durable(next).await.is_err() {
                            return;
                        }
                        let mut model = model.borrow_mut();
                        model.acked_durable = model.acked_durable.max(next);
                        model.acked_written = model.acked_written.max(next);
                    }
                    1 | 2 => {
                        if log.wait_written(next).await.is_err() {
                            return;
                        }
                        let mut model = model.borrow_mut();
                        model.acked_written = model.acked_written.max(next);
                        if log.durable_offset() >= next {
                            model.acked_durable = model.acked_durable.max(next);
                        }
                    }
                    _ => {}
                }
            }
        }));
    }
    for task in tasks {
        task.await;
    }
}

/// Reads the whole log and checks it is a byte-exact prefix of the model, covering every
/// acknowledged offset. Returns the log end.
async fn verify(
    log: &PartitionLog<SimStorage>,
    appended: &BTreeMap<i64, Vec<u8>>,
    must_hold: i64,
    seed: u64,
) -> i64 {
    let end = log.log_end_offset();
    assert_eq!(
        log.high_watermark(),
        end,
        "seed {seed}: recovered data is all visible"
    );
    assert!(
        end >= must_hold,
        "seed {seed}: acknowledged offsets lost: log end {end} < {must_hold}"
    );
    let mut offset = log.log_start_offset();
    while offset < end {
        let batches = log
            .read(offset, 64 << 10)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: read {offset}: {e}"));
        assert!(
            !batches.is_empty(),
            "seed {seed}: nothing at {offset} below end {end}"
        );
        for batch in batches {
            let header = RecordBatchHeader::decode(&batch).expect("header");
            assert_eq!(header.base_offset, offset, "seed {seed}: gap or overlap");
            let expected = appended.get(&offset).unwrap_or_else(|| {
                panic!("seed {seed}: offset {offset} was never appended (garbage visible)")
            });
            assert_eq!(
                batch.as_ref(),
                expected.as_slice(),
                "seed {seed}: batch at {offset} differs"
            );
            offset = header.next_offset();
        }
    }
    assert_eq!(offset, end);
    end
}

fn run_seed(seed: u64) {
    let temp = temp_dir("storage-faults");
    run_local(temp.path(), async move {
        let mut rng = SimRng::new(seed);
        let config = config_for(&mut rng);
        let dir = Path::new("/data/topic-0");
        let mut storage = SimStorage::new(seed, 4096);
        let model = Rc::new(RefCell::new(Model::default()));
        let uniform = rng.chance(1, 2);
        for generation in 0..3u64 {
            let power_loss = rng.chance(1, 2);
            let log = PartitionLog::open(storage.clone(), dir, config.clone())
                .await
                .unwrap_or_else(|e| panic!("seed {seed} generation {generation}: open: {e}"));
            let must_hold = {
                let model = model.borrow();
                if generation == 0 {
                    0
                } else {
                    model.acked_written.max(model.acked_durable)
                }
            };
            let snapshot = model.borrow().appended.clone();
            let end = verify(&log, &snapshot, must_hold, seed).await;
            {
                // What survived is the new truth: later appends overwrite the rest.
                let mut model = model.borrow_mut();
                model.appended.retain(|&offset, _| offset < end);
                model.acked_written = end;
                model.acked_durable = end;
            }
            let writes_so_far = storage.stats().writes;
            storage.set_faults(SimFaults {
                crash_at_write: Some(writes_so_far + 1 + rng.below(60)),
                short_write_percent: if rng.chance(1, 4) { 20 } else { 0 },
                ..SimFaults::default()
            });
            produce(
                &log,
                &model,
                seed ^ generation,
                1 + rng.below(6),
                10 + rng.below(40),
                uniform,
            )
            .await;
            if std::env::var("SPINDLE_FAULT_VERBOSE").is_ok() {
                let m = model.borrow();
                eprintln!(
                    "seed {seed} gen {generation} crashed={} power_loss={power_loss} appended={} acked_w={} acked_d={} policy={:?}",
                    storage.crashed(),
                    m.appended.len(),
                    m.acked_written,
                    m.acked_durable,
                    config.flush
                );
            }
            if !storage.crashed() {
                // The crash point was past the workload: stop here instead.
                let _ = log.flush().await;
            }
            storage = if power_loss {
                storage.crash_image(seed.wrapping_add(generation))
            } else {
                storage.process_crash_image()
            };
            let mut model = model.borrow_mut();
            if power_loss {
                // Only durable acknowledgements bind after a power loss.
                model.acked_written = model.acked_durable;
            }
        }
        let log = PartitionLog::open(storage.clone(), dir, config.clone())
            .await
            .expect("final open");
        let must_hold = model.borrow().acked_written;
        let snapshot = model.borrow().appended.clone();
        verify(&log, &snapshot, must_hold, seed).await;
    });
}

#[test]
fn seeded_crashes_never_lose_acknowledged_data_or_expose_garbage() {
    if let Ok(seed) = std::env::var("SPINDLE_FAULT_SEED") {
        run_seed(seed.parse().expect("SPINDLE_FAULT_SEED is a number"));
        return;
    }
    let seeds: u64 = std::env::var("SPINDLE_FAULT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    for seed in 0..seeds {
        run_seed(seed);
    }
}
