use std::time::{SystemTime, UNIX_EPOCH};

/// Source of the current time for ticket expiry.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Returns the current time in seconds since the Unix epoch.
    fn now_unix_secs(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_secs(&self) -> u64 {
        // A clock set before 1970 reads as the epoch, so tickets from it expire early rather
        // than late.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    }
}
