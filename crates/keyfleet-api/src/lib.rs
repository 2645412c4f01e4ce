//! Wire types of keyfleet's node API (`proto/keyfleet/node/v1/node.proto`), shared by the
//! keyfleetd server and the Rust client.

/// Response metadata key that carries the leader's node id when a node is not the leader.
pub const LEADER_ID_METADATA: &str = "x-keyfleet-leader-id";
/// Response metadata key that carries the leader's node API address when a node is not the
/// leader.
pub const LEADER_API_METADATA: &str = "x-keyfleet-leader-api";

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
