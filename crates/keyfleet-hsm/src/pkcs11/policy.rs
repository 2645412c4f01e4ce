//! Key policy per kind: the mechanisms, the templates, and the attribute checks that reject a
//! key weaker than required.

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;

use super::handles::{KeyObject, find_uncached};
use super::rv::device_error;
use crate::{Exportability, HsmError, KeyKind, KeySpec};

/// DER encoding of the Ed25519 curve OID 1.3.101.112.
pub(super) const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER PrintableString "edwards25519", the older way to name the curve in `CKA_EC_PARAMS`.
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";
/// DER encoding of the P-256 curve OID 1.2.840.10045.3.1.7.
pub(super) const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Every mechanism the token must offer for keys of `kind` to be provisioned and used.
pub(super) fn required_mechanisms(kind: KeyKind) -> &'static [MechanismType] {
    match kind {
        KeyKind::SealAes256 => &[MechanismType::AES_KEY_GEN, MechanismType::AES_GCM],
        KeyKind::HmacSha512 => &[
            MechanismType::GENERIC_SECRET_KEY_GEN,
            MechanismType::SHA512_HMAC,
        ],
        KeyKind::SigningEd25519 => &[
            MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
            MechanismType::EDDSA,
        ],
        KeyKind::TransportP256 => &[
            MechanismType::ECC_KEY_PAIR_GEN,
            MechanismType::ECDH1_DERIVE,
            MechanismType::AES_KEY_WRAP_PAD,
        ],
    }
}

/// Returns the one mechanism a key of `kind` is used with.
fn use_mechanism(kind: KeyKind) -> MechanismType {
    match kind {
        KeyKind::SealAes256 => MechanismType::AES_GCM,
        KeyKind::HmacSha512 => MechanismType::SHA512_HMAC,
        KeyKind::SigningEd25519 => MechanismType::EDDSA,
        KeyKind::TransportP256 => MechanismType::ECDH1_DERIVE,
    }
}

/// Attributes of a token secret key that meets `spec`, without `CKA_VALUE_LEN`, which
/// generation adds and unwrapping takes from the wrapped value.
pub(super) fn secret_key_template(spec: &KeySpec) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Class(KeyObject::Secret.class()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(spec.exportability == Exportability::WrappedOnly),
        Attribute::Label(spec.label.as_str().as_bytes().to_vec()),
        Attribute::AllowedMechanisms(vec![use_mechanism(spec.kind)]),
    ];
    match spec.kind {
        KeyKind::SealAes256 => template.extend([
            Attribute::KeyType(KeyType::AES),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ]),
        KeyKind::HmacSha512 => template.extend([
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Sign(true),
            Attribute::Verify(true),
        ]),
        KeyKind::SigningEd25519 | KeyKind::TransportP256 => {
            unreachable!("callers check that {} is a secret-key kind", spec.kind)
        }
    }
    template
}

/// Generates a key that meets `spec` in the token.
pub(super) fn generate(session: &Session, token: &str, spec: &KeySpec) -> Result<(), HsmError> {
    let fail = |error| device_error("key generation", token, error);

    match spec.kind {
        KeyKind::SealAes256 | KeyKind::HmacSha512 => {
            let len = spec
                .kind
                .secret_len()
                .expect("secret-key kinds have a length");
            let mut template = secret_key_template(spec);
            template.push(Attribute::ValueLen((len as u64).into()));
            let mechanism = match spec.kind {
                KeyKind::SealAes256 => Mechanism::AesKeyGen,
                _ => Mechanism::GenericSecretKeyGen,
            };
            session.generate_key(&mechanism, &template).map_err(fail)?;
        }
        KeyKind::SigningEd25519 | KeyKind::TransportP256 => {
            let (public, private) = key_pair_templates(spec);
            let mechanism = match spec.kind {
                KeyKind::SigningEd25519 => Mechanism::EccEdwardsKeyPairGen,
                _ => Mechanism::EccKeyPairGen,
            };
            session
                .generate_key_pair(&mechanism, &public, &private)
                .map_err(fail)?;
        }
    }
    Ok(())
}

fn key_pair_templates(spec: &KeySpec) -> (Vec<Attribute>, Vec<Attribute>) {
    let label = spec.label.as_str().as_bytes().to_vec();
    let (curve, use_private, use_public) = match spec.kind {
        KeyKind::SigningEd25519 => (ED25519_OID, Attribute::Sign(true), Attribute::Verify(true)),
        _ => (P256_OID, Attribute::Derive(true), Attribute::Derive(false)),
    };

    let public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Label(label.clone()),
        Attribute::EcParams(curve.to_vec()),
        use_public,
    ];
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Label(label),
        Attribute::AllowedMechanisms(vec![use_mechanism(spec.kind)]),
        use_private,
    ];
    (public, private)
}

/// Checks that the token's key under `spec.label` meets `spec`.
///
/// # Errors
/// [`HsmError::KeyNotFound`] when there is none, [`HsmError::KeyTooWeak`] naming the first
/// attribute that falls short.
pub(super) fn check(session: &Session, token: &str, spec: &KeySpec) -> Result<(), HsmError> {
    let object = match spec.kind.is_secret_key() {
        true => KeyObject::Secret,
        false => KeyObject::Private,
    };
    let handle = find_uncached(session, token, &spec.label, object)?.ok_or_else(|| {
        HsmError::KeyNotFound {
            label: spec.label.to_string(),
            token: token.to_owned(),
        }
    })?;

    if !spec.kind.is_secret_key() {
        find_uncached(session, token, &spec.label, KeyObject::Public)?
            .ok_or_else(|| too_weak(token, spec, "its public key object is missing".into()))?;
    }

    let mut observed = Observed::read(session, token, handle)?;
    if spec.kind.is_secret_key() && observed.value_len.unwrap_or(0) == 0 {
        observed.value_len = measure_secret_len(session, token, handle, &observed)?;
    }
    match observed.shortfall(spec) {
        Some(reason) => Err(too_weak(token, spec, reason)),
        None => Ok(()),
    }
}

fn too_weak(token: &str, spec: &KeySpec, reason: String) -> HsmError {
    HsmError::KeyTooWeak {
        label: spec.label.to_string(),
        token: token.to_owned(),
        reason,
    }
}

/// Measures a secret key whose `CKA_VALUE_LEN` reads 0, as SoftHSM 2.6 reports for every key
/// made by `C_UnwrapKey`. An extractable key is wrapped under a throwaway session key: RFC 5649
/// output is the key padded to 8 bytes plus 8, which bounds the length to within 7 bytes. A key
/// that cannot be wrapped cannot be measured, and `None` makes the policy reject it.
fn measure_secret_len(
    session: &Session,
    token: &str,
    handle: ObjectHandle,
    observed: &Observed,
) -> Result<Option<u64>, HsmError> {
    if observed.extractable != Some(true) {
        return Ok(None);
    }

    let template = session_wrapping_key_template(true);
    let kek = session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(|error| device_error("C_GenerateKey", token, error))?;
    let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, kek, handle);
    if let Err(error) = session.destroy_object(kek) {
        tracing::warn!(%error, token, "destroying a session key failed; it ends with the session");
    }

    let wrapped = wrapped.map_err(|error| device_error("C_WrapKey", token, error))?;
    Ok(Some(wrapped.len().saturating_sub(8) as u64))
}

/// Attributes of a session-only AES-256 key that wraps (`wrap` true) or unwraps other keys and
/// never leaves the token.
pub(super) fn session_wrapping_key_template(wrap: bool) -> [Attribute; 8] {
    [
        Attribute::Class(KeyObject::Secret.class()),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32u64.into()),
        Attribute::Token(false),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Wrap(wrap),
        Attribute::Unwrap(!wrap),
    ]
}

/// The attributes of a key object that the policy looks at.
#[derive(Debug, Default)]
struct Observed {
    key_type: Option<KeyType>,
    value_len: Option<u64>,
    sensitive: Option<bool>,
    extractable: Option<bool>,
    usage: Vec<(AttributeType, bool)>,
    allowed_mechanisms: Vec<MechanismType>,
    ec_params: Option<Vec<u8>>,
}

impl Observed {
    fn read(session: &Session, token: &str, handle: ObjectHandle) -> Result<Self, HsmError> {
        let requested = [
            AttributeType::KeyType,
            AttributeType::ValueLen,
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::Encrypt,
            AttributeType::Decrypt,
            AttributeType::Sign,
            AttributeType::Derive,
            AttributeType::AllowedMechanisms,
            AttributeType::EcParams,
        ];
        let attributes = session
            .get_attributes(handle, &requested)
            .map_err(|error| device_error("C_GetAttributeValue", token, error))?;

        let mut observed = Self::default();
        for attribute in attributes {
            observed.record(attribute);
        }
        Ok(observed)
    }

    fn record(&mut self, attribute: Attribute) {
        match attribute {
            Attribute::KeyType(key_type) => self.key_type = Some(key_type),
            Attribute::ValueLen(len) => self.value_len = Some(u64::from(len)),
            Attribute::Sensitive(value) => self.sensitive = Some(value),
            Attribute::Extractable(value) => self.extractable = Some(value),
            Attribute::Encrypt(value) => self.usage.push((AttributeType::Encrypt, value)),
            Attribute::Decrypt(value) => self.usage.push((AttributeType::Decrypt, value)),
            Attribute::Sign(value) => self.usage.push((AttributeType::Sign, value)),
            Attribute::Derive(value) => self.usage.push((AttributeType::Derive, value)),
            Attribute::AllowedMechanisms(list) => self.allowed_mechanisms = list,
            Attribute::EcParams(params) => self.ec_params = Some(params),
            _ => {}
        }
    }

    /// Returns the first way in which the key falls short of `spec`, if any.
    fn shortfall(&self, spec: &KeySpec) -> Option<String> {
        let (key_type, usages) = expected_type_and_usage(spec.kind);

        if self.key_type != Some(key_type) {
            let found = self
                .key_type
                .map_or("unknown".to_owned(), |t| t.to_string());
            return Some(format!("its key type is {found}, expected {key_type}"));
        }
        if let Some(reason) = self.size_or_curve_shortfall(spec.kind) {
            return Some(reason);
        }
        if self.sensitive != Some(true) {
            return Some("it is not sensitive (CKA_SENSITIVE is false)".into());
        }
        let must_stay = spec.exportability == Exportability::Never || !spec.kind.is_secret_key();
        if must_stay && self.extractable != Some(false) {
            return Some("it is extractable (CKA_EXTRACTABLE is true)".into());
        }
        for usage in usages {
            if !self.usage.contains(&(*usage, true)) {
                return Some(format!("it does not permit {usage} use"));
            }
        }
        let mechanism = use_mechanism(spec.kind);
        if !self.allowed_mechanisms.is_empty() && !self.allowed_mechanisms.contains(&mechanism) {
            return Some(format!("its CKA_ALLOWED_MECHANISMS exclude {mechanism}"));
        }
        None
    }

    fn size_or_curve_shortfall(&self, kind: KeyKind) -> Option<String> {
        if let Some(required) = kind.secret_len() {
            return match self.value_len {
                None | Some(0) => Some(
                    "its length is not reported (CKA_VALUE_LEN) and it cannot be wrapped to \
                     measure it"
                        .into(),
                ),
                Some(len) if len < required as u64 => Some(format!(
                    "it is {len} bytes long, expected at least {required}"
                )),
                Some(_) => None,
            };
        }

        let params = self.ec_params.as_deref().unwrap_or_default();
        let curve_ok = match kind {
            KeyKind::SigningEd25519 => params == ED25519_OID || params == ED25519_NAME,
            _ => params == P256_OID,
        };
        (!curve_ok).then(|| format!("it is on another curve than a {kind} needs"))
    }
}

fn expected_type_and_usage(kind: KeyKind) -> (KeyType, &'static [AttributeType]) {
    match kind {
        KeyKind::SealAes256 => (
            KeyType::AES,
            &[AttributeType::Encrypt, AttributeType::Decrypt],
        ),
        KeyKind::HmacSha512 => (KeyType::GENERIC_SECRET, &[AttributeType::Sign]),
        KeyKind::SigningEd25519 => (KeyType::EC_EDWARDS, &[AttributeType::Sign]),
        KeyKind::TransportP256 => (KeyType::EC, &[AttributeType::Derive]),
    }
}
