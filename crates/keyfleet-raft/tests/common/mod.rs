//! Helpers shared by the storage tests: entry and request builders, and calls into the storage
//! traits the way openraft makes them.

#![allow(dead_code, unreachable_pub)]

pub mod ops;

use std::collections::BTreeSet;
use std::io;

use keyfleet_raft::Command;
use keyfleet_raft::Entry;
use keyfleet_raft::LogId;
use keyfleet_raft::LogStore;
use keyfleet_raft::Request;
use keyfleet_raft::RequestId;
use keyfleet_raft::SealedBlob;
use keyfleet_raft::StateMachineStore;
use keyfleet_raft::TypeConfig;
use keyfleet_raft::UserId;
use openraft::Membership;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::storage::RaftStateMachine;
use openraft::type_config::TypeConfigExt;

/// Builds a log id with leader node 1.
pub fn log_id(term: u64, index: u64) -> LogId {
    openraft::testing::log_id::<TypeConfig>(term, 1, index)
}

/// Builds a normal entry carrying `request`.
pub fn normal_entry(term: u64, index: u64, request: Request) -> Entry {
    Entry::new_normal(log_id(term, index), request)
}

/// Builds a blank entry.
pub fn blank_entry(term: u64, index: u64) -> Entry {
    Entry::new_blank(log_id(term, index))
}

/// Builds a membership entry with one voter set.
pub fn membership_entry(term: u64, index: u64, voters: &[u64]) -> Entry {
    let voters: BTreeSet<u64> = voters.iter().copied().collect();
    Entry::new_membership(
        log_id(term, index),
        Membership::new_with_defaults(vec![voters], []),
    )
}

/// Builds a request id whose 16 bytes all equal `byte`.
pub fn request_id(byte: u8) -> RequestId {
    RequestId::from_bytes([byte; 16])
}

/// Builds a valid user id.
pub fn user(name: &str) -> UserId {
    UserId::new(name).expect("test user ids are valid")
}

/// Builds a `Register` request with recognizable blobs.
pub fn register(id: u8, name: &str, max_guesses: u32) -> Request {
    Request {
        request_id: request_id(id),
        command: Command::Register {
            expected_version: None,
            user: user(name),
            password_file: SealedBlob::new(format!("password file of {name}").into_bytes()),
            sealed_secret: SealedBlob::new(format!("secret of {name}").into_bytes()),
            max_guesses,
            oprf_salt: [0; 16],
        },
    }
}

/// Builds a `ConsumeGuess` request.
pub fn consume_guess(id: u8, name: &str) -> Request {
    Request {
        request_id: request_id(id),
        command: Command::ConsumeGuess { user: user(name) },
    }
}

/// Builds a `Lock` request.
pub fn lock(id: u8, name: &str) -> Request {
    Request {
        request_id: request_id(id),
        command: Command::Lock {
            user: user(name),
            expected_version: None,
        },
    }
}

/// Appends `entries` and waits until the store reports them flushed.
pub async fn append(store: &mut LogStore, entries: Vec<Entry>) -> io::Result<()> {
    let (tx, rx) = TypeConfig::oneshot();

    store.append(entries, IOFlushed::signal(tx)).await?;

    rx.await
        .map_err(|_| io::Error::other("flush callback was dropped"))?
}

/// Applies `entries` with no client waiting, as a follower does.
pub async fn apply(state_machine: &mut StateMachineStore, entries: Vec<Entry>) -> io::Result<()> {
    let items = entries.into_iter().map(|entry| Ok((entry, None)));

    state_machine.apply(futures_util::stream::iter(items)).await
}

/// Builds a `PublishBundle` request for `epoch` with `bundle_json`.
pub fn publish_bundle(id: u8, epoch: u64, bundle_json: &[u8]) -> Request {
    Request {
        request_id: request_id(id),
        command: Command::PublishBundle {
            epoch,
            bundle_json: bundle_json.to_vec(),
        },
    }
}
