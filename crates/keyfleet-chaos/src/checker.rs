//! The history checker: walks each user's events in recording order and checks the vault's
//! guarantees, treating every unknown outcome in the way least favourable to the vault.

mod user_check;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::history::{Event, History, Op, Outcome, Phase};
use user_check::UserCheck;

/// A guarantee the checker verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Property {
    /// Between two resets of a record (a successful recovery, a registration or a delete), the
    /// KE2 responses released, counting every RecoveryStart whose outcome is unknown, never
    /// exceed the record's `max_guesses`.
    GuessBudget,
    /// A state read after an ok RecoveryStart shows that guess counted.
    LostIncrement,
    /// A state read never shows more guesses used than RecoveryStarts that may have counted.
    PhantomIncrement,
    /// The guess count of a record never goes down without a reset.
    CounterRollback,
    /// A locked record stays locked until a new registration or a delete.
    LockoutAbsorbing,
    /// An acknowledged registration stays readable and recoverable, and a recovery returns the
    /// registered secret.
    LostRecord,
    /// A RecoveryFinish with a wrong KE3 never succeeds.
    WrongPasswordAccepted,
}

/// One broken guarantee, at the operation that showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub property: Property,
    pub user: String,
    pub op_id: u64,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} on user {} at operation {}: {}",
            self.property, self.user, self.op_id, self.message
        )
    }
}

/// The checker's result. Only [`Verdict::Valid`] is a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every guarantee holds on every user, and every user ends with an ok state read.
    Valid { users: usize, ops: usize },
    /// At least one guarantee is broken.
    Invalid { violations: Vec<Violation> },
    /// No guarantee is broken, but the history cannot show that all hold: `reasons` lists
    /// what is missing, such as a user whose final state read failed.
    Unknown { reasons: Vec<String> },
}

impl Verdict {
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid { .. })
    }

    /// Returns the violations of an invalid verdict, or nothing.
    pub fn violations(&self) -> &[Violation] {
        match self {
            Verdict::Invalid { violations } => violations,
            _ => &[],
        }
    }
}

/// Checks `history` and returns the verdict.
///
/// Every user must end with an ok GetState invoked after all of that user's other operations:
/// that read returns the committed state, the servers' own record of the guesses counted, and
/// the checker joins it with what the clients saw. Without it the verdict is `Unknown`.
pub fn check(history: &History) -> Verdict {
    let events = history.events();
    let ops = events
        .iter()
        .filter(|event| event.phase == Phase::Invoke)
        .count();

    let mut by_user: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for event in events {
        by_user.entry(event.user.clone()).or_default().push(event);
    }

    let mut violations = Vec::new();
    let mut reasons = Vec::new();

    for (user, events) in &by_user {
        if let Err(reason) = ends_with_state_read(user, events) {
            reasons.push(reason);
        }

        let mut user_check = UserCheck::new(user);
        for event in events {
            user_check.apply(event);
        }
        violations.extend(user_check.finish());
    }

    if !violations.is_empty() {
        Verdict::Invalid { violations }
    } else if !reasons.is_empty() {
        Verdict::Unknown { reasons }
    } else {
        Verdict::Valid {
            users: by_user.len(),
            ops,
        }
    }
}

/// Checks that the user's last invoked operation is a GetState that completed ok, after every
/// other operation of the user completed.
fn ends_with_state_read(user: &str, events: &[Event]) -> Result<(), String> {
    let last_invoke = events
        .iter()
        .rev()
        .find(|event| event.phase == Phase::Invoke)
        .ok_or_else(|| format!("user {user} has no operation"))?;

    if last_invoke.op != Op::GetState {
        return Err(format!(
            "user {user}: the last operation is {:?}, not a final GetState",
            last_invoke.op
        ));
    }

    let completion = events
        .iter()
        .find(|event| event.op_id == last_invoke.op_id && event.phase == Phase::Complete);
    match completion.and_then(|event| event.outcome.as_ref()) {
        Some(Outcome::Ok(_)) => {}
        other => {
            return Err(format!(
                "user {user}: the final GetState did not complete ok: {other:?}"
            ));
        }
    }

    let still_open = events
        .iter()
        .filter(|event| event.phase == Phase::Invoke && event.op_id != last_invoke.op_id)
        .any(|invoke| {
            !events.iter().any(|event| {
                event.op_id == invoke.op_id
                    && event.phase == Phase::Complete
                    && event.time_ns <= last_invoke.time_ns
            })
        });
    if still_open {
        return Err(format!(
            "user {user}: an operation was still open when the final GetState was invoked"
        ));
    }
    Ok(())
}
