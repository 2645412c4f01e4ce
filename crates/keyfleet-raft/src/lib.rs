//! Raft storage for keyfleet: the openraft type configuration, a redb-backed Raft log store and a
//! redb-backed state machine that contains the vault state.
//!
//! # Durability
//!
//! Every write transaction in this crate commits with [`redb::Durability::Immediate`], so a call
//! that changes the vote, the log, the committed log id, the vault state or the current snapshot
//! returns only after the change is on disk. A guess counter that a crash rolled back would hand
//! an attacker free password guesses.
//!
//! # Files
//!
//! A node keeps two redb files and a directory in its data directory (see
//! [`open_node_storage`]):
//!
//! - [`LOG_FILE_NAME`] contains the vote, the committed log id, the last purged log id and the
//!   log.
//! - [`STATE_MACHINE_FILE_NAME`] contains the vault tables, the last applied log id, the last
//!   membership and the metadata and file name of the current snapshot.
//! - [`SNAPSHOT_DIR_NAME`] contains the current snapshot's file, in the layout of
//!   [`SNAPSHOT_FORMAT_VERSION`], and temporary files of snapshots being built, received or
//!   installed. Snapshots are written, sent, received and installed in a streaming pass, so
//!   their memory use does not grow with the number of users.
//!
//! They are two files because redb allows one write transaction per database at a time, and
//! openraft runs log writes and state machine writes as separate tasks. With one file, every log
//! append and vote would wait behind an apply batch or a snapshot install. No transaction has to
//! span both files, because openraft's startup recovery accepts a state machine that is behind
//! the log or ahead of it (its storage conformance suite checks both cases).
//!
//! # Vault logic
//!
//! The vault rules live in [`vault::apply_request`], which works on the [`vault::VaultTables`]
//! trait and does not depend on openraft or redb. [`MemoryTables`] runs the same rules on
//! `BTreeMap`s for tests, and the state machine runs them on redb tables inside its write
//! transaction.

mod bundle_record;
mod command;
mod current_snapshot;
mod dedup_entry;
mod error;
mod fleet;
mod image;
mod incoming_snapshot;
mod log_store;
mod memory_tables;
mod node_addresses;
mod node_storage;
mod quorum_recovery;
mod record;
mod redb_io;
mod redb_tables;
mod request_id;
mod response;
mod restore;
mod sealed_blob;
mod snapshot_builder;
mod snapshot_data;
mod snapshot_decoder;
mod snapshot_dir;
mod snapshot_encoder;
mod snapshot_file;
mod snapshot_format;
mod snapshot_installer;
mod state_machine;
mod temp_snapshot_file;
mod type_config;
mod user_id;
pub mod vault;

pub use bundle_record::BundleRecord;
pub use bundle_record::MAX_BUNDLE_JSON_LEN;
pub use command::Command;
pub use command::Request;
pub use dedup_entry::DedupEntry;
pub use error::StoreError;
pub use fleet::FleetRecord;
pub use fleet::MAX_FLEET_ID_LEN;
pub use image::IMAGE_FORMAT_VERSION;
pub use image::VaultImage;
pub use incoming_snapshot::IncomingSnapshot;
pub use incoming_snapshot::IncomingSnapshotError;
pub use log_store::LogStore;
pub use memory_tables::MemoryTables;
pub use node_addresses::NodeAddresses;
pub use node_storage::LOG_FILE_NAME;
pub use node_storage::SNAPSHOT_DIR_NAME;
pub use node_storage::STATE_MACHINE_FILE_NAME;
pub use node_storage::open_node_storage;
pub use quorum_recovery::QuorumRecovery;
pub use quorum_recovery::QuorumRecoveryError;
pub use quorum_recovery::force_voters;
pub use record::OPRF_SALT_LEN;
pub use record::UserRecord;
pub use record::UserStatus;
pub use request_id::RequestId;
pub use response::EraseOutcome;
pub use response::GuessOutcome;
pub use response::InitFleetOutcome;
pub use response::LockOutcome;
pub use response::PublishBundleOutcome;
pub use response::RegisterOutcome;
pub use response::Rejection;
pub use response::ResetOutcome;
pub use response::Response;
pub use response::RestoreOutcome;
pub use sealed_blob::MAX_SEALED_BLOB_LEN;
pub use sealed_blob::SealedBlob;
pub use snapshot_builder::SnapshotBuilder;
pub use snapshot_data::SnapshotData;
pub use snapshot_data::SnapshotDataReader;
pub use snapshot_dir::SnapshotDir;
pub use snapshot_file::SNAPSHOT_FILE_VERSION;
pub use snapshot_file::SnapshotFile;
pub use snapshot_file::SnapshotFileError;
pub use snapshot_format::SNAPSHOT_FORMAT_VERSION;
pub use snapshot_format::SnapshotFormatError;
pub use state_machine::StateMachineStore;
pub use state_machine::snapshot_dir_path;
pub use type_config::Entry;
pub use type_config::LogId;
pub use type_config::NodeId;
pub use type_config::Raft;
pub use type_config::Snapshot;
pub use type_config::SnapshotMeta;
pub use type_config::StoredMembership;
pub use type_config::TypeConfig;
pub use type_config::Vote;
pub use user_id::InvalidUserId;
pub use user_id::MAX_USER_ID_LEN;
pub use user_id::UserId;
