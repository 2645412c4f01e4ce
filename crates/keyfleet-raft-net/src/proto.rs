//! The generated `keyfleet.raft.v1` types, from keyfleet-api.

pub(crate) use keyfleet_api::raft::*;
