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
}
