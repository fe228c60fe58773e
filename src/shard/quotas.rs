//! Byte-rate quotas per client id, enforced by each core on its own traffic: each core is a
//! broker to clients, and Kafka's quotas are per broker. A core measures the bytes a client
//! id produced (request sizes) and fetched (response sizes) over a sliding window, and when
//! the rate passes the client's quota it answers with `throttle_time_ms` and stops reading
//! that connection until the time has passed (Kafka's behaviour since KIP-219: clients
//! back off by themselves, and one that does not is held back anyway).
//!
//! Runs on its core only (`Rc`/`RefCell`, no locks). A broker without quotas skips all of
//! this with one emptiness check per Produce or Fetch.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Kafka's `quota.window.num` and `quota.window.size.seconds`: the rate is measured over
/// 11 one-second samples, and no throttle is longer than the whole window.
const SAMPLES: usize = 11;
const SAMPLE: Duration = Duration::from_secs(1);

/// Which quota a charge counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    Produce,
    Fetch,
}

/// Bytes per one-second sample, oldest first, for one client id and kind.
#[derive(Debug)]
struct RateWindow {
    /// `(start of the sample, bytes)`; at most [`SAMPLES`].
    samples: Vec<(Instant, u64)>,
    last_used: Instant,
}

impl RateWindow {
    fn new(now: Instant) -> RateWindow {
        RateWindow {
            samples: Vec::with_capacity(SAMPLES),
            last_used: now,
        }
    }

    /// Adds `bytes` at `now`; returns the rate (bytes/s) over the window.
    fn record(&mut self, now: Instant, bytes: u64) -> f64 {
        self.last_used = now;
        let window = SAMPLE * SAMPLES as u32;
        self.samples
            .retain(|(start, _)| now.saturating_duration_since(*start) < window);
        match self.samples.last_mut() {
            Some((start, total)) if now.saturating_duration_since(*start) < SAMPLE => {
                *total += bytes;
            }
            _ => self.samples.push((now, bytes)),
        }
        let total: u64 = self.samples.iter().map(|(_, bytes)| bytes).sum();
        // As Kafka's Rate: over the time the samples cover, but at least all but one
        // sample's length, so one burst at the start does not read as a huge rate.
        let covered = now.saturating_duration_since(self.samples[0].0) + SAMPLE;
        let elapsed = covered.max(SAMPLE * (SAMPLES as u32 - 1)).min(window);
        total as f64 / elapsed.as_secs_f64()
    }
}

/// How long a client at `rate` must wait to come back to `quota`, in ms (Kafka's
/// `ClientQuotaManager.throttleTime`: the excess share of the window), at most the window.
pub fn throttle_ms(rate: f64, quota: f64) -> u32 {
    if rate <= quota || quota <= 0.0 {
        return 0;
    }
    let window_ms = (SAMPLE * (SAMPLES as u32 - 1)).as_millis() as f64;
    let ms = (rate - quota) / quota * window_ms;
    ms.min((SAMPLE * SAMPLES as u32).as_millis() as f64).ceil() as u32
}

/// One core's measurements, bounded: past `clients_max` tracked client ids, the one idle
/// longest is forgotten.
pub struct QuotaTracker {
    windows: RefCell<HashMap<(String, QuotaKind), RateWindow>>,
    clients_max: usize,
}

impl QuotaTracker {
    pub fn new(clients_max: usize) -> QuotaTracker {
        assert!(clients_max > 0);
        QuotaTracker {
            windows: RefCell::new(HashMap::new()),
            clients_max,
        }
    }

    /// Counts `bytes` for `client_id` against `quota` (bytes/s); the throttle it earned.
    pub fn record(
        &self,
        client_id: &str,
        kind: QuotaKind,
        quota: f64,
        bytes: u64,
        now: Instant,
    ) -> u32 {
        let mut windows = self.windows.borrow_mut();
        let key = (client_id.to_string(), kind);
        if !windows.contains_key(&key) && windows.len() >= self.clients_max {
            let idlest = windows
                .iter()
                .min_by_key(|(_, window)| window.last_used)
                .map(|(key, _)| key.clone());
            if let Some(idlest) = idlest {
                windows.remove(&idlest);
            }
        }
        let rate = windows
            .entry(key)
            .or_insert_with(|| RateWindow::new(now))
            .record(now, bytes);
        throttle_ms(rate, quota)
    }

    pub fn tracked(&self) -> usize {
        self.windows.borrow().len()
    }
}

/// A request's charge against its client's quota, handed to the Produce or Fetch handler:
/// it counts the bytes, and mutes the connection for the throttle it earns.
pub struct QuotaCharge {
    pub tracker: Rc<QuotaTracker>,
    pub client_id: String,
    pub kind: QuotaKind,
    /// Bytes per second.
    pub quota: f64,
    /// The connection reads no further request before this.
    pub muted_until: Rc<Cell<Option<Instant>>>,
}

impl QuotaCharge {
    /// Counts `bytes`; returns the throttle time for the response, in ms (0: none).
    pub fn charge(&self, bytes: usize) -> i32 {
        let now = Instant::now();
        let throttle =
            self.tracker
                .record(&self.client_id, self.kind, self.quota, bytes as u64, now);
        if throttle > 0 {
            super::metrics::count_throttle(throttle);
            let until = now + Duration::from_millis(u64::from(throttle));
            if self.muted_until.get().is_none_or(|muted| muted < until) {
                self.muted_until.set(Some(until));
            }
        }
        throttle as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_within_its_quota_is_not_throttled_and_one_past_it_is() {
        let tracker = QuotaTracker::new(10);
        let start = Instant::now();
        // 1,000 B/s quota: 100 B every 200 ms is 500 B/s.
        for step in 0..50u32 {
            let now = start + Duration::from_millis(200) * step;
            assert_eq!(
                tracker.record("slow", QuotaKind::Produce, 1000.0, 100, now),
                0,
                "step {step}"
            );
        }
        // 20,000 B at once: far past the quota, throttled, at most the window.
        let now = start + Duration::from_secs(10);
        let throttle = tracker.record("greedy", QuotaKind::Produce, 1000.0, 20_000, now);
        assert!(throttle > 0 && throttle <= 11_000, "{throttle}");
        // The same client's fetches are measured apart from its produces.
        assert_eq!(
            tracker.record("greedy", QuotaKind::Fetch, 1000.0, 100, now),
            0
        );
        // Once the window has passed, the burst no longer counts.
        let later = now + Duration::from_secs(12);
        assert_eq!(
            tracker.record("greedy", QuotaKind::Produce, 1000.0, 100, later),
            0
        );
    }

    #[test]
    fn the_throttle_is_the_excess_share_of_the_window() {
        assert_eq!(throttle_ms(1000.0, 1000.0), 0);
        assert_eq!(throttle_ms(1500.0, 1000.0), 5_000);
        assert_eq!(throttle_ms(1e12, 1.0), 11_000, "capped at the window");
    }

    #[test]
    fn tracked_client_ids_are_bounded_and_the_idlest_goes() {
        let tracker = QuotaTracker::new(2);
        let start = Instant::now();
        tracker.record("a", QuotaKind::Produce, 1.0, 1, start);
        tracker.record("b", QuotaKind::Produce, 1.0, 1, start + SAMPLE);
        tracker.record("a", QuotaKind::Produce, 1.0, 1, start + SAMPLE * 2);
        tracker.record("c", QuotaKind::Produce, 1.0, 1, start + SAMPLE * 3);
        assert_eq!(tracker.tracked(), 2);
        let windows = tracker.windows.borrow();
        assert!(windows.contains_key(&("a".to_string(), QuotaKind::Produce)));
        assert!(!windows.contains_key(&("b".to_string(), QuotaKind::Produce)));
    }

    #[test]
    fn a_charge_mutes_the_connection_for_its_throttle() {
        let charge = QuotaCharge {
            tracker: Rc::new(QuotaTracker::new(4)),
            client_id: "c".into(),
            kind: QuotaKind::Fetch,
            quota: 100.0,
            muted_until: Rc::new(Cell::new(None)),
        };
        assert_eq!(charge.charge(10), 0);
        assert!(charge.muted_until.get().is_none());
        let throttle = charge.charge(100_000);
        assert!(throttle > 0);
        let muted = charge.muted_until.get().expect("muted");
        assert!(muted > Instant::now());
    }
}
