//! The openraft type configuration and short names for the openraft types built from it.

use crate::command::Request;
use crate::node_addresses::NodeAddresses;
use crate::response::Response;
use crate::state_machine::StateMachineStore;

openraft::declare_raft_types!(
    /// openraft type configuration: vault requests are the log entry payload, vault responses
    /// are the apply result, nodes have `u64` ids and a network address.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = NodeAddresses,
);

/// Raft node id.
pub type NodeId = u64;

/// Log id: the committed leader id (term and node id) and the log index.
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;

/// Raft log entry carrying a [`Request`], a membership change or nothing (a blank entry).
pub type Entry = openraft::alias::EntryOf<TypeConfig>;

/// Raft vote: the term, the node voted for and whether a quorum granted it.
pub type Vote = openraft::alias::VoteOf<TypeConfig>;

/// Membership with the log id of the entry that introduced it.
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;

/// Snapshot metadata: the last log id and the membership the snapshot includes.
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;

/// Snapshot with its data, a file in the layout of [`crate::SNAPSHOT_FORMAT_VERSION`].
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, crate::SnapshotData>;

/// Raft node handle over the keyfleet state machine.
pub type Raft = openraft::Raft<TypeConfig, StateMachineStore>;
