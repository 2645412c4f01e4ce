//! The fleet certificate authority: an ECDSA P-256 key that exists outside the HSM only in
//! memory, and on disk only sealed under the fleet sealing key.

use std::net::IpAddr;
use std::time::Duration;

use keyfleet_hsm::{Hsm, KeyLabel, SealContext, SealedBlob};
use keyfleet_raft_net::{IDENTITY_SUFFIX, OPERATOR_NAME, node_name};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::CertsError;

/// Seal purpose of the CA key. The fleet id is the sealed blob's record id, so a CA key sealed
/// for another fleet does not open.
const CA_KEY_PURPOSE: &str = "fleet-ca-key";

/// Common name of every fleet CA certificate. Issuing rebuilds the CA's subject from it, and
/// checks the result against the CA certificate on disk.
const CA_COMMON_NAME: &str = "keyfleet fleet CA";

/// How far back a new certificate's validity starts, to allow for clock skew between nodes.
const BACKDATE: Duration = Duration::from_secs(300);

/// An issued certificate with its private key, both PEM.
pub(crate) struct IssuedCertificate {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: Zeroizing<String>,
}

/// The fleet CA's key pair, opened for issuing.
pub(crate) struct FleetCa {
    key: KeyPair,
    fleet_id: String,
}

impl FleetCa {
    /// Generates a new CA key and its self-signed certificate. Returns the CA and the
    /// certificate's PEM.
    pub(crate) fn generate(fleet_id: &str, days: u32) -> Result<(Self, String), CertsError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
        let mut params = ca_params();
        set_validity(&mut params, days);
        params.serial_number = Some(random_serial());

        let cert = params.self_signed(&key).map_err(rcgen_error)?;
        let ca = Self {
            key,
            fleet_id: fleet_id.to_owned(),
        };
        Ok((ca, cert.pem()))
    }

    /// Seals the CA key under the fleet sealing key `seal_key`.
    pub(crate) async fn seal(
        &self,
        hsm: &dyn Hsm,
        seal_key: &KeyLabel,
    ) -> Result<SealedBlob, CertsError> {
        let der = Zeroizing::new(self.key.serialize_der());
        let context = SealContext::new(CA_KEY_PURPOSE, self.fleet_id.as_bytes());

        Ok(hsm.seal(seal_key, &context, &der).await?)
    }

    /// Opens a CA key sealed by [`FleetCa::seal`].
    pub(crate) async fn unseal(
        hsm: &dyn Hsm,
        seal_key: &KeyLabel,
        fleet_id: &str,
        blob: &SealedBlob,
    ) -> Result<Self, CertsError> {
        let context = SealContext::new(CA_KEY_PURPOSE, fleet_id.as_bytes());
        let der = hsm.unseal(seal_key, &context, blob).await?;
        let key = KeyPair::try_from(der.expose_secret()).map_err(|error| {
            CertsError::failed(format!("the unsealed CA key is not a valid key: {error}"))
        })?;

        Ok(Self {
            key,
            fleet_id: fleet_id.to_owned(),
        })
    }

    /// Issues the certificate of node `node_id`, for both TLS server and client use. It names
    /// `node-<id>.keyfleet.internal` and the extra DNS names and IP addresses.
    pub(crate) fn issue_node(
        &self,
        node_id: u64,
        dns: &[String],
        ips: &[IpAddr],
        days: u32,
    ) -> Result<IssuedCertificate, CertsError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
        let cert_pem = self.issue_node_for_key(node_id, dns, ips, days, &key)?;

        Ok(IssuedCertificate {
            cert_pem,
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }

    /// Issues node `node_id`'s certificate, as [`FleetCa::issue_node`] does, for a key pair
    /// that the node generated and keeps. Returns the certificate's PEM.
    pub(crate) fn issue_node_for_key(
        &self,
        node_id: u64,
        dns: &[String],
        ips: &[IpAddr],
        days: u32,
        public_key: &impl PublicKeyData,
    ) -> Result<String, CertsError> {
        let identity = node_name(node_id);
        let mut names = vec![san_dns(&identity)?];
        for name in dns {
            check_extra_dns_name(name)?;
            names.push(san_dns(name)?);
        }
        names.extend(ips.iter().copied().map(SanType::IpAddress));

        let usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(&identity, names, usages, days, public_key)
    }

    /// Issues an operator client certificate with common name `name`. It names
    /// `operator.keyfleet.internal`, which the node API's admin calls require.
    pub(crate) fn issue_operator(
        &self,
        name: &str,
        days: u32,
    ) -> Result<IssuedCertificate, CertsError> {
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(CertsError::usage(format!(
                "--name {name:?} is not an operator name; pass 1 to 64 printable characters"
            )));
        }
        let names = vec![san_dns(OPERATOR_NAME)?];

        self.issue(name, names, vec![ExtendedKeyUsagePurpose::ClientAuth], days)
    }

    fn issue(
        &self,
        common_name: &str,
        names: Vec<SanType>,
        usages: Vec<ExtendedKeyUsagePurpose>,
        days: u32,
    ) -> Result<IssuedCertificate, CertsError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
        let cert_pem = self.sign(common_name, names, usages, days, &key)?;

        Ok(IssuedCertificate {
            cert_pem,
            key_pem: Zeroizing::new(key.serialize_pem()),
        })
    }

    /// Signs a certificate for `public_key` and returns its PEM.
    fn sign(
        &self,
        common_name: &str,
        names: Vec<SanType>,
        usages: Vec<ExtendedKeyUsagePurpose>,
        days: u32,
        public_key: &impl PublicKeyData,
    ) -> Result<String, CertsError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(common_name);
        params.subject_alt_names = names;
        params.extended_key_usages = usages;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        set_validity(&mut params, days);

        let ca_params = ca_params();
        let issuer = Issuer::from_params(&ca_params, &self.key);
        let cert = params.signed_by(public_key, &issuer).map_err(rcgen_error)?;
        Ok(cert.pem())
    }

    /// Checks that this key is the one in `ca_cert`, so that certificates it issues chain to
    /// that certificate.
    pub(crate) fn check_matches(&self, ca_cert: &CertificateDer<'_>) -> Result<(), CertsError> {
        let probe = self.issue_operator("keyfleet CA key check", 1)?;
        let leaf = rustls::pki_types::pem::PemObject::from_pem_slice(probe.cert_pem.as_bytes())
            .map_err(|error| {
                CertsError::failed(format!("reading the probe certificate: {error}"))
            })?;

        let verified = super::verify::chains_to(&leaf, ca_cert);
        if verified {
            Ok(())
        } else {
            Err(CertsError::failed(
                "the sealed CA key does not belong to tls.ca_cert: certificates it issues would \
                 not chain to the fleet CA. Point tls.ca_cert and tls.ca_key_sealed at the files \
                 `keyfleetd certs init-ca` wrote",
            ))
        }
    }
}

/// Parameters of the fleet CA certificate, apart from validity and serial number.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams, days: u32) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + time::Duration::days(i64::from(days));
}

/// Returns a random positive 128-bit serial number.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

fn san_dns(name: &str) -> Result<SanType, CertsError> {
    let ia5 = name.to_owned().try_into().map_err(|_| {
        CertsError::usage(format!(
            "--dns {name:?} is not a DNS name; use ASCII letters, digits, '-' and '.'"
        ))
    })?;
    Ok(SanType::DnsName(ia5))
}

/// Rejects extra DNS names under the suffix of keyfleet's identity names, so that a node
/// certificate can never also name another node or an operator.
fn check_extra_dns_name(name: &str) -> Result<(), CertsError> {
    let lower = name.to_ascii_lowercase();
    let suffix = IDENTITY_SUFFIX.trim_start_matches('.');

    if lower == suffix || lower.ends_with(IDENTITY_SUFFIX) {
        return Err(CertsError::usage(format!(
            "--dns {name:?} is under {suffix}, which keyfleet keeps for node and operator \
             identities; pass the node's own host name"
        )));
    }
    if rustls::pki_types::ServerName::try_from(name).is_err() {
        return Err(CertsError::usage(format!(
            "--dns {name:?} is not a valid DNS name"
        )));
    }
    Ok(())
}

fn rcgen_error(error: rcgen::Error) -> CertsError {
    CertsError::failed(format!("building the certificate failed: {error}"))
}
