use std::fmt;

use serde::Deserialize;
use serde::Serialize;

/// Listen addresses of a fleet member, as stored in the Raft membership.
///
/// Membership carries both addresses so that any node can tell a client where the leader's
/// node API is, and so that peers can reach each other's Raft service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddresses {
    /// `host:port` of the node's internal Raft gRPC service.
    pub raft: String,
    /// `host:port` of the node's API gRPC service.
    pub api: String,
}

impl NodeAddresses {
    pub fn new(raft: impl Into<String>, api: impl Into<String>) -> Self {
        Self {
            raft: raft.into(),
            api: api.into(),
        }
    }
}

impl fmt::Display for NodeAddresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft={} api={}", self.raft, self.api)
    }
}
