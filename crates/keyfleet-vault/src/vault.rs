use std::sync::Arc;

use curve25519_dalek::ristretto::RistrettoPoint;
use keyfleet_hsm::{Hsm, SealContext, SealedBlob};
use opaque_ke::ServerRegistration;
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::ticket_claims::TicketSealer;
use crate::{Clock, FleetSetup, PASSWORD_FILE_LEN, Suite, VaultConfig, VaultError};

/// HSM seal purpose of a user's OPAQUE password file. The record id is the user id.
pub const PASSWORD_FILE_PURPOSE: &str = "opaque-password-file";
/// HSM seal purpose of a user's client ciphertext. The record id is the user id.
pub const CLIENT_SECRET_PURPOSE: &str = "client-secret";
/// HSM seal purpose of the random stand-in that recovery unseals for an unknown user.
const DUMMY_PASSWORD_FILE_PURPOSE: &str = "opaque-dummy-password-file";

/// The OPAQUE server core of one vault node: registration and recovery over the HSM, with no
/// networking and no Raft. Registration is in [`crate::registration`] and recovery in
/// [`crate::recovery`].
#[derive(Debug)]
pub struct Vault {
    pub(crate) hsm: Arc<dyn Hsm>,
    pub(crate) config: VaultConfig,
    pub(crate) setup: FleetSetup,
    /// A sealed random password file that recovery unseals for an unknown user, so that an
    /// unknown user costs the same HSM calls as a known one.
    pub(crate) dummy_password_file: SealedBlob,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Vault {
    /// Unseals the fleet's server setup and prepares the core.
    pub async fn load(
        hsm: Arc<dyn Hsm>,
        config: VaultConfig,
        sealed_setup: &SealedBlob,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        let setup = FleetSetup::unseal(
            hsm.as_ref(),
            &config.seal_key,
            &config.fleet_id,
            sealed_setup,
        )
        .await?;

        let filler = dummy_password_file_bytes();
        let context = SealContext::new(DUMMY_PASSWORD_FILE_PURPOSE, config.fleet_id.as_bytes());
        let dummy_password_file = hsm
            .seal(&config.seal_key, &context, filler.as_ref())
            .await
            .map_err(VaultError::hsm("seal of the unknown-user password file"))?;

        Ok(Self {
            hsm,
            config,
            setup,
            dummy_password_file,
            clock,
        })
    }

    /// Returns the fleet's OPAQUE server setup.
    pub fn setup(&self) -> &FleetSetup {
        &self.setup
    }

    pub(crate) fn tickets(&self) -> TicketSealer<'_> {
        TicketSealer {
            hsm: self.hsm.as_ref(),
            key: &self.config.seal_key,
            fleet_id: &self.config.fleet_id,
        }
    }

    /// Returns the expiry time of a ticket issued now, in Unix seconds.
    pub(crate) fn ticket_expiry(&self) -> u64 {
        self.clock
            .now_unix_secs()
            .saturating_add(self.config.ticket_ttl_secs)
    }

    /// Unseals and decodes the password file stored for `user`. For an unknown user it unseals
    /// and decodes the dummy file instead, at the same cost, and returns `None`.
    pub(crate) async fn unseal_password_file(
        &self,
        user: &str,
        stored: Option<&SealedBlob>,
    ) -> Result<Option<ServerRegistration<Suite>>, VaultError> {
        let (context, blob) = match stored {
            Some(blob) => (
                SealContext::new(PASSWORD_FILE_PURPOSE, user.as_bytes()),
                blob,
            ),
            None => (
                SealContext::new(DUMMY_PASSWORD_FILE_PURPOSE, self.config.fleet_id.as_bytes()),
                &self.dummy_password_file,
            ),
        };

        let bytes = self
            .hsm
            .unseal(&self.config.seal_key, &context, blob)
            .await
            .map_err(VaultError::hsm("unseal of a password file"))?;

        let password_file = ServerRegistration::<Suite>::deserialize(bytes.expose_secret())
            .map_err(|error| VaultError::CorruptStoredValue {
                value: "password file",
                reason: format!("{error:?}"),
            })?;
        Ok(stored.map(|_| password_file))
    }
}

/// Builds a random password file that decodes like a real one: a valid ristretto255 point as
/// the client public key, then random bytes for the masking key and the envelope.
fn dummy_password_file_bytes() -> Zeroizing<[u8; PASSWORD_FILE_LEN]> {
    let mut bytes = Zeroizing::new([0u8; PASSWORD_FILE_LEN]);
    OsRng.fill_bytes(bytes.as_mut());

    let client_public_key = RistrettoPoint::random(&mut OsRng).compress();
    bytes[..32].copy_from_slice(client_public_key.as_bytes());
    bytes
}

/// Draws a fresh ticket nonce.
pub(crate) fn ticket_nonce() -> [u8; crate::ticket_claims::NONCE_LEN] {
    let mut nonce = [0u8; crate::ticket_claims::NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    nonce
}
