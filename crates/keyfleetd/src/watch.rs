//! Logs elections, leader changes and membership changes as Raft reports them.

use keyfleet_raft::{NodeId, Raft};
use openraft::async_runtime::WatchReceiver;

/// Follows the Raft metrics and logs each change of term, leader, state or membership.
///
/// Returns when Raft stops with a fatal error, with that error. A node whose Raft has stopped
/// no longer takes part in the cluster, so the daemon exits and a supervisor can restart it.
pub(crate) async fn log_raft_changes(node_id: NodeId, raft: Raft) -> String {
    let mut metrics = raft.metrics();
    let mut last = None;

    loop {
        if let Err(fatal) = &metrics.borrow_watched().running_state {
            tracing::error!(node_id, error = %fatal, "Raft stopped with a fatal error");
            return fatal.to_string();
        }
        let current = {
            let m = metrics.borrow_watched();
            let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
            let learners: Vec<NodeId> = m.membership_config.membership().learner_ids().collect();
            (
                m.current_term,
                m.current_leader,
                format!("{:?}", m.state),
                voters,
                learners,
            )
        };
        if last.as_ref() != Some(&current) {
            log_change(node_id, last.as_ref(), &current);
            last = Some(current);
        }
        if metrics.changed().await.is_err() {
            tracing::error!(node_id, "Raft metrics closed: Raft has stopped");
            return "Raft has stopped".to_owned();
        }
    }
}

type Snapshot = (u64, Option<NodeId>, String, Vec<NodeId>, Vec<NodeId>);

fn log_change(node_id: NodeId, before: Option<&Snapshot>, now: &Snapshot) {
    let (term, leader, state, voters, learners) = now;

    if before.is_none_or(|b| b.0 != *term || b.1 != *leader || b.2 != *state) {
        tracing::info!(node_id, term, leader = ?leader, state = %state, "Raft role or leader changed");
    }
    if before.is_none_or(|b| b.3 != *voters || b.4 != *learners) {
        tracing::info!(node_id, ?voters, ?learners, "Raft membership changed");
    }
}
