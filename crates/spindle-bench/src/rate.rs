//! Pacing for fixed-rate runs: when the next send is due so that, on average, messages
//! leave at the target rate from the start of the run. Falling behind is caught up by
//! sending at once (no sleep), never by skipping.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RateLimiter {
    messages_per_sec: f64,
    start: Instant,
    sent: u64,
}

impl RateLimiter {
    /// `messages_per_sec` > 0.
    pub fn new(messages_per_sec: f64, start: Instant) -> RateLimiter {
        assert!(messages_per_sec > 0.0);
        RateLimiter {
            messages_per_sec,
            start,
            sent: 0,
        }
    }

    /// How long to wait at `now` before sending the next `messages`; counts them as sent.
    pub fn delay(&mut self, messages: u64, now: Instant) -> Duration {
        let due = self.start + Duration::from_secs_f64(self.sent as f64 / self.messages_per_sec);
        self.sent += messages;
        due.saturating_duration_since(now)
    }

    /// Sleeps until the next `messages` are due.
    pub fn wait(&mut self, messages: u64) {
        let delay = self.delay(messages, Instant::now());
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    }
}

/// Pacing for paced e2e runs, where latency must include the time a message waits for its
/// batch: message `k` of a sender is due at `start + k / rate`; a batch leaves when `max`
/// messages are due or `linger` after its first message was due, whichever is first (or
/// at once when the sender is behind). Each message is stamped with its due time.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Nanoseconds between two messages (at least 1: integer arithmetic keeps due times
    /// and counts exact).
    interval_nanos: u64,
    start: Instant,
    next: u64,
}

impl Pacer {
    /// `messages_per_sec` > 0.
    pub fn new(messages_per_sec: f64, start: Instant) -> Pacer {
        assert!(messages_per_sec > 0.0);
        Pacer {
            interval_nanos: ((1e9 / messages_per_sec) as u64).max(1),
            start,
            next: 0,
        }
    }

    /// Time between two messages.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos)
    }

    /// When the `index`-th message not yet sent is due.
    pub fn due(&self, index: u64) -> Instant {
        self.start + Duration::from_nanos(self.interval_nanos * (self.next + index))
    }

    /// When the next batch leaves and how many messages (1..=max) it holds, seen at `now`.
    pub fn plan(&self, now: Instant, max: u64, linger: Duration) -> (Instant, u64) {
        assert!(max > 0);
        let full_at = self.due(max - 1);
        let linger_at = self.due(0) + linger;
        let send_at = full_at.min(linger_at).max(self.due(0));
        let at = send_at.max(now);
        // Messages due by `at`: those at index i with due(i) <= at.
        let since = at.saturating_duration_since(self.due(0));
        let due_count = (since.as_nanos() / self.interval_nanos as u128) as u64 + 1;
        (at, due_count.clamp(1, max))
    }

    /// Marks `count` messages as sent.
    pub fn commit(&mut self, count: u64) {
        self.next += count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_batches_to_the_target_rate() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1000.0, start);
        // Batches of 100 at 1000/s: due at 0, 100 ms, 200 ms, ...
        let mut now = start;
        for batch in 0..50u64 {
            let delay = limiter.delay(100, now);
            let due = start + Duration::from_millis(batch * 100);
            assert_eq!(now + delay, due.max(now), "batch {batch}");
            now += delay;
        }
        // 5,000 messages sent by 4.9 s: 1,000/s within rounding.
        let elapsed = now.duration_since(start).as_secs_f64();
        assert!((4.899..=4.901).contains(&elapsed), "{elapsed}");
    }

    #[test]
    fn a_late_sender_catches_up_without_sleeping() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10.0, start);
        let late = start + Duration::from_secs(5);
        // Messages 0..=50 were due by 5.0 s.
        for _ in 0..=50 {
            assert_eq!(limiter.delay(1, late), Duration::ZERO);
        }
        assert!(
            limiter.delay(1, late) > Duration::ZERO,
            "caught up: the next one waits"
        );
    }

    #[test]
    fn pacer_sends_full_batches_or_after_linger() {
        let start = Instant::now();
        // 1,000 msg/s, linger 5 ms: a batch every 6 ms-worth (messages due at 0..=5 ms,
        // sent at 5 ms) when batches may hold 100.
        let mut pacer = Pacer::new(1000.0, start);
        let (at, count) = pacer.plan(start, 100, Duration::from_millis(5));
        assert_eq!(at.duration_since(start), Duration::from_millis(5));
        assert_eq!(count, 6);
        pacer.commit(count);
        assert_eq!(pacer.due(0).duration_since(start).as_millis(), 6);
        // Batches capped at 3: full before linger, sent when the third is due.
        let (at, count) = pacer.plan(start, 3, Duration::from_millis(5));
        assert_eq!(count, 3);
        assert_eq!(at.duration_since(start), Duration::from_millis(8));
        // A sender 100 ms behind sends a full batch at once.
        let late = start + Duration::from_millis(100);
        assert_eq!(pacer.plan(late, 50, Duration::from_millis(5)), (late, 50));
        // 10,000 messages at 1,000/s with 5 ms linger take 10 s of due times.
        let mut pacer = Pacer::new(1000.0, start);
        let mut sent = 0;
        let mut last = start;
        while sent < 10_000 {
            let (at, count) = pacer.plan(start, 100, Duration::from_millis(5));
            let count = count.min(10_000 - sent);
            assert!(at >= last);
            last = at;
            pacer.commit(count);
            sent += count;
        }
        let span = pacer.due(0).duration_since(start).as_secs_f64();
        assert!((9.999..=10.001).contains(&span), "{span}");
    }
}
