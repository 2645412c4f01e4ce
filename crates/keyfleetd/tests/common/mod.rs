//! A process harness for keyfleetd: real daemons on 127.0.0.1, each with its own data directory
//! and SoftHSM2 token, plus request builders for the tests.

#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod bundle_front;
pub mod free_port;
mod node_process;
mod raft_timing;
pub mod raw_vault;
mod test_cluster;
mod vault_options;

use std::time::Duration;

use keyfleet_client::RetryPolicy;
use keyfleet_raft::Command;
use keyfleet_raft::Request;
use keyfleet_raft::RequestId;
use keyfleet_raft::SealedBlob;
use keyfleet_raft::UserId;
pub use raft_timing::RaftTiming;
pub use test_cluster::FleetTlsPaths;
pub use test_cluster::TestCluster;
pub use test_cluster::now_unix_secs;
pub use vault_options::FLEET_ID;
pub use vault_options::TENANT;
pub use vault_options::VaultOptions;

/// Upper bound of every wait on cluster state, generous for a loaded 2-core machine that runs
/// several clusters at once.
pub const WAIT: Duration = Duration::from_secs(90);

/// Retry policy of test clients. The RPC timeout is above the nodes' `write_timeout_ms`
/// (2000 ms in [`RaftTiming::default`]), so a leader without quorum returns its error before
/// the client gives up on it.
pub fn test_policy() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        deadline: WAIT,
        rpc_timeout: Duration::from_secs(5),
    }
}

/// Returns a random request id.
pub fn new_request_id() -> RequestId {
    RequestId::from_bytes(fastrand::u128(..).to_le_bytes())
}

pub fn user(name: &str) -> UserId {
    UserId::new(name).expect("test user ids are valid")
}

/// Returns a `Register` request with placeholder sealed blobs, which the vault stores without
/// opening.
pub fn register(user: &UserId, max_guesses: u32) -> Request {
    Request {
        request_id: new_request_id(),
        command: Command::Register {
            expected_version: None,
            user: user.clone(),
            password_file: SealedBlob::new(b"test password file".to_vec()),
            sealed_secret: SealedBlob::new(b"test sealed secret".to_vec()),
            max_guesses,
            oprf_salt: [0; 16],
        },
    }
}

pub fn consume_guess(user: &UserId) -> Request {
    Request {
        request_id: new_request_id(),
        command: Command::ConsumeGuess { user: user.clone() },
    }
}

/// Sends `request` through `client` and returns its outcome and log index, or panics with the
/// node logs.
pub async fn write_ok(
    cluster: &TestCluster,
    client: &keyfleet_client::FleetClient,
    request: &Request,
) -> (keyfleet_raft::Response, u64) {
    match client.write(request).await {
        Ok(outcome) => outcome,
        Err(error) => panic!("write {request} failed: {error}\n{}", cluster.log_report()),
    }
}

/// Reads `user`'s record through `client`, or panics with the node logs if the read fails or
/// the record is missing.
pub async fn read_ok(
    cluster: &TestCluster,
    client: &keyfleet_client::FleetClient,
    user: &UserId,
) -> keyfleet_raft::UserRecord {
    match client.read_record(user).await {
        Ok(Some(record)) => record,
        Ok(None) => panic!("user {user} has no record\n{}", cluster.log_report()),
        Err(error) => panic!(
            "ReadRecord {user} failed: {error}\n{}",
            cluster.log_report()
        ),
    }
}

/// Returns `guesses_used` from a counted `ConsumeGuess` outcome, or panics.
pub fn counted_guesses(response: &keyfleet_raft::Response) -> u32 {
    use keyfleet_raft::GuessOutcome;
    use keyfleet_raft::Response;

    match response {
        Response::ConsumeGuess(GuessOutcome::Counted { guesses_used, .. })
        | Response::ConsumeGuess(GuessOutcome::LastGuessCounted { guesses_used, .. }) => {
            *guesses_used
        }
        other => panic!("expected a counted ConsumeGuess outcome, got {other:?}"),
    }
}
