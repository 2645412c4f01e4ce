//! Three-node clusters over real gRPC on 127.0.0.1, with redb stores in temporary directories.

mod common;

use std::time::Instant;

use common::WAIT;
use common::applied_user;
use common::register_request;
use common::start_cluster;
use common::test_config;
use common::wait_for_leader;
use common::write;
use keyfleet_raft::NodeId;
use openraft::async_runtime::WatchReceiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_applied_on_all_nodes() {
    let nodes = start_cluster().await;
    let rafts: Vec<_> = nodes.values().map(|node| node.raft()).collect();

    let leader = wait_for_leader(&rafts, None).await;
    let index = write(nodes[&leader].raft(), register_request("alice", 1)).await;

    for node in nodes.values() {
        let record = applied_user(node, index, "alice").await;

        let record = record.unwrap_or_else(|| panic!("node {} has no record", node.id()));
        assert_eq!(
            record.version,
            index,
            "record version on node {}",
            node.id()
        );
        assert_eq!(record.max_guesses, 10, "max guesses on node {}", node.id());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_failover_commits_write() {
    let mut nodes = start_cluster().await;
    let rafts: Vec<_> = nodes.values().map(|node| node.raft()).collect();

    let old_leader = wait_for_leader(&rafts, None).await;
    write(nodes[&old_leader].raft(), register_request("alice", 1)).await;

    let stopped_at = Instant::now();
    nodes
        .get_mut(&old_leader)
        .expect("the leader is a node of the cluster")
        .stop()
        .await;

    let survivors: Vec<_> = nodes
        .values()
        .filter(|node| node.id() != old_leader)
        .map(|node| node.raft())
        .collect();
    let new_leader = wait_for_leader(&survivors, Some(old_leader)).await;
    let elected_after = stopped_at.elapsed();
    assert_ne!(new_leader, old_leader);

    let index = write(nodes[&new_leader].raft(), register_request("bob", 2)).await;
    let committed_after = stopped_at.elapsed();

    println!(
        "failover: stopped leader {old_leader}, node {new_leader} elected after {elected_after:?}, \
         first write committed after {committed_after:?}"
    );

    for node in nodes.values().filter(|node| node.id() != old_leader) {
        let record = applied_user(node, index, "bob").await;

        assert!(record.is_some(), "node {} has no record for bob", node.id());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lagging_node_catches_up_by_snapshot() {
    let mut nodes = start_cluster().await;
    let rafts: Vec<_> = nodes.values().map(|node| node.raft()).collect();

    let leader = wait_for_leader(&rafts, None).await;
    let lagging: NodeId = nodes
        .keys()
        .copied()
        .find(|id| *id != leader)
        .expect("the cluster has a follower");

    let lagging_last_log = nodes[&lagging]
        .raft()
        .metrics()
        .borrow_watched()
        .last_log_index;
    nodes
        .get_mut(&lagging)
        .expect("the follower is a node of the cluster")
        .stop()
        .await;

    let mut last_index = 0;
    for seq in 1..=20u8 {
        let user = format!("user-{seq}");
        last_index = write(nodes[&leader].raft(), register_request(&user, seq)).await;
    }

    let leader_metrics = nodes[&leader]
        .raft()
        .wait(Some(WAIT))
        .metrics(
            |m| m.purged.map(|log_id| log_id.index) > lagging_last_log,
            "the leader purges the logs the lagging node misses",
        )
        .await
        .expect("the leader builds a snapshot and purges its log");
    let purged = leader_metrics
        .purged
        .expect("the wait condition requires a purge");

    nodes
        .get_mut(&lagging)
        .expect("the follower is a node of the cluster")
        .restart(test_config())
        .await;

    let record = applied_user(&nodes[&lagging], last_index, "user-20").await;
    assert!(
        record.is_some(),
        "the lagging node has no record for user-20"
    );

    let first = applied_user(&nodes[&lagging], last_index, "user-1").await;
    assert!(first.is_some(), "the lagging node has no record for user-1");

    let lagging_metrics = nodes[&lagging].raft().metrics().borrow_watched().clone();
    let snapshot = lagging_metrics
        .snapshot
        .expect("the lagging node has a snapshot");
    assert!(
        snapshot.index >= purged.index,
        "snapshot {snapshot} of the lagging node is older than the leader's purge point {purged}"
    );
}
