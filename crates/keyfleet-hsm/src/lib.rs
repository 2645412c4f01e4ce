//! keyfleet's HSM boundary.
//!
//! The vault reaches key material only through the [`Hsm`] trait: seal and unseal with
//! AES-256-GCM, sign with Ed25519, HMAC-SHA512 for OPRF key derivation, wrap keys for another
//! token, and draw random bytes. [`Pkcs11Hsm`] implements it over any PKCS#11 module (SoftHSM2
//! in tests, a hardware HSM in production); this is the only crate that speaks PKCS#11.

mod blob;
mod config;
mod error;
mod hsm;
mod key;
mod pkcs11;
mod secret;
mod uri;
mod wrapped;

pub use blob::{BLOB_VERSION, IV_LEN, MAX_PLAINTEXT_LEN, SealContext, SealedBlob, TAG_LEN};
pub use config::{
    DEFAULT_MAX_SESSIONS, HsmConfig, HsmSettings, KeyLabels, PinSource, TokenSelector,
};
pub use error::HsmError;
pub use hsm::{Ed25519PublicKey, Ed25519Signature, Hsm};
pub use key::{Exportability, KeyKind, KeyLabel, KeySpec, MAX_LABEL_LEN, Provisioned};
pub use pkcs11::{Pkcs11Hsm, SelfTestReport};
pub use secret::SecretBytes;
pub use uri::Pkcs11Uri;
pub use wrapped::{P256_POINT_LEN, TransportPublicKey, WrappedKey};
