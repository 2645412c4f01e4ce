//! The names that tie a certificate to a keyfleet role.
//!
//! Every certificate of a fleet chains to the fleet's own certificate authority, so these names
//! need no fleet part: a certificate from another fleet fails the chain check first. The names
//! sit under `keyfleet.internal`, which `keyfleetd certs` keeps for itself.

use rustls::pki_types::{CertificateDer, ServerName};

/// DNS suffix of the identity names.
pub const IDENTITY_SUFFIX: &str = ".keyfleet.internal";

/// DNS name that every operator client certificate contains.
pub const OPERATOR_NAME: &str = "operator.keyfleet.internal";

/// Returns the DNS name that the certificate of node `node_id` contains, such as
/// `node-3.keyfleet.internal`.
pub fn node_name(node_id: u64) -> String {
    format!("node-{node_id}{IDENTITY_SUFFIX}")
}

/// Returns whether `cert` is a well-formed end-entity certificate that is valid for the DNS
/// name `name`. It checks only the name: the TLS handshake has already verified the chain.
pub fn certificate_names(cert: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(server_name) = ServerName::try_from(name) else {
        return false;
    };
    let Ok(end_entity) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };

    end_entity
        .verify_is_valid_for_subject_name(&server_name)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_name_format() {
        assert_eq!(node_name(3), "node-3.keyfleet.internal");
        assert!(node_name(12).ends_with(IDENTITY_SUFFIX));
    }

    #[test]
    fn garbage_certificate_names_nothing() {
        let cert = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);

        assert!(!certificate_names(&cert, &node_name(1)));
        assert!(!certificate_names(&cert, OPERATOR_NAME));
    }
}
