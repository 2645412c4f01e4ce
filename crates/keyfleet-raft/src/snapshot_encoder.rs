use std::io::Write;

use serde::Serialize;
use sha2::Digest;
use sha2::Sha256;

use crate::bundle_record::BundleRecord;
use crate::dedup_entry::DedupEntry;
use crate::fleet::FleetRecord;
use crate::record::UserRecord;
use crate::snapshot_format::MAX_FRAME_LEN;
use crate::snapshot_format::SNAPSHOT_FORMAT_VERSION;
use crate::snapshot_format::SnapshotFormatError;
use crate::snapshot_format::TAG_BUNDLE;
use crate::snapshot_format::TAG_DEDUP;
use crate::snapshot_format::TAG_END;
use crate::snapshot_format::TAG_FLEET;
use crate::snapshot_format::TAG_USER;
use crate::user_id::UserId;

/// Writes snapshot data in the layout of [`crate::snapshot_format`], one record at a time.
///
/// The caller writes the records in the layout's order; [`crate::snapshot_decoder`] rejects
/// data that breaks it. Only one record's encoding is held in memory at a time.
pub(crate) struct SnapshotEncoder<W: Write> {
    output: W,
    hasher: Sha256,
    payload: Vec<u8>,
    records: u64,
    bytes: u64,
}

impl<W: Write> SnapshotEncoder<W> {
    /// Starts the data in `output` with the format version byte.
    pub(crate) fn new(output: W) -> Result<Self, SnapshotFormatError> {
        let mut encoder = Self {
            output,
            hasher: Sha256::new(),
            payload: Vec::new(),
            records: 0,
            bytes: 0,
        };

        encoder.write_hashed(&[SNAPSHOT_FORMAT_VERSION])?;
        Ok(encoder)
    }

    pub(crate) fn write_fleet(&mut self, fleet: &FleetRecord) -> Result<(), SnapshotFormatError> {
        self.write_record(TAG_FLEET, "fleet record", fleet)
    }

    pub(crate) fn write_bundle(
        &mut self,
        bundle: &BundleRecord,
    ) -> Result<(), SnapshotFormatError> {
        self.write_record(TAG_BUNDLE, "validation bundle", bundle)
    }

    pub(crate) fn write_user(
        &mut self,
        user: &UserId,
        record: &UserRecord,
    ) -> Result<(), SnapshotFormatError> {
        self.write_record(TAG_USER, "user record", &(user, record))
    }

    pub(crate) fn write_dedup(&mut self, entry: &DedupEntry) -> Result<(), SnapshotFormatError> {
        self.write_record(TAG_DEDUP, "dedup entry", entry)
    }

    /// Writes the end frame and the digest, and returns the output and the number of bytes
    /// written.
    pub(crate) fn finish(mut self) -> Result<(W, u64), SnapshotFormatError> {
        let count = self.records.to_be_bytes();
        self.write_frame(TAG_END, &count)?;

        let digest = std::mem::take(&mut self.hasher).finalize();
        self.output.write_all(&digest)?;
        self.bytes += digest.len() as u64;

        Ok((self.output, self.bytes))
    }

    fn write_record<T: Serialize + ?Sized>(
        &mut self,
        tag: u8,
        record: &'static str,
        value: &T,
    ) -> Result<(), SnapshotFormatError> {
        let mut payload = std::mem::take(&mut self.payload);
        payload.clear();
        let payload = postcard::to_extend(value, payload)
            .map_err(|source| SnapshotFormatError::Encode { record, source })?;

        self.write_frame(tag, &payload)?;
        self.payload = payload;
        self.records += 1;
        Ok(())
    }

    fn write_frame(&mut self, tag: u8, payload: &[u8]) -> Result<(), SnapshotFormatError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|len| *len <= MAX_FRAME_LEN)
            .ok_or(SnapshotFormatError::InvalidFrameLength {
                len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
                offset: self.bytes,
            })?;

        self.write_hashed(&[tag])?;
        self.write_hashed(&len.to_be_bytes())?;
        self.write_hashed(payload)
    }

    fn write_hashed(&mut self, bytes: &[u8]) -> Result<(), SnapshotFormatError> {
        self.output.write_all(bytes)?;
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}
