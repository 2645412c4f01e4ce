use std::fmt;

use rand::RngCore;
use rand::rngs::OsRng;

/// Length of a vault request id in bytes.
pub(crate) const REQUEST_ID_LEN: usize = 16;

/// The random id of one state-changing vault call. Every retry of the call sends the same id,
/// so the vault applies the call once. It is not secret, and `Display` prints it in hex for
/// logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestId([u8; REQUEST_ID_LEN]);

impl RequestId {
    /// Draws a new id from the operating system's RNG.
    pub(crate) fn random() -> Self {
        let mut bytes = [0u8; REQUEST_ID_LEN];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Returns the id as the bytes of a request's `request_id` field.
    pub(crate) fn to_vec(self) -> Vec<u8> {
        self.0.to_vec()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_differ() {
        assert_ne!(RequestId::random(), RequestId::random());
    }

    #[test]
    fn display_is_hex() {
        let id = RequestId([0xab; REQUEST_ID_LEN]);

        assert_eq!(id.to_string(), "ab".repeat(REQUEST_ID_LEN));
        assert_eq!(id.to_vec().len(), REQUEST_ID_LEN);
    }
}
