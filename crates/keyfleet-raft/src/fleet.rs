use serde::Deserialize;
use serde::Serialize;

use crate::sealed_blob::SealedBlob;

/// Maximum length of a fleet id, in bytes of UTF-8.
pub const MAX_FLEET_ID_LEN: usize = 128;

/// Fleet-wide setup, written once by `InitFleet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetRecord {
    /// Id of the fleet, chosen by the operator.
    pub fleet_id: String,

    /// Creation time in seconds since the Unix epoch, as stamped into the first accepted
    /// `InitFleet` command.
    pub created_at_unix_secs: u64,

    /// OPAQUE server setup, sealed by the HSM.
    pub sealed_server_setup: SealedBlob,
}
