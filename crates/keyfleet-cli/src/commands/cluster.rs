//! `keyfleet cluster`: initialization and Raft status through the node API.

use std::collections::BTreeMap;
use std::time::Duration;

use keyfleet_client::{FleetClient, RetryPolicy, StatusResponse};
use keyfleet_raft::{NodeAddresses, NodeId};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cli::{ClusterInitArgs, EndpointArgs};
use crate::cli_error::CliError;
use crate::output::print_result;
use crate::private_file::read_secret_text;

/// Largest admin token file read, in bytes.
const MAX_ADMIN_TOKEN_FILE_LEN: usize = 4096;

/// Interval between two status polls of `wait-ready`.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Runs `keyfleet cluster init`.
pub(super) async fn init(args: &ClusterInitArgs) -> Result<(), CliError> {
    let members = parse_members(&args.members)?;
    let token = read_secret_text(&args.admin_token_file, MAX_ADMIN_TOKEN_FILE_LEN)?;
    let token = token.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        return Err(CliError::InvalidInput(format!(
            "the admin token file {} is empty; pass the file the nodes' admin_token_file names",
            args.admin_token_file.display()
        )));
    }
    let client = client(&args.endpoints)?.with_admin_token(token);

    client.initialize(&members).await?;

    let ids: Vec<NodeId> = members.keys().copied().collect();
    print_result(
        args.endpoints.json,
        &format!("initialized the cluster with voters {ids:?}"),
        &json!({ "voters": ids }),
    )
}

/// Runs `keyfleet cluster status`: one line, or one JSON object, per endpoint. Fails as
/// unavailable when no endpoint responds.
pub(super) async fn status(args: &EndpointArgs) -> Result<(), CliError> {
    let client = client(args)?;
    let mut lines = Vec::new();
    let mut nodes = Vec::new();
    let mut reachable = 0;

    for endpoint in &args.endpoints {
        match client.status(endpoint).await {
            Ok(status) => {
                reachable += 1;
                lines.push(describe(endpoint, &status));
                nodes.push(to_json(endpoint, &status));
            }
            Err(error) => {
                lines.push(format!("{endpoint}: unreachable ({error})"));
                nodes.push(json!({ "endpoint": endpoint, "error": error.to_string() }));
            }
        }
    }

    print_result(args.json, &lines.join("\n"), &json!({ "nodes": nodes }))?;

    if reachable == 0 {
        return Err(CliError::NotReady(format!(
            "no node of {} responded: check that the nodes run and listen on these addresses",
            args.endpoints.join(",")
        )));
    }
    Ok(())
}

/// Runs `keyfleet cluster wait-ready`: polls the endpoints until one reports a leader.
pub(super) async fn wait_ready(args: &EndpointArgs) -> Result<(), CliError> {
    let client = client(args)?;
    let deadline = Instant::now() + Duration::from_secs(args.deadline_secs);

    loop {
        for endpoint in &args.endpoints {
            if let Ok(status) = client.status(endpoint).await
                && status.leader_id != 0
            {
                let text = format!("node {} leads the cluster", status.leader_id);
                return print_result(args.json, &text, &json!({ "leader_id": status.leader_id }));
            }
        }

        if Instant::now() >= deadline {
            return Err(CliError::NotReady(format!(
                "no node of {} reported a leader within {} s: check that the nodes run and that \
                 the cluster was initialized",
                args.endpoints.join(","),
                args.deadline_secs
            )));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

pub(super) fn client(args: &EndpointArgs) -> Result<FleetClient, CliError> {
    let policy = RetryPolicy {
        deadline: Duration::from_secs(args.deadline_secs),
        rpc_timeout: Duration::from_secs(args.deadline_secs.min(10)),
        ..RetryPolicy::default()
    };

    match args.tls.client_tls()? {
        Some(tls) => Ok(FleetClient::with_tls(args.endpoints.clone(), policy, tls)?),
        None => Ok(FleetClient::new(args.endpoints.clone(), policy)?),
    }
}

/// Parses `ID=RAFT_ADDR,API_ADDR` members.
pub(super) fn parse_members(
    members: &[String],
) -> Result<BTreeMap<NodeId, NodeAddresses>, CliError> {
    let mut parsed = BTreeMap::new();

    for member in members {
        let invalid = || {
            CliError::Usage(format!(
                "--member {member:?} is invalid: write ID=RAFT_ADDR,API_ADDR, for example \
                 1=127.0.0.1:7101,127.0.0.1:7201"
            ))
        };
        let (id, addresses) = member.split_once('=').ok_or_else(invalid)?;
        let (raft, api) = addresses.split_once(',').ok_or_else(invalid)?;
        let id: NodeId = id.trim().parse().map_err(|_| invalid())?;
        if id == 0 || raft.is_empty() || api.is_empty() {
            return Err(invalid());
        }

        if parsed.insert(id, NodeAddresses::new(raft, api)).is_some() {
            return Err(CliError::Usage(format!(
                "node id {id} appears in two --member options"
            )));
        }
    }

    Ok(parsed)
}

fn describe(endpoint: &str, status: &StatusResponse) -> String {
    format!(
        "{endpoint}: node {} {}, term {}, leader {}, log {}, committed {}, applied {}",
        status.node_id,
        status.state,
        status.current_term,
        status.leader_id,
        status.last_log_index,
        status.committed_index,
        status.applied_index
    )
}

fn to_json(endpoint: &str, status: &StatusResponse) -> Value {
    json!({
        "endpoint": endpoint,
        "node_id": status.node_id,
        "state": status.state,
        "term": status.current_term,
        "leader_id": status.leader_id,
        "last_log_index": status.last_log_index,
        "committed_index": status.committed_index,
        "applied_index": status.applied_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_parse() {
        let members = parse_members(&[
            "1=127.0.0.1:7101,127.0.0.1:7201".to_owned(),
            "2=host-2:7101,host-2:7201".to_owned(),
        ])
        .unwrap();

        assert_eq!(members.len(), 2);
        assert_eq!(members[&1].raft, "127.0.0.1:7101");
        assert_eq!(members[&2].api, "host-2:7201");
    }

    #[test]
    fn bad_members_are_usage_errors() {
        for member in ["1", "x=a,b", "0=a,b", "1=a", "1=,b", "1=a,"] {
            let error = parse_members(&[member.to_owned()]).unwrap_err();

            assert!(matches!(error, CliError::Usage(_)), "{member}: {error}");
        }

        let twice = parse_members(&["1=a,b".to_owned(), "1=c,d".to_owned()]).unwrap_err();
        assert!(twice.to_string().contains("two --member"), "{twice}");
    }
}
