//! Client of keyfleetd's node API (`proto/keyfleet/node/v1/node.proto`), and the leader routing
//! that other keyfleet clients share.
//!
//! [`FleetClient`] sends writes, reads and membership changes to the leader. A node that is not
//! the leader returns `UNAVAILABLE` with the leader's address in the response metadata, and the
//! client follows it. On `UNAVAILABLE` and connection errors the client retries with bounded,
//! jittered backoff until the [`RetryPolicy`] deadline. A retried write carries the same request
//! id, so the state machine applies it at most once and returns the first outcome, as long as
//! the id is among the last `keyfleet_raft::vault::DEDUP_CAPACITY` (100,000) it remembers.
//!
//! [`LeaderRouter`] is that routing for any tonic client over a
//! [`tonic::transport::Channel`], such as the vault API's. With the default feature `node-api`
//! off, the crate has only the routing, and does not depend on keyfleet-raft.

mod client_error;
mod client_tls;
mod endpoint;
#[cfg(feature = "node-api")]
mod fleet_client;
mod leader_hint;
mod leader_router;
mod node_channels;
mod operation;
mod retry_policy;
mod router_error;

pub use client_error::ClientError;
pub use client_tls::ClientTls;
pub use endpoint::endpoint_uri;
#[cfg(feature = "node-api")]
pub use fleet_client::FleetClient;
pub use keyfleet_api::node::{
    CompleteJoinRequest, CompleteJoinResponse, CreateJoinTokenResponse, JoinRequest, JoinResponse,
    Member, NodeSigningKey, PublishBundleResponse, ReplicationProgress, RestoreSnapshotResponse,
    StatusResponse,
};
pub use leader_hint::LeaderHint;
pub use leader_router::LeaderRouter;
pub use operation::{Operation, Route};
pub use retry_policy::RetryPolicy;
pub use router_error::RouterError;
