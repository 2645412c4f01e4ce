//! The etcd v3 messages generated from `proto/etcd_kv.proto`.

#![allow(
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations,
    unreachable_pub,
    missing_docs
)]

tonic::include_proto!("etcdserverpb");
