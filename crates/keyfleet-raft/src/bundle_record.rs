use serde::Deserialize;
use serde::Serialize;

/// Maximum length of a stored validation bundle, in bytes of JSON.
pub const MAX_BUNDLE_JSON_LEN: usize = 64 * 1024;

/// The fleet's current validation bundle, written by `PublishBundle`.
///
/// The state machine stores the bundle as the JSON the witness and the operator signed and
/// checks only its epoch order and length. The publishing leader checks that the witness
/// returned its artifact and counter-signature, and clients verify every signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRecord {
    /// Fleet key epoch the bundle validates, from 1.
    pub epoch: u64,

    /// The validation bundle, as JSON.
    pub bundle_json: Vec<u8>,
}
