use keyfleet_raft::NodeAddresses;
use keyfleet_raft::NodeId;
use keyfleet_raft::TypeConfig;
use openraft::RaftNetworkFactory;

use crate::peer_client::PeerClient;

/// openraft network factory that creates a gRPC [`PeerClient`] per peer, addressed by the
/// `raft` address of the peer's [`NodeAddresses`] in the membership.
#[derive(Debug, Clone)]
pub struct GrpcNetworkFactory {
    node_id: NodeId,
}

impl GrpcNetworkFactory {
    /// Creates the factory for the local node `node_id`, which appears as the source in timeout
    /// errors and logs.
    pub fn new(node_id: NodeId) -> Self {
        Self { node_id }
    }
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddresses) -> PeerClient {
        tracing::debug!(source = self.node_id, target, addr = %node.raft, "creating Raft peer client");

        PeerClient::new(self.node_id, target, &node.raft)
    }
}
