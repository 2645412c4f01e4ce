use serde::Deserialize;
use serde::Serialize;

use crate::request_id::RequestId;
use crate::response::Response;

/// A remembered request: its id, the log index that applied it and the outcome it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupEntry {
    /// Id of the request.
    pub request_id: RequestId,

    /// Log index of the entry that first applied the request. The oldest index is evicted first.
    pub log_index: u64,

    /// Outcome of the first application, returned again to every retry.
    pub response: Response,
}
