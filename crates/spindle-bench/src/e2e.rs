//! What `bench e2e` shares between engines: the send time each message carries, and the
//! clock both sides read it with. Producers and consumers of a run are threads of one
//! process, so they share the clock: a monotonic `Instant` anchored once to the Unix epoch
//! (so a wall-clock step during the run cannot bend the latencies, and the stamps still
//! read as real times).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Bytes at the start of each value holding its send time (microseconds since the Unix
/// epoch, big-endian).
pub const SEND_TIME_BYTES: usize = 8;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor: Instant,
    anchor_micros: u64,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            anchor: Instant::now(),
            anchor_micros: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64),
        }
    }

    /// `at` in microseconds since the Unix epoch.
    pub fn micros_at(&self, at: Instant) -> u64 {
        match at.checked_duration_since(self.anchor) {
            Some(after) => self.anchor_micros + after.as_micros() as u64,
            None => self
                .anchor_micros
                .saturating_sub(self.anchor.duration_since(at).as_micros() as u64),
        }
    }

    pub fn now_micros(&self) -> u64 {
        self.micros_at(Instant::now())
    }
}

/// What an e2e run saw.
pub struct E2eOutcome {
    /// Messages consumed, their produce-to-consume latency.
    pub consumed: super::stats::Summary,
    /// Messages acknowledged by the broker (warm-up included: every one of them must be
    /// consumed).
    pub produced: u64,
    /// Produce latency (send to acknowledgement) of the same run, as `Summary::latency_us`.
    pub produce_latency_us: [u64; 6],
}

/// Writes the run's plot and gathers what it saw, once producers and consumers are done.
pub fn outcome(
    args: &super::ProduceArgs,
    engine: &str,
    consumed: &super::stats::Run,
    produced: &super::stats::Run,
) -> Result<E2eOutcome, String> {
    args.common.plot_run(
        &format!(
            "bench e2e ({engine}): {} B messages, {}, target {} msg/s",
            args.message_bytes, args.acks, args.throughput
        ),
        consumed,
    )?;
    let mut summary = consumed.summary_from_first_completion();
    summary.errors += produced.errors();
    Ok(E2eOutcome {
        consumed: summary,
        produced: produced.total(),
        produce_latency_us: produced.summary().latency_us,
    })
}

/// Reads the send time at the start of a value.
pub fn send_time(value: &[u8]) -> Option<u64> {
    value
        .get(..SEND_TIME_BYTES)
        .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn clock_maps_instants_to_epoch_micros() {
        let clock = Clock::new();
        let later = clock.anchor + Duration::from_millis(1500);
        assert_eq!(clock.micros_at(later), clock.anchor_micros + 1_500_000);
        if let Some(earlier) = clock.anchor.checked_sub(Duration::from_micros(250)) {
            assert_eq!(clock.micros_at(earlier), clock.anchor_micros - 250);
        }
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        assert!(clock.now_micros().abs_diff(wall) < 1_000_000);
        assert_eq!(send_time(&42u64.to_be_bytes()), Some(42));
        assert_eq!(send_time(b"short"), None);
    }
}
