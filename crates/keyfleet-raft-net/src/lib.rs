//! gRPC transport between keyfleet Raft nodes.
//!
//! - [`GrpcNetworkFactory`] is the openraft network factory. It creates one [`PeerClient`] per
//!   peer, which sends `AppendEntries`, `Vote`, `PreVote` and `InstallSnapshot` RPCs to the
//!   peer's `keyfleet.raft.v1.Raft` service at the `raft` address of its `NodeAddresses` entry.
//! - [`RaftServer`] serves that service for the local node and hands each request to its
//!   [`keyfleet_raft::Raft`].
//!
//! The messages carry openraft's request and response structs encoded with postcard, so every
//! node of a fleet must run the same keyfleet build. The service is defined in
//! `proto/keyfleet/raft/v1/raft.proto`.
//!
//! With TLS ([`RaftServer::bind_tls`], [`GrpcNetworkFactory::with_tls`]) both sides present
//! certificates of the fleet CA. The client accepts only a server certificate that names the
//! node it dials ([`node_name`]), and the server accepts an RPC only when the caller's
//! certificate names the node id the request carries as its sender. [`tls_incoming`] and the
//! configuration builders also serve keyfleetd's API port.

mod network_factory;
mod node_identity;
mod peer_address;
mod peer_client;
mod proto;
mod raft_server;
mod raft_service;
mod service_error;
mod snapshot_chunks;
mod snapshot_receiver;
mod status_mapping;
mod tls_config_cell;
mod tls_configs;
mod tls_connector;
mod tls_error;
mod tls_files;
mod tls_incoming;
mod wire;

pub use network_factory::GrpcNetworkFactory;
pub use node_identity::{IDENTITY_SUFFIX, OPERATOR_NAME, certificate_names, node_name};
pub use peer_address::PeerAddressError;
pub use peer_client::PeerClient;
pub use raft_server::DEFAULT_SHUTDOWN_GRACE;
pub use raft_server::RaftServer;
pub use raft_server::ServerError;
pub use raft_server::serve_raft;
pub use raft_service::RaftService;
pub use snapshot_receiver::MAX_SNAPSHOT_BYTES;
pub use tls_config_cell::TlsConfigCell;
pub use tls_configs::{api_server_config, crypto_provider, raft_client_config, raft_server_config};
pub use tls_error::TlsError;
pub use tls_files::{TlsFiles, TlsMaterial, load_certificates, load_roots};
pub use tls_incoming::tls_incoming;
pub use wire::WireError;

/// Maximum size of one gRPC message, sent or received: 64 MiB.
///
/// An `AppendEntries` request carries at most openraft's `max_payload_entries` entries (300 by
/// default), and a `Register` entry carries two sealed blobs of at most 64 KiB each, so a full
/// batch is an estimated 38 MiB. tonic's default limit of 4 MiB would reject it.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
