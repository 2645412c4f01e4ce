use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::tls_config_cell::TlsConfigCell;

/// Time a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections whose handshake is done and not yet taken by the server.
const ACCEPTED_BACKLOG: usize = 64;

/// Accepts TCP connections on `listener` and yields those that complete a TLS handshake with
/// the configuration current in `config`. Handshakes run in their own tasks, so a slow client
/// does not hold up others. The accept loop ends when the returned stream is dropped.
///
/// A failed handshake, such as a peer whose certificate the verifier rejects, is logged at
/// warning level with the peer address and dropped, so it never reaches tonic.
// NOTE: each failed handshake logs one line without rate limiting, and handshakes in progress
// are bounded only by HANDSHAKE_TIMEOUT, not by count.
pub fn tls_incoming(
    listener: TcpListener,
    config: Arc<TlsConfigCell<ServerConfig>>,
    label: &'static str,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (sender, receiver) = mpsc::channel(ACCEPTED_BACKLOG);

    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = sender.closed() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(listener = label, %error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = tokio_rustls::TlsAcceptor::from(config.get());
            let sender = sender.clone();

            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(listener = label, %peer, %error, "TLS handshake failed");
                    }
                    Err(_elapsed) => {
                        tracing::warn!(listener = label, %peer, "TLS handshake timed out");
                    }
                }
            });
        }
    });

    ReceiverStream::new(receiver)
}
