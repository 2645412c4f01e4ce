use std::io;
use std::io::Read;

use serde::de::DeserializeOwned;
use sha2::Digest;
use sha2::Sha256;

use crate::snapshot_format::DIGEST_LEN;
use crate::snapshot_format::MAX_FRAME_LEN;
use crate::snapshot_format::SNAPSHOT_FORMAT_VERSION;
use crate::snapshot_format::SnapshotFormatError;
use crate::snapshot_format::SnapshotItem;
use crate::snapshot_format::TAG_BUNDLE;
use crate::snapshot_format::TAG_DEDUP;
use crate::snapshot_format::TAG_END;
use crate::snapshot_format::TAG_FLEET;
use crate::snapshot_format::TAG_USER;
use crate::user_id::UserId;

/// Reads snapshot data in the layout of [`crate::snapshot_format`], one record at a time, and
/// checks the layout, the record order, the record count and the digest.
///
/// It keeps one frame's payload in memory at a time, at most [`MAX_FRAME_LEN`] bytes. A record is only
/// known to belong to valid data once [`SnapshotDecoder::next_item`] has returned `None`, so a
/// caller that writes records out must be able to discard them on an error.
pub(crate) struct SnapshotDecoder<R: Read> {
    input: R,
    hasher: Sha256,
    payload: Vec<u8>,
    offset: u64,
    records: u64,
    last_tag: u8,
    last_user: Option<UserId>,
    last_dedup_index: Option<u64>,
    finished: bool,
}

impl<R: Read> SnapshotDecoder<R> {
    /// Reads and checks the format version byte.
    pub(crate) fn new(input: R) -> Result<Self, SnapshotFormatError> {
        let mut decoder = Self {
            input,
            hasher: Sha256::new(),
            payload: Vec::new(),
            offset: 0,
            records: 0,
            last_tag: TAG_END,
            last_user: None,
            last_dedup_index: None,
            finished: false,
        };

        let mut version = [0; 1];
        if decoder.input.read(&mut version)? == 0 {
            return Err(SnapshotFormatError::Empty);
        }
        decoder.hasher.update(version);
        decoder.offset = 1;
        if version[0] != SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotFormatError::UnsupportedVersion {
                found: version[0],
                expected: SNAPSHOT_FORMAT_VERSION,
            });
        }

        Ok(decoder)
    }

    /// Returns the next record, or `None` after the end frame once the digest matched and no
    /// byte follows it.
    pub(crate) fn next_item(&mut self) -> Result<Option<SnapshotItem>, SnapshotFormatError> {
        if self.finished {
            return Ok(None);
        }

        let frame_offset = self.offset;
        let mut header = [0; 5];
        self.read_hashed(&mut header, "frame header")?;
        let tag = header[0];
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);

        if tag == TAG_END {
            self.finish(len, frame_offset)?;
            return Ok(None);
        }
        if len > MAX_FRAME_LEN {
            return Err(SnapshotFormatError::InvalidFrameLength {
                len,
                offset: frame_offset,
            });
        }

        self.check_section(tag, frame_offset)?;
        let mut payload = std::mem::take(&mut self.payload);
        payload.resize(len as usize, 0);
        let read = self.read_hashed(&mut payload, "frame payload");
        self.payload = payload;
        read?;

        let item = self.decode_item(tag, frame_offset)?;
        self.check_order(&item, frame_offset)?;
        self.records += 1;
        Ok(Some(item))
    }

    /// Returns the number of bytes read so far.
    pub(crate) fn position(&self) -> u64 {
        self.offset
    }

    /// Returns the input, for a caller that needs what it wrapped.
    pub(crate) fn into_inner(self) -> R {
        self.input
    }

    /// Reads every record and returns their number, for a check before the data is used.
    pub(crate) fn validate(mut self) -> Result<u64, SnapshotFormatError> {
        while self.next_item()?.is_some() {}
        Ok(self.records)
    }

    fn check_section(&mut self, tag: u8, offset: u64) -> Result<(), SnapshotFormatError> {
        let once = matches!(tag, TAG_FLEET | TAG_BUNDLE);
        if tag < self.last_tag || (once && tag == self.last_tag) {
            return Err(SnapshotFormatError::OutOfOrder {
                reason: "sections must be fleet, bundle, users, dedup, with one fleet and one bundle at most",
                offset,
            });
        }
        self.last_tag = tag;
        Ok(())
    }

    fn decode_item(&self, tag: u8, offset: u64) -> Result<SnapshotItem, SnapshotFormatError> {
        let item = match tag {
            TAG_FLEET => SnapshotItem::Fleet(self.decode_payload("fleet record", offset)?),
            TAG_BUNDLE => SnapshotItem::Bundle(self.decode_payload("validation bundle", offset)?),
            TAG_USER => {
                let (user, record) = self.decode_payload("user record", offset)?;
                SnapshotItem::User(user, record)
            }
            TAG_DEDUP => SnapshotItem::Dedup(self.decode_payload("dedup entry", offset)?),
            _ => return Err(SnapshotFormatError::UnknownTag { tag, offset }),
        };
        Ok(item)
    }

    fn decode_payload<T: DeserializeOwned>(
        &self,
        record: &'static str,
        offset: u64,
    ) -> Result<T, SnapshotFormatError> {
        let decode_error = |source| SnapshotFormatError::Decode {
            record,
            offset,
            source,
        };
        let (value, rest) = postcard::take_from_bytes(&self.payload).map_err(decode_error)?;
        if !rest.is_empty() {
            return Err(decode_error(postcard::Error::DeserializeBadEncoding));
        }
        Ok(value)
    }

    fn check_order(&mut self, item: &SnapshotItem, offset: u64) -> Result<(), SnapshotFormatError> {
        match item {
            SnapshotItem::User(user, _) => {
                if self
                    .last_user
                    .as_ref()
                    .is_some_and(|last| last.as_str() >= user.as_str())
                {
                    return Err(SnapshotFormatError::OutOfOrder {
                        reason: "user ids must strictly increase",
                        offset,
                    });
                }
                self.last_user = Some(user.clone());
            }
            SnapshotItem::Dedup(entry) => {
                if self
                    .last_dedup_index
                    .is_some_and(|last| last >= entry.log_index)
                {
                    return Err(SnapshotFormatError::OutOfOrder {
                        reason: "dedup log indexes must strictly increase",
                        offset,
                    });
                }
                self.last_dedup_index = Some(entry.log_index);
            }
            SnapshotItem::Fleet(_) | SnapshotItem::Bundle(_) => {}
        }
        Ok(())
    }

    /// Checks the end frame with payload length `len`, the digest after it and the end of the
    /// input.
    fn finish(&mut self, len: u32, offset: u64) -> Result<(), SnapshotFormatError> {
        if len != 8 {
            return Err(SnapshotFormatError::InvalidFrameLength { len, offset });
        }
        let mut count = [0; 8];
        self.read_hashed(&mut count, "end frame")?;
        let announced = u64::from_be_bytes(count);
        if announced != self.records {
            return Err(SnapshotFormatError::CountMismatch {
                announced,
                found: self.records,
            });
        }

        let computed = std::mem::take(&mut self.hasher).finalize();
        let mut digest = [0; DIGEST_LEN];
        self.read_exact(&mut digest, "digest")?;
        if computed.as_slice() != digest {
            return Err(SnapshotFormatError::DigestMismatch);
        }

        let mut extra = [0; 1];
        if self.input.read(&mut extra)? != 0 {
            return Err(SnapshotFormatError::TrailingBytes {
                offset: self.offset,
            });
        }

        self.finished = true;
        Ok(())
    }

    fn read_hashed(
        &mut self,
        buffer: &mut [u8],
        field: &'static str,
    ) -> Result<(), SnapshotFormatError> {
        self.read_exact(buffer, field)?;
        self.hasher.update(&*buffer);
        Ok(())
    }

    fn read_exact(
        &mut self,
        buffer: &mut [u8],
        field: &'static str,
    ) -> Result<(), SnapshotFormatError> {
        match self.input.read_exact(buffer) {
            Ok(()) => {
                self.offset += buffer.len() as u64;
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                Err(SnapshotFormatError::Truncated {
                    field,
                    offset: self.offset,
                })
            }
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle_record::BundleRecord;
    use crate::dedup_entry::DedupEntry;
    use crate::fleet::FleetRecord;
    use crate::record::UserRecord;
    use crate::record::UserStatus;
    use crate::request_id::RequestId;
    use crate::response::Response;
    use crate::sealed_blob::SealedBlob;
    use crate::snapshot_encoder::SnapshotEncoder;

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap()
    }

    fn record(byte: u8) -> UserRecord {
        UserRecord {
            password_file: SealedBlob::new(vec![byte; 24]),
            sealed_secret: SealedBlob::new(vec![byte; 16]),
            max_guesses: 5,
            guesses_used: 1,
            status: UserStatus::Registered,
            oprf_salt: [byte; 16],
            version: 3,
        }
    }

    fn dedup(log_index: u64) -> DedupEntry {
        DedupEntry {
            request_id: RequestId::from_bytes([log_index as u8; 16]),
            log_index,
            response: Response::NoOp,
        }
    }

    fn items() -> Vec<SnapshotItem> {
        vec![
            SnapshotItem::Fleet(FleetRecord {
                fleet_id: "fleet".to_owned(),
                created_at_unix_secs: 1,
                sealed_server_setup: SealedBlob::new(vec![9; 8]),
            }),
            SnapshotItem::Bundle(BundleRecord {
                epoch: 2,
                bundle_json: b"{}".to_vec(),
            }),
            SnapshotItem::User(user("t/alice"), record(1)),
            SnapshotItem::User(user("t/bob"), record(2)),
            SnapshotItem::Dedup(dedup(4)),
            SnapshotItem::Dedup(dedup(7)),
        ]
    }

    fn encode(items: &[SnapshotItem]) -> Vec<u8> {
        let mut encoder = SnapshotEncoder::new(Vec::new()).unwrap();
        for item in items {
            match item {
                SnapshotItem::Fleet(fleet) => encoder.write_fleet(fleet),
                SnapshotItem::Bundle(bundle) => encoder.write_bundle(bundle),
                SnapshotItem::User(user, record) => encoder.write_user(user, record),
                SnapshotItem::Dedup(entry) => encoder.write_dedup(entry),
            }
            .unwrap();
        }
        let (bytes, len) = encoder.finish().unwrap();
        assert_eq!(len, bytes.len() as u64);
        bytes
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<SnapshotItem>, SnapshotFormatError> {
        let mut decoder = SnapshotDecoder::new(bytes)?;
        let mut decoded = Vec::new();
        while let Some(item) = decoder.next_item()? {
            decoded.push(item);
        }
        Ok(decoded)
    }

    #[test]
    fn items_round_trip() {
        let bytes = encode(&items());

        assert_eq!(bytes[0], SNAPSHOT_FORMAT_VERSION);
        assert_eq!(decode_all(&bytes).unwrap(), items());
        assert_eq!(
            SnapshotDecoder::new(&bytes[..])
                .unwrap()
                .validate()
                .unwrap(),
            6
        );
    }

    #[test]
    fn empty_vault_round_trips() {
        let bytes = encode(&[]);

        assert_eq!(decode_all(&bytes).unwrap(), Vec::new());
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = encode(&items());

        for len in 0..bytes.len() {
            assert!(decode_all(&bytes[..len]).is_err(), "length {len} passed");
        }
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let bytes = encode(&items());

        for index in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[index] ^= 0x01;

            assert!(
                decode_all(&tampered).is_err(),
                "a flipped bit at byte {index} passed"
            );
        }
    }

    #[test]
    fn oversized_frame_is_rejected_before_reading() {
        let mut bytes = vec![SNAPSHOT_FORMAT_VERSION, TAG_USER];
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());

        let mut decoder = SnapshotDecoder::new(&bytes[..]).unwrap();
        let error = decoder.next_item().expect_err("a 4 GiB frame was accepted");

        assert!(
            matches!(
                error,
                SnapshotFormatError::InvalidFrameLength {
                    len: u32::MAX,
                    offset: 1
                }
            ),
            "{error:?}"
        );
        assert!(decoder.payload.capacity() <= MAX_FRAME_LEN as usize);
    }

    #[test]
    fn out_of_order_records_are_rejected() {
        let [fleet, bundle, alice, bob, first, second] =
            <[SnapshotItem; 6]>::try_from(items()).unwrap();
        let cases = [
            ("users descending", vec![bob.clone(), alice.clone()]),
            ("user repeated", vec![alice.clone(), alice.clone()]),
            ("dedup descending", vec![second.clone(), first.clone()]),
            ("fleet twice", vec![fleet.clone(), fleet.clone()]),
            ("bundle before fleet", vec![bundle.clone(), fleet.clone()]),
            ("user after dedup", vec![first.clone(), alice.clone()]),
        ];

        for (case, items) in cases {
            let error = decode_all(&encode(&items)).expect_err(case);
            assert!(
                matches!(error, SnapshotFormatError::OutOfOrder { .. }),
                "{case}: {error:?}"
            );
        }
    }

    #[test]
    fn unknown_version_is_rejected() {
        let mut bytes = encode(&items());
        bytes[0] = crate::image::IMAGE_FORMAT_VERSION;

        let error = decode_all(&bytes).expect_err("an image layout was accepted");

        assert!(
            matches!(
                error,
                SnapshotFormatError::UnsupportedVersion { found: 3, .. }
            ),
            "{error:?}"
        );
    }
}
