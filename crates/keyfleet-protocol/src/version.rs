//! The client-visible constants of the vault protocol. A client and the vault must agree on all
//! of them, so any change here needs a new [`PROTOCOL_VERSION`].

use opaque_ke::Identifiers;

use crate::KsfParams;

/// Version of the vault protocol: [`crate::Suite`], [`PROTOCOL_V1_KSF`], [`KE_CONTEXT`] and the
/// identifiers from [`client_identifiers`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Argon2id parameters of protocol version 1: m = 65536 KiB (64 MiB), t = 3 passes, p = 4 lanes,
/// Argon2 version 0x13. These are the second recommended option of RFC 9106, section 4.
///
/// The salt is opaque-ke 4.0.1's fixed all-zero 16-byte salt, kept on purpose. The KSF input is
/// the OPRF output, and the OPRF key is derived per credential identifier from the fleet's OPRF
/// seed. So the input already differs per user and per fleet, which is what a salt provides.
pub const PROTOCOL_V1_KSF: KsfParams = KsfParams {
    memory_kib: 65_536,
    iterations: 3,
    parallelism: 4,
};

/// Context string that both sides bind into the OPAQUE key exchange transcript (the `context`
/// of opaque-ke's `ServerLoginParameters` and `ClientLoginFinishParameters`).
pub const KE_CONTEXT: &[u8] = b"keyfleet OPAQUE protocol 1";

/// Builds the OPAQUE identifiers of protocol version 1: the client identity is the user id and
/// the server identity is the fleet id. The client must pass them to both
/// `ClientRegistration::finish` and `ClientLogin::finish`, because the envelope and the KE3 MAC
/// bind them.
pub fn client_identifiers<'a>(user: &'a str, fleet_id: &'a str) -> Identifiers<'a> {
    Identifiers {
        client: Some(user.as_bytes()),
        server: Some(fleet_id.as_bytes()),
    }
}
