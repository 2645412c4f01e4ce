//! The blocking PKCS#11 operations behind each [`crate::Hsm`] method. Each runs on one session,
//! on a blocking thread, inside [`super::Pkcs11Hsm::run`].

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;
use zeroize::Zeroizing;

use super::Call;
use super::handles::{KeyObject, label_in_use};
use super::policy::{self, P256_OID};
use super::rv::{device_error, return_value};
use crate::blob::{BLOB_VERSION, IV_LEN, MAX_PLAINTEXT_LEN, TAG_LEN};
use crate::{
    Ed25519PublicKey, Ed25519Signature, HsmError, KeyKind, KeyLabel, KeySpec, SealContext,
    SealedBlob, SecretBytes, TransportPublicKey, WrappedKey,
};

pub(super) fn seal(
    call: &Call<'_>,
    key: &KeyLabel,
    context: &SealContext<'_>,
    plaintext: &[u8],
) -> Result<SealedBlob, HsmError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(HsmError::InvalidInput {
            reason: format!(
                "plaintext of {} bytes exceeds the sealing limit of {MAX_PLAINTEXT_LEN} bytes",
                plaintext.len()
            ),
        });
    }

    let handle = call.find(key, KeyObject::Secret)?;
    let mut iv = [0u8; IV_LEN];
    call.session
        .generate_random_slice(&mut iv)
        .map_err(|error| call.fail("C_GenerateRandom", error))?;

    let aad = context.associated_data(BLOB_VERSION, key);
    let mut iv_param = iv;
    let params = GcmParams::new(&mut iv_param, &aad, ((TAG_LEN * 8) as u64).into())
        .map_err(|error| call.fail("AES-GCM parameters", error))?;
    let ciphertext = call
        .session
        .encrypt(&Mechanism::AesGcm(params), handle, plaintext)
        .map_err(|error| call.fail("C_Encrypt", error))?;

    Ok(SealedBlob::assemble(key, &iv, &ciphertext))
}

pub(super) fn unseal(
    call: &Call<'_>,
    key: &KeyLabel,
    context: &SealContext<'_>,
    blob: &SealedBlob,
) -> Result<SecretBytes, HsmError> {
    let parts = blob.parts()?;
    if &parts.key != key {
        return Err(HsmError::InvalidInput {
            reason: format!(
                "blob was sealed under key {:?}, not {:?}; unseal it with the key it names",
                parts.key.as_str(),
                key.as_str()
            ),
        });
    }

    let handle = call.find(key, KeyObject::Secret)?;
    let aad = context.associated_data(parts.version, key);
    let mut iv: [u8; IV_LEN] = parts.iv.try_into().expect("parts() checked the IV length");
    let params = GcmParams::new(&mut iv, &aad, ((TAG_LEN * 8) as u64).into())
        .map_err(|error| call.fail("AES-GCM parameters", error))?;

    match call
        .session
        .decrypt(&Mechanism::AesGcm(params), handle, parts.ciphertext)
    {
        Ok(plaintext) => Ok(SecretBytes::new(plaintext)),
        Err(error) if is_authentication_failure(return_value(&error)) => {
            Err(HsmError::UnsealFailed {
                key: key.to_string(),
            })
        }
        Err(error) => Err(call.fail("C_Decrypt", error)),
    }
}

/// Returns whether a failed AES-GCM decryption means the tag did not verify. The PKCS#11 spec
/// names `CKR_ENCRYPTED_DATA_INVALID` for that, but SoftHSM 2.6 returns `CKR_GENERAL_ERROR`.
fn is_authentication_failure(rv: Option<RvError>) -> bool {
    matches!(
        rv,
        Some(
            RvError::GeneralError
                | RvError::FunctionFailed
                | RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
        )
    )
}

pub(super) fn sign_ed25519(
    call: &Call<'_>,
    key: &KeyLabel,
    message: &[u8],
) -> Result<Ed25519Signature, HsmError> {
    let handle = call.find(key, KeyObject::Private)?;
    let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));

    let signature = call
        .session
        .sign(&mechanism, handle, message)
        .map_err(|error| call.fail("C_Sign", error))?;
    signature
        .try_into()
        .map_err(|bytes: Vec<u8>| HsmError::Device {
            operation: "C_Sign",
            token: call.token().to_owned(),
            code: format!("Ed25519 signature of {} bytes, expected 64", bytes.len()),
            transient: false,
        })
}

pub(super) fn ed25519_public_key(
    call: &Call<'_>,
    key: &KeyLabel,
) -> Result<Ed25519PublicKey, HsmError> {
    let point = public_point(call, key)?;
    point
        .as_slice()
        .try_into()
        .map_err(|_| HsmError::KeyTooWeak {
            label: key.to_string(),
            token: call.token().to_owned(),
            reason: format!(
                "its public point is {} bytes, not an Ed25519 key",
                point.len()
            ),
        })
}

pub(super) fn hmac_sha512(
    call: &Call<'_>,
    key: &KeyLabel,
    data: &[u8],
) -> Result<Zeroizing<[u8; 64]>, HsmError> {
    let handle = call.find(key, KeyObject::Secret)?;

    let mac = Zeroizing::new(
        call.session
            .sign(&Mechanism::Sha512Hmac, handle, data)
            .map_err(|error| call.fail("C_Sign", error))?,
    );
    let mut out = Zeroizing::new([0u8; 64]);
    if mac.len() != out.len() {
        return Err(HsmError::Device {
            operation: "C_Sign",
            token: call.token().to_owned(),
            code: format!("HMAC-SHA512 output of {} bytes, expected 64", mac.len()),
            transient: false,
        });
    }
    out.copy_from_slice(&mac);
    Ok(out)
}

pub(super) fn transport_public_key(
    call: &Call<'_>,
    key: &KeyLabel,
) -> Result<TransportPublicKey, HsmError> {
    TransportPublicKey::from_sec1(&public_point(call, key)?)
}

/// Reads `CKA_EC_POINT` of the public key `key` and strips its DER OCTET STRING wrapper.
fn public_point(call: &Call<'_>, key: &KeyLabel) -> Result<Vec<u8>, HsmError> {
    let handle = call.find(key, KeyObject::Public)?;
    read_point(call.session, call.token(), handle)
}

fn read_point(session: &Session, token: &str, handle: ObjectHandle) -> Result<Vec<u8>, HsmError> {
    let attributes = session
        .get_attributes(handle, &[AttributeType::EcPoint])
        .map_err(|error| device_error("C_GetAttributeValue", token, error))?;
    let encoded = attributes
        .into_iter()
        .find_map(|attribute| match attribute {
            Attribute::EcPoint(point) => Some(point),
            _ => None,
        })
        .unwrap_or_default();
    Ok(strip_octet_string(encoded))
}

/// Removes a short-form DER OCTET STRING header (`04 len`), which PKCS#11 §2.3.3 puts around
/// `CKA_EC_POINT`. A value whose header does not match its length is returned as it is.
fn strip_octet_string(encoded: Vec<u8>) -> Vec<u8> {
    match encoded.as_slice() {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest.to_vec(),
        _ => encoded,
    }
}

pub(super) fn wrap_key(
    call: &Call<'_>,
    key: &KeyLabel,
    recipient: &TransportPublicKey,
) -> Result<WrappedKey, HsmError> {
    let target = call.find(key, KeyObject::Secret)?;
    let kind = secret_kind(call, key, target)?;

    let ephemeral = EphemeralPair::generate(call)?;
    let kek = ephemeral
        .derive_kek(call, recipient, true)
        .map_err(|error| match error.is_transient() {
            true => error,
            false => HsmError::InvalidInput {
                reason: format!(
                    "the recipient's transport public key is not usable for ECDH on P-256 \
                     ({error})"
                ),
            },
        });
    let result = kek.and_then(|kek| {
        let wrapped = call
            .session
            .wrap_key(&Mechanism::AesKeyWrapPad, kek, target)
            .map_err(|error| call.fail("C_WrapKey", error));
        destroy(call.session, kek);
        wrapped
    });
    let public = read_point(call.session, call.token(), ephemeral.public);
    ephemeral.destroy(call.session);

    Ok(WrappedKey {
        kind,
        ephemeral: TransportPublicKey::from_sec1(&public?)?,
        wrapped: result?,
    })
}

/// Determines the kind of the secret key `handle` from its key type.
fn secret_kind(call: &Call<'_>, key: &KeyLabel, handle: ObjectHandle) -> Result<KeyKind, HsmError> {
    let attributes = call
        .session
        .get_attributes(handle, &[AttributeType::KeyType, AttributeType::ValueLen])
        .map_err(|error| call.fail("C_GetAttributeValue", error))?;
    let key_type = attributes.iter().find_map(|a| match a {
        Attribute::KeyType(key_type) => Some(*key_type),
        _ => None,
    });

    match key_type {
        Some(KeyType::AES) => Ok(KeyKind::SealAes256),
        Some(KeyType::GENERIC_SECRET) => Ok(KeyKind::HmacSha512),
        other => Err(HsmError::InvalidInput {
            reason: format!("key {key} has type {other:?}, which keyfleet does not wrap"),
        }),
    }
}

pub(super) fn unwrap_key(
    call: &Call<'_>,
    transport: &KeyLabel,
    wrapped: &WrappedKey,
    spec: &KeySpec,
) -> Result<(), HsmError> {
    if spec.kind != wrapped.kind {
        return Err(HsmError::InvalidInput {
            reason: format!(
                "the wrapped key is a {}, but the target spec {:?} asks for a {}",
                wrapped.kind, spec.label, spec.kind
            ),
        });
    }
    // RFC 5649 output is the key padded to 8 bytes plus an 8-byte integrity block. This check
    // replaces one of CKA_VALUE_LEN, which SoftHSM 2.6 does not report on unwrapped keys.
    let key_len = spec
        .kind
        .secret_len()
        .expect("wrapped keys are secret keys");
    if wrapped.wrapped.len() != key_len.div_ceil(8) * 8 + 8 {
        return Err(HsmError::MalformedWrappedKey {
            reason: format!(
                "{} wrapped bytes cannot hold a {}-byte {}",
                wrapped.wrapped.len(),
                key_len,
                spec.kind
            ),
        });
    }
    if label_in_use(call.session, call.token(), &spec.label)? {
        return Err(HsmError::KeyExists {
            label: spec.label.to_string(),
            token: call.token().to_owned(),
        });
    }

    let private = call.find(transport, KeyObject::Private)?;
    let kek = derive_kek(call, private, &wrapped.ephemeral, false).map_err(|error| match error
        .is_transient()
    {
        true => error,
        false => HsmError::MalformedWrappedKey {
            reason: format!("its ephemeral point is not usable for ECDH on P-256 ({error})"),
        },
    })?;
    let template = policy::secret_key_template(spec);
    let unwrapped =
        call.session
            .unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped.wrapped, &template);
    destroy(call.session, kek);

    match unwrapped {
        Ok(_) => policy::check(call.session, call.token(), spec),
        Err(error) if return_value(&error).is_some_and(super::rv::is_transient) => {
            Err(call.fail("C_UnwrapKey", error))
        }
        Err(error) => {
            tracing::warn!(
                token = call.token(),
                label = %spec.label,
                error = %error,
                "unwrapping a transferred key failed"
            );
            Err(HsmError::UnwrapFailed {
                label: spec.label.to_string(),
                token: call.token().to_owned(),
            })
        }
    }
}

/// A P-256 key pair that lives only in this session, for one key transfer.
struct EphemeralPair {
    public: ObjectHandle,
    private: ObjectHandle,
}

impl EphemeralPair {
    fn generate(call: &Call<'_>) -> Result<Self, HsmError> {
        let public = [
            Attribute::Token(false),
            Attribute::EcParams(P256_OID.to_vec()),
        ];
        let private = [
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Derive(true),
        ];
        let (public, private) = call
            .session
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .map_err(|error| call.fail("C_GenerateKeyPair", error))?;
        Ok(Self { public, private })
    }

    fn derive_kek(
        &self,
        call: &Call<'_>,
        peer: &TransportPublicKey,
        wrap: bool,
    ) -> Result<ObjectHandle, HsmError> {
        derive_kek(call, self.private, peer, wrap)
    }

    fn destroy(self, session: &Session) {
        destroy(session, self.public);
        destroy(session, self.private);
    }
}

/// Derives a session-only AES-256 key-wrapping key from `private` and the peer's point.
///
/// NOTE: the key is the raw ECDH x-coordinate (`CKD_NULL`) because SoftHSM 2.6 offers no other
/// KDF for `CKM_ECDH1_DERIVE`. Each transfer uses a fresh ephemeral pair, so every wrapping key
/// is used once. An HSM with `CKD_SHA256_KDF` would also let the transfer context be bound.
fn derive_kek(
    call: &Call<'_>,
    private: ObjectHandle,
    peer: &TransportPublicKey,
    wrap: bool,
) -> Result<ObjectHandle, HsmError> {
    let params = Ecdh1DeriveParams::new(EcKdf::null(), peer.as_sec1());
    let template = policy::session_wrapping_key_template(wrap);
    call.session
        .derive_key(&Mechanism::Ecdh1Derive(params), private, &template)
        .map_err(|error| call.fail("C_DeriveKey", error))
}

fn destroy(session: &Session, handle: ObjectHandle) {
    if let Err(error) = session.destroy_object(handle) {
        tracing::warn!(%error, "destroying a session key object failed; it ends with the session");
    }
}

pub(super) fn random_bytes(call: &Call<'_>, len: usize) -> Result<SecretBytes, HsmError> {
    const MAX_RANDOM_LEN: usize = 1 << 16;

    if len > MAX_RANDOM_LEN {
        return Err(HsmError::InvalidInput {
            reason: format!("{len} random bytes requested; the limit is {MAX_RANDOM_LEN}"),
        });
    }
    let mut bytes = vec![0u8; len];
    call.session
        .generate_random_slice(&mut bytes)
        .map_err(|error| call.fail("C_GenerateRandom", error))?;
    Ok(SecretBytes::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_octet_string_cases() {
        let mut ed25519 = vec![0x04, 0x20];
        ed25519.extend([7u8; 32]);

        assert_eq!(strip_octet_string(ed25519), vec![7u8; 32]);
        assert_eq!(strip_octet_string(vec![7u8; 32]), vec![7u8; 32]);
        assert_eq!(strip_octet_string(vec![0x04, 0x05, 1]), vec![0x04, 0x05, 1]);
    }
}
