//! `keyfleet status`: every node's view, joined into one cluster health verdict.

use std::collections::{BTreeMap, BTreeSet};

use keyfleet_client::{FleetClient, StatusResponse};
use serde_json::{Value, json};

use crate::cli::EndpointArgs;
use crate::cli_error::CliError;
use crate::output::print_result;

/// Cluster health, from best to worst; the order decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Health {
    Healthy,
    Degraded,
    NoQuorum,
    Unreachable,
}

impl Health {
    fn name(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::NoQuorum => "no quorum",
            Health::Unreachable => "unreachable",
        }
    }
}

/// Status of one node, or the error of the call.
struct NodeView {
    address: String,
    status: Result<StatusResponse, String>,
}

/// Health verdict over every node whose status was requested.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Verdict {
    pub(super) health: Health,
    pub(super) leader_id: Option<u64>,
    pub(super) voters: BTreeSet<u64>,
    pub(super) quorum: usize,
    pub(super) failure_tolerance: usize,
    pub(super) problems: Vec<String>,
}

/// Runs `keyfleet status`.
pub(super) async fn run(args: &EndpointArgs) -> Result<(), CliError> {
    let client = super::cluster::client(args)?;
    let views = collect(&client, &args.endpoints).await;
    let statuses: Vec<&StatusResponse> = views
        .iter()
        .filter_map(|v| v.status.as_ref().ok())
        .collect();
    let verdict = judge(&statuses);

    let text = render_table(&views, &verdict);
    let value = render_json(&views, &verdict);
    print_result(args.json, &text, &value)?;

    let state = match verdict.health {
        Health::NoQuorum => "has no quorum".to_owned(),
        health => format!("is {}", health.name()),
    };
    let summary = format!("the cluster {state}: {}", verdict.problems.join("; "));
    match verdict.health {
        Health::Healthy => Ok(()),
        Health::Degraded => Err(CliError::Degraded(summary)),
        Health::NoQuorum => Err(CliError::NoQuorum(summary)),
        Health::Unreachable => Err(CliError::NotReady(format!(
            "no node of {} responded: check that the nodes run and listen on these addresses",
            args.endpoints.join(",")
        ))),
    }
}

/// Requests the status of every endpoint, and then of every member that the returned
/// memberships name and that was not requested yet.
async fn collect(client: &FleetClient, endpoints: &[String]) -> Vec<NodeView> {
    let mut views = Vec::new();
    let mut requested: BTreeSet<String> = BTreeSet::new();
    let mut pending: Vec<String> = endpoints.to_vec();

    while let Some(address) = pending.pop() {
        if !requested.insert(address.clone()) {
            continue;
        }
        let status = client
            .status(&address)
            .await
            .map_err(|error| error.to_string());
        if let Ok(status) = &status {
            for member in status.voters.iter().chain(&status.learners) {
                if !member.api_addr.is_empty() && !requested.contains(&member.api_addr) {
                    pending.push(member.api_addr.clone());
                }
            }
        }
        views.push(NodeView { address, status });
    }
    views.sort_by_key(|view| view.status.as_ref().map_or(u64::MAX, |s| s.node_id));
    views
}

/// Judges the cluster from the statuses of the nodes that responded.
pub(super) fn judge(statuses: &[&StatusResponse]) -> Verdict {
    let Some(newest) = statuses
        .iter()
        .max_by_key(|s| (s.current_term, s.state == "Leader"))
    else {
        return Verdict {
            health: Health::Unreachable,
            leader_id: None,
            voters: BTreeSet::new(),
            quorum: 0,
            failure_tolerance: 0,
            problems: vec!["no node responded".to_owned()],
        };
    };
    let leader = statuses
        .iter()
        .filter(|s| s.state == "Leader")
        .max_by_key(|s| s.current_term);
    let membership_source = leader.unwrap_or(newest);
    let voters: BTreeSet<u64> = membership_source.voters.iter().map(|m| m.id).collect();
    let quorum = voters.len() / 2 + 1;
    let by_id: BTreeMap<u64, &StatusResponse> = statuses.iter().map(|s| (s.node_id, *s)).collect();

    let mut problems = Vec::new();
    let mut healthy_voters = 0;
    for id in &voters {
        match by_id.get(id) {
            None => problems.push(format!("voter {id} did not respond")),
            Some(status) if !status.ready => problems.push(format!(
                "voter {id} is not ready: {}",
                status.readiness_reason
            )),
            Some(status) if !status.hsm_healthy => {
                problems.push(format!("voter {id}'s HSM fails: {}", status.hsm_error))
            }
            Some(_) => healthy_voters += 1,
        }
    }

    let health = if leader.is_none() || healthy_voters < quorum {
        if leader.is_none() {
            problems.insert(0, "no node leads".to_owned());
        } else {
            problems.insert(
                0,
                format!(
                    "{healthy_voters} of {} voters are healthy, fewer than the quorum of {quorum}",
                    voters.len()
                ),
            );
        }
        Health::NoQuorum
    } else if problems.is_empty() {
        Health::Healthy
    } else {
        Health::Degraded
    };

    Verdict {
        health,
        leader_id: leader.map(|s| s.node_id),
        failure_tolerance: healthy_voters.saturating_sub(quorum),
        voters,
        quorum,
        problems,
    }
}

/// Returns how many entries `node` lags behind the leader, from the leader's replication
/// progress, or from its own log when it is the leader. Returns `None` while the leader does not
/// know the node's matched index yet, as just after an election.
fn lag_of(node: &StatusResponse, leader: Option<&StatusResponse>) -> Option<u64> {
    let leader = leader?;
    if leader.node_id == node.node_id {
        return Some(0);
    }
    let progress = leader
        .replication
        .iter()
        .find(|p| p.node_id == node.node_id)?;
    let matched = progress.matched_index?;

    Some(leader.last_log_index.saturating_sub(matched))
}

fn leader_status<'a>(views: &'a [NodeView], verdict: &Verdict) -> Option<&'a StatusResponse> {
    let leader_id = verdict.leader_id?;
    views
        .iter()
        .filter_map(|view| view.status.as_ref().ok())
        .find(|status| status.node_id == leader_id)
}

fn render_table(views: &[NodeView], verdict: &Verdict) -> String {
    let leader = leader_status(views, verdict);
    let mut lines = vec![format!(
        "{:<5} {:<9} {:>5} {:>6} {:>8} {:>8} {:>6} {:>9} {:<5} {:<4} ADDRESS",
        "NODE", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAG", "CONTACT", "READY", "HSM"
    )];

    for view in views {
        let line = match &view.status {
            Ok(status) => format!(
                "{:<5} {:<9} {:>5} {:>6} {:>8} {:>8} {:>6} {:>9} {:<5} {:<4} {}",
                status.node_id,
                status.state,
                status.current_term,
                status.leader_id,
                status.committed_index,
                status.applied_index,
                lag_of(status, leader).map_or("-".to_owned(), |lag| lag.to_string()),
                status
                    .millis_since_leader_contact
                    .map_or("-".to_owned(), |ms| format!("{ms}ms")),
                if status.ready { "yes" } else { "no" },
                if status.hsm_healthy { "ok" } else { "FAIL" },
                view.address
            ),
            Err(error) => format!("{:<5} unreachable: {}  {error}", "-", view.address),
        };
        lines.push(line);
    }

    lines.push(format!(
        "cluster: {}, voters {:?}, quorum {}, failure tolerance {}",
        verdict.health.name(),
        verdict.voters,
        verdict.quorum,
        verdict.failure_tolerance
    ));
    for problem in &verdict.problems {
        lines.push(format!("  - {problem}"));
    }
    lines.join("\n")
}

fn render_json(views: &[NodeView], verdict: &Verdict) -> Value {
    let leader = leader_status(views, verdict);
    let nodes: Vec<Value> = views
        .iter()
        .map(|view| match &view.status {
            Ok(status) => json!({
                "address": view.address,
                "node_id": status.node_id,
                "role": status.state,
                "term": status.current_term,
                "leader_id": status.leader_id,
                "last_log_index": status.last_log_index,
                "committed_index": status.committed_index,
                "applied_index": status.applied_index,
                "lag_entries": lag_of(status, leader),
                "millis_since_leader_contact": status.millis_since_leader_contact,
                "ready": status.ready,
                "readiness_reason": status.readiness_reason,
                "hsm_healthy": status.hsm_healthy,
                "hsm_error": status.hsm_error,
            }),
            Err(error) => json!({ "address": view.address, "error": error }),
        })
        .collect();

    json!({
        "health": verdict.health.name(),
        "leader_id": verdict.leader_id,
        "voters": verdict.voters,
        "quorum": verdict.quorum,
        "failure_tolerance": verdict.failure_tolerance,
        "problems": verdict.problems,
        "nodes": nodes,
    })
}

#[cfg(test)]
mod tests {
    use keyfleet_client::StatusResponse;

    use super::*;

    fn node(id: u64, state: &str, ready: bool) -> StatusResponse {
        StatusResponse {
            node_id: id,
            state: state.to_owned(),
            current_term: 3,
            leader_id: 1,
            voters: (1..=3).map(member).collect(),
            ready,
            hsm_healthy: true,
            ..Default::default()
        }
    }

    fn member(id: u64) -> keyfleet_client::Member {
        keyfleet_client::Member {
            id,
            raft_addr: format!("127.0.0.1:{}", 7100 + id),
            api_addr: format!("127.0.0.1:{}", 7200 + id),
        }
    }

    #[test]
    fn all_ready_is_healthy() {
        let nodes = [
            node(1, "Leader", true),
            node(2, "Follower", true),
            node(3, "Follower", true),
        ];
        let verdict = judge(&nodes.iter().collect::<Vec<_>>());

        assert_eq!(verdict.health, Health::Healthy);
        assert_eq!(verdict.quorum, 2);
        assert_eq!(verdict.failure_tolerance, 1);
        assert_eq!(verdict.leader_id, Some(1));
    }

    #[test]
    fn missing_voter_is_degraded() {
        let nodes = [node(1, "Leader", true), node(2, "Follower", true)];
        let verdict = judge(&nodes.iter().collect::<Vec<_>>());

        assert_eq!(verdict.health, Health::Degraded);
        assert_eq!(verdict.failure_tolerance, 0);
        assert!(
            verdict.problems[0].contains("voter 3"),
            "{:?}",
            verdict.problems
        );
    }

    #[test]
    fn failing_hsm_is_degraded() {
        let mut failing = node(3, "Follower", true);
        failing.hsm_healthy = false;
        let nodes = [node(1, "Leader", true), node(2, "Follower", true), failing];
        let verdict = judge(&nodes.iter().collect::<Vec<_>>());

        assert_eq!(verdict.health, Health::Degraded);
    }

    #[test]
    fn lone_node_without_leader_is_no_quorum() {
        let nodes = [node(3, "Candidate", false)];
        let verdict = judge(&nodes.iter().collect::<Vec<_>>());

        assert_eq!(verdict.health, Health::NoQuorum);
        assert_eq!(verdict.leader_id, None);
    }

    #[test]
    fn leader_without_ready_majority_is_no_quorum() {
        let nodes = [node(1, "Leader", false), node(2, "Follower", false)];
        let verdict = judge(&nodes.iter().collect::<Vec<_>>());

        assert_eq!(verdict.health, Health::NoQuorum);
    }

    #[test]
    fn no_answer_is_unreachable() {
        assert_eq!(judge(&[]).health, Health::Unreachable);
    }
}
