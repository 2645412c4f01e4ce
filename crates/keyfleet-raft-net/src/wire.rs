use serde::Serialize;
use serde::de::DeserializeOwned;

/// Failure to encode or decode an openraft struct carried in a gRPC message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The value could not be encoded.
    #[error("failed to encode {value_name} with postcard: {source}")]
    Encode {
        /// Name of the value, for example `AppendEntriesRequest`.
        value_name: &'static str,
        /// postcard's error.
        #[source]
        source: postcard::Error,
    },

    /// The bytes are not a valid encoding of the value.
    #[error(
        "failed to decode {value_name} with postcard: {source}. Check that every node runs the same \
         keyfleet version"
    )]
    Decode {
        /// Name of the value, for example `AppendEntriesRequest`.
        value_name: &'static str,
        /// postcard's error.
        #[source]
        source: postcard::Error,
    },

    /// The bytes contain a valid value followed by bytes that belong to no field.
    #[error(
        "invalid {value_name}: {len} trailing bytes after the encoded value. Check that every node runs \
         the same keyfleet version"
    )]
    TrailingBytes {
        /// Name of the value, for example `AppendEntriesRequest`.
        value_name: &'static str,
        /// Number of trailing bytes.
        len: usize,
    },
}

/// Encodes `value` with postcard.
pub(crate) fn encode<T: Serialize>(
    value: &T,
    value_name: &'static str,
) -> Result<Vec<u8>, WireError> {
    postcard::to_stdvec(value).map_err(|source| WireError::Encode { value_name, source })
}

/// Decodes a `T` from `bytes` and rejects trailing bytes.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    value_name: &'static str,
) -> Result<T, WireError> {
    let (value, rest) = postcard::take_from_bytes(bytes)
        .map_err(|source| WireError::Decode { value_name, source })?;

    if !rest.is_empty() {
        return Err(WireError::TrailingBytes {
            value_name,
            len: rest.len(),
        });
    }

    Ok(value)
}
