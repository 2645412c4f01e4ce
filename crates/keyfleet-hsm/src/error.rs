use std::path::PathBuf;

/// Errors from the HSM boundary.
///
/// Every message names the value at fault and, where there is one, the fix. None of them
/// contains a PIN, a key value or a plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    #[error(
        "PKCS#11 module not found at {path}: {reason}; install the HSM vendor's library \
         (SoftHSM2: `apt-get install softhsm2`) or correct hsm.module"
    )]
    ModuleNotFound { path: PathBuf, reason: String },

    #[error("PKCS#11 module {path} failed to initialize: {reason}")]
    ModuleInit { path: PathBuf, reason: String },

    #[error(
        "token label {label:?} not found in module {module}; tokens present: {}; correct \
         hsm.token_label or initialize the token",
        list_or_none(present)
    )]
    TokenNotFound {
        label: String,
        module: PathBuf,
        present: Vec<String>,
    },

    #[error("PIN rejected by token {token:?}; check the PIN in {pin_source}")]
    PinRejected { token: String, pin_source: String },

    #[error("user PIN of token {token:?} is locked; the security officer must reset it")]
    PinLocked { token: String },

    #[error("cannot read the HSM PIN from {pin_source}: {reason}")]
    PinUnavailable { pin_source: String, reason: String },

    #[error(
        "key label {label:?} not found on token {token:?}; provision it (for example at fleet \
         initialization) or correct the key label in the configuration"
    )]
    KeyNotFound { label: String, token: String },

    #[error(
        "key label {label:?} on token {token:?} is weaker than required: {reason}; replace \
         the key with one that meets the policy"
    )]
    KeyTooWeak {
        label: String,
        token: String,
        reason: String,
    },

    #[error("key label {label:?} already exists on token {token:?}; choose another label")]
    KeyExists { label: String, token: String },

    #[error(
        "mechanism {mechanism} not offered by token {token:?}; it offers: {}",
        list_or_none(offered)
    )]
    MechanismUnsupported {
        mechanism: String,
        token: String,
        offered: Vec<String>,
    },

    #[error(
        "sealed blob failed authentication under key {key:?}: it was tampered with, sealed \
         for another purpose or record, or sealed under a different key"
    )]
    UnsealFailed { key: String },

    #[error("sealed blob is malformed: {reason}")]
    MalformedBlob { reason: String },

    #[error("wrapped key is malformed: {reason}")]
    MalformedWrappedKey { reason: String },

    #[error(
        "unwrapping a key into {label:?} on token {token:?} failed: the wrapped key was \
         tampered with or wrapped for another token's transport key"
    )]
    UnwrapFailed { label: String, token: String },

    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },

    #[error("invalid HSM configuration for {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },

    #[error("invalid PKCS#11 URI: {reason}")]
    InvalidUri { reason: String },

    #[error("HSM self-test failed at {step}: {reason}")]
    SelfTestFailed { step: &'static str, reason: String },

    #[error("PKCS#11 {operation} failed on token {token:?}: {code}")]
    Device {
        operation: &'static str,
        token: String,
        code: String,
        /// Whether a new session, a fresh login and a retry may succeed.
        transient: bool,
    },

    #[error("HSM worker thread failed: {reason}")]
    Worker { reason: String },
}

impl HsmError {
    /// Returns whether the failure may clear on a new session: a closed session or a stale handle.
    /// A wrong PIN, a missing token or key and an unsupported mechanism are permanent.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Device {
                transient: true,
                ..
            }
        )
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
