//! The online join against real keyfleetd processes with real SoftHSM2 tokens. A fourth node
//! gets the fleet keys from the leader's HSM into its own, and serves users registered before
//! it joined. A node without the fleet keys cannot join.

mod common;

use std::collections::BTreeSet;

use common::raw_vault::TEST_KSF;
use common::{FleetTlsPaths, RaftTiming, TestCluster};
use keyfleet_client::{ClientTls, CompleteJoinRequest, FleetClient, JoinRequest, Member};
use keyfleet_raft::NodeId;
use tonic::Code;

const PASSWORD: &[u8] = b"correct horse battery staple";
const BACKUP_KEY: [u8; 32] = [0x5a; 32];

/// Starts `ids`, initializes them as voters, and returns the leader once the vault serves.
async fn start_voters(cluster: &mut TestCluster, ids: &[NodeId]) -> NodeId {
    for id in ids {
        cluster.start(*id).await;
    }
    cluster.initialize(ids).await;
    let leader = cluster.wait_for_leader(ids).await;
    cluster.wait_for_vault(ids).await;
    leader
}

/// Returns an SDK client over TLS, without a client certificate, for the nodes `ids`.
fn vault_client(cluster: &TestCluster, ids: &[NodeId]) -> keyfleet_sdk::VaultClient {
    let ca_only = ClientTls::from_files(&FleetTlsPaths::new(cluster.root()).ca_cert, None)
        .expect("read the CA");
    let endpoints: Vec<String> = ids.iter().map(|id| cluster.api_endpoint(*id)).collect();

    keyfleet_sdk::VaultClient::with_tls(endpoints, common::test_policy(), ca_only)
        .expect("build the SDK client")
        .with_ksf(TEST_KSF)
}

/// Returns the voter and learner ids in node `id`'s membership.
async fn members(cluster: &TestCluster, id: NodeId) -> (BTreeSet<NodeId>, BTreeSet<NodeId>) {
    let status = cluster.expect_status(id).await;
    let voters = status.voters.iter().map(|member| member.id).collect();
    let learners = status.learners.iter().map(|member| member.id).collect();
    (voters, learners)
}

/// Provisions node `node_id`'s transport key with `keyfleetd keys transport-key` and returns
/// its SEC1 point, as an operator reads it before approving the node.
fn transport_key(cluster: &TestCluster, node_id: NodeId) -> Vec<u8> {
    let output = cluster.run_keys(node_id, &["transport-key"]);
    assert!(output.status.success(), "keys transport-key failed");
    decode_hex(
        String::from_utf8(output.stdout)
            .expect("hex is UTF-8")
            .trim(),
    )
}

/// Creates a join token for `node_id` and its transport key, and writes the token to a file in
/// the node's directory.
async fn token_file(cluster: &TestCluster, node_id: NodeId) -> (String, std::path::PathBuf) {
    let transport_key = transport_key(cluster, node_id);
    let created = cluster
        .client()
        .create_join_token(node_id, 300, &transport_key)
        .await
        .unwrap_or_else(|error| panic!("create a join token: {error}\n{}", cluster.log_report()));
    let path = cluster.node_dir(node_id).join("join-token");
    std::fs::write(&path, format!("{}\n", created.join_token)).expect("write the token file");
    (created.join_token, path)
}

fn decode_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("valid hexadecimal"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_node_serves_old_users() {
    let mut cluster = TestCluster::prepare(4, RaftTiming::default());
    cluster.share_fleet_keys_among(&[1, 2, 3]);
    cluster.enable_tls_except(&[4]);
    let leader = start_voters(&mut cluster, &[1, 2, 3]).await;
    assert!(
        !cluster.node_dir(4).join("node.pem").exists(),
        "node 4 has a certificate before it joined"
    );

    let token = cluster.token("alice");
    vault_client(&cluster, &[1, 2, 3])
        .register(&token, "alice", PASSWORD, &BACKUP_KEY, 5)
        .await
        .expect("register alice before the join");

    let (join_token, path) = token_file(&cluster, 4).await;
    cluster.spawn_join(4, &[1, 2, 3], &path);
    cluster
        .wait_for_status(leader, "node 4 as a voter", |status| {
            status.voters.iter().any(|member| member.id == 4)
        })
        .await;
    cluster.wait_for_vault(&[4]).await;
    assert_eq!(
        members(&cluster, leader).await.0,
        BTreeSet::from([1, 2, 3, 4])
    );
    assert!(cluster.node_dir(4).join("node.pem").exists());
    // The leader promotes node 4 before its CompleteJoin reply reaches node 4.
    let deadline = std::time::Instant::now() + common::WAIT;
    while !cluster.log_text(4).contains("joined the fleet as a voter") {
        assert!(
            std::time::Instant::now() < deadline,
            "node 4 never logged its join\n{}",
            cluster.log_text(4)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let reuse = cluster
        .client()
        .join(&JoinRequest {
            join_token: join_token.clone(),
            member: Some(Member {
                id: 4,
                raft_addr: cluster.addresses(4).raft,
                api_addr: cluster.addresses(4).api,
            }),
            transport_public_key: vec![4; 65],
            tls_public_key: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(reuse.code(), Some(Code::PermissionDenied), "{reuse}");

    let client = cluster.client();
    assert_eq!(client.transfer_leader(4).await.expect("transfer"), 4);
    client
        .change_membership(&BTreeSet::from([2, 3, 4]), false)
        .await
        .expect("remove node 1");
    cluster
        .wait_for_status(4, "membership without node 1", |status| {
            status.voters.iter().all(|member| member.id != 1)
        })
        .await;
    cluster.terminate(1).await;

    let recovered = vault_client(&cluster, &[4])
        .recover(&token, "alice", PASSWORD)
        .await
        .expect("node 4 recovers alice's secret");
    assert_eq!(recovered.as_slice(), &BACKUP_KEY);

    for id in 1..=4 {
        assert!(
            !cluster.log_text(id).contains(&join_token),
            "node {id} logged the join token"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_without_fleet_keys_cannot_join() {
    let mut cluster = TestCluster::prepare(5, RaftTiming::default());
    cluster.share_fleet_keys_among(&[1, 2, 3]);
    let generate = cluster.run_keys(4, &["generate"]);
    assert!(generate.status.success(), "keys generate on node 4 failed");
    let leader = start_voters(&mut cluster, &[1, 2, 3]).await;
    let client = cluster.client();
    let before = members(&cluster, leader).await;

    // Node 4's token contains another fleet's keys: the import stops before anything changes.
    let (_, path) = token_file(&cluster, 4).await;
    cluster.spawn_join(4, &[1, 2, 3], &path);
    let status = cluster.wait_for_exit(4).await;
    assert_eq!(status.code(), Some(1), "{}", cluster.log_text(4));
    assert!(
        cluster.log_text(4).contains("already has a different key"),
        "{}",
        cluster.log_text(4)
    );
    assert_eq!(members(&cluster, leader).await, before);

    // Node 5 skips the import and replays the leader's key check blob as its proof.
    let transport = cluster.run_keys(5, &["transport-key"]);
    assert!(transport.status.success(), "keys transport-key failed");
    let transport = String::from_utf8(transport.stdout).expect("hex is UTF-8");
    let (join_token, _) = token_file(&cluster, 5).await;
    let package = client
        .join(&JoinRequest {
            join_token: join_token.clone(),
            member: Some(Member {
                id: 5,
                raft_addr: cluster.addresses(5).raft,
                api_addr: cluster.addresses(5).api,
            }),
            transport_public_key: decode_hex(transport.trim()),
            tls_public_key: Vec::new(),
        })
        .await
        .expect("Join with a valid token");
    let keys: serde_json::Value =
        serde_json::from_str(&package.fleet_keys).expect("the package is JSON");
    let seal_check = decode_hex(keys["seal"]["check"].as_str().expect("seal.check"));
    let forged = CompleteJoinRequest {
        join_token,
        node_id: 5,
        seal_proof: seal_check,
        oprf_seed_proof: vec![0; 64],
    };

    let error = client.complete_join(&forged).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::PermissionDenied), "{error}");
    assert!(
        error.to_string().contains("does not hold the fleet keys"),
        "{error}"
    );
    assert_eq!(members(&cluster, leader).await, before);
    let again = client.complete_join(&forged).await.unwrap_err();
    assert_eq!(again.code(), Some(Code::PermissionDenied), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_stops_on_sigterm_and_used_data_dir() {
    let mut cluster = TestCluster::prepare(3, RaftTiming::default());
    let token = cluster.data_dir(1).with_file_name("join-token");
    std::fs::write(&token, "not-a-real-token").unwrap();

    // Nodes 2 and 3 never start, so the join retries until a signal stops it.
    cluster.spawn_join(1, &[2, 3], &token);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let pid = cluster.pid(1).expect("the joining node runs");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = cluster.wait_for_exit(1).await;
    assert_eq!(status.code(), Some(1), "{}", cluster.log_text(1));
    assert!(
        cluster
            .log_text(1)
            .contains("SIGTERM received before the join finished"),
        "{}",
        cluster.log_text(1)
    );

    // A data directory with Raft stores belongs to a member, old or current.
    std::fs::create_dir_all(cluster.data_dir(1)).unwrap();
    std::fs::write(cluster.data_dir(1).join("raft-log.redb"), b"").unwrap();
    cluster.spawn_join(1, &[2, 3], &token);
    let status = cluster.wait_for_exit(1).await;
    assert_eq!(status.code(), Some(1), "{}", cluster.log_text(1));
    assert!(
        cluster
            .log_text(1)
            .contains("already contains raft-log.redb"),
        "{}",
        cluster.log_text(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_tokens_need_admin_and_new_ids() {
    let mut cluster = TestCluster::prepare(3, RaftTiming::default());
    cluster.share_fleet_keys();
    start_voters(&mut cluster, &[1, 2, 3]).await;
    let client = cluster.client();

    let key = vec![4; 65];
    let member = client.create_join_token(2, 300, &key).await.unwrap_err();
    assert_eq!(member.code(), Some(Code::AlreadyExists), "{member}");

    let too_long = client.create_join_token(9, 90_000, &key).await.unwrap_err();
    assert_eq!(too_long.code(), Some(Code::InvalidArgument), "{too_long}");

    let no_admin = FleetClient::new([cluster.api_endpoint(1)], common::test_policy())
        .expect("build a client without the admin token");
    let error = no_admin.create_join_token(9, 300, &key).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::Unauthenticated), "{error}");

    let bad_key = client
        .create_join_token(9, 300, &[4; 10])
        .await
        .unwrap_err();
    assert_eq!(bad_key.code(), Some(Code::InvalidArgument), "{bad_key}");

    client
        .create_join_token(9, 300, &key)
        .await
        .expect("create a token for node 9");
    let wrong = no_admin
        .join(&JoinRequest {
            join_token: "0".repeat(64),
            member: Some(Member {
                id: 9,
                raft_addr: "127.0.0.1:1".to_owned(),
                api_addr: "127.0.0.1:2".to_owned(),
            }),
            transport_public_key: vec![4; 65],
            tls_public_key: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some(Code::PermissionDenied), "{wrong}");
    assert!(wrong.to_string().contains("does not match"), "{wrong}");
}
