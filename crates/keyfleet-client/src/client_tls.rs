use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use zeroize::Zeroizing;

use crate::client_error::ClientError;

/// TLS settings of a client of the node and vault APIs: the CA that node certificates chain
/// to, and, for node API admin calls, an operator client certificate and key.
///
/// With TLS, every endpoint is dialed with `https://`, and each node's certificate must name
/// the host of the address the client dials (its DNS name or IP address).
#[derive(Clone)]
pub struct ClientTls {
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

/// Prints whether the settings have a client identity, but no key.
impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("client_identity", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusts the CA certificate(s) in `ca_pem` and presents no client certificate.
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            ca_pem: ca_pem.into(),
            identity: None,
        }
    }

    /// Presents the client certificate `cert_pem` with its private key `key_pem`.
    pub fn with_identity(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: Vec<u8>) -> Self {
        self.identity = Some((cert_pem.into(), Zeroizing::new(key_pem)));
        self
    }

    /// Reads the CA file, and the client certificate and key files when `identity` is set.
    pub fn from_files(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, ClientError> {
        let tls = Self::new(read(ca)?);

        match identity {
            Some((cert, key)) => Ok(tls.with_identity(read(cert)?, read(key)?)),
            None => Ok(tls),
        }
    }

    /// Builds tonic's configuration.
    // NOTE: tonic copies the key into an `Identity` that is not zeroized on drop.
    pub(crate) fn tonic_config(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));

        match &self.identity {
            Some((cert, key)) => config.identity(Identity::from_pem(cert, key.as_slice())),
            None => config,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::TlsFile {
        path: path.to_owned(),
        source,
    })
}
