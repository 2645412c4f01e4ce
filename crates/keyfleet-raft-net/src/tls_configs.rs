//! rustls configurations of the Raft port (mutual TLS) and of the API port (server TLS with an
//! optional client certificate). All use TLS 1.3 and the `ring` provider.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};

use crate::tls_error::TlsError;
use crate::tls_files::TlsMaterial;

/// ALPN id of HTTP/2, which gRPC runs on.
const ALPN_H2: &[u8] = b"h2";

/// Returns the crypto provider of every keyfleet TLS configuration: rustls's `ring` backend.
///
/// NOTE: rustls 0.23.48 deprecates this provider because it has no post-quantum key exchange;
/// the `aws-lc-rs` provider has one but brings aws-lc-sys, a C build the workspace avoids.
#[allow(deprecated)]
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the Raft server configuration: the peer must present a certificate that chains to
/// the CA. Which node the certificate names is checked per RPC.
pub fn raft_server_config(material: &TlsMaterial) -> Result<ServerConfig, TlsError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(material.roots.clone(), crypto_provider())
            .build()
            .map_err(|error| rustls_error(material, rustls::Error::General(error.to_string())))?;

    server_config(material, verifier)
}

/// Builds the API server configuration: a client certificate is optional, because vault
/// clients have none, but one that is presented must chain to the CA.
pub fn api_server_config(material: &TlsMaterial) -> Result<ServerConfig, TlsError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(material.roots.clone(), crypto_provider())
            .allow_unauthenticated()
            .build()
            .map_err(|error| rustls_error(material, rustls::Error::General(error.to_string())))?;

    server_config(material, verifier)
}

/// Builds the configuration a node dials its peers with: it presents its own certificate and
/// accepts a server certificate that chains to the CA and names the node it dials.
pub fn raft_client_config(material: &TlsMaterial) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| rustls_error(material, error))?
        .with_root_certificates(material.roots.clone())
        .with_client_auth_cert(material.chain.clone(), material.key.clone_key())
        .map_err(|error| rustls_error(material, error))?;

    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

fn server_config(
    material: &TlsMaterial,
    verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| rustls_error(material, error))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(material.chain.clone(), material.key.clone_key())
        .map_err(|error| rustls_error(material, error))?;

    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

fn rustls_error(material: &TlsMaterial, source: rustls::Error) -> TlsError {
    TlsError::Rustls {
        cert: material.cert_path.clone(),
        source,
    }
}
