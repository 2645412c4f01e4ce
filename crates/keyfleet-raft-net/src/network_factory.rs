use std::sync::Arc;

use keyfleet_raft::NodeAddresses;
use keyfleet_raft::NodeId;
use keyfleet_raft::TypeConfig;
use openraft::RaftNetworkFactory;
use rustls::ClientConfig;

use crate::peer_client::PeerClient;
use crate::tls_config_cell::TlsConfigCell;

/// openraft network factory that creates a gRPC [`PeerClient`] per peer, addressed by the
/// `raft` address of the peer's [`NodeAddresses`] in the membership.
#[derive(Debug, Clone)]
pub struct GrpcNetworkFactory {
    node_id: NodeId,
    tls: Option<Arc<TlsConfigCell<ClientConfig>>>,
}

impl GrpcNetworkFactory {
    /// Creates the factory for the local node `node_id`, which appears as the source in timeout
    /// errors and logs.
    pub fn new(node_id: NodeId) -> Self {
        Self { node_id, tls: None }
    }

    /// Creates the factory for `node_id` whose clients dial peers over mutual TLS with the
    /// configuration current in `tls`.
    pub fn with_tls(node_id: NodeId, tls: Arc<TlsConfigCell<ClientConfig>>) -> Self {
        Self {
            node_id,
            tls: Some(tls),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddresses) -> PeerClient {
        tracing::debug!(source = self.node_id, target, addr = %node.raft, "creating Raft peer client");

        match &self.tls {
            Some(tls) => PeerClient::with_tls(self.node_id, target, &node.raft, tls.clone()),
            None => PeerClient::new(self.node_id, target, &node.raft),
        }
    }
}
