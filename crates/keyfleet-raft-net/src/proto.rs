//! Code generated from `proto/keyfleet/raft/v1/raft.proto` by tonic-prost-build.

#![allow(
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations,
    unreachable_pub,
    missing_docs
)]

tonic::include_proto!("keyfleet.raft.v1");
