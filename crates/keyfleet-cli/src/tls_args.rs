//! TLS options of every command that calls the fleet.

use std::path::PathBuf;

use clap::Args;
use keyfleet_client::ClientTls;

use crate::cli_error::CliError;

/// TLS of the connection to the nodes' API port. Without `--ca-cert` the CLI dials plaintext,
/// which only nodes with `tls.insecure_plaintext = true` accept.
#[derive(Debug, Args)]
pub(crate) struct TlsArgs {
    /// PEM file of the fleet CA certificate; with it, every endpoint is dialed over TLS.
    #[arg(long, env = "KEYFLEET_CA_CERT", value_name = "FILE")]
    pub(crate) ca_cert: Option<PathBuf>,

    /// PEM file of the operator client certificate that node API admin calls need.
    #[arg(
        long,
        env = "KEYFLEET_CLIENT_CERT",
        value_name = "FILE",
        requires_all = ["client_key", "ca_cert"]
    )]
    pub(crate) client_cert: Option<PathBuf>,

    /// PEM file of the private key of --client-cert.
    #[arg(
        long,
        env = "KEYFLEET_CLIENT_KEY",
        value_name = "FILE",
        requires = "client_cert"
    )]
    pub(crate) client_key: Option<PathBuf>,
}

impl TlsArgs {
    /// Reads the files and returns the client's TLS settings, or `None` without `--ca-cert`.
    pub(crate) fn client_tls(&self) -> Result<Option<ClientTls>, CliError> {
        let Some(ca_cert) = &self.ca_cert else {
            return Ok(None);
        };
        let identity = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            _ => None,
        };

        Ok(Some(ClientTls::from_files(ca_cert, identity)?))
    }
}
