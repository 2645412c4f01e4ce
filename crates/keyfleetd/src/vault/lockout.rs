//! Erasure of records whose last guess was counted but never finished.
//!
//! A client that fails its last guess sends a KE3 anyway, and RecoveryFinish then locks the
//! record at once. A client that never sends KE3 leaves an exhausted record, which accepts no
//! more guesses. Such a record is locked when the next RecoveryStart finds it, and by a timer
//! here once its last login ticket has expired.

use std::time::Duration;

use keyfleet_raft::{Command, LockOutcome, Request, Response, UserId};

use super::request_id;
use crate::replica::Replica;

/// Wait past the ticket lifetime before the timer locks, for clock steps between nodes.
const GRACE: Duration = Duration::from_secs(2);

/// Timers that lock exhausted records.
#[derive(Clone)]
pub(super) struct Lockouts {
    replica: Replica,
    delay: Duration,
}

impl Lockouts {
    pub(super) fn new(replica: Replica, ticket_ttl: Duration) -> Self {
        Self {
            replica,
            delay: ticket_ttl + GRACE,
        }
    }

    /// Locks `record` once the login ticket issued at `version` has expired, unless the record
    /// changed since: a successful recovery or a new registration.
    ///
    /// NOTE: the timer lives in this node's memory. If the node stops or loses leadership
    /// first, the record stays exhausted, accepting no guess, until the next RecoveryStart
    /// locks it.
    pub(super) fn lock_after_ticket_expiry(&self, record: UserId, version: u64) {
        let replica = self.replica.clone();
        let delay = self.delay;

        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            lock_record(&replica, record, version).await;
        });
    }

    /// Locks `record` now if it is still at `version`, and returns the outcome.
    pub(super) async fn lock_now(
        &self,
        record: UserId,
        version: u64,
    ) -> Result<LockOutcome, tonic::Status> {
        lock(&self.replica, record, version).await
    }
}

async fn lock_record(replica: &Replica, record: UserId, version: u64) {
    let node_id = replica.node_id;

    match lock(replica, record.clone(), version).await {
        Ok(LockOutcome::Locked { version }) => {
            tracing::info!(node_id, user = %record, version, "exhausted record locked after its last ticket expired");
        }
        Ok(outcome) => {
            tracing::debug!(node_id, user = %record, ?outcome, "exhausted record not locked");
        }
        Err(status) => {
            tracing::warn!(node_id, user = %record, error = %status.message(), "locking an exhausted record failed");
        }
    }
}

async fn lock(
    replica: &Replica,
    record: UserId,
    version: u64,
) -> Result<LockOutcome, tonic::Status> {
    let request = Request {
        request_id: request_id::internal("lock", &record, version),
        command: Command::Lock {
            user: record,
            expected_version: Some(version),
        },
    };

    match replica.write(request).await?.response {
        Response::Lock(outcome) => {
            if let LockOutcome::Locked { .. } = outcome {
                metrics::counter!(crate::metrics::LOCKOUTS).increment(1);
            }
            Ok(outcome)
        }
        other => Err(tonic::Status::internal(format!(
            "Lock returned an unexpected outcome: {other:?}"
        ))),
    }
}
