use serde::Deserialize;
use serde::Serialize;

use crate::bundle_record::BundleRecord;
use crate::dedup_entry::DedupEntry;
use crate::error::StoreError;
use crate::fleet::FleetRecord;
use crate::record::UserRecord;
use crate::user_id::UserId;

/// Version of the encoding of a [`VaultImage`], stored as its first byte. Raft snapshots used it
/// up to version 3, and operator snapshot files and `Restore` commands still carry it.
///
/// Raise it whenever [`VaultImage`] or a type inside it changes its encoding, past
/// [`crate::SNAPSHOT_FORMAT_VERSION`] so the two layouts never share a version byte.
pub const IMAGE_FORMAT_VERSION: u8 = 3;

/// The previous image layout, without a validation bundle, which this build still decodes.
const IMAGE_FORMAT_VERSION_WITHOUT_BUNDLE: u8 = 2;

/// The whole vault state, as carried in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultImage {
    /// All user records, ordered by user id.
    pub users: Vec<(UserId, UserRecord)>,

    /// The fleet setup, if `InitFleet` ran.
    pub fleet: Option<FleetRecord>,

    /// The remembered requests, ordered by log index.
    pub dedup: Vec<DedupEntry>,

    /// The current validation bundle, if `PublishBundle` ran.
    pub bundle: Option<BundleRecord>,
}

/// The image of snapshot data layout 2, which had no validation bundle.
#[derive(Deserialize)]
struct ImageWithoutBundle {
    users: Vec<(UserId, UserRecord)>,
    fleet: Option<FleetRecord>,
    dedup: Vec<DedupEntry>,
}

impl VaultImage {
    /// Encodes the image: [`IMAGE_FORMAT_VERSION`] and then the postcard
    /// encoding of the image.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        postcard::to_extend(self, vec![IMAGE_FORMAT_VERSION]).map_err(|source| StoreError::Encode {
            value_name: "snapshot image",
            source,
        })
    }

    /// Decodes snapshot data written by [`VaultImage::encode`].
    pub fn decode(data: &[u8]) -> Result<Self, StoreError> {
        let Some((&version, body)) = data.split_first() else {
            return Err(StoreError::EmptySnapshot);
        };

        if version == IMAGE_FORMAT_VERSION_WITHOUT_BUNDLE {
            let old: ImageWithoutBundle = crate::error::decode(body, "snapshot image")?;
            return Ok(Self {
                users: old.users,
                fleet: old.fleet,
                dedup: old.dedup,
                bundle: None,
            });
        }

        if version != IMAGE_FORMAT_VERSION {
            return Err(StoreError::UnsupportedSnapshotFormat {
                found: version,
                expected: IMAGE_FORMAT_VERSION,
            });
        }

        crate::error::decode(body, "snapshot image")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_layout_without_bundle() {
        #[derive(Serialize)]
        struct OldImage {
            users: Vec<(UserId, UserRecord)>,
            fleet: Option<FleetRecord>,
            dedup: Vec<DedupEntry>,
        }
        let old = OldImage {
            users: Vec::new(),
            fleet: None,
            dedup: Vec::new(),
        };
        let data = postcard::to_extend(&old, vec![IMAGE_FORMAT_VERSION_WITHOUT_BUNDLE]).unwrap();

        let image = VaultImage::decode(&data).unwrap();

        assert_eq!(image, VaultImage::default());
    }

    #[test]
    fn bundle_round_trips() {
        let image = VaultImage {
            bundle: Some(BundleRecord {
                epoch: 7,
                bundle_json: b"{}".to_vec(),
            }),
            ..VaultImage::default()
        };

        let decoded = VaultImage::decode(&image.encode().unwrap()).unwrap();

        assert_eq!(decoded, image);
    }
}
