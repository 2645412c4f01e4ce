//! Client SDK of the keyfleet vault API (`proto/keyfleet/v1/vault.proto`).
//!
//! An app stores a backup secret behind the user's password with [`VaultClient::register`],
//! and gets it back with [`VaultClient::recover`]. The password never leaves the client: the
//! SDK runs the client side of OPAQUE (RFC 9807) with opaque-ke, and encrypts the secret under
//! a key derived from the OPAQUE export key before sending it to the vault. Every call carries a
//! tenant token, from which the SDK reads the tenant and fleet ids without verifying it.
//!
//! ```no_run
//! # async fn demo(token: &str) -> Result<(), keyfleet_sdk::SdkError> {
//! use keyfleet_client::RetryPolicy;
//! use keyfleet_sdk::VaultClient;
//!
//! let client = VaultClient::new(["127.0.0.1:7201", "127.0.0.1:7202"], RetryPolicy::default())?;
//! client.register(token, "alice", b"correct horse", &[7; 32], 0).await?;
//! let secret = client.recover(token, "alice", b"correct horse").await?;
//! assert_eq!(secret.as_slice(), &[7; 32]);
//! # Ok(())
//! # }
//! ```

mod backup_key;
mod bundle_check;
mod caller;
mod opaque_steps;
mod record_status;
mod recovery;
mod registration;
mod request_id;
mod sdk_error;
mod status_mapping;
mod vault_client;

pub use backup_key::{MAX_SECRET_LEN, MIN_SECRET_LEN};
pub use keyfleet_bundle::{BundleError, NoteVerifier, TrustAnchors, VerifiedBundle};
pub use keyfleet_client::{ClientTls, RetryPolicy};
pub use keyfleet_protocol::KsfParams;
pub use record_status::{RecordStatus, Registration};
pub use sdk_error::SdkError;
pub use vault_client::VaultClient;
