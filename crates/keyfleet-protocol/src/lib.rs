//! keyfleet's vault protocol, version 1: what a client and the vault must agree on.
//!
//! The OPAQUE cipher suite is [`Suite`], and the client's key-stretching function is
//! [`PROTOCOL_V1_KSF`], built with [`client_ksf`]. The key exchange binds [`KE_CONTEXT`] and the
//! identities from [`client_identifiers`]. Every OPAQUE message has the fixed length given here,
//! and a recovered secret travels in the format of [`seal_for_session`] and
//! [`open_recovered_secret`]. Any change to these needs a new [`PROTOCOL_VERSION`].

mod error;
mod ksf_params;
mod message_lengths;
mod recovered_secret;
mod suite;
mod version;

pub use error::ProtocolError;
pub use ksf_params::{KsfParams, client_ksf};
pub use message_lengths::{
    CREDENTIAL_FINALIZATION_LEN, CREDENTIAL_REQUEST_LEN, PASSWORD_FILE_LEN,
    REGISTRATION_REQUEST_LEN, REGISTRATION_UPLOAD_LEN,
};
pub use recovered_secret::{open_recovered_secret, seal_for_session};
pub use suite::Suite;
pub use version::{KE_CONTEXT, PROTOCOL_V1_KSF, PROTOCOL_VERSION, client_identifiers};
