//! The consensus anchor: durable counter increments on a three-member etcd cluster.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use crate::BenchError;
use crate::etcd_cluster::{EtcdCluster, etcd_channel};
use crate::etcd_proto::PutRequest;
use crate::etcd_proto::kv_client::KvClient;
use crate::latency::{OpRecorder, OpSummary, merge_all};

/// Starts etcd under `dir` and runs `concurrency` clients for `phase`, each putting its own
/// counter key with the next value, one put per increment. etcd acknowledges a put once a
/// majority has it in its fsynced log, as keyfleet does a guess. The clients call the leader,
/// as keyfleet's do. The cluster is stopped before returning.
pub(crate) async fn run_etcd_anchor(
    dir: &Path,
    concurrency: usize,
    phase: Duration,
) -> Result<OpSummary, BenchError> {
    let mut cluster = EtcdCluster::start(dir).await?;
    let result = drive_increments(&cluster, concurrency, phase).await;
    cluster.stop();
    result
}

async fn drive_increments(
    cluster: &EtcdCluster,
    concurrency: usize,
    phase: Duration,
) -> Result<OpSummary, BenchError> {
    let channel = etcd_channel(&cluster.leader_url().await?)?;
    let started = Instant::now();
    let deadline = started + phase;

    let mut tasks = tokio::task::JoinSet::new();
    for client_index in 0..concurrency {
        let client = KvClient::new(channel.clone());
        tasks.spawn(increment_until(client, client_index, deadline));
    }

    let mut parts = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let recorder = joined.map_err(|error| BenchError::Etcd {
            reason: format!("an etcd client task failed: {error}"),
        })?;
        parts.push(vec![recorder]);
    }

    let elapsed = started.elapsed();
    let merged = merge_all(parts);
    Ok(merged[0].summary(elapsed))
}

async fn increment_until(
    mut client: KvClient<tonic::transport::Channel>,
    client_index: usize,
    deadline: Instant,
) -> OpRecorder {
    let mut recorder = OpRecorder::new("etcd_increment");
    let key = format!("keyfleet-bench/counter/{client_index}").into_bytes();
    let mut counter = 0u64;

    while Instant::now() < deadline {
        counter += 1;
        let request = PutRequest {
            key: key.clone(),
            value: counter.to_string().into_bytes(),
        };
        let started = std::time::Instant::now();
        match client.put(request).await {
            Ok(_) => recorder.record(started.elapsed()),
            Err(status) => {
                recorder.record_error(format!("{:?}: {}", status.code(), status.message()));
            }
        }
    }

    recorder
}
