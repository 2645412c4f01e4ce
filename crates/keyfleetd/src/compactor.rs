//! Prompt compaction after an erase: a locked or deleted record's sealed blobs stay in the
//! Raft log entries that wrote them, in the current snapshot, and in freed pages of both redb
//! files, until all are replaced. Each node builds a snapshot past every applied erase, which
//! removes the older snapshot's file, purges its log up to that snapshot (the log store
//! rewrites its file on every purge), and rewrites its state machine file.
//!
//! NOTE: rewriting the state machine file blocks applies while it runs, and its cost grows with
//! the number of records. Erases that arrive during a round share the next round, but a steady
//! stream of lockouts on a large vault will show up as write latency.

use std::time::Duration;

use keyfleet_raft::{NodeId, Raft, StateMachineStore};
use openraft::RaftMetrics;
use openraft::async_runtime::WatchReceiver;

/// Maximum wait for a snapshot or a purge to reach an erase.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Interval at which a compaction step sends its request to Raft again.
const RETRIGGER: Duration = Duration::from_secs(1);

/// Purge requests a compaction step sends before it requests a snapshot in their place.
const PURGE_ATTEMPTS_PER_SNAPSHOT: u32 = 5;

/// Follows `erasures`, the log index of the last applied erase, and compacts past each one.
/// Erases that arrive during a compaction are covered by the next round, and a failed round is
/// tried again. Runs until Raft or the state machine stops.
///
/// A node that stopped between applying an erase and finishing its round would keep the erased
/// blobs until its next erase, so a round runs at start when the state machine records an
/// erase that no finished round covers.
pub(crate) async fn compact_after_erasures(
    node_id: NodeId,
    raft: Raft,
    state_machine: StateMachineStore,
) {
    let mut erasures = state_machine.erasures();
    let unfinished = match state_machine.erasure_to_compact().await {
        Ok(index) => index,
        Err(error) => {
            tracing::warn!(node_id, %error, "reading the last erase failed; compacting at the next erase");
            0
        }
    };
    let mut pending = (unfinished > 0).then_some(unfinished);
    let mut retry = RETRY_MIN;

    loop {
        let index = match pending.take() {
            Some(index) => index.max(*erasures.borrow_and_update()),
            None => {
                if erasures.changed().await.is_err() {
                    return;
                }
                *erasures.borrow_and_update()
            }
        };

        match compact_past(&raft, &state_machine, index).await {
            Ok(()) => {
                tracing::info!(
                    node_id,
                    erase_index = index,
                    "log and snapshot compacted past an erase"
                );
                retry = RETRY_MIN;
                tokio::time::sleep(MIN_ROUND_INTERVAL).await;
            }
            Err(reason) => {
                tracing::warn!(node_id, erase_index = index, %reason, retry_secs = retry.as_secs(), "compaction after an erase failed; retrying");
                pending = Some(index);
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Wait between two compaction rounds, so that a stream of erases shares rounds instead of
/// rewriting the files back to back.
const MIN_ROUND_INTERVAL: Duration = Duration::from_secs(1);

/// First and last wait before a failed round is tried again; it doubles in between.
const RETRY_MIN: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(60);

async fn compact_past(
    raft: &Raft,
    state_machine: &StateMachineStore,
    index: u64,
) -> Result<(), String> {
    let snapshot = step(raft, "a snapshot", Trigger::Snapshot, |metrics| {
        metrics
            .snapshot
            .map(|id| id.index)
            .filter(|snapshot| *snapshot >= index)
    })
    .await?;

    step(
        raft,
        "the log purge",
        Trigger::PurgeLog(snapshot),
        |metrics| {
            metrics
                .purged
                .map(|id| id.index)
                .filter(|purged| *purged >= index)
        },
    )
    .await?;

    state_machine
        .compact(index)
        .await
        .map_err(|error| format!("compacting the state machine file failed: {error}"))
}

/// A request to Raft that one compaction step sends.
#[derive(Clone, Copy)]
enum Trigger {
    Snapshot,
    PurgeLog(u64),
}

/// Sends `trigger` until `reached` returns a value for the Raft metrics, and returns it. The
/// trigger is sent again every [`RETRIGGER`], because Raft ignores a snapshot request while it
/// builds another snapshot, and delays a purge while it replicates the entries to a follower.
async fn step<F>(raft: &Raft, what: &str, trigger: Trigger, reached: F) -> Result<u64, String>
where
    F: Fn(&RaftMetrics<keyfleet_raft::TypeConfig>) -> Option<u64>,
{
    let mut metrics = raft.metrics();
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    let mut attempts = 0u32;

    loop {
        if let Some(value) = reached(&metrics.borrow_watched()) {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{what} did not happen within {STEP_TIMEOUT:?}"));
        }

        attempts += 1;
        let sent = match trigger {
            Trigger::Snapshot => raft.trigger().snapshot().await,
            // openraft 0.10.0-alpha.37 ignores a purge request while one is scheduled, and a
            // purge scheduled while this node still led an old term can stay stuck after it
            // steps down. A finished snapshot reschedules the purge, so every few attempts ask
            // for one.
            Trigger::PurgeLog(_) if attempts.is_multiple_of(PURGE_ATTEMPTS_PER_SNAPSHOT) => {
                raft.trigger().snapshot().await
            }
            Trigger::PurgeLog(upto) => raft.trigger().purge_log(upto).await,
        };
        sent.map_err(|fatal| fatal.to_string())?;

        let changed = tokio::time::timeout(RETRIGGER, async {
            while reached(&metrics.borrow_watched()).is_none() {
                if metrics.changed().await.is_err() {
                    return Err("Raft stopped".to_owned());
                }
            }
            Ok(())
        })
        .await;
        if let Ok(Err(stopped)) = changed {
            return Err(stopped);
        }
    }
}
