//! `keyfleet members`: list, add, remove and leadership transfer through the node API.

use std::collections::BTreeSet;

use keyfleet_client::{FleetClient, StatusResponse};
use keyfleet_raft::NodeId;
use serde_json::json;

use crate::cli::{
    AdminArgs, EndpointArgs, JoinTokenArgs, MembersAddArgs, MembersRemoveArgs, TransferLeaderArgs,
};
use crate::cli_error::CliError;
use crate::output::print_result;
use crate::private_file::{check_output, read_secret_text, write_private};

/// Largest admin token file read, in bytes.
const MAX_ADMIN_TOKEN_FILE_LEN: usize = 4096;

/// Minimum number of voters that tolerate the loss of one.
const SAFE_VOTER_COUNT: usize = 3;

/// Builds a client that sends the admin token of `args`.
pub(super) fn admin_client(args: &AdminArgs) -> Result<FleetClient, CliError> {
    let token = read_secret_text(&args.admin_token_file, MAX_ADMIN_TOKEN_FILE_LEN)?;
    let token = token.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        return Err(CliError::InvalidInput(format!(
            "the admin token file {} is empty; pass the file the nodes' admin_token_file names",
            args.admin_token_file.display()
        )));
    }
    Ok(super::cluster::client(&args.endpoints)?.with_admin_token(token))
}

/// Returns the status of the node with the highest term among the endpoints, preferring a
/// leader, so its membership is the most recent one known.
async fn newest_status(
    client: &FleetClient,
    args: &EndpointArgs,
) -> Result<StatusResponse, CliError> {
    let mut newest: Option<StatusResponse> = None;
    for endpoint in &args.endpoints {
        let Ok(status) = client.status(endpoint).await else {
            continue;
        };
        let key = |s: &StatusResponse| (s.current_term, s.state == "Leader");
        if newest.as_ref().is_none_or(|best| key(&status) > key(best)) {
            newest = Some(status);
        }
    }
    newest.ok_or_else(|| {
        CliError::NotReady(format!(
            "no node of {} responded: check that the nodes run and listen on these addresses",
            args.endpoints.join(",")
        ))
    })
}

fn voter_ids(status: &StatusResponse) -> BTreeSet<NodeId> {
    status.voters.iter().map(|member| member.id).collect()
}

/// Runs `keyfleet members list`.
pub(super) async fn list(args: &EndpointArgs) -> Result<(), CliError> {
    let client = super::cluster::client(args)?;
    let status = newest_status(&client, args).await?;

    let mut lines = vec![format!("{:<5} {:<8} {:<22} API", "NODE", "ROLE", "RAFT")];
    let mut members = Vec::new();
    for (role, list) in [("voter", &status.voters), ("learner", &status.learners)] {
        for member in list {
            let role = if member.id == status.leader_id {
                "leader"
            } else {
                role
            };
            lines.push(format!(
                "{:<5} {:<8} {:<22} {}",
                member.id, role, member.raft_addr, member.api_addr
            ));
            members.push(json!({
                "id": member.id,
                "role": role,
                "raft_addr": member.raft_addr,
                "api_addr": member.api_addr,
            }));
        }
    }
    print_result(
        args.json,
        &lines.join("\n"),
        &json!({ "term": status.current_term, "members": members }),
    )
}

/// Runs `keyfleet members add`: learner first, voter once it has caught up.
pub(super) async fn add(args: &MembersAddArgs) -> Result<(), CliError> {
    let parsed = super::cluster::parse_members(std::slice::from_ref(&args.node))?;
    let Some((id, addresses)) = parsed.into_iter().next() else {
        return Err(CliError::Usage("--node is empty".to_owned()));
    };
    let client = admin_client(&args.admin)?;
    let mut voters = voter_ids(&newest_status(&client, &args.admin.endpoints).await?);
    if voters.contains(&id) {
        return Err(CliError::Rejected(format!("node {id} is a voter already")));
    }

    let learner_index = client.add_learner(id, &addresses).await?;
    voters.insert(id);
    let log_index = client.change_membership(&voters, true).await?;

    print_result(
        args.admin.endpoints.json,
        &format!(
            "node {id} caught up at log index {learner_index} and is a voter; voters are now {voters:?}"
        ),
        &json!({ "added": id, "voters": voters, "log_index": log_index }),
    )
}

/// Runs `keyfleet members join-token`. The token goes to `--out` or stdout, never to a log.
pub(super) async fn join_token(args: &JoinTokenArgs) -> Result<(), CliError> {
    if let Some(out) = &args.out {
        check_output(out, false)?;
    }
    let transport_key = hex::decode(args.transport_key.trim()).map_err(|_| {
        CliError::Usage(
            "--transport-key is not hexadecimal; pass the output of `keyfleetd keys \
             transport-key` on the new node"
                .to_owned(),
        )
    })?;
    let client = admin_client(&args.admin)?;
    let created = client
        .create_join_token(args.node_id, args.ttl_secs, &transport_key)
        .await?;
    let token = zeroize::Zeroizing::new(created.join_token);

    let summary = format!(
        "join token for node {} created on the leader, node {}; it expires at {} (Unix \
         seconds) and works once. Run `keyfleetd join --config PATH --fleet ADDR --token-file \
         FILE` on the new node",
        args.node_id, created.leader_id, created.expires_at_unix_secs
    );
    let mut value = json!({
        "node_id": args.node_id,
        "leader_id": created.leader_id,
        "expires_at_unix_secs": created.expires_at_unix_secs,
    });
    match &args.out {
        Some(out) => {
            write_private(out, format!("{}\n", token.as_str()).as_bytes(), false)?;
            value["token_file"] = json!(out.display().to_string());
            print_result(
                args.admin.endpoints.json,
                &format!("{summary}; the token is in {}", out.display()),
                &value,
            )
        }
        None => {
            value["join_token"] = json!(token.as_str());
            print_result(args.admin.endpoints.json, token.as_str(), &value)?;
            eprintln!("{summary}");
            Ok(())
        }
    }
}

/// Runs `keyfleet members remove`.
pub(super) async fn remove(args: &MembersRemoveArgs) -> Result<(), CliError> {
    let client = admin_client(&args.admin)?;
    let mut voters = voter_ids(&newest_status(&client, &args.admin.endpoints).await?);
    if !voters.remove(&args.id) {
        return Err(CliError::Rejected(format!(
            "node {} is not a voter; the voters are {voters:?}",
            args.id
        )));
    }
    check_remaining_voters(voters.len(), args.allow_fewer_than_three_voters)?;

    let log_index = client.change_membership(&voters, false).await?;
    print_result(
        args.admin.endpoints.json,
        &format!(
            "node {} removed; voters are now {voters:?}. Never start it again under id {}",
            args.id, args.id
        ),
        &json!({ "removed": args.id, "voters": voters, "log_index": log_index }),
    )
}

/// Rejects a removal that would leave fewer than [`SAFE_VOTER_COUNT`] voters, unless allowed.
fn check_remaining_voters(remaining: usize, allowed: bool) -> Result<(), CliError> {
    if remaining == 0 {
        return Err(CliError::Rejected(
            "removing the last voter would leave no cluster".to_owned(),
        ));
    }
    if remaining < SAFE_VOTER_COUNT && !allowed {
        return Err(CliError::Rejected(format!(
            "removing it would leave {remaining} voters, which tolerate no failure; add a node \
             first, or pass --allow-fewer-than-three-voters"
        )));
    }
    Ok(())
}

/// Runs `keyfleet members transfer-leader`.
pub(super) async fn transfer_leader(args: &TransferLeaderArgs) -> Result<(), CliError> {
    let client = admin_client(&args.admin)?;
    let leader_id = client.transfer_leader(args.to).await?;

    print_result(
        args.admin.endpoints.json,
        &format!("node {leader_id} leads the cluster"),
        &json!({ "leader_id": leader_id }),
    )
}

/// Collects every voter's HSM signing key from its own `Status`, reached at the API address
/// the membership names. Returns the leader's id, 0 when unknown, and the keys.
pub(super) async fn voter_signing_keys(
    client: &FleetClient,
    args: &EndpointArgs,
) -> Result<(u64, Vec<keyfleet_client::NodeSigningKey>), CliError> {
    let status = newest_status(client, args).await?;
    let mut keys = Vec::new();
    for voter in &status.voters {
        let reply = client.status(&voter.api_addr).await.map_err(|error| {
            CliError::NotReady(format!(
                "voter {} at {} did not report its signing key: {error}",
                voter.id, voter.api_addr
            ))
        })?;
        if reply.node_id != voter.id || reply.signing_public_key.len() != 32 {
            return Err(CliError::NotReady(format!(
                "the node at {} is not voter {} with a signing key; check the membership",
                voter.api_addr, voter.id
            )));
        }
        keys.push(keyfleet_client::NodeSigningKey {
            node_id: voter.id,
            public_key: reply.signing_public_key,
        });
    }
    Ok((status.leader_id, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_below_three_needs_the_flag() {
        assert!(check_remaining_voters(3, false).is_ok());
        assert!(matches!(
            check_remaining_voters(2, false),
            Err(CliError::Rejected(_))
        ));
        assert!(check_remaining_voters(2, true).is_ok());
        assert!(check_remaining_voters(1, true).is_ok());
        assert!(matches!(
            check_remaining_voters(0, true),
            Err(CliError::Rejected(_))
        ));
    }
}
