//! The vault rules on in-memory tables: guess counting, locking, version checks, the fleet
//! setup and request deduplication.

use std::collections::HashMap;
use std::collections::VecDeque;

use keyfleet_raft::BundleRecord;
use keyfleet_raft::Command;
use keyfleet_raft::EraseOutcome;
use keyfleet_raft::GuessOutcome;
use keyfleet_raft::InitFleetOutcome;
use keyfleet_raft::InvalidUserId;
use keyfleet_raft::LockOutcome;
use keyfleet_raft::MAX_BUNDLE_JSON_LEN;
use keyfleet_raft::MAX_SEALED_BLOB_LEN;
use keyfleet_raft::MAX_USER_ID_LEN;
use keyfleet_raft::MemoryTables;
use keyfleet_raft::PublishBundleOutcome;
use keyfleet_raft::RegisterOutcome;
use keyfleet_raft::Rejection;
use keyfleet_raft::Request;
use keyfleet_raft::ResetOutcome;
use keyfleet_raft::Response;
use keyfleet_raft::SealedBlob;
use keyfleet_raft::UserId;
use keyfleet_raft::UserStatus;
use keyfleet_raft::vault::DEDUP_CAPACITY;
use keyfleet_raft::vault::VaultTables;
use keyfleet_raft::vault::apply_request;
use proptest::prelude::*;

mod common;

use common::ops::init_fleet_command;
use common::ops::op_strategy;
use common::ops::register_command;
use common::ops::request_with_id;
use common::ops::to_command;
use common::user;

/// Applies requests at consecutive log indexes starting at 1.
struct Applier {
    tables: MemoryTables,
    next_index: u64,
    dedup_capacity: u64,
}

impl Applier {
    fn new(dedup_capacity: u64) -> Self {
        Self {
            tables: MemoryTables::default(),
            next_index: 1,
            dedup_capacity,
        }
    }

    fn apply(&mut self, request: &Request) -> Response {
        let index = self.next_index;
        self.next_index += 1;

        let Ok(response) = apply_request(&mut self.tables, index, request, self.dedup_capacity);
        response
    }

    fn run(&mut self, id: u16, command: Command) -> Response {
        self.apply(&request_with_id(id, command))
    }
}

#[test]
fn consume_guess_counts_up_to_last_guess() {
    let mut vault = Applier::new(DEDUP_CAPACITY);
    vault.run(1, register_command("alice", 2));

    let first = vault.run(
        2,
        Command::ConsumeGuess {
            user: user("alice"),
        },
    );
    assert_eq!(
        first,
        Response::ConsumeGuess(GuessOutcome::Counted {
            guesses_used: 1,
            guesses_left: 1,
            version: 2,
            oprf_salt: [0; 16],
        })
    );

    let last = vault.run(
        3,
        Command::ConsumeGuess {
            user: user("alice"),
        },
    );
    assert_eq!(
        last,
        Response::ConsumeGuess(GuessOutcome::LastGuessCounted {
            guesses_used: 2,
            version: 3,
            oprf_salt: [0; 16],
        })
    );

    let over = vault.run(
        4,
        Command::ConsumeGuess {
            user: user("alice"),
        },
    );
    assert_eq!(over, Response::ConsumeGuess(GuessOutcome::Locked));

    let record = vault.tables.user(&user("alice")).unwrap().unwrap();
    assert_eq!(record.guesses_used, 2);
    assert_eq!(record.version, 3);
}

#[test]
fn consume_guess_unknown_user_not_found() {
    let mut vault = Applier::new(DEDUP_CAPACITY);

    let response = vault.run(
        1,
        Command::ConsumeGuess {
            user: user("nobody"),
        },
    );

    assert_eq!(response, Response::ConsumeGuess(GuessOutcome::NotFound));
}

#[test]
fn lock_erases_password_file_and_secret() {
    let mut vault = Applier::new(DEDUP_CAPACITY);
    vault.run(1, register_command("alice", 3));

    let response = vault.run(
        2,
        Command::Lock {
            user: user("alice"),
            expected_version: None,
        },
    );
    assert_eq!(response, Response::Lock(LockOutcome::Locked { version: 2 }));

    let record = vault.tables.user(&user("alice")).unwrap().unwrap();
    assert_eq!(record.status, UserStatus::Locked);
    assert!(record.password_file.is_empty());
    assert!(record.sealed_secret.is_empty());

    let again = vault.run(
        3,
        Command::Lock {
            user: user("alice"),
            expected_version: None,
        },
    );
    assert_eq!(
        again,
        Response::Lock(LockOutcome::AlreadyLocked { version: 2 })
    );

    let guess = vault.run(
        4,
        Command::ConsumeGuess {
            user: user("alice"),
        },
    );
    assert_eq!(guess, Response::ConsumeGuess(GuessOutcome::Locked));

    let reset = vault.run(
        5,
        Command::ResetGuesses {
            user: user("alice"),
            expected_version: 2,
        },
    );
    assert_eq!(reset, Response::ResetGuesses(ResetOutcome::Locked));
}

#[test]
fn reset_guesses_requires_matching_version() {
    let mut vault = Applier::new(DEDUP_CAPACITY);
    vault.run(1, register_command("alice", 3));
    vault.run(
        2,
        Command::ConsumeGuess {
            user: user("alice"),
        },
    );

    let stale = vault.run(
        3,
        Command::ResetGuesses {
            user: user("alice"),
            expected_version: 1,
        },
    );
    assert_eq!(
        stale,
        Response::ResetGuesses(ResetOutcome::VersionMismatch { current_version: 2 })
    );
    assert_eq!(
        vault
            .tables
            .user(&user("alice"))
            .unwrap()
            .unwrap()
            .guesses_used,
        1
    );

    let current = vault.run(
        4,
        Command::ResetGuesses {
            user: user("alice"),
            expected_version: 2,
        },
    );
    assert_eq!(
        current,
        Response::ResetGuesses(ResetOutcome::Reset { version: 4 })
    );
    assert_eq!(
        vault
            .tables
            .user(&user("alice"))
            .unwrap()
            .unwrap()
            .guesses_used,
        0
    );
}

#[test]
fn register_replaces_locked_record() {
    let mut vault = Applier::new(DEDUP_CAPACITY);
    vault.run(1, register_command("alice", 3));
    vault.run(
        2,
        Command::Lock {
            user: user("alice"),
            expected_version: None,
        },
    );

    let response = vault.run(3, register_command("alice", 5));

    assert_eq!(
        response,
        Response::Register(RegisterOutcome::Replaced { version: 3 })
    );
    let record = vault.tables.user(&user("alice")).unwrap().unwrap();
    assert_eq!(record.status, UserStatus::Registered);
    assert_eq!(record.guesses_used, 0);
    assert_eq!(record.max_guesses, 5);
}

#[test]
fn erase_then_register_gets_newer_version() {
    let mut vault = Applier::new(DEDUP_CAPACITY);
    vault.run(1, register_command("alice", 3));

    let erased = vault.run(
        2,
        Command::Erase {
            user: user("alice"),
        },
    );
    assert_eq!(erased, Response::Erase(EraseOutcome::Erased));
    let tombstone = vault.tables.user(&user("alice")).unwrap().unwrap();
    assert_eq!(tombstone.status, UserStatus::Deleted);
    assert_eq!(tombstone.version, 2);
    assert!(tombstone.password_file.is_empty());
    assert!(tombstone.sealed_secret.is_empty());

    let again = vault.run(
        3,
        Command::Erase {
            user: user("alice"),
        },
    );
    assert_eq!(again, Response::Erase(EraseOutcome::NotFound));

    let registered = vault.run(4, register_command("alice", 3));
    assert_eq!(
        registered,
        Response::Register(RegisterOutcome::Created { version: 4 })
    );

    let stale_reset = vault.run(
        5,
        Command::ResetGuesses {
            user: user("alice"),
            expected_version: 1,
        },
    );
    assert_eq!(
        stale_reset,
        Response::ResetGuesses(ResetOutcome::VersionMismatch { current_version: 4 })
    );
}

#[test]
fn init_fleet_accepts_identical_repeat_only() {
    let mut vault = Applier::new(DEDUP_CAPACITY);

    let first = vault.run(1, init_fleet_command("fleet-a", b"setup", 100));
    assert_eq!(first, Response::InitFleet(InitFleetOutcome::Initialized));

    let identical = vault.run(2, init_fleet_command("fleet-a", b"setup", 200));
    assert_eq!(
        identical,
        Response::InitFleet(InitFleetOutcome::AlreadyInitialized)
    );

    let other_setup = vault.run(3, init_fleet_command("fleet-a", b"other setup", 300));
    assert_eq!(
        other_setup,
        Response::InitFleet(InitFleetOutcome::Conflict {
            existing_fleet_id: "fleet-a".to_owned(),
        })
    );

    let other_id = vault.run(4, init_fleet_command("fleet-b", b"setup", 400));
    assert_eq!(
        other_id,
        Response::InitFleet(InitFleetOutcome::Conflict {
            existing_fleet_id: "fleet-a".to_owned(),
        })
    );

    let fleet = vault.tables.fleet().unwrap().unwrap();
    assert_eq!(fleet.created_at_unix_secs, 100);
    assert_eq!(fleet.sealed_server_setup.as_bytes(), b"setup");
}

#[test]
fn invalid_commands_rejected_without_change() {
    let mut vault = Applier::new(DEDUP_CAPACITY);
    let oversized = SealedBlob::new(vec![0; MAX_SEALED_BLOB_LEN + 1]);

    let zero = vault.run(1, register_command("alice", 0));
    assert_eq!(zero, Response::Rejected(Rejection::ZeroMaxGuesses));

    let long_blob = vault.run(
        2,
        Command::Register {
            expected_version: None,
            user: user("alice"),
            password_file: oversized,
            sealed_secret: SealedBlob::default(),
            max_guesses: 3,
            oprf_salt: [0; 16],
        },
    );
    assert_eq!(
        long_blob,
        Response::Rejected(Rejection::BlobTooLong {
            field: "password_file".to_owned(),
            len: MAX_SEALED_BLOB_LEN as u64 + 1,
            max: MAX_SEALED_BLOB_LEN as u64,
        })
    );

    let empty_fleet = vault.run(3, init_fleet_command("", b"setup", 1));
    assert_eq!(empty_fleet, Response::Rejected(Rejection::EmptyFleetId));

    assert!(vault.tables.users().is_empty());
    assert_eq!(vault.tables.fleet().unwrap(), None);
}

#[test]
fn user_id_bounds_checked() {
    assert_eq!(UserId::new(""), Err(InvalidUserId::Empty));
    assert_eq!(
        UserId::new("x".repeat(MAX_USER_ID_LEN + 1)),
        Err(InvalidUserId::TooLong {
            len: MAX_USER_ID_LEN + 1,
            max: MAX_USER_ID_LEN,
        })
    );
    assert!(UserId::new("x".repeat(MAX_USER_ID_LEN)).is_ok());

    let encoded = postcard::to_stdvec(&"x".repeat(MAX_USER_ID_LEN + 1)).unwrap();
    let decoded = postcard::from_bytes::<UserId>(&encoded);
    assert!(decoded.is_err(), "an over-long user id was decoded");
}

#[test]
fn retry_returns_first_outcome() {
    let mut vault = Applier::new(DEDUP_CAPACITY);
    vault.run(1, register_command("alice", 3));
    let first = vault.run(
        2,
        Command::ConsumeGuess {
            user: user("alice"),
        },
    );
    let before = vault.tables.clone();

    let retry = vault.run(
        2,
        Command::ConsumeGuess {
            user: user("alice"),
        },
    );

    assert_eq!(retry, first);
    assert_eq!(vault.tables, before);
}

fn check_records(tables: &MemoryTables, last_index: u64) -> Result<(), TestCaseError> {
    for (id, record) in tables.users() {
        prop_assert!(
            record.guesses_used <= record.max_guesses,
            "{id} used {} of {} guesses",
            record.guesses_used,
            record.max_guesses
        );
        prop_assert!(record.version <= last_index, "{id} has a future version");

        if record.status == UserStatus::Locked {
            prop_assert!(
                record.password_file.is_empty(),
                "{id} kept its password file"
            );
            prop_assert!(record.sealed_secret.is_empty(), "{id} kept its secret");
        }
    }

    Ok(())
}

proptest! {
    #[test]
    fn guesses_never_exceed_max(ops in prop::collection::vec((0u16..30, op_strategy()), 1..120)) {
        let mut vault = Applier::new(DEDUP_CAPACITY);

        for (id, op) in &ops {
            let command = to_command(op, &vault.tables);
            vault.run(*id, command);
            check_records(&vault.tables, vault.next_index - 1)?;
        }
    }

    #[test]
    fn retry_changes_nothing(ops in prop::collection::vec((0u16..30, op_strategy()), 1..120)) {
        let mut vault = Applier::new(DEDUP_CAPACITY);
        let mut first_outcomes: HashMap<u16, Response> = HashMap::new();

        for (id, op) in &ops {
            let command = to_command(op, &vault.tables);
            let before = vault.tables.clone();
            let response = vault.run(*id, command);

            match first_outcomes.get(id) {
                Some(first) => {
                    prop_assert_eq!(&response, first);
                    prop_assert_eq!(&vault.tables, &before);
                }
                None => {
                    first_outcomes.insert(*id, response);
                }
            }
        }
    }

    #[test]
    fn dedup_table_stays_bounded(
        capacity in 0u64..6,
        ops in prop::collection::vec((0u16..12, op_strategy()), 1..120),
    ) {
        let mut vault = Applier::new(capacity);
        // Request ids and log indexes the table should remember, oldest first.
        let mut expected_entries: VecDeque<(u16, u64)> = VecDeque::new();

        for (id, op) in &ops {
            let index = vault.next_index;
            let remembered = expected_entries.iter().any(|(kept, _)| kept == id);

            let command = to_command(op, &vault.tables);
            vault.run(*id, command);

            if !remembered {
                expected_entries.push_back((*id, index));
                while expected_entries.len() as u64 > capacity {
                    expected_entries.pop_front();
                }
            }

            let image = vault.tables.to_image();
            let actual: Vec<u64> = image.dedup.iter().map(|entry| entry.log_index).collect();
            let expected_indexes: Vec<u64> =
                expected_entries.iter().map(|(_, index)| *index).collect();
            prop_assert!(actual.len() as u64 <= capacity);
            prop_assert_eq!(actual, expected_indexes);
        }
    }
}

#[test]
fn register_checks_expected_version() {
    let mut vault = Applier::new(DEDUP_CAPACITY);
    let conditional = |expected_version| Command::Register {
        expected_version: Some(expected_version),
        user: user("alice"),
        password_file: SealedBlob::new(b"second password file".to_vec()),
        sealed_secret: SealedBlob::new(b"second secret".to_vec()),
        max_guesses: 4,
        oprf_salt: [0; 16],
    };

    let on_missing_record = vault.run(1, conditional(5));
    assert_eq!(
        on_missing_record,
        Response::Register(RegisterOutcome::VersionMismatch { current_version: 0 })
    );
    assert!(vault.tables.user(&user("alice")).unwrap().is_none());

    let created = vault.run(2, conditional(0));
    assert_eq!(
        created,
        Response::Register(RegisterOutcome::Created { version: 2 })
    );

    let replayed = vault.run(3, conditional(0));
    assert_eq!(
        replayed,
        Response::Register(RegisterOutcome::VersionMismatch { current_version: 2 })
    );

    let replaced = vault.run(4, conditional(2));
    assert_eq!(
        replaced,
        Response::Register(RegisterOutcome::Replaced { version: 4 })
    );
    let record = vault.tables.user(&user("alice")).unwrap().unwrap();
    assert_eq!(record.version, 4);
}

#[test]
fn lock_checks_expected_version() {
    let mut vault = Applier::new(DEDUP_CAPACITY);
    vault.run(1, register_command("alice", 3));
    vault.run(
        2,
        Command::ConsumeGuess {
            user: user("alice"),
        },
    );

    let stale = vault.run(
        3,
        Command::Lock {
            user: user("alice"),
            expected_version: Some(1),
        },
    );
    assert_eq!(
        stale,
        Response::Lock(LockOutcome::VersionMismatch { current_version: 2 })
    );
    let record = vault.tables.user(&user("alice")).unwrap().unwrap();
    assert_eq!(record.status, UserStatus::Registered);
    assert!(!record.password_file.is_empty());

    let current = vault.run(
        4,
        Command::Lock {
            user: user("alice"),
            expected_version: Some(2),
        },
    );
    assert_eq!(current, Response::Lock(LockOutcome::Locked { version: 4 }));
}

#[test]
fn deleted_record_acts_as_missing() {
    let mut vault = Applier::new(DEDUP_CAPACITY);
    vault.run(1, register_command("alice", 3));
    vault.run(
        2,
        Command::Erase {
            user: user("alice"),
        },
    );

    let guess = vault.run(
        3,
        Command::ConsumeGuess {
            user: user("alice"),
        },
    );
    assert_eq!(guess, Response::ConsumeGuess(GuessOutcome::NotFound));
    let reset = vault.run(
        4,
        Command::ResetGuesses {
            user: user("alice"),
            expected_version: 2,
        },
    );
    assert_eq!(reset, Response::ResetGuesses(ResetOutcome::NotFound));
    let lock = vault.run(
        5,
        Command::Lock {
            user: user("alice"),
            expected_version: None,
        },
    );
    assert_eq!(lock, Response::Lock(LockOutcome::NotFound));

    let replayed_registration = vault.run(
        6,
        Command::Register {
            expected_version: Some(0),
            user: user("alice"),
            password_file: SealedBlob::new(b"old password file".to_vec()),
            sealed_secret: SealedBlob::new(b"old secret".to_vec()),
            max_guesses: 3,
            oprf_salt: [1; 16],
        },
    );
    assert_eq!(
        replayed_registration,
        Response::Register(RegisterOutcome::VersionMismatch { current_version: 2 }),
        "a ticket issued before the delete must not create the record again"
    );

    let after_delete = vault.run(
        7,
        Command::Register {
            expected_version: Some(2),
            user: user("alice"),
            password_file: SealedBlob::new(b"new password file".to_vec()),
            sealed_secret: SealedBlob::new(b"new secret".to_vec()),
            max_guesses: 3,
            oprf_salt: [2; 16],
        },
    );
    assert_eq!(
        after_delete,
        Response::Register(RegisterOutcome::Created { version: 7 })
    );
}

fn publish(epoch: u64, bundle_json: &[u8]) -> Command {
    Command::PublishBundle {
        epoch,
        bundle_json: bundle_json.to_vec(),
    }
}

#[test]
fn publish_bundle_only_moves_forward() {
    let mut vault = Applier::new(DEDUP_CAPACITY);

    let first = vault.run(1, publish(1, b"epoch one"));
    assert_eq!(
        first,
        Response::PublishBundle(PublishBundleOutcome::Published)
    );

    let repeat = vault.run(2, publish(1, b"epoch one"));
    assert_eq!(
        repeat,
        Response::PublishBundle(PublishBundleOutcome::AlreadyPublished)
    );

    let other_same_epoch = vault.run(3, publish(1, b"another epoch one"));
    assert_eq!(
        other_same_epoch,
        Response::PublishBundle(PublishBundleOutcome::NotNewer { current_epoch: 1 })
    );

    let second = vault.run(4, publish(3, b"epoch three"));
    assert_eq!(
        second,
        Response::PublishBundle(PublishBundleOutcome::Published)
    );

    let older = vault.run(5, publish(2, b"epoch two"));
    assert_eq!(
        older,
        Response::PublishBundle(PublishBundleOutcome::NotNewer { current_epoch: 3 })
    );

    let stored = vault.tables.bundle().unwrap();
    assert_eq!(
        stored,
        Some(BundleRecord {
            epoch: 3,
            bundle_json: b"epoch three".to_vec(),
        })
    );
}

#[test]
fn publish_bundle_rejects_bad_input() {
    let mut vault = Applier::new(DEDUP_CAPACITY);

    let zero = vault.run(1, publish(0, b"bundle"));
    assert_eq!(zero, Response::Rejected(Rejection::ZeroBundleEpoch));

    let empty = vault.run(2, publish(1, b""));
    assert!(
        matches!(
            empty,
            Response::Rejected(Rejection::BundleLength { len: 0, .. })
        ),
        "{empty:?}"
    );

    let long = vault.run(3, publish(1, &vec![b'x'; MAX_BUNDLE_JSON_LEN + 1]));
    assert!(
        matches!(long, Response::Rejected(Rejection::BundleLength { .. })),
        "{long:?}"
    );

    let Ok(stored) = vault.tables.bundle();
    assert_eq!(stored, None);
}
