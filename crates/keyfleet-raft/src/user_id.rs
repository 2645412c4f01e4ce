use std::fmt;

use serde::Deserialize;
use serde::Serialize;

/// Maximum length of a user id, in bytes of UTF-8.
pub const MAX_USER_ID_LEN: usize = 256;

/// Id of a vault user: a non-empty string of at most [`MAX_USER_ID_LEN`] bytes.
///
/// Deserializing checks the same bounds as [`UserId::new`], so a log entry or snapshot cannot
/// carry an id that the API would reject.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

/// Reason a string is not a valid [`UserId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUserId {
    /// The id is the empty string.
    #[error("user id is empty: send a non-empty user id")]
    Empty,

    /// The id is longer than [`MAX_USER_ID_LEN`].
    #[error("user id is {len} bytes long, over the maximum of {max} bytes: send a shorter id")]
    TooLong {
        /// Length of the rejected id in bytes.
        len: usize,
        /// The maximum, [`MAX_USER_ID_LEN`].
        max: usize,
    },
}

impl UserId {
    /// Checks the length bounds and wraps `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidUserId> {
        let id = id.into();

        if id.is_empty() {
            return Err(InvalidUserId::Empty);
        }

        if id.len() > MAX_USER_ID_LEN {
            return Err(InvalidUserId::TooLong {
                len: id.len(),
                max: MAX_USER_ID_LEN,
            });
        }

        Ok(Self(id))
    }

    /// Returns the id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = InvalidUserId;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> Self {
        id.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", self.0)
    }
}
