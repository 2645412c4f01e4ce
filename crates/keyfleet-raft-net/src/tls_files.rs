use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls_error::TlsError;

/// The PEM files of one TLS endpoint: the CA that peers must chain to, and this endpoint's
/// certificate chain and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate(s) that peer certificates must chain to.
    pub ca_cert: PathBuf,
    /// This endpoint's certificate, followed by any intermediate certificates.
    pub cert: PathBuf,
    /// This endpoint's private key (PKCS#8, SEC1 or PKCS#1 PEM).
    pub key: PathBuf,
}

/// Certificates and key read from [`TlsFiles`].
#[derive(Debug)]
pub struct TlsMaterial {
    /// Trust anchors built from the CA file.
    pub roots: Arc<RootCertStore>,
    /// The endpoint's certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The endpoint's private key. rustls zeroizes it on drop.
    pub key: PrivateKeyDer<'static>,
    /// The certificate file, for error messages.
    pub cert_path: PathBuf,
}

impl TlsFiles {
    /// Reads and parses the three files.
    pub fn load(&self) -> Result<TlsMaterial, TlsError> {
        let roots = load_roots(&self.ca_cert)?;
        let chain = load_certificates(&self.cert)?;
        let key =
            PrivateKeyDer::from_pem_file(&self.key).map_err(|error| TlsError::InvalidPem {
                path: self.key.clone(),
                reason: error.to_string(),
            })?;

        Ok(TlsMaterial {
            roots: Arc::new(roots),
            chain,
            key,
            cert_path: self.cert.clone(),
        })
    }
}

/// Reads every certificate of a PEM file; fails when there is none.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let invalid = |reason: String| TlsError::InvalidPem {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|error| invalid(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(error.to_string()))?;

    if certs.is_empty() {
        return Err(invalid("no CERTIFICATE block found".to_owned()));
    }
    Ok(certs)
}

/// Builds a trust anchor store from the certificates of the PEM file `path`.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();

    for cert in load_certificates(path)? {
        roots.add(cert).map_err(|error| TlsError::InvalidCa {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    }
    Ok(roots)
}
