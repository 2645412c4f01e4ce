use std::path::PathBuf;

use keyfleet_hsm::{
    Exportability, Hsm, HsmError, KeyKind, KeyLabels, KeySpec, Pkcs11Hsm, TransportPublicKey,
};

use super::KeysError;
use crate::NodeConfig;

/// A node's HSM token, opened for the key ceremony, with the key labels from its configuration.
#[derive(Debug)]
pub(crate) struct FleetToken {
    hsm: Pkcs11Hsm,
    keys: KeyLabels,
    module: PathBuf,
}

impl FleetToken {
    /// Opens and logs in to the token that `config`'s `[hsm]` section names.
    pub(crate) async fn open(config: &NodeConfig) -> Result<Self, KeysError> {
        let settings = config.hsm.resolve()?;
        let hsm = Pkcs11Hsm::open(&settings).await?;

        Ok(Self {
            hsm,
            keys: settings.keys,
            module: settings.module,
        })
    }

    pub(crate) fn hsm(&self) -> &Pkcs11Hsm {
        &self.hsm
    }

    /// Returns the token's label.
    pub(crate) fn label(&self) -> &str {
        self.hsm.token_label()
    }

    /// Returns the spec of the fleet sealing key, `hsm.keys.seal`.
    pub(crate) fn seal_spec(&self) -> KeySpec {
        KeySpec::new(
            self.keys.seal.clone(),
            KeyKind::SealAes256,
            Exportability::WrappedOnly,
        )
    }

    /// Returns the spec of the fleet OPRF seed, `hsm.keys.oprf_seed`.
    pub(crate) fn oprf_seed_spec(&self) -> KeySpec {
        KeySpec::new(
            self.keys.oprf_seed.clone(),
            KeyKind::HmacSha512,
            Exportability::WrappedOnly,
        )
    }

    /// Returns the spec of this node's transport key, `hsm.keys.transport`.
    pub(crate) fn transport_spec(&self) -> KeySpec {
        KeySpec::new(
            self.keys.transport.clone(),
            KeyKind::TransportP256,
            Exportability::Never,
        )
    }

    /// Reads this token's transport public key.
    pub(crate) async fn transport_public_key(&self) -> Result<TransportPublicKey, KeysError> {
        let label = &self.keys.transport;
        match self.hsm.transport_public_key(label).await {
            Ok(key) => Ok(key),
            Err(HsmError::KeyNotFound { .. }) => Err(KeysError::failed(format!(
                "token {:?} has no transport key {:?}; run `keyfleetd keys transport-key` with \
                 this configuration and export the fleet keys for the key it prints",
                self.label(),
                label.as_str()
            ))),
            Err(error) => Err(error.into()),
        }
    }

    /// Checks that the fleet key `spec` exists and meets its policy, without creating it.
    pub(crate) async fn require_fleet_key(&self, spec: &KeySpec) -> Result<(), KeysError> {
        match self.hsm.self_test(std::slice::from_ref(spec)).await {
            Ok(_) => Ok(()),
            Err(HsmError::KeyNotFound { .. }) => Err(KeysError::failed(format!(
                "fleet key {:?} ({}) not found on token {:?}; run `keyfleetd keys generate` on \
                 the fleet's first node, or import the fleet keys into this node with \
                 `keyfleetd keys import`, or correct hsm.keys in the configuration",
                spec.label.as_str(),
                spec.kind,
                self.label()
            ))),
            Err(error) => Err(error.into()),
        }
    }

    /// Returns the `pkcs11-tool` command that deletes the secret key `label` from this token.
    pub(crate) fn delete_command(&self, label: &str) -> String {
        format!(
            "pkcs11-tool --module {} --token-label {} --login --delete-object --type secrkey \
             --label {}",
            shell_quote(&self.module.display().to_string()),
            shell_quote(self.label()),
            shell_quote(label)
        )
    }
}

/// Quotes `word` for a POSIX shell when it contains anything beyond a few safe characters.
fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._-/:=@+,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_cases() {
        assert_eq!(shell_quote("node-1"), "node-1");
        assert_eq!(shell_quote("node 1"), "'node 1'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
