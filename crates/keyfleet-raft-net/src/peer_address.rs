use std::sync::Arc;

use keyfleet_raft::NodeId;
use rustls::ClientConfig;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use crate::tls_config_cell::TlsConfigCell;
use crate::tls_connector::connect_tls;

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

/// Builds a gRPC channel to `addr` that connects on its first request, over mutual TLS when
/// `tls` is set.
pub(crate) fn lazy_channel(
    target: NodeId,
    addr: &str,
    tls: Option<Arc<TlsConfigCell<ClientConfig>>>,
) -> Result<Channel, PeerAddressError> {
    let endpoint =
        Endpoint::from_shared(format!("http://{addr}")).map_err(|error| PeerAddressError {
            target,
            addr: addr.to_owned(),
            reason: error.to_string(),
        })?;

    let endpoint = endpoint.tcp_nodelay(true);
    let Some(tls) = tls else {
        return Ok(endpoint.connect_lazy());
    };

    let addr = addr.to_owned();
    let connector = tower::service_fn(move |_uri: tonic::codegen::http::Uri| {
        connect_tls(addr.clone(), target, tls.clone())
    });
    Ok(endpoint.connect_with_connector_lazy(connector))
}
