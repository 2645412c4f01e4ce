//! TLS between real keyfleetd processes: the fleet CA commands, mutual TLS on the Raft port
//! with node identity checks, operator certificates on the node API, and reload on SIGHUP.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::FleetTlsPaths;
use common::RaftTiming;
use common::TestCluster;
use common::WAIT;
use common::raw_vault::TEST_KSF;
use keyfleet_client::ClientTls;
use keyfleet_client::FleetClient;
use keyfleet_raft::NodeAddresses;
use keyfleet_raft::NodeId;
use keyfleet_raft_net::PeerClient;
use keyfleet_raft_net::TlsConfigCell;
use keyfleet_raft_net::TlsFiles;
use keyfleet_raft_net::raft_client_config;
use openraft::network::RPCOption;
use openraft::network::v2::RaftNetworkV2;
use tokio::time::Instant;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const PASSWORD: &[u8] = b"correct horse battery staple";
const BACKUP_KEY: [u8; 32] = [0x3c; 32];
const POLL: Duration = Duration::from_millis(100);

/// Prepares `count` nodes with shared fleet keys and TLS from a fresh fleet CA.
fn prepare_tls(count: u64) -> TestCluster {
    let mut cluster = TestCluster::prepare(count, RaftTiming::default());
    cluster.share_fleet_keys();
    cluster.enable_tls();
    cluster
}

/// Starts `ids`, initializes them as voters and returns the leader.
async fn start_voters(cluster: &mut TestCluster, ids: &[NodeId]) -> NodeId {
    for id in ids {
        cluster.start(*id).await;
    }
    cluster.initialize(ids).await;
    cluster.wait_for_leader(ids).await
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn path_text(path: &std::path::Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Issues node `node_id`'s certificate with node `issuer`'s configuration into `cert`/`key`.
fn issue_node(
    cluster: &TestCluster,
    issuer: NodeId,
    node_id: NodeId,
    extra: &[&str],
    cert: &std::path::Path,
    key: &std::path::Path,
) {
    let id_text = node_id.to_string();
    let mut args = vec!["issue-node", "--node-id", &id_text, "--ip", "127.0.0.1"];
    args.extend_from_slice(extra);
    args.extend([
        "--cert-out",
        path_text(cert),
        "--key-out",
        path_text(key),
        "--force",
    ]);

    let output = cluster.run_certs(issuer, &args);
    assert!(
        output.status.success(),
        "issue-node failed: {}",
        stderr(&output)
    );
}

/// Waits until node `id`'s log contains `needle`.
async fn wait_for_log(cluster: &TestCluster, id: NodeId, needle: &str) {
    let deadline = Instant::now() + WAIT;
    while !cluster.log_text(id).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "node {id} did not log {needle:?} within {WAIT:?}\n{}",
            cluster.log_report()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Sends one health check to node `id` over TLS, trusting `ca_pem` and expecting the server
/// certificate to name `server_name`.
async fn health_check(
    cluster: &TestCluster,
    id: NodeId,
    ca_pem: &[u8],
    server_name: &str,
) -> Result<(), String> {
    let uri = cluster.api_endpoint(id).replacen("http://", "https://", 1);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(server_name);
    let channel = Endpoint::from_shared(uri)
        .map_err(|error| error.to_string())?
        .tls_config(tls)
        .map_err(|error| error.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|error| format!("connect failed: {error:?}"))?;

    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(drop)
        .map_err(|status| status.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certs_init_ca_and_issue() {
    let mut cluster = TestCluster::prepare(1, RaftTiming::default());
    let paths = FleetTlsPaths::new(cluster.root());
    let dir = cluster.node_dir(1);
    cluster.set_tls_toml(1, paths.node_tls_toml(&dir));

    let no_keys = cluster.run_certs(1, &["init-ca"]);
    assert_eq!(no_keys.status.code(), Some(1), "{}", stderr(&no_keys));
    assert!(
        stderr(&no_keys).contains("keys generate"),
        "{}",
        stderr(&no_keys)
    );
    assert!(
        !paths.ca_cert.exists(),
        "a failed init-ca wrote the CA certificate"
    );

    cluster.share_fleet_keys();
    let init = cluster.run_certs(1, &["init-ca"]);
    assert!(init.status.success(), "init-ca failed: {}", stderr(&init));
    let printed = stdout(&init);
    let fingerprint = printed
        .lines()
        .find_map(|line| line.strip_prefix("fleet CA SHA-256 fingerprint: "))
        .expect("init-ca prints the fingerprint")
        .to_owned();
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");

    let again = cluster.run_certs(1, &["init-ca"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    let shown = cluster.run_certs(1, &["fingerprint"]);
    assert_eq!(stdout(&shown).trim(), fingerprint);

    let sealed = std::fs::read(&paths.ca_key_sealed).expect("read the sealed CA key");
    assert!(
        sealed.starts_with(b"KFSL"),
        "the CA key file is not a sealed blob"
    );

    let cert = dir.join("node.pem");
    let key = dir.join("node.key");
    let reserved = cluster.run_certs(
        1,
        &[
            "issue-node",
            "--node-id",
            "1",
            "--dns",
            "node-2.keyfleet.internal",
            "--cert-out",
            path_text(&cert),
            "--key-out",
            path_text(&key),
        ],
    );
    assert_eq!(reserved.status.code(), Some(2), "{}", stderr(&reserved));
    assert!(!cert.exists(), "a rejected issue-node wrote a certificate");

    issue_node(&cluster, 1, 1, &["--dns", "vault-1.example"], &cert, &key);
    let mode = std::fs::metadata(&key).expect("key file").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let pem = std::fs::read_to_string(&key).expect("read the key");
    assert!(pem.contains("PRIVATE KEY"), "the key file is not a PEM key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster_serves_vault() {
    let mut cluster = prepare_tls(3);
    let leader = start_voters(&mut cluster, &[1, 2, 3]).await;
    cluster.wait_for_vault(&[1, 2, 3]).await;

    let user = common::user("tls-write");
    let (_, index) =
        common::write_ok(&cluster, &cluster.client(), &common::register(&user, 3)).await;
    for id in [1, 2, 3] {
        cluster.wait_for_applied(id, index).await;
    }

    let ca_only = ClientTls::from_files(&FleetTlsPaths::new(cluster.root()).ca_cert, None)
        .expect("read the CA");
    let endpoints: Vec<String> = [1, 2, 3]
        .iter()
        .map(|id| cluster.api_endpoint(*id))
        .collect();
    let vault = keyfleet_sdk::VaultClient::with_tls(endpoints, common::test_policy(), ca_only)
        .expect("build the SDK client")
        .with_ksf(TEST_KSF);
    let token = cluster.token("alice");
    vault
        .register(&token, "alice", PASSWORD, &BACKUP_KEY, 3)
        .await
        .expect("register over TLS without a client certificate");
    let recovered = vault
        .recover(&token, "alice", PASSWORD)
        .await
        .expect("recover over TLS");
    assert_eq!(recovered.as_slice(), &BACKUP_KEY);

    let status = cluster.expect_status(leader).await;
    assert_eq!(status.leader_id, leader);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_need_operator_cert() {
    let mut cluster = prepare_tls(1);
    start_voters(&mut cluster, &[1]).await;
    let paths = FleetTlsPaths::new(cluster.root());
    let endpoint = cluster.api_endpoint(1);
    let token = cluster.admin_token().to_owned();
    let user = common::user("admin-check");

    let ca_only = ClientTls::from_files(&paths.ca_cert, None).expect("read the CA");
    let no_cert = FleetClient::with_tls([endpoint.clone()], common::test_policy(), ca_only)
        .expect("build the client")
        .with_admin_token(token.clone());
    let status = no_cert
        .status(&endpoint)
        .await
        .expect("Status needs no certificate");
    assert_eq!(status.node_id, 1);
    let error = no_cert
        .write(&common::register(&user, 3))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(tonic::Code::Unauthenticated), "{error}");
    assert!(
        error.to_string().contains("operator client certificate"),
        "{error}"
    );

    let dir = cluster.node_dir(1);
    let node_cert = ClientTls::from_files(
        &paths.ca_cert,
        Some((&dir.join("node.pem"), &dir.join("node.key"))),
    )
    .expect("read the node certificate");
    let node_client = FleetClient::with_tls([endpoint.clone()], common::test_policy(), node_cert)
        .expect("build the client")
        .with_admin_token(token);
    let error = node_client
        .write(&common::register(&user, 3))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(tonic::Code::Unauthenticated), "{error}");
    assert!(
        error.to_string().contains("operator client certificate"),
        "{error}"
    );

    // The harness client presents the operator certificate and the admin token.
    common::write_ok(&cluster, &cluster.client(), &common::register(&user, 3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_rejects_foreign_ca_node() {
    let mut cluster = prepare_tls(3);

    // Node 3 gets a CA of its own, made with the same fleet sealing key: only the CA differs.
    let foreign = FleetTlsPaths::new(&cluster.node_dir(3).join("foreign"));
    std::fs::create_dir_all(cluster.node_dir(3).join("foreign")).expect("create a directory");
    let node_3_dir = cluster.node_dir(3).join("foreign");
    cluster.set_tls_toml(3, foreign.node_tls_toml(&node_3_dir));
    let init = cluster.run_certs(3, &["init-ca"]);
    assert!(init.status.success(), "init-ca failed: {}", stderr(&init));
    issue_node(
        &cluster,
        3,
        3,
        &[],
        &node_3_dir.join("node.pem"),
        &node_3_dir.join("node.key"),
    );

    cluster.start(1).await;
    cluster.start(2).await;
    cluster.spawn(3);
    cluster.initialize(&[1, 2, 3]).await;
    let leader = cluster.wait_for_leader(&[1, 2]).await;

    let user = common::user("quorum-without-3");
    let (_, index) = common::write_ok(
        &cluster,
        &cluster.client_for(&[1, 2]),
        &common::register(&user, 3),
    )
    .await;
    cluster.wait_for_applied(1, index).await;
    cluster.wait_for_applied(2, index).await;

    wait_for_log(&cluster, leader, "TLS handshake with Raft peer failed").await;
    wait_for_log(&cluster, 3, "TLS handshake failed").await;
    // The Raft listener starts before the API listener, so wait for the API too.
    wait_for_log(&cluster, 3, "keyfleet node started").await;

    let foreign_tls = ClientTls::from_files(&foreign.ca_cert, None).expect("read the foreign CA");
    let endpoint = cluster.api_endpoint(3);
    let node_3 = FleetClient::with_tls([endpoint.clone()], common::test_policy(), foreign_tls)
        .expect("build a client of node 3");
    let status = node_3
        .status(&endpoint)
        .await
        .expect("node 3 serves Status");
    assert_eq!(
        status.applied_index, 0,
        "node 3 received entries: {status:?}"
    );
    assert_eq!(
        status.current_term, 0,
        "node 3 took part in an election: {status:?}"
    );
    assert!(
        status.voters.is_empty(),
        "node 3 learned the membership: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_rejects_misaddressed_peer() {
    let mut cluster = prepare_tls(3);
    cluster.start(1).await;
    cluster.start(2).await;

    // The membership sends node 3's traffic to node 2, whose certificate names node 2.
    let node_2 = cluster.addresses(2);
    let members: BTreeMap<NodeId, NodeAddresses> = [
        (1, cluster.addresses(1)),
        (2, node_2.clone()),
        (
            3,
            NodeAddresses::new(node_2.raft.clone(), cluster.addresses(3).api),
        ),
    ]
    .into_iter()
    .collect();
    cluster
        .client_for(&[1])
        .initialize(&members)
        .await
        .expect("initialize");
    let leader = cluster.wait_for_leader(&[1, 2]).await;

    let user = common::user("misaddressed");
    common::write_ok(
        &cluster,
        &cluster.client_for(&[1, 2]),
        &common::register(&user, 3),
    )
    .await;
    wait_for_log(&cluster, leader, "TLS handshake with Raft peer failed").await;
    let log = cluster.log_text(leader);
    assert!(
        log.lines()
            .any(|line| line.contains("TLS handshake with Raft peer failed")
                && line.contains("target=3")),
        "the leader did not log a failed handshake with node 3\n{}",
        cluster.log_report()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_rejects_caller_naming_other_node() {
    let mut cluster = prepare_tls(1);
    cluster.start(1).await;
    let paths = FleetTlsPaths::new(cluster.root());

    // A certificate of the fleet CA for node 2, used by a caller that claims to be node 3.
    let cert = cluster.root().join("node-2.pem");
    let key = cluster.root().join("node-2.key");
    issue_node(&cluster, 1, 2, &[], &cert, &key);
    let material = TlsFiles {
        ca_cert: paths.ca_cert.clone(),
        cert,
        key,
    }
    .load()
    .expect("load node 2's files");
    let tls = Arc::new(TlsConfigCell::new(
        raft_client_config(&material).expect("build the client configuration"),
    ));
    let raft_addr = cluster.addresses(1).raft;
    let option = RPCOption::new(Duration::from_secs(10));

    let mut as_node_3 = PeerClient::with_tls(3, 1, &raft_addr, tls.clone());
    let claim_3 = openraft::raft::VoteRequest::new(keyfleet_raft::Vote::new(1, 3), None);
    let error = as_node_3
        .pre_vote(claim_3, option.clone())
        .await
        .expect_err("node 1 accepted a pre-vote from a caller with node 2's certificate");
    assert!(
        error.to_string().contains("does not name node 3"),
        "{error}"
    );

    let mut as_node_2 = PeerClient::with_tls(2, 1, &raft_addr, tls);
    let claim_2 = openraft::raft::VoteRequest::new(keyfleet_raft::Vote::new(1, 2), None);
    as_node_2
        .pre_vote(claim_2, option)
        .await
        .expect("node 1 answers a pre-vote from the node its certificate names");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_other_nodes_cert_fails_to_start() {
    let mut cluster = prepare_tls(1);
    let dir = cluster.node_dir(1);
    issue_node(
        &cluster,
        1,
        2,
        &[],
        &dir.join("node.pem"),
        &dir.join("node.key"),
    );

    cluster.spawn(1);
    let status = cluster.wait_for_exit(1).await;

    assert!(!status.success(), "node 1 ran with node 2's certificate");
    assert!(
        cluster
            .log_text(1)
            .contains("does not name node-1.keyfleet.internal"),
        "{}",
        cluster.log_report()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_certificates() {
    let mut cluster = prepare_tls(1);
    start_voters(&mut cluster, &[1]).await;
    let ca_pem = std::fs::read(FleetTlsPaths::new(cluster.root()).ca_cert).expect("read the CA");
    let dir = cluster.node_dir(1);
    let new_name = "reloaded.example";

    health_check(&cluster, 1, &ca_pem, "node-1.keyfleet.internal")
        .await
        .expect("health check before the reload");
    issue_node(
        &cluster,
        1,
        1,
        &["--dns", new_name],
        &dir.join("node.pem"),
        &dir.join("node.key"),
    );
    let before = health_check(&cluster, 1, &ca_pem, new_name).await;
    assert!(
        before.is_err(),
        "the new certificate was served before SIGHUP"
    );

    cluster.send_signal(1, "HUP");
    let deadline = Instant::now() + WAIT;
    while let Err(error) = health_check(&cluster, 1, &ca_pem, new_name).await {
        assert!(
            Instant::now() < deadline,
            "the reloaded certificate was not served: {error}"
        );
        tokio::time::sleep(POLL).await;
    }

    std::fs::write(dir.join("node.key"), "not a key").expect("break the key file");
    cluster.send_signal(1, "HUP");
    wait_for_log(&cluster, 1, "TLS reload failed").await;
    health_check(&cluster, 1, &ca_pem, new_name)
        .await
        .expect("the node kept the last good certificate");

    let user = common::user("after-reload");
    common::write_ok(&cluster, &cluster.client(), &common::register(&user, 3)).await;
}
