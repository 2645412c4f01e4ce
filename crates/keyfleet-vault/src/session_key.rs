use std::fmt;

use zeroize::Zeroizing;

/// Length of the OPAQUE session key of [`crate::Suite`] (SHA-512 output).
pub const SESSION_KEY_LEN: usize = 64;

/// The OPAQUE session key that the server and client share after a verified KE3, zeroized on
/// drop. `Debug` prints no contents.
pub struct SessionKey(Zeroizing<[u8; SESSION_KEY_LEN]>);

impl SessionKey {
    pub(crate) fn new(bytes: [u8; SESSION_KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Returns the key itself. Keep the borrow short and never log it.
    pub fn expose_secret(&self) -> &[u8; SESSION_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_contents() {
        let key = SessionKey::new([0xab; SESSION_KEY_LEN]);

        let printed = format!("{key:?}");

        assert_eq!(printed, "SessionKey([REDACTED])");
    }
}
