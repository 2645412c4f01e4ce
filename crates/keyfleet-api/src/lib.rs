//! Wire types of keyfleet's gRPC services, generated from `proto/`: the public vault API
//! (`keyfleet.v1`), the node API (`keyfleet.node.v1`), shared by keyfleetd and the Rust
//! clients, and the internal Raft service (`keyfleet.raft.v1`), used by keyfleet-raft-net.

mod error_reason;

pub use error_reason::{ERROR_DOMAIN, ErrorReason, GUESSES_LEFT_KEY};

/// Response metadata key that carries the leader's node id when a node is not the leader.
pub const LEADER_ID_METADATA: &str = "x-keyfleet-leader-id";
/// Response metadata key that carries the leader's node API address when a node is not the
/// leader.
pub const LEADER_API_METADATA: &str = "x-keyfleet-leader-api";

/// Encoded `FileDescriptorSet` of every keyfleet proto file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/keyfleet_descriptor_set.bin"));

/// Code generated from `keyfleet.node.v1` by tonic-prost-build.
pub mod node {
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_debug_implementations,
        unreachable_pub,
        missing_docs
    )]

    tonic::include_proto!("keyfleet.node.v1");
}

/// Code generated from `keyfleet.raft.v1` by tonic-prost-build.
pub mod raft {
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_debug_implementations,
        unreachable_pub,
        missing_docs
    )]

    tonic::include_proto!("keyfleet.raft.v1");
}

/// Code generated from `keyfleet.v1`, the public vault API, by tonic-prost-build.
pub mod vault {
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_debug_implementations,
        unreachable_pub,
        missing_docs
    )]

    tonic::include_proto!("keyfleet.v1");
}
