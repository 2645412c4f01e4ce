use std::fmt;

use serde::Deserialize;
use serde::Serialize;
use zeroize::Zeroize;
use zeroize::ZeroizeOnDrop;

/// Maximum length of one sealed blob, in bytes. Longer blobs are rejected when applied.
pub const MAX_SEALED_BLOB_LEN: usize = 64 * 1024;

/// Bytes that the HSM sealed elsewhere, such as an OPAQUE password file or a client's encrypted
/// secret. The vault stores and returns them but never opens them.
///
/// The in-memory copy is zeroed on drop, and `Debug` prints only the length.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct SealedBlob(Vec<u8>);

impl SealedBlob {
    /// Wraps sealed bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Returns the sealed bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Returns the length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Returns true if the blob has no bytes, as after a lock erased it.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SealedBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedBlob({} bytes)", self.0.len())
    }
}
