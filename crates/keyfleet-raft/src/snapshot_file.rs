//! The file format of `keyfleet snapshot save`: a header with the fleet id, the last log id and
//! a SHA-256 hash, followed by the snapshot data.

use sha2::Digest;
use sha2::Sha256;

use crate::command::Command;
use crate::error::StoreError;
use crate::fleet::MAX_FLEET_ID_LEN;
use crate::image::VaultImage;
use crate::response::Rejection;

/// Version of the snapshot file layout, stored after [`MAGIC`].
pub const SNAPSHOT_FILE_VERSION: u16 = 1;

/// First bytes of every snapshot file.
const MAGIC: &[u8; 8] = b"KFSNAPSH";

/// Length of a SHA-256 digest.
const HASH_LEN: usize = 32;

/// A saved vault state with its identity.
///
/// The layout, with big-endian integers, is the magic `KFSNAPSH`, a `u16` file version, a `u16`
/// fleet id length, the fleet id in UTF-8, and `u64` fields for the last log term, the last log
/// index, the creation time in Unix seconds and the body length. Then come the SHA-256 digest of
/// every byte before it and of the body, and the body, the snapshot data of
/// [`VaultImage::encode`].
///
/// The digest detects corruption and accidental edits. It is no signature: whoever can write the
/// file can recompute it, so keep snapshot files where only operators can write them.
///
/// NOTE: the file is built, checked and sent whole in memory, in one gRPC message of at most
/// 64 MiB, so save and restore fail for a vault larger than that (an estimated 100,000 users).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Fleet id of the image's fleet setup, empty when the image has none.
    pub fleet_id: String,
    /// Term of the last log entry the image includes.
    pub last_log_term: u64,
    /// Index of the last log entry the image includes.
    pub last_log_index: u64,
    /// Time the snapshot was saved, in seconds since the Unix epoch.
    pub created_at_unix_secs: u64,
    /// The vault state. It contains sealed blobs only, never a secret in the clear.
    pub image: VaultImage,
}

/// Error decoding or checking a snapshot file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    /// The file does not start with the snapshot magic.
    #[error("not a keyfleet snapshot file: it does not start with \"KFSNAPSH\"")]
    NotASnapshot,

    /// The file version is not one this build reads.
    #[error("snapshot file version {found} is not supported; this build reads version {expected}")]
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Version this build reads.
        expected: u16,
    },

    /// The file ends before the field.
    #[error("the snapshot file is truncated: it ends inside the {field}")]
    Truncated {
        /// Field that is cut off.
        field: &'static str,
    },

    /// Bytes follow the body.
    #[error("{extra} bytes follow the snapshot body; the file is corrupt")]
    TrailingBytes {
        /// Number of extra bytes.
        extra: u64,
    },

    /// The fleet id in the header is not valid.
    #[error("the fleet id in the snapshot header is invalid: {reason}")]
    InvalidFleetId {
        /// Reason the fleet id is invalid.
        reason: String,
    },

    /// The digest does not match the contents.
    #[error(
        "the snapshot's SHA-256 digest does not match its contents: the file is corrupt or was \
         changed after it was saved"
    )]
    HashMismatch,

    /// The header names another fleet than the image's fleet setup.
    #[error("the snapshot header names fleet {header:?} but its data holds fleet {image:?}")]
    FleetMismatch {
        /// Fleet id in the header.
        header: String,
        /// Fleet id in the image, empty when it has none.
        image: String,
    },

    /// The body is not a valid snapshot image.
    #[error("the snapshot data does not decode: {0}")]
    InvalidImage(#[from] StoreError),

    /// A record in the image breaks a bound the state machine enforces.
    #[error("the snapshot data holds an invalid record: {0}")]
    InvalidRecord(#[from] Rejection),
}

impl SnapshotFile {
    /// Encodes the file: the header, the digest and the body.
    pub fn encode(&self) -> Result<Vec<u8>, SnapshotFileError> {
        check_fleet_id(&self.fleet_id)?;
        let body = self.image.encode()?;

        let mut bytes = Vec::with_capacity(body.len() + 128);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&SNAPSHOT_FILE_VERSION.to_be_bytes());
        bytes.extend_from_slice(&(self.fleet_id.len() as u16).to_be_bytes());
        bytes.extend_from_slice(self.fleet_id.as_bytes());
        bytes.extend_from_slice(&self.last_log_term.to_be_bytes());
        bytes.extend_from_slice(&self.last_log_index.to_be_bytes());
        bytes.extend_from_slice(&self.created_at_unix_secs.to_be_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_be_bytes());

        let digest = Sha256::new().chain_update(&bytes).chain_update(&body);
        bytes.extend_from_slice(&digest.finalize());
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }

    /// Decodes and checks a file: the layout, the digest, the whole image, the bounds of every
    /// record, and that the header's fleet id matches the image's fleet setup.
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotFileError> {
        let mut reader = Reader { bytes, offset: 0 };

        if reader.take(MAGIC.len(), "magic")? != MAGIC {
            return Err(SnapshotFileError::NotASnapshot);
        }
        let version = u16::from_be_bytes(reader.array("file version")?);
        if version != SNAPSHOT_FILE_VERSION {
            return Err(SnapshotFileError::UnsupportedVersion {
                found: version,
                expected: SNAPSHOT_FILE_VERSION,
            });
        }
        let fleet_id_len = u16::from_be_bytes(reader.array("fleet id length")?);
        let fleet_id = reader.take(usize::from(fleet_id_len), "fleet id")?;
        let fleet_id = String::from_utf8(fleet_id.to_vec()).map_err(|_| {
            SnapshotFileError::InvalidFleetId {
                reason: "it is not UTF-8".to_owned(),
            }
        })?;
        check_fleet_id(&fleet_id)?;
        let last_log_term = u64::from_be_bytes(reader.array("last log term")?);
        let last_log_index = u64::from_be_bytes(reader.array("last log index")?);
        let created_at_unix_secs = u64::from_be_bytes(reader.array("creation time")?);
        let body_len = u64::from_be_bytes(reader.array("body length")?);
        let header_len = reader.offset;
        let digest: [u8; HASH_LEN] = reader.array("SHA-256 digest")?;

        let remaining = (bytes.len() - reader.offset) as u64;
        if remaining < body_len {
            return Err(SnapshotFileError::Truncated { field: "body" });
        }
        if remaining > body_len {
            return Err(SnapshotFileError::TrailingBytes {
                extra: remaining - body_len,
            });
        }
        let body = &bytes[reader.offset..];
        let computed = Sha256::new()
            .chain_update(&bytes[..header_len])
            .chain_update(body)
            .finalize();
        if computed.as_slice() != digest {
            return Err(SnapshotFileError::HashMismatch);
        }

        let image = VaultImage::decode(body)?;
        check_image(&fleet_id, &image)?;
        Ok(Self {
            fleet_id,
            last_log_term,
            last_log_index,
            created_at_unix_secs,
            image,
        })
    }
}

/// Checks that the image's fleet id matches the header's, and every record's bounds.
fn check_image(fleet_id: &str, image: &VaultImage) -> Result<(), SnapshotFileError> {
    let image_fleet_id = image
        .fleet
        .as_ref()
        .map_or("", |fleet| fleet.fleet_id.as_str());
    if image_fleet_id != fleet_id {
        return Err(SnapshotFileError::FleetMismatch {
            header: fleet_id.to_owned(),
            image: image_fleet_id.to_owned(),
        });
    }

    let restore = Command::Restore {
        image: image.clone(),
        allow_counter_rollback: false,
    };
    restore.validate()?;
    Ok(())
}

fn check_fleet_id(fleet_id: &str) -> Result<(), SnapshotFileError> {
    if fleet_id.len() > MAX_FLEET_ID_LEN {
        return Err(SnapshotFileError::InvalidFleetId {
            reason: format!(
                "it is {} bytes long, over the maximum of {MAX_FLEET_ID_LEN}",
                fleet_id.len()
            ),
        });
    }
    Ok(())
}

/// Reads fields from the front of a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], SnapshotFileError> {
        let end = self
            .offset
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(SnapshotFileError::Truncated { field })?;
        let taken = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], SnapshotFileError> {
        let taken = self.take(N, field)?;
        let mut array = [0; N];
        array.copy_from_slice(taken);
        Ok(array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{UserRecord, UserStatus};
    use crate::sealed_blob::SealedBlob;
    use crate::user_id::UserId;

    fn sample() -> SnapshotFile {
        let record = UserRecord {
            password_file: SealedBlob::new(vec![1; 40]),
            sealed_secret: SealedBlob::new(vec![2; 40]),
            max_guesses: 5,
            guesses_used: 2,
            status: UserStatus::Registered,
            oprf_salt: [3; 16],
            version: 9,
        };
        SnapshotFile {
            fleet_id: String::new(),
            last_log_term: 2,
            last_log_index: 12,
            created_at_unix_secs: 1_700_000_000,
            image: VaultImage {
                users: vec![(UserId::new("t/alice").unwrap(), record)],
                fleet: None,
                dedup: Vec::new(),
                bundle: None,
            },
        }
    }

    #[test]
    fn file_round_trips() {
        let file = sample();
        let bytes = file.encode().unwrap();

        assert_eq!(SnapshotFile::decode(&bytes).unwrap(), file);
    }

    #[test]
    fn flipped_byte_anywhere_is_rejected() {
        let bytes = sample().encode().unwrap();

        for index in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[index] ^= 0x01;

            assert!(
                SnapshotFile::decode(&tampered).is_err(),
                "a flipped bit at byte {index} went unnoticed"
            );
        }
    }

    #[test]
    fn truncated_and_extended_files_are_rejected() {
        let bytes = sample().encode().unwrap();

        for len in 0..bytes.len() {
            assert!(SnapshotFile::decode(&bytes[..len]).is_err(), "length {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            SnapshotFile::decode(&longer),
            Err(SnapshotFileError::TrailingBytes { extra: 1 })
        ));
    }

    #[test]
    fn body_change_is_hash_mismatch() {
        let mut bytes = sample().encode().unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x80;

        assert!(matches!(
            SnapshotFile::decode(&bytes),
            Err(SnapshotFileError::HashMismatch)
        ));
    }
}
