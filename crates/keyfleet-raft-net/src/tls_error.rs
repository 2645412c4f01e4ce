use std::path::PathBuf;

/// Failure to load TLS certificates and keys or to build a TLS configuration from them.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or contains no usable item.
    #[error("invalid PEM file {path}: {reason}. Check the path in [tls] and the file's contents")]
    InvalidPem {
        /// The file.
        path: PathBuf,
        /// The reason it is unusable.
        reason: String,
    },

    /// rustls rejected the certificates or the key, for example a key that does not match the
    /// certificate.
    #[error("invalid TLS configuration from {cert}: {source}")]
    Rustls {
        /// The certificate file involved.
        cert: PathBuf,
        /// rustls's error.
        #[source]
        source: rustls::Error,
    },

    /// The CA file contains no certificate rustls accepts as a trust anchor.
    #[error("invalid CA certificate in {path}: {reason}")]
    InvalidCa {
        /// The CA file.
        path: PathBuf,
        /// The reason it is unusable.
        reason: String,
    },
}
