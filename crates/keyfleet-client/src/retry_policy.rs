use std::time::Duration;

use crate::client_error::ClientError;

/// Largest exponent of the backoff doubling. Past it the backoff is at `max_backoff` for any
/// sane policy, and the multiplication cannot overflow.
const MAX_DOUBLINGS: u32 = 20;

/// Retry settings of a [`crate::FleetClient`] or a [`crate::LeaderRouter`] for operations that
/// fail with `UNAVAILABLE` or a connection error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Upper bound of the first backoff. Each later backoff doubles it, up to `max_backoff`.
    pub initial_backoff: Duration,

    /// Upper bound of every backoff.
    pub max_backoff: Duration,

    /// Time budget of one operation, all attempts and backoffs included.
    pub deadline: Duration,

    /// Timeout of one RPC, connection included. Keep it above the server's `write_timeout_ms`,
    /// or the client gives up on a leader without quorum before the leader returns its error.
    pub rpc_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            deadline: Duration::from_secs(30),
            rpc_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Checks that every duration is non-zero and that `max_backoff >= initial_backoff`.
    pub fn validate(&self) -> Result<(), ClientError> {
        let durations = [
            ("initial_backoff", self.initial_backoff),
            ("max_backoff", self.max_backoff),
            ("deadline", self.deadline),
            ("rpc_timeout", self.rpc_timeout),
        ];

        for (field, value) in durations {
            if value.is_zero() {
                return Err(ClientError::InvalidPolicy {
                    reason: format!("{field} is zero: set it to a positive duration"),
                });
            }
        }

        if self.max_backoff < self.initial_backoff {
            return Err(ClientError::InvalidPolicy {
                reason: format!(
                    "max_backoff {:?} is below initial_backoff {:?}: raise max_backoff",
                    self.max_backoff, self.initial_backoff
                ),
            });
        }

        Ok(())
    }

    /// Returns the upper bound of the backoff before retry number `retry` (0 for the first):
    /// `initial_backoff * 2^retry`, capped at `max_backoff`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.min(MAX_DOUBLINGS);

        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// Picks the backoff before retry number `retry` (0 for the first), uniformly between half
    /// of [`RetryPolicy::backoff_ceiling`] and the ceiling itself. The random half spreads out
    /// clients that failed at the same moment, and the fixed half keeps them from retrying at
    /// once.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        let floor = ceiling / 2;

        let spread_nanos = u64::try_from((ceiling - floor).as_nanos()).unwrap_or(u64::MAX);

        floor + Duration::from_nanos(fastrand::u64(0..=spread_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(40),
            max_backoff: Duration::from_millis(1000),
            deadline: Duration::from_secs(5),
            rpc_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let policy = policy();

        assert_eq!(policy.backoff_ceiling(0), Duration::from_millis(40));
        assert_eq!(policy.backoff_ceiling(1), Duration::from_millis(80));
        assert_eq!(policy.backoff_ceiling(4), Duration::from_millis(640));
        assert_eq!(policy.backoff_ceiling(5), Duration::from_millis(1000));
        assert_eq!(
            policy.backoff_ceiling(u32::MAX),
            Duration::from_millis(1000)
        );
    }

    #[test]
    fn backoff_stays_within_bounds() {
        let policy = policy();

        for retry in 0..40 {
            let ceiling = policy.backoff_ceiling(retry);

            for _ in 0..200 {
                let backoff = policy.backoff(retry);

                assert!(
                    backoff <= ceiling,
                    "retry {retry}: {backoff:?} > {ceiling:?}"
                );
                assert!(
                    backoff >= ceiling / 2,
                    "retry {retry}: {backoff:?} < half of {ceiling:?}"
                );
                assert!(
                    backoff <= policy.max_backoff,
                    "retry {retry}: {backoff:?} over max"
                );
            }
        }
    }

    #[test]
    fn backoff_is_jittered() {
        let policy = policy();

        let samples: std::collections::BTreeSet<Duration> =
            (0..100).map(|_| policy.backoff(3)).collect();

        assert!(samples.len() > 1, "100 backoffs were all {samples:?}");
    }

    #[test]
    fn huge_initial_backoff_does_not_overflow() {
        let policy = RetryPolicy {
            initial_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
            ..policy()
        };

        assert_eq!(policy.backoff_ceiling(30), Duration::MAX);
        assert!(policy.backoff(30) >= Duration::MAX / 2);
    }

    #[test]
    fn default_policy_is_valid() {
        assert!(RetryPolicy::default().validate().is_ok());
    }

    #[test]
    fn zero_duration_is_invalid() {
        let policy = RetryPolicy {
            deadline: Duration::ZERO,
            ..policy()
        };

        let error = policy.validate().expect_err("zero deadline is rejected");

        assert!(error.to_string().contains("deadline is zero"), "{error}");
    }

    #[test]
    fn max_below_initial_is_invalid() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(1),
            ..policy()
        };

        let error = policy
            .validate()
            .expect_err("max below initial is rejected");

        assert!(error.to_string().contains("raise max_backoff"), "{error}");
    }
}
