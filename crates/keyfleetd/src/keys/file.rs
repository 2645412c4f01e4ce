//! The fleet key file that `keyfleetd keys export` writes and `keyfleetd keys import` reads.
//!
//! The file is JSON, and every binary value in it is lowercase hexadecimal:
//!
//! ```text
//! {
//!   "format": "keyfleet-fleet-keys",
//!   "version": 1,
//!   "recipient": SEC1 point of the recipient token's P-256 transport key (65 bytes),
//!   "seal": {
//!     "label": the exporter's key label, which the importer must also use,
//!     "kind": "seal-aes256",
//!     "wrapped": the key wrapped for the recipient (`WrappedKey::to_bytes`, "KFWK" format),
//!     "check": the probe blob sealed under the key ("KFSL" format), see `check.rs`
//!   },
//!   "oprf_seed": {
//!     "label": the exporter's key label,
//!     "kind": "hmac-sha512",
//!     "wrapped": the key wrapped for the recipient,
//!     "check": the first 16 bytes of HMAC-SHA512 under the seed of a fixed input
//!   },
//!   "digest": SHA-256 of the fields above, see below
//! }
//! ```
//!
//! The digest is SHA-256 over the ASCII string `keyfleet-fleet-keys/v1` followed by these
//! values, each as a 4-byte big-endian length and its bytes: the recipient point, then for
//! `seal` and after it `oprf_seed` the label, the kind name, the wrapped bytes and the check
//! value. Binary values enter the digest decoded from hexadecimal. The digest is not keyed. It
//! catches damage in transit before the importer creates any key, and the check values then
//! prove that the unwrapped keys equal the exporter's.
//!
//! NOTE: nothing in the file authenticates the exporter. Anyone who knows a node's transport
//! public key can wrap keys of their own for it, with matching check values, so operators must
//! carry the file from a trusted exporter.

use std::io::{Read, Write};
use std::path::Path;

use keyfleet_hsm::{KeyKind, KeyLabel, SealedBlob, TransportPublicKey, WrappedKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::check::OPRF_CHECK_LEN;
use super::{KeysError, hex, public_key};

/// Value of the `format` field.
pub(crate) const FORMAT: &str = "keyfleet-fleet-keys";
/// Version of the file format written and read by this build.
pub(crate) const VERSION: u32 = 1;
/// Prefix of the digest input.
const DIGEST_DOMAIN: &[u8] = b"keyfleet-fleet-keys/v1";
/// Largest file the importer reads. A version 1 file is about 1 KiB.
const MAX_FILE_LEN: u64 = 64 * 1024;

/// A parsed, digest-checked fleet key file.
#[derive(Debug, Clone)]
pub(crate) struct FleetKeyFile {
    pub(crate) recipient: TransportPublicKey,
    pub(crate) seal: FileKey,
    pub(crate) seal_check: SealedBlob,
    pub(crate) oprf_seed: FileKey,
    pub(crate) oprf_seed_check: [u8; OPRF_CHECK_LEN],
}

/// One wrapped key and the exporter's label for it.
#[derive(Debug, Clone)]
pub(crate) struct FileKey {
    pub(crate) label: KeyLabel,
    pub(crate) wrapped: WrappedKey,
}

#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    version: u32,
    recipient: String,
    seal: DocumentKey,
    oprf_seed: DocumentKey,
    digest: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentKey {
    label: String,
    kind: KeyKind,
    wrapped: String,
    check: String,
}

impl FleetKeyFile {
    /// Serializes the file as pretty-printed JSON with its digest.
    pub(crate) fn to_json(&self) -> String {
        let seal_check = self.seal_check.as_bytes();
        let document = Document {
            format: FORMAT.to_owned(),
            version: VERSION,
            recipient: hex::encode(self.recipient.as_sec1()),
            seal: document_key(&self.seal, seal_check),
            oprf_seed: document_key(&self.oprf_seed, &self.oprf_seed_check),
            digest: hex::encode(&self.digest()),
        };

        let mut json =
            serde_json::to_string_pretty(&document).expect("the document serializes to JSON");
        json.push('\n');
        json
    }

    /// Parses JSON text, checks every field and the digest. `source` names the file in errors.
    pub(crate) fn from_json(text: &str, source: &str) -> Result<Self, KeysError> {
        let invalid = |reason: String| {
            KeysError::failed(format!(
                "{source} is not a valid fleet key file: {reason}; export it again with \
                 `keyfleetd keys export`"
            ))
        };

        let header: Header =
            serde_json::from_str(text).map_err(|error| invalid(error.to_string()))?;
        if header.format.as_deref() != Some(FORMAT) {
            return Err(invalid(format!("the \"format\" field is not {FORMAT:?}")));
        }
        match header.version {
            Some(VERSION) => {}
            Some(other) => {
                return Err(KeysError::failed(format!(
                    "{source} has fleet key file version {other}, but this keyfleetd reads \
                     version {VERSION}; import it with the keyfleetd release that exported it"
                )));
            }
            None => return Err(invalid("the \"version\" field is missing".into())),
        }

        let document: Document =
            serde_json::from_str(text).map_err(|error| invalid(error.to_string()))?;
        let file = Self::from_document(&document).map_err(invalid)?;

        let digest = hex::decode(&document.digest).map_err(invalid)?;
        if digest != file.digest() {
            return Err(KeysError::failed(format!(
                "{source} is damaged: its digest does not match its contents, so no key was \
                 imported; copy the file again or export a new one with `keyfleetd keys export`"
            )));
        }
        Ok(file)
    }

    fn from_document(document: &Document) -> Result<Self, String> {
        let recipient = hex::decode(&document.recipient)
            .and_then(|point| public_key::parse_sec1(&point))
            .map_err(|reason| format!("recipient: {reason}"))?;

        let seal = file_key("seal", &document.seal, KeyKind::SealAes256)?;
        let seal_check = hex::decode(&document.seal.check)
            .and_then(|bytes| SealedBlob::from_bytes(bytes).map_err(|error| error.to_string()))
            .map_err(|reason| format!("seal.check: {reason}"))?;
        if seal_check.key_label() != seal.label {
            return Err(format!(
                "seal.check is sealed under key {:?}, not under seal.label {:?}",
                seal_check.key_label().as_str(),
                seal.label.as_str()
            ));
        }

        let oprf_seed = file_key("oprf_seed", &document.oprf_seed, KeyKind::HmacSha512)?;
        let oprf_seed_check = hex::decode(&document.oprf_seed.check)
            .map_err(|reason| format!("oprf_seed.check: {reason}"))?
            .try_into()
            .map_err(|bytes: Vec<u8>| {
                format!(
                    "oprf_seed.check is {} bytes long, expected {OPRF_CHECK_LEN}",
                    bytes.len()
                )
            })?;

        Ok(Self {
            recipient,
            seal,
            seal_check,
            oprf_seed,
            oprf_seed_check,
        })
    }

    /// Computes the digest described in the module documentation.
    fn digest(&self) -> Vec<u8> {
        let mut hasher = Sha256::new();
        hasher.update(DIGEST_DOMAIN);
        let mut field = |bytes: &[u8]| {
            let len = u32::try_from(bytes.len()).expect("file fields are far below 4 GiB");
            hasher.update(len.to_be_bytes());
            hasher.update(bytes);
        };

        field(self.recipient.as_sec1());
        for (key, check) in [
            (&self.seal, self.seal_check.as_bytes()),
            (&self.oprf_seed, self.oprf_seed_check.as_slice()),
        ] {
            field(key.label.as_str().as_bytes());
            field(kind_name(key.wrapped.kind()).as_bytes());
            field(&key.wrapped.to_bytes());
            field(check);
        }
        hasher.finalize().to_vec()
    }

    /// Reads and parses `path`.
    pub(crate) fn read(path: &Path) -> Result<Self, KeysError> {
        let shown = path.display();
        let cannot_read = |error: std::io::Error| {
            KeysError::failed(format!(
                "cannot read fleet key file {shown}: {error}; pass the file that \
                 `keyfleetd keys export` wrote with --in"
            ))
        };

        let file = std::fs::File::open(path).map_err(cannot_read)?;
        let mut text = String::new();
        file.take(MAX_FILE_LEN + 1)
            .read_to_string(&mut text)
            .map_err(cannot_read)?;
        if text.len() as u64 > MAX_FILE_LEN {
            return Err(KeysError::failed(format!(
                "{shown} is larger than {MAX_FILE_LEN} bytes, so it is not a fleet key file; \
                 pass the file that `keyfleetd keys export` wrote with --in"
            )));
        }
        Self::from_json(&text, &shown.to_string())
    }

    /// Writes the file to `path` with mode 0600. An existing file is replaced only when
    /// `replace` is true.
    pub(crate) fn write(&self, path: &Path, replace: bool) -> Result<(), KeysError> {
        use std::os::unix::fs::OpenOptionsExt;

        let shown = path.display();
        let failed = |error: std::io::Error| {
            KeysError::failed(format!("cannot write fleet key file {shown}: {error}"))
        };

        if replace {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(failed(error)),
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::AlreadyExists => exists_error(path),
                _ => failed(error),
            })?;

        let written = file
            .write_all(self.to_json().as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(error) = written {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(failed(error));
        }
        Ok(())
    }
}

/// Returns the error for an output file that exists already.
pub(crate) fn exists_error(path: &Path) -> KeysError {
    KeysError::failed(format!(
        "{} already exists; pass --force to replace it, or choose another --out path",
        path.display()
    ))
}

fn document_key(key: &FileKey, check: &[u8]) -> DocumentKey {
    DocumentKey {
        label: key.label.to_string(),
        kind: key.wrapped.kind(),
        wrapped: hex::encode(&key.wrapped.to_bytes()),
        check: hex::encode(check),
    }
}

fn file_key(field: &str, document: &DocumentKey, expected: KeyKind) -> Result<FileKey, String> {
    let label =
        KeyLabel::new(document.label.clone()).map_err(|error| format!("{field}.label: {error}"))?;
    if document.kind != expected {
        return Err(format!(
            "{field}.kind is {:?}, expected {:?}",
            kind_name(document.kind),
            kind_name(expected)
        ));
    }

    let wrapped = hex::decode(&document.wrapped)
        .and_then(|bytes| WrappedKey::from_bytes(&bytes).map_err(|error| error.to_string()))
        .map_err(|reason| format!("{field}.wrapped: {reason}"))?;
    if wrapped.kind() != expected {
        return Err(format!(
            "{field}.wrapped contains a {}, but {field}.kind is {:?}",
            wrapped.kind(),
            kind_name(expected)
        ));
    }
    Ok(FileKey { label, wrapped })
}

/// Returns the name of `kind` in the file, the same as its serde name.
fn kind_name(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::SealAes256 => "seal-aes256",
        KeyKind::HmacSha512 => "hmac-sha512",
        KeyKind::SigningEd25519 => "signing-ed25519",
        KeyKind::TransportP256 => "transport-p256",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(fill: u8) -> Vec<u8> {
        let mut point = vec![fill; 65];
        point[0] = 0x04;
        point
    }

    fn wrapped(kind_code: u8, wrapped_len: usize) -> WrappedKey {
        let mut bytes = b"KFWK\x01".to_vec();
        bytes.push(kind_code);
        bytes.extend(point(7));
        bytes.extend(vec![9; wrapped_len]);
        WrappedKey::from_bytes(&bytes).unwrap()
    }

    fn sample() -> FleetKeyFile {
        let label = KeyLabel::new("fleet-seal").unwrap();
        let mut blob = b"KFSL\x01".to_vec();
        blob.push(label.as_str().len() as u8);
        blob.extend(label.as_str().as_bytes());
        blob.extend([1; 12 + 40]);

        FleetKeyFile {
            recipient: TransportPublicKey::from_sec1(&point(3)).unwrap(),
            seal: FileKey {
                label,
                wrapped: wrapped(1, 40),
            },
            seal_check: SealedBlob::from_bytes(blob).unwrap(),
            oprf_seed: FileKey {
                label: KeyLabel::new("fleet-oprf").unwrap(),
                wrapped: wrapped(2, 72),
            },
            oprf_seed_check: [5; OPRF_CHECK_LEN],
        }
    }

    fn edit(json: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut document: serde_json::Value = serde_json::from_str(json).unwrap();
        edit(&mut document);
        document.to_string()
    }

    #[test]
    fn json_round_trip() {
        let file = sample();

        let parsed = FleetKeyFile::from_json(&file.to_json(), "f.json").unwrap();

        assert_eq!(parsed.to_json(), file.to_json());
        assert_eq!(parsed.seal.label.as_str(), "fleet-seal");
        assert_eq!(parsed.oprf_seed_check, [5; OPRF_CHECK_LEN]);
    }

    #[test]
    fn kind_names_match_serde() {
        for kind in [
            KeyKind::SealAes256,
            KeyKind::HmacSha512,
            KeyKind::SigningEd25519,
            KeyKind::TransportP256,
        ] {
            let serde_name = serde_json::to_value(kind).unwrap();
            assert_eq!(serde_name, kind_name(kind), "{kind:?}");
        }
    }

    #[test]
    fn from_json_rejects_bad_files() {
        let good = sample().to_json();
        let cases = [
            (
                edit(&good, |d| d["oprf_seed"]["check"] = "06".repeat(16).into()),
                "is damaged",
            ),
            (edit(&good, |d| d["version"] = 2.into()), "version 2"),
            (
                edit(&good, |d| d["format"] = "other".into()),
                "\"format\" field",
            ),
            (edit(&good, |d| d["extra"] = 1.into()), "unknown field"),
            (
                edit(&good, |d| d["seal"]["kind"] = "hmac-sha512".into()),
                "seal.kind is \"hmac-sha512\"",
            ),
            (
                edit(&good, |d| d["seal"]["label"] = "another-label".into()),
                "not under seal.label",
            ),
            (
                edit(&good, |d| d["oprf_seed"]["check"] = "0505".into()),
                "2 bytes long",
            ),
            (
                edit(&good, |d| d["recipient"] = "04ab".into()),
                "recipient: expected a 65-byte",
            ),
            ("not json".to_owned(), "not a valid fleet key file"),
        ];

        for (text, expected) in cases {
            let error = FleetKeyFile::from_json(&text, "f.json").unwrap_err();
            assert!(error.to_string().contains(expected), "{expected}: {error}");
        }
    }
}
