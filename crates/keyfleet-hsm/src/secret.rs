use std::fmt;

use zeroize::Zeroizing;

/// Secret bytes (an unsealed plaintext, a MAC output, random key material), zeroized on drop.
///
/// `Debug` prints only the length. There is deliberately no `PartialEq`: compare secrets with
/// [`SecretBytes::ct_eq`], which takes the same time whatever the contents.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; the caller's buffer is not copied.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Returns the secret itself. Keep the borrow short and never log it.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares with `other` in constant time for equal lengths.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        use subtle::ConstantTimeEq;

        self.0.as_slice().ct_eq(other).into()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {} bytes])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_contents() {
        let secret = SecretBytes::new(b"hunter2".to_vec());

        let printed = format!("{secret:?}");

        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("7 bytes"), "{printed}");
    }

    #[test]
    fn ct_eq_compares_contents() {
        let secret = SecretBytes::new(vec![1, 2, 3]);

        assert!(secret.ct_eq(&[1, 2, 3]));
        assert!(!secret.ct_eq(&[1, 2, 4]));
        assert!(!secret.ct_eq(&[1, 2]));
    }
}
