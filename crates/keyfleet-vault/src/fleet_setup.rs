use std::fmt;

use keyfleet_hsm::{Hsm, KeyLabel, SealContext, SealedBlob};
use opaque_ke::ServerSetup;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::{Suite, VaultError};

/// HSM seal purpose of the fleet's OPAQUE server setup. The record id is the fleet id.
pub const SERVER_SETUP_PURPOSE: &str = "opaque-server-setup";

/// The fleet's OPAQUE server setup: the server's static key pair, the public key that fills
/// the dummy record of unknown users, and an OPRF seed.
///
/// NOTE: the setup's own OPRF seed is never used. The vault derives every OPRF key in the HSM
/// from the token's HMAC secret instead (see [`crate::oprf_key`]), but opaque-ke 4.0.1's
/// `ServerSetup::new` always generates one, so it is sealed along with the rest.
///
/// `Debug` prints no key material. opaque-ke zeroizes the private key and the seed on drop.
pub struct FleetSetup(ServerSetup<Suite>);

impl FleetSetup {
    /// Generates a new server setup from the operating system's random generator. Do this once
    /// per fleet, at fleet initialization.
    pub fn generate() -> Self {
        Self(ServerSetup::new(&mut OsRng))
    }

    /// Seals the setup under the fleet sealing key `key`, for `InitFleet`.
    pub async fn seal(
        &self,
        hsm: &dyn Hsm,
        key: &KeyLabel,
        fleet_id: &str,
    ) -> Result<SealedBlob, VaultError> {
        let bytes = Zeroizing::new(self.0.serialize());
        let context = SealContext::new(SERVER_SETUP_PURPOSE, fleet_id.as_bytes());

        hsm.seal(key, &context, &bytes)
            .await
            .map_err(VaultError::hsm("seal of the OPAQUE server setup"))
    }

    /// Unseals and decodes a setup sealed by [`FleetSetup::seal`] for `fleet_id`.
    pub async fn unseal(
        hsm: &dyn Hsm,
        key: &KeyLabel,
        fleet_id: &str,
        blob: &SealedBlob,
    ) -> Result<Self, VaultError> {
        let context = SealContext::new(SERVER_SETUP_PURPOSE, fleet_id.as_bytes());
        let bytes = hsm
            .unseal(key, &context, blob)
            .await
            .map_err(VaultError::hsm("unseal of the OPAQUE server setup"))?;

        let setup = ServerSetup::<Suite>::deserialize(bytes.expose_secret()).map_err(|error| {
            VaultError::CorruptStoredValue {
                value: "OPAQUE server setup",
                reason: format!("{error:?}"),
            }
        })?;
        Ok(Self(setup))
    }

    /// Returns the server's static public key, which clients may pin.
    pub fn server_public_key(&self) -> [u8; 32] {
        self.0.keypair().public().serialize().into()
    }

    pub(crate) fn inner(&self) -> &ServerSetup<Suite> {
        &self.0
    }
}

impl fmt::Debug for FleetSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FleetSetup([REDACTED])")
    }
}
