//! The keyfleet witness, an independent service that signs fleet key artifacts. It keeps an
//! append-only RFC 9162 Merkle log of them per namespace and serves C2SP checkpoints, entries,
//! inclusion proofs and consistency proofs. The crate also has the client and the audit that
//! checks such a log end to end.

pub mod audit;
mod client;
mod error;
mod operator_keys;
mod server;
mod service;
mod witness_key;
mod witness_log;

pub use client::{LogEntry, WitnessCallError, WitnessClient};
pub use error::WitnessError;
pub use operator_keys::{OperatorKeyBinding, OperatorKeys};
pub use server::{KEY_FILE, LOG_FILE, open_data_dir, serve};
pub use service::WitnessService;
pub use witness_key::WitnessKey;
pub use witness_log::WitnessLog;

/// Code generated from `keyfleet.witness.v1` by tonic-prost-build.
pub mod api {
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_debug_implementations,
        unreachable_pub,
        missing_docs
    )]

    tonic::include_proto!("keyfleet.witness.v1");
}
