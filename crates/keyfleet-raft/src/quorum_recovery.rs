//! Offline recovery of a cluster that lost a majority of its voters for good.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;

use openraft::EntryPayload;
use openraft::Membership;
use openraft::vote::RaftLeaderId;

use crate::error::StoreError;
use crate::log_store::LogStore;
use crate::node_addresses::NodeAddresses;
use crate::node_storage::LOG_FILE_NAME;
use crate::node_storage::STATE_MACHINE_FILE_NAME;
use crate::state_machine::StateMachineStore;
use crate::type_config::Entry;
use crate::type_config::LogId;
use crate::type_config::NodeId;
use crate::type_config::Vote;

/// Changes made by [`force_voters`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumRecovery {
    /// Voters of the membership that was in effect.
    pub previous_voters: BTreeSet<NodeId>,
    /// Voters of the appended membership entry.
    pub voters: BTreeSet<NodeId>,
    /// Log id of the appended membership entry.
    pub log_id: LogId,
}

/// Error of [`force_voters`].
#[derive(Debug, thiserror::Error)]
pub enum QuorumRecoveryError {
    /// The data directory contains no Raft log.
    #[error(
        "{path} contains no Raft log ({LOG_FILE_NAME}); run recover-quorum on a surviving node's \
         data directory"
    )]
    NoData {
        /// The data directory.
        path: String,
    },

    /// The voter list is empty.
    #[error("the voter list is empty; name the surviving nodes, this node included")]
    NoVoters,

    /// This node is not among the voters.
    #[error("node {node_id} is not in the voter list {voters:?}; name this node too")]
    SelfNotVoter {
        /// This node's id.
        node_id: NodeId,
        /// The voters named.
        voters: BTreeSet<NodeId>,
    },

    /// A voter is not a member of the current membership, so its addresses are unknown.
    #[error(
        "node {node_id} is not a member of this node's membership {members:?}; name only \
         surviving members"
    )]
    UnknownMember {
        /// The unknown node.
        node_id: NodeId,
        /// Members of this node's membership.
        members: BTreeSet<NodeId>,
    },

    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes `voters` the only voters of the node `node_id` whose stores are in `data_dir`, by
/// appending a membership entry to its log. Run it only while the node is stopped.
///
/// Run it on one survivor only, the one with the most up-to-date log. The entry carries a term
/// one above every term the node has seen, and this node as its leader, so it cannot share a
/// log id with an entry that another leader wrote. This node's log then wins every election
/// against the other survivors, which receive the new membership from it. The node votes for
/// itself in that term. That leader commits every entry its log holds, including entries that
/// never reached a majority before: a write whose client saw an error or a timeout may still
/// take effect.
pub async fn force_voters(
    data_dir: &Path,
    node_id: NodeId,
    voters: &BTreeSet<NodeId>,
) -> Result<QuorumRecovery, QuorumRecoveryError> {
    if voters.is_empty() {
        return Err(QuorumRecoveryError::NoVoters);
    }
    if !voters.contains(&node_id) {
        return Err(QuorumRecoveryError::SelfNotVoter {
            node_id,
            voters: voters.clone(),
        });
    }
    if !data_dir.join(LOG_FILE_NAME).exists() {
        return Err(QuorumRecoveryError::NoData {
            path: data_dir.display().to_string(),
        });
    }

    let log_store = LogStore::open(&data_dir.join(LOG_FILE_NAME))?;
    let state_machine = StateMachineStore::open(&data_dir.join(STATE_MACHINE_FILE_NAME))?;
    let (last_applied, applied_membership) = state_machine.applied_membership().await?;
    let applied_index = last_applied.map_or(0, |log_id| log_id.index);
    let (vote, last_log_id, entries) = log_store.read_offline(applied_index).await?;

    let mut membership = applied_membership.membership().clone();
    for entry in &entries {
        if let EntryPayload::Membership(changed) = &entry.payload {
            membership = changed.clone();
        }
    }

    let members: BTreeMap<NodeId, NodeAddresses> = membership
        .nodes()
        .map(|(id, addresses)| (*id, addresses.clone()))
        .collect();
    let mut nodes = BTreeMap::new();
    for id in voters {
        let Some(addresses) = members.get(id) else {
            return Err(QuorumRecoveryError::UnknownMember {
                node_id: *id,
                members: members.keys().copied().collect(),
            });
        };
        nodes.insert(*id, addresses.clone());
    }

    let seen_term = vote.as_ref().map_or(0, |vote| vote.leader_id().term).max(
        last_log_id
            .as_ref()
            .map_or(0, |log_id| log_id.leader_id.term()),
    );
    let term = seen_term + 1;
    let log_id = LogId::new(
        RaftLeaderId::new(term, node_id),
        last_log_id.as_ref().map_or(0, |log_id| log_id.index) + 1,
    );
    let forced = Membership::new(vec![voters.clone()], nodes)
        .expect("every voter has addresses, so the membership is valid");
    let entry = Entry {
        log_id,
        payload: EntryPayload::Membership(forced),
    };
    log_store
        .append_offline(Vote::new(term, node_id), entry)
        .await?;

    Ok(QuorumRecovery {
        previous_voters: membership.voter_ids().collect(),
        voters: voters.clone(),
        log_id,
    })
}
