//! `keyfleetd certs ...`: the fleet certificate authority and the certificates it issues.
//!
//! `init-ca` runs once, on the node that generated the fleet keys. It creates the CA's ECDSA
//! P-256 key, writes the self-signed CA certificate to `tls.ca_cert`, and writes the key only
//! sealed under the fleet sealing key to `tls.ca_key_sealed`. Any node whose token contains the
//! fleet keys can then unseal it and issue node and operator certificates.

mod authority;
mod command;
mod verify;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use keyfleet_hsm::{HsmError, Pkcs11Hsm, SealedBlob};
use keyfleet_raft_net::load_certificates;
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};

pub use command::{CertsCommand, Output};

use crate::{ConfigError, NodeConfig, init_logging};
pub(crate) use authority::FleetCa;
use authority::IssuedCertificate;
pub(crate) use command::LEAF_DAYS;

/// Help text of `keyfleetd certs`.
pub const USAGE: &str = "\
usage: keyfleetd certs init-ca --config PATH [--days N]
       keyfleetd certs issue-node --config PATH --node-id ID [--dns NAME]... [--ip ADDR]...
                                  --cert-out FILE --key-out FILE [--days N] [--force]
       keyfleetd certs issue-operator --config PATH --name NAME --cert-out FILE --key-out FILE
                                      [--days N] [--force]
       keyfleetd certs fingerprint --config PATH

The fleet certificate authority. Each command reads the node's configuration file; all but
fingerprint open its HSM token, which must hold the fleet sealing key (hsm.keys.seal).

  init-ca         Creates the CA key and certificate (default validity 3650 days). Writes the
                  certificate to tls.ca_cert and the key, sealed under the fleet sealing key,
                  to tls.ca_key_sealed; refuses to replace either. Prints the certificate's
                  SHA-256 fingerprint: record it, and compare it on every node.
  issue-node      Issues node ID's certificate (default 365 days), for the Raft and API ports.
                  It names node-ID.keyfleet.internal, which peers check, and each --dns NAME
                  and --ip ADDR that clients dial.
  issue-operator  Issues an operator client certificate (default 365 days). Node API admin
                  calls over TLS require one, next to the admin token.
  fingerprint     Prints the SHA-256 fingerprint of tls.ca_cert.

Issued keys are written with mode 0600; --force replaces existing output files.

Exit status: 0 on success, 2 for invalid arguments or configuration, 1 for other failures.";

/// Default log filter: warnings and errors only, so that stdout carries the command's output.
const CERTS_LOG_FILTER: &str = "warn,cryptoki::mechanism=off";

/// A failed `keyfleetd certs` command. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// Invalid arguments or configuration: exit status 2.
    #[error("{0}")]
    Usage(String),
    /// Any other failure: exit status 1.
    #[error("{0}")]
    Failed(String),
}

impl CertsError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// Returns the process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

impl From<ConfigError> for CertsError {
    fn from(error: ConfigError) -> Self {
        Self::Usage(error.to_string())
    }
}

impl From<HsmError> for CertsError {
    fn from(error: HsmError) -> Self {
        match error {
            HsmError::InvalidConfig { .. }
            | HsmError::InvalidUri { .. }
            | HsmError::ModuleNotFound { .. }
            | HsmError::TokenNotFound { .. }
            | HsmError::PinUnavailable { .. }
            | HsmError::PinRejected { .. } => Self::Usage(error.to_string()),
            HsmError::KeyNotFound { .. } => Self::Failed(format!(
                "{error}; the token needs the fleet sealing key: run `keyfleetd keys generate` \
                 on the fleet's first node or `keyfleetd keys import` on another"
            )),
            HsmError::UnsealFailed { .. } => Self::Failed(format!(
                "{error}; the sealed CA key does not open under this token's fleet sealing key \
                 and this fleet id: use the file `keyfleetd certs init-ca` wrote for this fleet"
            )),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// Runs `keyfleetd certs` with the arguments after `certs`, and returns the exit status.
pub fn main(args: &[String]) -> ExitCode {
    let command = match CertsCommand::parse(args) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("keyfleetd: {error}\n\n{USAGE}");
            return ExitCode::from(error.exit_code());
        }
    };

    match run(&command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("keyfleetd: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Loads the configuration and runs `command`.
pub fn run(command: &CertsCommand) -> Result<(), CertsError> {
    let Some(path) = command.config_path() else {
        println!("{USAGE}");
        return Ok(());
    };
    let config = NodeConfig::load(path)?;
    init_logging(config.log_format, CERTS_LOG_FILTER);
    let ca_cert_path = required(config.tls.ca_cert.as_deref(), "ca_cert")?;

    if let CertsCommand::Fingerprint { .. } = command {
        let ca_cert = read_ca_cert(ca_cert_path)?;
        println!("{}", fingerprint(&ca_cert));
        return Ok(());
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            CertsError::failed(format!("failed to start the async runtime: {error}"))
        })?;
    runtime.block_on(async {
        let settings = config.hsm.resolve()?;
        let hsm = Pkcs11Hsm::open(&settings).await?;
        let sealed_path = required(config.tls.ca_key_sealed.as_deref(), "ca_key_sealed")?;
        let fleet_id = &config.vault.fleet_id;

        match command {
            CertsCommand::InitCa { days, .. } => {
                refuse_existing(ca_cert_path, false)?;
                refuse_existing(sealed_path, false)?;
                let (ca, ca_pem) = FleetCa::generate(fleet_id, *days)?;
                let sealed = ca.seal(&hsm, &settings.keys.seal).await?;
                write_file(sealed_path, sealed.as_bytes(), 0o600, false)?;
                write_file(ca_cert_path, ca_pem.as_bytes(), 0o644, false)?;
                let ca_cert = read_ca_cert(ca_cert_path)?;
                println!(
                    "wrote the fleet CA certificate to {}",
                    ca_cert_path.display()
                );
                println!("wrote the sealed CA key to {}", sealed_path.display());
                println!("fleet CA SHA-256 fingerprint: {}", fingerprint(&ca_cert));
                Ok(())
            }
            CertsCommand::IssueNode {
                node_id,
                dns,
                ips,
                output,
                ..
            } => {
                let ca = open_ca(
                    &hsm,
                    &settings.keys.seal,
                    fleet_id,
                    ca_cert_path,
                    sealed_path,
                )
                .await?;
                let issued = ca.issue_node(*node_id, dns, ips, output.days)?;
                write_issued(&issued, output)?;
                println!(
                    "issued the certificate of node {node_id} to {}",
                    output.cert.display()
                );
                Ok(())
            }
            CertsCommand::IssueOperator { name, output, .. } => {
                let ca = open_ca(
                    &hsm,
                    &settings.keys.seal,
                    fleet_id,
                    ca_cert_path,
                    sealed_path,
                )
                .await?;
                let issued = ca.issue_operator(name, output.days)?;
                write_issued(&issued, output)?;
                println!(
                    "issued the operator certificate {name:?} to {}",
                    output.cert.display()
                );
                Ok(())
            }
            CertsCommand::Fingerprint { .. } | CertsCommand::Help => Ok(()),
        }
    })
}

/// Reads the CA certificate and the sealed CA key, unseals the key with `hsm`'s sealing key
/// `seal_key`, and checks that the key belongs to the certificate.
pub(crate) async fn open_ca(
    hsm: &dyn keyfleet_hsm::Hsm,
    seal_key: &keyfleet_hsm::KeyLabel,
    fleet_id: &str,
    ca_cert_path: &Path,
    sealed_path: &Path,
) -> Result<FleetCa, CertsError> {
    let ca_cert = read_ca_cert(ca_cert_path)?;
    let bytes = std::fs::read(sealed_path).map_err(|error| {
        CertsError::failed(format!(
            "reading the sealed CA key {} failed: {error}; run `keyfleetd certs init-ca` first",
            sealed_path.display()
        ))
    })?;
    let blob = SealedBlob::from_bytes(bytes).map_err(|error| {
        CertsError::failed(format!(
            "{} is not a sealed CA key: {error}",
            sealed_path.display()
        ))
    })?;

    let ca = FleetCa::unseal(hsm, seal_key, fleet_id, &blob).await?;
    ca.check_matches(&ca_cert)?;
    Ok(ca)
}

fn required<'a>(path: Option<&'a Path>, key: &str) -> Result<&'a Path, CertsError> {
    path.ok_or_else(|| {
        CertsError::usage(format!(
            "tls.{key} is not set; `keyfleetd certs` needs tls.ca_cert and tls.ca_key_sealed in \
             the configuration"
        ))
    })
}

pub(crate) fn read_ca_cert(path: &Path) -> Result<CertificateDer<'static>, CertsError> {
    let mut certs =
        load_certificates(path).map_err(|error| CertsError::failed(error.to_string()))?;
    Ok(certs.swap_remove(0))
}

/// Returns the SHA-256 digest of `cert`'s DER encoding as colon-separated hex pairs.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    digest
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn write_issued(issued: &IssuedCertificate, output: &Output) -> Result<(), CertsError> {
    refuse_existing(&output.cert, output.force)?;
    refuse_existing(&output.key, output.force)?;
    write_file(&output.key, issued.key_pem.as_bytes(), 0o600, output.force)?;
    write_file(
        &output.cert,
        issued.cert_pem.as_bytes(),
        0o644,
        output.force,
    )
}

fn refuse_existing(path: &Path, force: bool) -> Result<(), CertsError> {
    if !force && path.exists() {
        return Err(CertsError::failed(format!(
            "{} already exists; move it away, or pass --force where the command accepts it",
            path.display()
        )));
    }
    Ok(())
}

/// Writes `contents` to a new file with `mode`, or replaces the file when `replace` is set.
/// A replaced file is written to a temporary name first and renamed over the old one, so a
/// running node that reloads never reads half a file.
pub(crate) fn write_file(
    path: &Path,
    contents: &[u8],
    mode: u32,
    replace: bool,
) -> Result<(), CertsError> {
    use std::os::unix::fs::OpenOptionsExt;

    let failed = |error: std::io::Error| {
        CertsError::failed(format!("writing {} failed: {error}", path.display()))
    };
    let target = if replace {
        path.with_extension("tmp-keyfleetd")
    } else {
        path.to_owned()
    };
    if replace {
        let _ = std::fs::remove_file(&target);
    }

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&target)
        .map_err(failed)?;
    file.write_all(contents).map_err(failed)?;
    file.sync_all().map_err(failed)?;

    if replace {
        std::fs::rename(&target, path).map_err(failed)?;
    }
    Ok(())
}
