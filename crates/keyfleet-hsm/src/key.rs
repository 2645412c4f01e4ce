use std::fmt;

use serde::{Deserialize, Serialize};

use crate::HsmError;

/// Maximum length of a key label in bytes. PKCS#11 sets no limit, but a label travels inside
/// every sealed blob, so keep it short.
pub const MAX_LABEL_LEN: usize = 64;

/// The `CKA_LABEL` of a key object in the token: printable ASCII, 1 to [`MAX_LABEL_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyLabel(String);

impl KeyLabel {
    pub fn new(label: impl Into<String>) -> Result<Self, HsmError> {
        let label = label.into();
        let printable = label.bytes().all(|b| b.is_ascii_graphic());
        if label.is_empty() || label.len() > MAX_LABEL_LEN || !printable {
            return Err(HsmError::InvalidConfig {
                field: "key label",
                reason: format!(
                    "{label:?} is not a valid key label: use 1 to {MAX_LABEL_LEN} printable \
                     ASCII characters without spaces"
                ),
            });
        }
        Ok(Self(label))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyLabel {
    type Error = HsmError;

    fn try_from(label: String) -> Result<Self, Self::Error> {
        Self::new(label)
    }
}

impl From<KeyLabel> for String {
    fn from(label: KeyLabel) -> Self {
        label.0
    }
}

impl fmt::Display for KeyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Use of a token key, which fixes its PKCS#11 type, size and permitted mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// AES-256 secret key used with `CKM_AES_GCM` to seal and unseal.
    SealAes256,
    /// 64-byte generic secret used with `CKM_SHA512_HMAC`.
    HmacSha512,
    /// Ed25519 key pair used with `CKM_EDDSA`.
    SigningEd25519,
    /// P-256 key pair used with `CKM_ECDH1_DERIVE` to agree on a key-wrapping key with
    /// another token.
    TransportP256,
}

impl KeyKind {
    /// Returns whether this kind is a secret key, which can be wrapped and moved to another token.
    pub fn is_secret_key(self) -> bool {
        matches!(self, Self::SealAes256 | Self::HmacSha512)
    }

    /// Byte length of the secret key value, for secret-key kinds.
    pub fn secret_len(self) -> Option<usize> {
        match self {
            Self::SealAes256 => Some(32),
            Self::HmacSha512 => Some(64),
            Self::SigningEd25519 | Self::TransportP256 => None,
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Self::SealAes256 => 1,
            Self::HmacSha512 => 2,
            Self::SigningEd25519 => 3,
            Self::TransportP256 => 4,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::SealAes256),
            2 => Some(Self::HmacSha512),
            3 => Some(Self::SigningEd25519),
            4 => Some(Self::TransportP256),
            _ => None,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::SealAes256 => "AES-256 sealing key",
            Self::HmacSha512 => "HMAC-SHA512 secret",
            Self::SigningEd25519 => "Ed25519 signing key",
            Self::TransportP256 => "P-256 transport key",
        };
        f.write_str(name)
    }
}

/// Whether a key may ever leave its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exportability {
    /// `CKA_EXTRACTABLE` false: the key value never leaves this token, not even wrapped.
    Never,
    /// `CKA_EXTRACTABLE` true but `CKA_SENSITIVE` true: the token exports the key only wrapped
    /// under another key, so that fleet secrets move between HSMs and never in the clear.
    WrappedOnly,
}

/// The key a token must hold under a label: its kind and whether it may be wrapped out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeySpec {
    pub label: KeyLabel,
    pub kind: KeyKind,
    pub exportability: Exportability,
}

impl KeySpec {
    pub fn new(label: KeyLabel, kind: KeyKind, exportability: Exportability) -> Self {
        Self {
            label,
            kind,
            exportability,
        }
    }
}

/// Outcome of provisioning one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    /// The token had no key under the label, and one was generated.
    Created,
    /// The token already had a key under the label that meets the spec, and it was kept.
    Existing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_accepts_printable_ascii() {
        let label = KeyLabel::new("keyfleet-seal.v1").unwrap();

        assert_eq!(label.as_str(), "keyfleet-seal.v1");
    }

    #[test]
    fn label_rejects_bad_values() {
        let too_long = "k".repeat(MAX_LABEL_LEN + 1);

        for bad in ["", "has space", "tab\there", "é", too_long.as_str()] {
            let error = KeyLabel::new(bad).unwrap_err();
            assert!(
                error.to_string().contains("not a valid key label"),
                "{error}"
            );
        }
    }

    #[test]
    fn kind_codes_round_trip() {
        for kind in [
            KeyKind::SealAes256,
            KeyKind::HmacSha512,
            KeyKind::SigningEd25519,
            KeyKind::TransportP256,
        ] {
            assert_eq!(KeyKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(KeyKind::from_code(0), None);
    }
}
