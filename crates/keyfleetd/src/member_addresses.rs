//! The check that a new member's addresses are its own. Two node ids behind one Raft address
//! would let one process count twice toward a quorum when peers are not authenticated by TLS.
//! One address written two ways (`localhost:7101` and `127.0.0.1:7101`) is still one address,
//! so the check compares resolved socket addresses as well as the strings.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use keyfleet_raft::{NodeAddresses, NodeId};
use openraft::async_runtime::WatchReceiver;
use tonic::Status;

use crate::replica::Replica;

/// Upper bound of one address lookup.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Rejects `addresses` for node `id` when its raft and api addresses are one address, or when
/// either is an address that another member uses.
pub(crate) async fn check_addresses_unused(
    replica: &Replica,
    id: NodeId,
    addresses: &NodeAddresses,
) -> Result<(), Status> {
    let new_raft = resolve(&addresses.raft).await;
    let new_api = resolve(&addresses.api).await;
    if !new_raft.is_disjoint(&new_api) {
        return Err(Status::invalid_argument(format!(
            "node {id}'s raft address {} and api address {} are the same address; give each \
             port its own",
            addresses.raft, addresses.api
        )));
    }

    let members: Vec<(NodeId, NodeAddresses)> = {
        let metrics = replica.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        membership
            .nodes()
            .filter(|(member, _)| **member != id)
            .map(|(member, node)| (*member, node.clone()))
            .collect()
    };
    for (member, existing) in members {
        let mut member_addresses = resolve(&existing.raft).await;
        member_addresses.extend(resolve(&existing.api).await);
        for (kind, address, resolved) in [
            ("raft", &addresses.raft, &new_raft),
            ("api", &addresses.api, &new_api),
        ] {
            if !resolved.is_disjoint(&member_addresses) {
                return Err(Status::already_exists(format!(
                    "node {member} already uses the {kind} address {address}; give node {id} \
                     addresses of its own"
                )));
            }
        }
    }
    Ok(())
}

/// Returns `address` as written together with the socket addresses it resolves to, so that
/// equal strings match even when they do not resolve.
async fn resolve(address: &str) -> BTreeSet<ResolvedAddress> {
    let mut resolved = BTreeSet::from([ResolvedAddress::Text(address.to_owned())]);
    if let Ok(Ok(found)) =
        tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host(address)).await
    {
        resolved.extend(found.map(ResolvedAddress::Socket));
    }
    resolved
}

/// One form of an address: a resolved socket address, or the string as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ResolvedAddress {
    Socket(SocketAddr),
    Text(String),
}
