//! Prompt compaction after an erase: a locked or deleted record's sealed blobs stay in the
//! Raft log entries that wrote them, in the current snapshot, and in freed pages of both redb
//! files, until all are replaced. Each node builds a snapshot past every applied erase, purges
//! its log up to that snapshot (the log store rewrites its file on every purge), and rewrites
//! its state machine file.
//!
//! NOTE: rewriting the state machine file blocks applies while it runs, and its cost grows with
//! the number of records. Erases that arrive during a round share the next round, but a steady
//! stream of lockouts on a large vault will show up as write latency.

use std::time::Duration;

use keyfleet_raft::{NodeId, Raft, StateMachineStore};
use openraft::RaftMetrics;
use openraft::async_runtime::WatchReceiver;

/// Longest wait for a snapshot or a purge to reach an erase.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Interval at which a compaction step sends its request to Raft again.
const RETRIGGER: Duration = Duration::from_secs(1);

/// Follows `erasures`, the log index of the last applied erase, and compacts past each one.
/// Erases that arrive during a compaction are covered by the next round. Runs until Raft or
/// the state machine stops.
pub(crate) async fn compact_after_erasures(
    node_id: NodeId,
    raft: Raft,
    state_machine: StateMachineStore,
) {
    let mut erasures = state_machine.erasures();

    while erasures.changed().await.is_ok() {
        let index = *erasures.borrow_and_update();

        if let Err(reason) = compact_past(&raft, &state_machine, index).await {
            tracing::warn!(node_id, erase_index = index, %reason, "compaction after an erase failed");
        } else {
            tracing::info!(
                node_id,
                erase_index = index,
                "log and snapshot compacted past an erase"
            );
        }
    }
}

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
        .compact()
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

    loop {
        if let Some(value) = reached(&metrics.borrow_watched()) {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{what} did not happen within {STEP_TIMEOUT:?}"));
        }

        let sent = match trigger {
            Trigger::Snapshot => raft.trigger().snapshot().await,
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
