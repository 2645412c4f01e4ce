use std::sync::Arc;

use keyfleet_raft_net::crypto_provider;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;

/// Returns whether the client certificate `leaf` chains to `ca`, as a node's TLS handshake
/// would verify it.
pub(crate) fn chains_to(leaf: &CertificateDer<'_>, ca: &CertificateDer<'_>) -> bool {
    let mut roots = RootCertStore::empty();
    if roots.add(ca.clone().into_owned()).is_err() {
        return false;
    }
    let Ok(verifier) =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto_provider()).build()
    else {
        return false;
    };

    verifier
        .verify_client_cert(leaf, &[], UnixTime::now())
        .is_ok()
}
