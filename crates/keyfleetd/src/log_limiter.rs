//! A limit on how often one kind of log line is written, for events that callers can repeat at
//! will, such as rejected tokens.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Lets one log line through per interval, and counts the ones it held back.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    interval: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Returns the number of lines held back since the last one written, if this line may be
    /// written now, or `None` to hold it back.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);

        if last.is_some_and(|last| now.duration_since(last) < self.interval) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }

        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_repeats_and_counts_them() {
        let limiter = LogLimiter::new(Duration::from_secs(3600));

        assert_eq!(limiter.allow(), Some(0));
        assert_eq!(limiter.allow(), None);
        assert_eq!(limiter.allow(), None);
        assert_eq!(limiter.suppressed.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn lets_a_line_through_after_the_interval() {
        let limiter = LogLimiter::new(Duration::ZERO);

        assert_eq!(limiter.allow(), Some(0));
        assert_eq!(limiter.allow(), Some(0));
    }
}
