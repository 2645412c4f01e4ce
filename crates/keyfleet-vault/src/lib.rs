//! keyfleet's OPAQUE server core (RFC 9807), with no networking and no Raft.
//!
//! A client stores a random backup key behind its password: [`Vault::registration_start`] and
//! [`Vault::registration_finish`] produce a sealed password file and a sealed client
//! ciphertext for the replicated record, and [`Vault::recovery_start`] and
//! [`Vault::recovery_finish`] return the ciphertext after a verified OPAQUE login. Per-user
//! OPRF keys are derived inside the HSM, and the server state between the two round trips
//! travels with the client in HSM-sealed tickets.
//!
//! The protocol that clients share, re-exported here from `keyfleet-protocol`: the cipher suite
//! [`Suite`], the constants of [`PROTOCOL_VERSION`] 1, and the KSF a client builds with
//! [`client_ksf`].

mod clock;
mod config;
mod error;
mod fleet_setup;
mod limits;
mod oprf_key;
mod record;
mod recovery;
mod registration;
mod session_key;
mod static_dh;
mod ticket;
mod ticket_claims;
mod vault;

pub use clock::{Clock, SystemClock};
pub use config::{DEFAULT_TICKET_TTL_SECS, VaultConfig};
pub use error::VaultError;
pub use fleet_setup::{FleetSetup, SERVER_SETUP_PURPOSE};
pub use keyfleet_protocol::{
    CREDENTIAL_FINALIZATION_LEN, CREDENTIAL_REQUEST_LEN, KE_CONTEXT, KsfParams, PASSWORD_FILE_LEN,
    PROTOCOL_V1_KSF, PROTOCOL_VERSION, ProtocolError, REGISTRATION_REQUEST_LEN,
    REGISTRATION_UPLOAD_LEN, Suite, client_identifiers, client_ksf, open_recovered_secret,
};
pub use limits::{MAX_CLIENT_CIPHERTEXT_LEN, MAX_TICKET_LEN, MAX_USER_ID_LEN};
pub use record::{OPRF_SALT_LEN, RecordState, StoredRecord};
pub use recovery::{LoginAttempt, RecoveredSecret, RecoveryStart};
pub use registration::{RegisteredRecord, RegistrationStart};
pub use session_key::{SESSION_KEY_LEN, SessionKey};
pub use ticket::{LoginTicket, RegistrationTicket, TicketKind};
pub use vault::{CLIENT_SECRET_PURPOSE, PASSWORD_FILE_PURPOSE, Vault};
