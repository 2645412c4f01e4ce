use keyfleet_raft::NodeId;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

/// A peer's Raft address that is not a valid `host:port`.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "invalid Raft address {addr:?} of node {target}: {reason}. Set the node's address to \
     host:port, for example 127.0.0.1:7000"
)]
pub struct PeerAddressError {
    /// Id of the node with the invalid address.
    pub target: NodeId,
    /// The address from the node's membership entry.
    pub addr: String,
    /// The parse error message.
    pub reason: String,
}

/// Builds a gRPC channel to `addr` that connects on its first request.
pub(crate) fn lazy_channel(target: NodeId, addr: &str) -> Result<Channel, PeerAddressError> {
    let endpoint =
        Endpoint::from_shared(format!("http://{addr}")).map_err(|error| PeerAddressError {
            target,
            addr: addr.to_owned(),
            reason: error.to_string(),
        })?;

    Ok(endpoint.tcp_nodelay(true).connect_lazy())
}
