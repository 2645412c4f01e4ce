//! A test cluster of real Raft nodes in one process, each with redb stores in its own temporary
//! directory and a Raft gRPC server on an ephemeral 127.0.0.1 port.

#![allow(dead_code, unreachable_pub)]

mod test_node;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use keyfleet_raft::Command;
use keyfleet_raft::NodeAddresses;
use keyfleet_raft::NodeId;
use keyfleet_raft::Raft;
use keyfleet_raft::Request;
use keyfleet_raft::RequestId;
use keyfleet_raft::SealedBlob;
use keyfleet_raft::UserId;
use openraft::Config;
use openraft::SnapshotPolicy;
pub use test_node::TestNode;

/// Upper bound for every wait on cluster state, generous for a loaded 2-core CI machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// Logs to the test output when `RUST_LOG` is set, for example `RUST_LOG=keyfleet_raft_net=debug`.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Raft timing for tests: short heartbeats and elections, and a snapshot every 5 logs that
/// purges the log right away, so a node that misses a few writes needs a snapshot.
pub fn test_config() -> Arc<Config> {
    let config = Config {
        cluster_name: "keyfleet-raft-net-test".to_owned(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5),
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..Config::default()
    };

    Arc::new(config.validate().expect("test Raft config is valid"))
}

/// Starts nodes 1, 2 and 3 and initializes them as one cluster.
pub async fn start_cluster() -> BTreeMap<NodeId, TestNode> {
    init_tracing();

    let config = test_config();
    let mut nodes = BTreeMap::new();

    for id in 1..=3 {
        nodes.insert(id, TestNode::start(id, config.clone()).await);
    }

    let members: BTreeMap<NodeId, NodeAddresses> = nodes
        .iter()
        .map(|(id, node)| {
            (
                *id,
                NodeAddresses::new(node.addr().to_string(), String::new()),
            )
        })
        .collect();

    nodes[&1]
        .raft()
        .initialize(members)
        .await
        .expect("initialize the cluster on node 1");

    nodes
}

/// Waits until every raft in `rafts` reports the same leader other than `excluded`, and returns
/// it.
pub async fn wait_for_leader(rafts: &[&Raft], excluded: Option<NodeId>) -> NodeId {
    let leader = rafts[0]
        .wait(Some(WAIT))
        .metrics(
            |m| m.current_leader.is_some() && m.current_leader != excluded,
            "a leader is known",
        )
        .await
        .expect("a leader is elected")
        .current_leader
        .expect("the wait condition requires a leader");

    for raft in rafts {
        raft.wait(Some(WAIT))
            .current_leader(leader, "every node knows the leader")
            .await
            .expect("every node follows the same leader");
    }

    leader
}

/// Builds a `Register` request for `user`, with a request id derived from `seq`.
pub fn register_request(user: &str, seq: u8) -> Request {
    Request {
        request_id: RequestId::from_bytes([seq; 16]),
        command: Command::Register {
            expected_version: None,
            user: UserId::new(user).expect("test user id is valid"),
            password_file: SealedBlob::new(vec![seq; 32]),
            sealed_secret: SealedBlob::new(vec![seq.wrapping_add(1); 32]),
            max_guesses: 10,
            oprf_salt: [0; 16],
        },
    }
}

/// Writes `request` through `leader` and returns the log index of the committed entry.
///
/// It first waits for a quorum to acknowledge the leader, because openraft 0.10 rejects writes
/// on a leader without a valid lease with `ForwardToLeader` and reason `LeaseExpired`.
pub async fn write(leader: &Raft, request: Request) -> u64 {
    leader
        .wait(Some(WAIT))
        .leader_with_quorum_acked(None, "a quorum acknowledges the leader")
        .await
        .expect("the leader gets a lease");

    let response = leader
        .client_write(request)
        .await
        .expect("the leader commits the write");

    response.log_id.index
}

/// Waits until `node` has applied `index` and returns the applied record of `user`.
pub async fn applied_user(
    node: &TestNode,
    index: u64,
    user: &str,
) -> Option<keyfleet_raft::UserRecord> {
    node.raft()
        .wait(Some(WAIT))
        .applied_index_at_least(Some(index), "the write is applied")
        .await
        .unwrap_or_else(|e| panic!("node {} did not apply index {index}: {e}", node.id()));

    node.state_machine()
        .user(&UserId::new(user).expect("test user id is valid"))
        .await
        .expect("read the applied user record")
}
