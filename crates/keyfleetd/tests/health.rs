//! gRPC health checking and the Prometheus endpoint of real keyfleetd processes.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::RaftTiming;
use common::TestCluster;
use common::VaultOptions;
use common::WAIT;
use common::raw_vault::RawVault;
use keyfleet_raft::NodeId;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Health service name of readiness.
const READINESS: &str = "keyfleet.v1.Vault";
/// Health service name of liveness.
const LIVENESS: &str = "";
/// Interval between two polls of a status that has not reached its expected value.
const POLL: Duration = Duration::from_millis(100);

const PASSWORD: &[u8] = b"correct horse battery staple";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// Metric names that every node exports from its start.
const METRIC_NAMES: &[&str] = &[
    "keyfleet_raft_term",
    "keyfleet_raft_leader_id",
    "keyfleet_raft_leader_changes_total",
    "keyfleet_raft_last_log_index",
    "keyfleet_raft_committed_index",
    "keyfleet_raft_applied_index",
    "keyfleet_raft_apply_lag_entries",
    "keyfleet_raft_failure_tolerance_voters",
    "keyfleet_raft_snapshot_age_seconds",
    "keyfleet_guesses_counted_total",
    "keyfleet_lockouts_total",
    "keyfleet_recoveries_succeeded_total",
    "keyfleet_hsm_probe_duration_seconds_bucket",
    "keyfleet_hsm_probe_errors_total",
    "keyfleet_ready",
];

/// Sends one health Check for `service` to node `id`.
async fn check(cluster: &TestCluster, id: NodeId, service: &str) -> Result<ServingStatus, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(cluster.api_endpoint(id))
        .map_err(|error| format!("invalid endpoint: {error}"))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2));
    let channel = endpoint
        .connect()
        .await
        .map_err(|error| format!("connect failed: {error}"))?;

    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    let response = HealthClient::new(channel)
        .check(request)
        .await
        .map_err(|status| format!("Check failed: {status}"))?;
    Ok(response.into_inner().status())
}

/// Polls node `id` until `service` reports `expected`, or panics with the node logs after
/// [`WAIT`].
async fn wait_for_health(
    cluster: &TestCluster,
    id: NodeId,
    service: &str,
    expected: ServingStatus,
) {
    let deadline = Instant::now() + WAIT;

    loop {
        let outcome = check(cluster, id, service).await;
        if outcome == Ok(expected) {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "node {id} service {service:?}: expected {expected:?} within {WAIT:?}, last \
                 outcome {outcome:?}\n{}",
                cluster.log_report()
            );
        }

        tokio::time::sleep(POLL).await;
    }
}

/// Returns the body of a GET on the Prometheus endpoint at `address`.
async fn fetch_metrics(address: SocketAddr) -> Result<String, String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|error| format!("connect to {address} failed: {error}"))?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| format!("sending the request failed: {error}"))?;

    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|error| format!("reading the response failed: {error}"))?;

    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return Err(format!("response has no header end: {response:?}"));
    };
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("expected status 200, got {head:?}"));
    }
    Ok(body.to_owned())
}

/// Returns the value of the sample named `name`, without labels, on a metrics page.
fn metric_value(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        if fields.next() != Some(name) {
            return None;
        }
        fields.next()?.parse().ok()
    })
}

/// Polls the metrics page of node `id` until `accept` returns true for it, and returns it. Panics
/// with the last page or error after [`WAIT`].
async fn wait_for_metrics<F>(
    cluster: &TestCluster,
    id: NodeId,
    expectation: &str,
    accept: F,
) -> String
where
    F: Fn(&str) -> bool,
{
    let address = cluster.metrics_addr(id);
    let deadline = Instant::now() + WAIT;

    loop {
        let outcome = fetch_metrics(address).await;
        if let Ok(page) = &outcome
            && accept(page)
        {
            return page.clone();
        }
        if Instant::now() >= deadline {
            panic!(
                "node {id} metrics on {address}: {expectation} not seen within {WAIT:?}, last outcome \
                 {outcome:?}\n{}",
                cluster.log_report()
            );
        }

        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn readiness_follows_quorum() {
    let (mut cluster, leader) =
        TestCluster::launch_vault(3, RaftTiming::default(), VaultOptions::default()).await;
    let ids: Vec<NodeId> = vec![1, 2, 3];

    for &id in &ids {
        wait_for_health(&cluster, id, READINESS, ServingStatus::Serving).await;
        wait_for_health(&cluster, id, LIVENESS, ServingStatus::Serving).await;
    }

    // Cut off the leader first, then a follower: both must notice they lost the quorum.
    let follower = ids.iter().copied().find(|&id| id != leader).unwrap();
    for survivor in [leader, follower] {
        let others: Vec<NodeId> = ids.iter().copied().filter(|&id| id != survivor).collect();
        for &id in &others {
            cluster.kill(id);
        }

        wait_for_health(&cluster, survivor, READINESS, ServingStatus::NotServing).await;
        let liveness = check(&cluster, survivor, LIVENESS).await;
        assert_eq!(
            liveness,
            Ok(ServingStatus::Serving),
            "node {survivor} liveness without quorum\n{}",
            cluster.log_report()
        );

        for &id in &others {
            cluster.restart(id).await;
        }
        for &id in &ids {
            wait_for_health(&cluster, id, READINESS, ServingStatus::Serving).await;
        }
    }
}

#[tokio::test]
async fn metrics_endpoint_counts_guesses() {
    let (cluster, leader) =
        TestCluster::launch_vault(3, RaftTiming::default(), VaultOptions::default()).await;

    let page = wait_for_metrics(&cluster, leader, "every metric name", |page| {
        METRIC_NAMES
            .iter()
            .all(|name| page.lines().any(|line| line.starts_with(name)))
    })
    .await;
    for name in METRIC_NAMES {
        assert!(
            page.lines().any(|line| line.starts_with(name)),
            "{name} missing from node {leader}'s metrics page:\n{page}"
        );
    }
    assert_eq!(
        metric_value(&page, "keyfleet_raft_leader_id"),
        Some(leader as f64)
    );
    assert_eq!(
        metric_value(&page, "keyfleet_raft_failure_tolerance_voters"),
        Some(1.0)
    );

    let ivy = RawVault::connect(&cluster.api_endpoint(leader), cluster.token("ivy"), "ivy").await;
    ivy.register(PASSWORD, SECRET, 5).await.expect("register");
    let before = metric_value(
        &fetch_metrics(cluster.metrics_addr(leader)).await.unwrap(),
        "keyfleet_guesses_counted_total",
    )
    .expect("keyfleet_guesses_counted_total has a value");

    ivy.start_login(PASSWORD).await.expect("RecoveryStart");

    let expected = before + 1.0;
    wait_for_metrics(&cluster, leader, "one more counted guess", |page| {
        metric_value(page, "keyfleet_guesses_counted_total") == Some(expected)
    })
    .await;
}
