//! Generated vault operations for property tests.

use keyfleet_raft::Command;
use keyfleet_raft::MemoryTables;
use keyfleet_raft::Request;
use keyfleet_raft::RequestId;
use keyfleet_raft::SealedBlob;
use keyfleet_raft::vault::VaultTables;
use proptest::prelude::*;

use super::user;

/// One generated vault operation on a small set of users, so that the operations often hit the
/// same record.
#[derive(Debug, Clone)]
pub enum Op {
    Register { user: u8, max_guesses: u32 },
    ConsumeGuess { user: u8 },
    ResetCurrentVersion { user: u8 },
    ResetStaleVersion { user: u8, version: u64 },
    Erase { user: u8 },
    Lock { user: u8 },
    InitFleet { variant: u8 },
}

/// Generates operations, with guesses the most common.
pub fn op_strategy() -> impl Strategy<Value = Op> {
    let user = 0u8..3;

    prop_oneof![
        2 => (user.clone(), 0u32..5)
            .prop_map(|(user, max_guesses)| Op::Register { user, max_guesses }),
        6 => user.clone().prop_map(|user| Op::ConsumeGuess { user }),
        1 => user.clone().prop_map(|user| Op::ResetCurrentVersion { user }),
        1 => (user.clone(), 0u64..40)
            .prop_map(|(user, version)| Op::ResetStaleVersion { user, version }),
        1 => user.clone().prop_map(|user| Op::Erase { user }),
        1 => user.prop_map(|user| Op::Lock { user }),
        1 => (0u8..2).prop_map(|variant| Op::InitFleet { variant }),
    ]
}

fn user_name(index: u8) -> String {
    format!("user-{index}")
}

/// Builds a request whose id starts with the two bytes of `id`.
pub fn request_with_id(id: u16, command: Command) -> Request {
    let mut bytes = [0u8; 16];
    bytes[..2].copy_from_slice(&id.to_be_bytes());

    Request {
        request_id: RequestId::from_bytes(bytes),
        command,
    }
}

/// Builds a `Register` command with fixed blobs.
pub fn register_command(name: &str, max_guesses: u32) -> Command {
    Command::Register {
        expected_version: None,
        user: user(name),
        password_file: SealedBlob::new(b"password file".to_vec()),
        sealed_secret: SealedBlob::new(b"secret".to_vec()),
        max_guesses,
        oprf_salt: [0; 16],
    }
}

/// Builds an `InitFleet` command.
pub fn init_fleet_command(fleet_id: &str, setup: &[u8], created_at_unix_secs: u64) -> Command {
    Command::InitFleet {
        fleet_id: fleet_id.to_owned(),
        created_at_unix_secs,
        sealed_server_setup: SealedBlob::new(setup.to_vec()),
    }
}

/// Turns `op` into a command. `ResetCurrentVersion` reads the record version from `tables`.
pub fn to_command(op: &Op, tables: &MemoryTables) -> Command {
    match op {
        Op::Register { user, max_guesses } => register_command(&user_name(*user), *max_guesses),
        Op::ConsumeGuess { user } => Command::ConsumeGuess {
            user: super::user(&user_name(*user)),
        },
        Op::ResetCurrentVersion { user } => {
            let id = super::user(&user_name(*user));
            let Ok(record) = tables.user(&id);
            Command::ResetGuesses {
                user: id,
                expected_version: record.map_or(0, |record| record.version),
            }
        }
        Op::ResetStaleVersion { user, version } => Command::ResetGuesses {
            user: super::user(&user_name(*user)),
            expected_version: *version,
        },
        Op::Erase { user } => Command::Erase {
            user: super::user(&user_name(*user)),
        },
        Op::Lock { user } => Command::Lock {
            user: super::user(&user_name(*user)),
            expected_version: None,
        },
        Op::InitFleet { variant } => init_fleet_command("fleet", &[*variant], 1),
    }
}
