use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::node_identity::node_name;
use crate::tls_config_cell::TlsConfigCell;

/// Opens a TCP connection to `addr` and runs the TLS handshake with the client configuration
/// current in `config`. The server's certificate must chain to the fleet CA and name node
/// `target`, so a misaddressed or foreign node fails the handshake.
pub(crate) async fn connect_tls(
    addr: String,
    target: u64,
    config: Arc<TlsConfigCell<ClientConfig>>,
) -> std::io::Result<TokioIo<TlsStream<TcpStream>>> {
    let server_name = ServerName::try_from(node_name(target))
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let tcp = TcpStream::connect(&addr).await?;
    tcp.set_nodelay(true)?;

    let connector = tokio_rustls::TlsConnector::from(config.get());
    let stream = connector
        .connect(server_name, tcp)
        .await
        .inspect_err(|error| {
            tracing::warn!(target = target, %addr, %error, "TLS handshake with Raft peer failed");
        })?;
    Ok(TokioIo::new(stream))
}
