//! Rate-limited logging for errors that repeat with every request (a failed partition is
//! fetched hundreds of times a second): at most one line per interval per kind, saying how
//! many were left out since. One per kind per core, on that core.

use std::cell::Cell;
use std::time::{Duration, Instant};

pub struct LogLimit {
    interval: Duration,
    last_logged: Cell<Option<Instant>>,
    suppressed: Cell<u64>,
}

impl LogLimit {
    pub const fn new(interval: Duration) -> LogLimit {
        LogLimit {
            interval,
            last_logged: Cell::new(None),
            suppressed: Cell::new(0),
        }
    }

    /// `Some(left out since the last line)` when a line may be logged at `now`; `None`
    /// (and one more left out) otherwise.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        if self
            .last_logged
            .get()
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            self.suppressed.set(self.suppressed.get() + 1);
            return None;
        }
        self.last_logged.set(Some(now));
        Some(self.suppressed.replace(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_left_out() {
        let limit = LogLimit::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(limit.admit(start), Some(0));
        for i in 1..=1000 {
            assert_eq!(limit.admit(start + Duration::from_millis(i)), None);
        }
        assert_eq!(limit.admit(start + Duration::from_secs(10)), Some(1000));
        assert_eq!(limit.admit(start + Duration::from_secs(11)), None);
        assert_eq!(limit.admit(start + Duration::from_secs(21)), Some(1));
    }
}
