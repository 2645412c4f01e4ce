use serde::Deserialize;
use serde::Serialize;

use crate::dedup_entry::DedupEntry;
use crate::error::StoreError;
use crate::fleet::FleetRecord;
use crate::record::UserRecord;
use crate::user_id::UserId;

/// Version of the snapshot data layout, stored as the first byte of every snapshot.
///
/// Raise it whenever [`VaultImage`] or a type inside it changes its encoding.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 2;

/// The whole vault state, as carried in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultImage {
    /// All user records, ordered by user id.
    pub users: Vec<(UserId, UserRecord)>,

    /// The fleet setup, if `InitFleet` ran.
    pub fleet: Option<FleetRecord>,

    /// The remembered requests, ordered by log index.
    pub dedup: Vec<DedupEntry>,
}

impl VaultImage {
    /// Encodes the image as snapshot data: [`SNAPSHOT_FORMAT_VERSION`] and then the postcard
    /// encoding of the image.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        postcard::to_extend(self, vec![SNAPSHOT_FORMAT_VERSION]).map_err(|source| {
            StoreError::Encode {
                value_name: "snapshot image",
                source,
            }
        })
    }

    /// Decodes snapshot data written by [`VaultImage::encode`].
    pub fn decode(data: &[u8]) -> Result<Self, StoreError> {
        let Some((&version, body)) = data.split_first() else {
            return Err(StoreError::EmptySnapshot);
        };

        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(StoreError::UnsupportedSnapshotFormat {
                found: version,
                expected: SNAPSHOT_FORMAT_VERSION,
            });
        }

        crate::error::decode(body, "snapshot image")
    }
}
