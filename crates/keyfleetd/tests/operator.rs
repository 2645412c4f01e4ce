//! Operator flows against real keyfleetd processes: status, membership changes, snapshot save
//! and restore, and recovery after a lost quorum.

mod common;

use std::collections::BTreeSet;

use common::raw_vault::TEST_KSF;
use common::{
    RaftTiming, TestCluster, VaultOptions, consume_guess, counted_guesses, read_ok, register, user,
    write_ok,
};
use keyfleet_raft::{SnapshotFile, UserStatus};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_replication_and_hsm() {
    let (cluster, leader) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let client = cluster.client();
    write_ok(&cluster, &client, &register(&user("t/alice"), 5)).await;

    let status = cluster
        .wait_for_status(
            leader,
            "every member acknowledging the last entry",
            |status| {
                status.replication.len() == 3
                    && status
                        .replication
                        .iter()
                        .all(|progress| progress.matched_index == Some(status.last_log_index))
            },
        )
        .await;
    assert!(status.millis_since_leader_contact.is_some(), "{status:?}");
    for progress in &status.replication {
        assert!(progress.millis_since_ack.is_some(), "{progress:?}");
    }

    for id in 1..=3 {
        let status = cluster
            .wait_for_status(id, "an HSM probe result", |status| status.hsm_healthy)
            .await;
        assert!(status.hsm_error.is_empty(), "{status:?}");
        // These nodes have no fleet keys, so they are never ready, and report the reason.
        assert!(!status.ready, "{status:?}");
        assert!(!status.readiness_reason.is_empty(), "{status:?}");
        if id != leader {
            assert!(status.replication.is_empty(), "{status:?}");
            assert!(status.millis_since_leader_contact.is_some(), "{status:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_node_leaves_cluster_serving() {
    let (mut cluster, _) = TestCluster::launch(4, 3, RaftTiming::default()).await;
    let client = cluster.client();
    let alice = user("t/alice");
    write_ok(&cluster, &client, &register(&alice, 5)).await;

    cluster.start(4).await;
    client
        .add_learner(4, &cluster.addresses(4))
        .await
        .expect("add node 4 as a learner");
    client
        .change_membership(&BTreeSet::from([1, 2, 3, 4]), true)
        .await
        .expect("promote node 4");

    let leader = client
        .transfer_leader(4)
        .await
        .expect("transfer leadership");
    assert_eq!(leader, 4);
    cluster
        .wait_for_status(4, "node 4 leading", |s| s.state == "Leader")
        .await;

    client
        .change_membership(&BTreeSet::from([2, 3, 4]), false)
        .await
        .expect("remove node 1");
    let status = cluster
        .wait_for_status(4, "membership without node 1", |s| {
            s.voters.iter().all(|member| member.id != 1)
        })
        .await;
    assert_eq!(status.voters.len(), 3, "{status:?}");
    assert!(status.learners.is_empty(), "{status:?}");

    cluster.terminate(1).await;
    let survivors = cluster.client_for(&[2, 3, 4]);
    let (outcome, _) = write_ok(&cluster, &survivors, &consume_guess(&alice)).await;
    assert_eq!(counted_guesses(&outcome), 1);
    assert_eq!(read_ok(&cluster, &survivors, &alice).await.guesses_used, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_restores_into_fresh_cluster() {
    let (source, _) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let source_client = source.client();
    let alice = user("t/alice");
    let bob = user("t/bob");
    write_ok(&source, &source_client, &register(&alice, 5)).await;
    write_ok(&source, &source_client, &register(&bob, 3)).await;
    write_ok(&source, &source_client, &consume_guess(&alice)).await;
    let (_, last_write) = write_ok(&source, &source_client, &consume_guess(&alice)).await;

    let bytes = source_client
        .save_snapshot()
        .await
        .expect("save a snapshot");
    let file = SnapshotFile::decode(&bytes).expect("the saved snapshot verifies");
    assert!(file.last_log_index >= last_write, "{file:?}");
    assert_eq!(file.image.users.len(), 2);

    let (target, _) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let target_client = target.client();

    let mut tampered = bytes.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    let error = target_client
        .restore_snapshot(&tampered, false)
        .await
        .expect_err("a tampered snapshot is rejected");
    assert_eq!(error.code(), Some(Code::InvalidArgument), "{error}");
    assert_eq!(target_client.read_record(&alice).await.unwrap(), None);

    let restored = target_client
        .restore_snapshot(&bytes, false)
        .await
        .expect("restore into a fresh cluster");
    assert_eq!(restored.users, 2);
    assert_eq!(restored.rolled_back, 0);

    let record = read_ok(&target, &target_client, &alice).await;
    assert_eq!(record.guesses_used, 2);
    assert_eq!(record.max_guesses, 5);
    assert_eq!(record.status, UserStatus::Registered);
    assert_eq!(record.version, restored.log_index);
    assert_eq!(read_ok(&target, &target_client, &bob).await.max_guesses, 3);

    let (outcome, _) = write_ok(&target, &target_client, &consume_guess(&alice)).await;
    assert_eq!(counted_guesses(&outcome), 3);
    for id in 1..=3 {
        target.wait_for_applied(id, restored.log_index).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_rollback_needs_the_flag() {
    let (cluster, _) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let client = cluster.client();
    let alice = user("t/alice");
    write_ok(&cluster, &client, &register(&alice, 5)).await;
    let bytes = client.save_snapshot().await.expect("save a snapshot");

    write_ok(&cluster, &client, &consume_guess(&alice)).await;
    write_ok(&cluster, &client, &consume_guess(&alice)).await;

    let error = client
        .restore_snapshot(&bytes, false)
        .await
        .expect_err("a restore that lowers a guess count is rejected");
    assert_eq!(error.code(), Some(Code::FailedPrecondition), "{error}");
    assert!(error.to_string().contains("t/alice"), "{error}");
    assert_eq!(read_ok(&cluster, &client, &alice).await.guesses_used, 2);

    let restored = client
        .restore_snapshot(&bytes, true)
        .await
        .expect("the flag allows the rollback");
    assert_eq!(restored.rolled_back, 1);
    assert_eq!(read_ok(&cluster, &client, &alice).await.guesses_used, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_quorum_recovers_on_survivor() {
    let (mut cluster, _) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let client = cluster.client();
    let alice = user("t/alice");
    write_ok(&cluster, &client, &register(&alice, 5)).await;
    let (_, index) = write_ok(&cluster, &client, &consume_guess(&alice)).await;
    cluster.wait_for_applied(1, index).await;

    cluster.kill(2);
    cluster.kill(3);
    cluster.terminate(1).await;

    let rejected = cluster.recover_quorum(1, "2");
    assert!(
        !rejected.status.success(),
        "a voter list without this node must fail"
    );

    let output = cluster.recover_quorum(1, "1");
    assert!(
        output.status.success(),
        "recover-quorum failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    cluster.restart(1).await;
    let leader = cluster.wait_for_leader(&[1]).await;
    assert_eq!(leader, 1);
    let status = cluster.expect_status(1).await;
    let voters: Vec<u64> = status.voters.iter().map(|member| member.id).collect();
    assert_eq!(voters, vec![1]);

    let survivor = cluster.client_for(&[1]);
    assert_eq!(read_ok(&cluster, &survivor, &alice).await.guesses_used, 1);
    let (outcome, _) = write_ok(&cluster, &survivor, &consume_guess(&alice)).await;
    assert_eq!(counted_guesses(&outcome), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let (cluster, _) = TestCluster::launch(1, 1, RaftTiming::default()).await;
    let channel = tonic::transport::Endpoint::from_shared(cluster.api_endpoint(1))
        .expect("valid endpoint")
        .connect()
        .await
        .expect("connect to the API port");
    let mut client = ServerReflectionClient::new(channel);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection call")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reflection response")
        .expect("one response");

    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {response:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "keyfleet.node.v1.Node",
        "keyfleet.v1.Vault",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_snapshot_serves_old_users() {
    const PASSWORD: &[u8] = b"correct horse battery staple";
    const BACKUP_KEY: [u8; 32] = [0x7e; 32];
    let ids = [1, 2, 3];
    let vault = |cluster: &TestCluster| {
        let endpoints: Vec<String> = ids.iter().map(|id| cluster.api_endpoint(*id)).collect();
        keyfleet_sdk::VaultClient::new(endpoints, common::test_policy())
            .expect("build the SDK client")
            .with_ksf(TEST_KSF)
    };

    // The target's tokens are fresh, and receive the source fleet's keys before any node runs.
    let mut source =
        TestCluster::prepare_with_vault(3, RaftTiming::default(), VaultOptions::default());
    source.share_fleet_keys();
    let mut target =
        TestCluster::prepare_with_vault(3, RaftTiming::default(), VaultOptions::default());
    target.import_fleet_keys_from(&source);
    for cluster in [&mut source, &mut target] {
        for id in ids {
            cluster.start(id).await;
        }
        cluster.initialize(&ids).await;
        cluster.wait_for_leader(&ids).await;
        cluster.wait_for_vault(&ids).await;
    }

    vault(&source)
        .register(&source.token("alice"), "alice", PASSWORD, &BACKUP_KEY, 5)
        .await
        .expect("register alice in the source fleet");
    let bytes = source
        .client()
        .save_snapshot()
        .await
        .expect("save a snapshot");
    let restored = target
        .client()
        .restore_snapshot(&bytes, false)
        .await
        .expect("restore into the fresh cluster");
    assert_eq!(restored.users, 1);
    assert_eq!(restored.rolled_back, 0);

    let recovered = vault(&target)
        .recover(&target.token("alice"), "alice", PASSWORD)
        .await
        .expect("the fresh cluster recovers alice's secret");
    assert_eq!(recovered.as_slice(), &BACKUP_KEY);
}
