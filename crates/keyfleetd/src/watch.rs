//! Logs elections, leader changes and membership changes as Raft reports them.

use keyfleet_raft::{NodeId, Raft};
use openraft::async_runtime::WatchReceiver;

/// Follows the Raft metrics and logs each change of term, leader, state or membership.
///
/// Returns when Raft stops with a fatal error, with that error. A node whose Raft has stopped
/// no longer takes part in the cluster, so the daemon exits and a supervisor can restart it.
pub(crate) async fn log_raft_changes(node_id: NodeId, raft: Raft) -> String {
    // The server metrics change only with the term, the leader, the state or the membership,
    // not with every write as the full metrics do.
    let mut metrics = raft.server_metrics();
    let mut last = None;

    loop {
        if let Some(fatal) = fatal_error(&raft) {
            tracing::error!(node_id, error = %fatal, "Raft stopped with a fatal error");
            return fatal;
        }
        let current = {
            let m = metrics.borrow_watched();
            let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
            let learners: Vec<NodeId> = m.membership_config.membership().learner_ids().collect();
            (
                m.vote.leader_id.term,
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
            let reason = fatal_error(&raft).unwrap_or_else(|| "Raft has stopped".to_owned());
            tracing::error!(node_id, error = %reason, "Raft metrics closed: Raft has stopped");
            return reason;
        }
    }
}

/// Returns the fatal error that stopped Raft, if any.
fn fatal_error(raft: &Raft) -> Option<String> {
    let metrics = raft.metrics();
    let running = &metrics.borrow_watched().running_state;
    running.as_ref().err().map(ToString::to_string)
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
