//! Tenant signing keys and public keys.

use std::fmt;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{PUBLIC_KEY_LENGTH, Signer, SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::claims::TokenClaims;
use crate::error::TokenError;
use crate::jws;

/// A tenant's Ed25519 signing key, which mints tenant tokens.
///
/// ed25519-dalek zeroes the secret key when the value is dropped, and `Debug` prints no key
/// bytes.
pub struct TenantSigningKey(SigningKey);

impl TenantSigningKey {
    /// Generates a new key from the operating system's random number generator.
    pub fn generate() -> Self {
        TenantSigningKey(SigningKey::generate(&mut OsRng))
    }

    /// Parses a PKCS#8 PEM private key ("-----BEGIN PRIVATE KEY-----"), as written by
    /// `openssl genpkey -algorithm ed25519` and by [`Self::to_pkcs8_pem`] (PKCS#8 v1). A PKCS#8
    /// v2 key, which also contains the public key, is rejected if that public key does not match.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, TokenError> {
        SigningKey::from_pkcs8_pem(pem.trim())
            .map(TenantSigningKey)
            .map_err(|error| TokenError::InvalidKey {
                reason: format!(
                    "not an Ed25519 PKCS#8 PEM private key ({error}): generate one with `openssl genpkey -algorithm ed25519`"
                ),
            })
    }

    /// Encodes the key as a PKCS#8 v1 PEM private key ("-----BEGIN PRIVATE KEY-----") with LF
    /// line endings, the form that `openssl genpkey` writes.
    ///
    /// The v1 form leaves out the public key. ed25519-dalek's own encoding writes v2, which
    /// OpenSSL 3.0.19 fails to load ("unsupported").
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        let keypair = KeypairBytes {
            secret_key: self.0.to_bytes(),
            public_key: None,
        };
        keypair
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 encoding of a 32-byte Ed25519 key cannot fail")
    }

    /// Returns the public key that verifies this key's tokens.
    pub fn public_key(&self) -> TenantPublicKey {
        TenantPublicKey(self.0.verifying_key())
    }

    /// Mints a tenant token for `claims`, after checking the tenant, user and fleet ids, that
    /// "exp" is later than "iat", and that the token fits [`crate::MAX_TOKEN_LEN`].
    ///
    /// The maximum lifetime is a verifier setting, so this function cannot check it.
    pub fn mint(&self, claims: &TokenClaims) -> Result<String, TokenError> {
        claims.check_ids()?;
        if claims.expires_at <= claims.issued_at {
            return Err(TokenError::malformed(format!(
                "exp ({}) must be later than iat ({})",
                claims.expires_at, claims.issued_at
            )));
        }

        let signing_input = jws::signing_input(&claims.to_json());
        let signature = self.0.sign(signing_input.as_bytes());
        let token = jws::append_signature(signing_input, &signature.to_bytes());
        if token.len() > crate::MAX_TOKEN_LEN {
            return Err(TokenError::TooLong {
                len: token.len(),
                max: crate::MAX_TOKEN_LEN,
            });
        }
        Ok(token)
    }
}

impl fmt::Debug for TenantSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TenantSigningKey(<redacted>)")
    }
}

/// A tenant's Ed25519 public key, which verifies that tenant's tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct TenantPublicKey(VerifyingKey);

impl TenantPublicKey {
    /// Parses a public key from 64 hex characters (the 32-byte key, either case) or from an
    /// SPKI PEM ("-----BEGIN PUBLIC KEY-----", as `openssl pkey -pubout` writes). Surrounding
    /// whitespace is ignored.
    ///
    /// Rejects bytes that are not a point on the curve, and small-order points, under which a
    /// signature would verify for many messages.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let text = text.trim();
        let key = if text.starts_with("-----BEGIN") {
            VerifyingKey::from_public_key_pem(text).map_err(|error| TokenError::InvalidKey {
                reason: format!("not an Ed25519 SPKI PEM public key ({error})"),
            })?
        } else {
            let bytes = decode_hex_key(text)?;
            VerifyingKey::from_bytes(&bytes).map_err(|_| TokenError::InvalidKey {
                reason: format!("public key {text} is not a valid Ed25519 point"),
            })?
        };

        if key.is_weak() {
            return Err(TokenError::InvalidKey {
                reason: "the public key is a small-order point, which no honest key is: generate a new key pair".into(),
            });
        }
        Ok(TenantPublicKey(key))
    }

    /// Returns the 32-byte key as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        self.0
            .as_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// Encodes the key as an SPKI PEM public key ("-----BEGIN PUBLIC KEY-----") with LF line
    /// endings.
    pub fn to_spki_pem(&self) -> String {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .expect("SPKI encoding of a 32-byte Ed25519 key cannot fail")
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl fmt::Debug for TenantPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantPublicKey({})", self.to_hex())
    }
}

impl fmt::Display for TenantPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Decodes 64 hex characters into a 32-byte public key.
fn decode_hex_key(text: &str) -> Result<[u8; PUBLIC_KEY_LENGTH], TokenError> {
    let invalid = || TokenError::InvalidKey {
        reason: format!(
            "public key {} is neither 64 hex characters nor an SPKI PEM (\"-----BEGIN PUBLIC KEY-----\")",
            crate::error::shown(text)
        ),
    };

    let digits = text.as_bytes();
    if digits.len() != 2 * PUBLIC_KEY_LENGTH {
        return Err(invalid());
    }
    let mut bytes = [0u8; PUBLIC_KEY_LENGTH];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let high = hex_value(pair[0]).ok_or_else(invalid)?;
        let low = hex_value(pair[1]).ok_or_else(invalid)?;
        *byte = (high << 4) | low;
    }
    Ok(bytes)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}
