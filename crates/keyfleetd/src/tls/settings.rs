//! The `[tls]` section of the node configuration.

use std::path::PathBuf;

use keyfleet_raft_net::TlsFiles;
use serde::Deserialize;

/// TLS files of the Raft port and the API port, or the explicit choice of plaintext.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Serve both ports without TLS and without peer authentication. Only for tests and local
    /// demos; the node logs a warning at start.
    #[serde(default)]
    pub insecure_plaintext: bool,
    /// The fleet CA certificate (PEM): peers and operator certificates must chain to it.
    pub ca_cert: Option<PathBuf>,
    /// The node's certificate (PEM), which must name `node-<node_id>.keyfleet.internal`.
    pub cert: Option<PathBuf>,
    /// The node's private key (PEM).
    pub key: Option<PathBuf>,
    /// Certificate (PEM) of the API port, when it differs from `cert`.
    pub api_cert: Option<PathBuf>,
    /// Private key (PEM) of the API port, when `api_cert` is set.
    pub api_key: Option<PathBuf>,
    /// The fleet CA's private key, sealed under the fleet sealing key. Only the `keyfleetd
    /// certs` commands read it.
    pub ca_key_sealed: Option<PathBuf>,
}

/// The transport of the node's two ports: TLS material or explicit plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS, by the explicit `tls.insecure_plaintext = true`.
    Plaintext,
    /// Mutual TLS on the Raft port and TLS on the API port.
    Tls {
        /// Files of the Raft port.
        raft: TlsFiles,
        /// Files of the API port.
        api: TlsFiles,
    },
}

impl TlsSettings {
    /// Checks the combination of keys and returns the mode they select.
    pub fn mode(&self) -> Result<TlsMode, String> {
        let files = [
            &self.ca_cert,
            &self.cert,
            &self.key,
            &self.api_cert,
            &self.api_key,
        ];
        if self.insecure_plaintext {
            if files.iter().any(|file| file.is_some()) {
                return Err(
                    "tls.insecure_plaintext = true conflicts with the TLS files set in \
                            [tls]; remove one or the other"
                        .to_owned(),
                );
            }
            return Ok(TlsMode::Plaintext);
        }

        let (Some(ca_cert), Some(cert), Some(key)) = (&self.ca_cert, &self.cert, &self.key) else {
            return Err(
                "[tls] needs ca_cert, cert and key (see `keyfleetd certs --help`), or \
                        insecure_plaintext = true for a test fleet without TLS"
                    .to_owned(),
            );
        };
        let raft = TlsFiles {
            ca_cert: ca_cert.clone(),
            cert: cert.clone(),
            key: key.clone(),
        };
        let api = match (&self.api_cert, &self.api_key) {
            (None, None) => raft.clone(),
            (Some(api_cert), Some(api_key)) => TlsFiles {
                ca_cert: ca_cert.clone(),
                cert: api_cert.clone(),
                key: api_key.clone(),
            },
            _ => return Err("tls.api_cert and tls.api_key must be set together".to_owned()),
        };
        Ok(TlsMode::Tls { raft, api })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> Option<PathBuf> {
        Some(PathBuf::from(name))
    }

    #[test]
    fn plaintext_only_when_explicit() {
        let plaintext = TlsSettings {
            insecure_plaintext: true,
            ..TlsSettings::default()
        };

        assert_eq!(plaintext.mode(), Ok(TlsMode::Plaintext));
        assert!(TlsSettings::default().mode().is_err());
    }

    #[test]
    fn plaintext_with_files_is_rejected() {
        let settings = TlsSettings {
            insecure_plaintext: true,
            cert: path("node.pem"),
            ..TlsSettings::default()
        };

        let error = settings.mode().unwrap_err();

        assert!(error.contains("conflicts"), "{error}");
    }

    #[test]
    fn api_files_default_to_node_files() {
        let settings = TlsSettings {
            ca_cert: path("ca.pem"),
            cert: path("node.pem"),
            key: path("node.key"),
            ..TlsSettings::default()
        };

        let Ok(TlsMode::Tls { raft, api }) = settings.mode() else {
            panic!("expected TLS mode");
        };

        assert_eq!(raft, api);
        assert_eq!(api.cert, PathBuf::from("node.pem"));
    }

    #[test]
    fn api_cert_without_key_is_rejected() {
        let settings = TlsSettings {
            ca_cert: path("ca.pem"),
            cert: path("node.pem"),
            key: path("node.key"),
            api_cert: path("api.pem"),
            ..TlsSettings::default()
        };

        let error = settings.mode().unwrap_err();

        assert!(error.contains("set together"), "{error}");
    }
}
