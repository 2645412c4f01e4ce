//! The checker's model of one user's record, fed with that user's events in recording order.
//!
//! A certain reset (an ok registration, recovery or delete) starts a new generation. Operations
//! are attributed to the generation in which they were invoked, so an operation that overlaps
//! a reset is never counted against the new budget. A reset whose outcome is unknown may take
//! effect at any time after its invocation. So the budget check may use it once to split the
//! guesses, and the checks that need an exact count skip the rest of its generation.

use std::collections::BTreeMap;

use crate::checker::{Property, Violation};
use crate::history::{Event, Op, OpValue, Outcome, Phase};

/// Whether the record exists, as far as the history shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existence {
    No,
    Maybe,
    Yes,
}

/// State captured when an operation was invoked.
#[derive(Debug, Clone)]
struct Pending {
    op: Op,
    generation: u64,
    /// For GetState: ok RecoveryStarts of this generation that had completed.
    ok_starts_before: u32,
    /// For resets: the counters that become the next generation's base.
    base: Base,
    /// Whether a lock had been observed, and no reset invoked since, when the operation was
    /// invoked. Operations concurrent with the observation may have run before the lock.
    locked_before: bool,
    /// The budget limit before the operation was invoked, so that a Register that surely failed
    /// can take back the limit it raised.
    max_guesses_before: u32,
}

/// Counters at the start of a generation, for the phantom increment bound.
#[derive(Debug, Clone, Copy, Default)]
struct Base {
    /// RecoveryStarts completed ok or unknown, over the whole history.
    possible_starts: u32,
    /// RecoveryStarts completed unknown, over the whole history. They may still take effect.
    unknown_starts: u32,
}

#[derive(Debug)]
pub(super) struct UserCheck {
    user: String,
    existence: Existence,
    max_guesses: u32,
    /// Highest limit of the Registers that ended unknown: they may still take effect.
    unknown_register_max: u32,
    generation: u64,
    /// KE2 responses that ok RecoveryStarts received in the current budget segment.
    released: u32,
    /// RecoveryStarts of the current segment whose outcome is unknown and that no later state
    /// read has bounded: each may have released a KE2.
    unresolved: u32,
    /// Resets with an unknown or pending outcome invoked in this generation.
    possible_resets: u32,
    /// Possible resets the budget check has used to split the guesses.
    used_resets: u32,
    ok_starts: u32,
    base: Base,
    possible_starts: u32,
    unknown_starts: u32,
    last_guesses_used: Option<u32>,
    locked: bool,
    lock_may_clear: bool,
    secrets: Vec<String>,
    pending: BTreeMap<u64, Pending>,
    last_op_id: u64,
    violations: Vec<Violation>,
}

impl UserCheck {
    pub(super) fn new(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            existence: Existence::No,
            max_guesses: 0,
            unknown_register_max: 0,
            generation: 0,
            released: 0,
            unresolved: 0,
            possible_resets: 0,
            used_resets: 0,
            ok_starts: 0,
            base: Base::default(),
            possible_starts: 0,
            unknown_starts: 0,
            last_guesses_used: None,
            locked: false,
            lock_may_clear: false,
            secrets: Vec::new(),
            pending: BTreeMap::new(),
            last_op_id: 0,
            violations: Vec::new(),
        }
    }

    pub(super) fn apply(&mut self, event: &Event) {
        self.last_op_id = event.op_id;
        match event.phase {
            Phase::Invoke => self.invoke(event),
            Phase::Complete => {
                let Some(pending) = self.pending.remove(&event.op_id) else {
                    return;
                };
                let unknown = Outcome::Unknown {
                    reason: "complete event without an outcome".to_owned(),
                };
                let outcome = event.outcome.clone().unwrap_or(unknown);
                self.complete(event.op_id, pending, &outcome);
            }
        }
    }

    /// Treats every operation that never completed as unknown, and returns the violations.
    pub(super) fn finish(mut self) -> Vec<Violation> {
        let open: Vec<(u64, Pending)> = std::mem::take(&mut self.pending).into_iter().collect();
        for (op_id, pending) in open {
            let outcome = Outcome::Unknown {
                reason: "never completed".to_owned(),
            };
            self.complete(op_id, pending, &outcome);
        }
        self.enforce_budget(self.last_op_id);
        self.violations
    }

    fn invoke(&mut self, event: &Event) {
        let locked_before = self.locked && !self.lock_may_clear;
        let max_guesses_before = self.max_guesses;
        if event.op.may_reset() {
            self.possible_resets += 1;
            if self.locked {
                self.lock_may_clear = true;
            }
        }

        match &event.op {
            Op::Register {
                max_guesses,
                secret,
            } => {
                if self.existence == Existence::No {
                    self.existence = Existence::Maybe;
                }
                self.max_guesses = self.max_guesses.max(*max_guesses);
                self.secrets.push(secret.clone());
            }
            Op::Delete if self.existence == Existence::Yes => {
                self.existence = Existence::Maybe;
            }
            _ => {}
        }

        let pending = Pending {
            op: event.op.clone(),
            generation: self.generation,
            ok_starts_before: self.ok_starts,
            base: Base {
                possible_starts: self.possible_starts,
                unknown_starts: self.unknown_starts,
            },
            locked_before,
            max_guesses_before,
        };
        self.pending.insert(event.op_id, pending);
    }

    fn complete(&mut self, op_id: u64, pending: Pending, outcome: &Outcome) {
        let current = pending.generation == self.generation;

        match (&pending.op, outcome) {
            (Op::RecoveryStart { .. }, _) => self.complete_start(op_id, &pending, outcome),
            (op, Outcome::Ok(value)) if op.may_reset() => {
                self.certain_reset(op_id, &pending, value)
            }
            (op, Outcome::Fail { .. }) if op.may_reset() => {
                if current {
                    self.possible_resets = self.possible_resets.saturating_sub(1);
                }
                if matches!(op, Op::Register { .. }) {
                    self.take_back_limit(&pending);
                }
                self.complete_finish(op_id, &pending, outcome);
            }
            (Op::Register { max_guesses, .. }, Outcome::Unknown { .. }) => {
                self.unknown_register_max = self.unknown_register_max.max(*max_guesses);
            }
            (Op::RecoveryFinish { .. }, _) => self.complete_finish(op_id, &pending, outcome),
            (Op::GetState, Outcome::Ok(value)) => self.complete_read(op_id, &pending, value),
            (Op::GetState, Outcome::Fail { reason, .. }) if reason == "LOCKED" => {
                self.observe_lock();
            }
            _ => {}
        }
    }

    /// Lowers the budget limit that a surely failed Register raised at its invoke, back to the
    /// limit before it or the highest limit of the Registers still pending.
    fn take_back_limit(&mut self, failed: &Pending) {
        let pending_max = self
            .pending
            .values()
            .filter_map(|other| match other.op {
                Op::Register { max_guesses, .. } => Some(max_guesses),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let restored = failed
            .max_guesses_before
            .max(pending_max)
            .max(self.unknown_register_max);
        if failed.generation == self.generation && restored < self.max_guesses {
            self.max_guesses = restored;
        }
    }

    fn complete_start(&mut self, op_id: u64, pending: &Pending, outcome: &Outcome) {
        let current = pending.generation == self.generation;
        let counts = current && self.existence != Existence::No;

        match outcome {
            Outcome::Ok(_) => {
                self.possible_starts += 1;
                if current {
                    self.ok_starts += 1;
                }
                if pending.locked_before && self.existence == Existence::Yes {
                    self.violate(
                        Property::LockoutAbsorbing,
                        op_id,
                        "RecoveryStart released a KE2 for a record observed locked".to_owned(),
                    );
                }
                if counts {
                    self.released += 1;
                    if self.unresolved == 0 {
                        self.enforce_budget(op_id);
                    }
                }
            }
            Outcome::Unknown { .. } => {
                self.possible_starts += 1;
                self.unknown_starts += 1;
                if counts {
                    self.unresolved += 1;
                }
            }
            Outcome::Fail { reason, .. } => {
                if reason == "LOCKED" {
                    self.observe_lock();
                }
            }
        }
    }

    /// Checks that the KE2 responses of the segment, counting every unresolved unknown
    /// RecoveryStart as released, fit the budget. Over the budget, a possible reset splits the
    /// segment once; without one it is a violation.
    fn enforce_budget(&mut self, op_id: u64) {
        let released = self.released + self.unresolved;
        if released <= self.max_guesses {
            return;
        }

        if self.used_resets < self.possible_resets {
            self.used_resets += 1;
            self.released = 0;
            self.unresolved = 0;
            return;
        }

        if self.existence == Existence::Yes {
            let message = format!(
                "{released} KE2 responses released, counting {} unknown RecoveryStarts, with a \
                 budget of {}",
                self.unresolved, self.max_guesses
            );
            self.violate(Property::GuessBudget, op_id, message);
        }
        // Counting starts again, so that one excess is reported once.
        self.released = 0;
        self.unresolved = 0;
    }

    fn certain_reset(&mut self, op_id: u64, pending: &Pending, value: &OpValue) {
        self.enforce_budget(op_id);

        match &pending.op {
            Op::Register {
                max_guesses,
                secret,
            } => {
                self.existence = Existence::Yes;
                self.max_guesses = *max_guesses;
                self.secrets = vec![secret.clone()];
            }
            Op::Delete => {
                self.existence = Existence::No;
                self.secrets.clear();
            }
            Op::RecoveryFinish { .. } => {
                self.check_recovery(op_id, pending, value);
                self.existence = Existence::Yes;
            }
            Op::RecoveryStart { .. } | Op::GetState => {}
        }

        let pending_resets = self
            .pending
            .values()
            .filter(|other| other.op.may_reset())
            .count();
        self.generation += 1;
        self.released = 0;
        self.unresolved = 0;
        self.possible_resets = u32::try_from(pending_resets).unwrap_or(u32::MAX);
        self.used_resets = 0;
        self.ok_starts = 0;
        self.base = pending.base;
        self.last_guesses_used = None;
        self.locked = false;
        self.lock_may_clear = false;
    }

    fn check_recovery(&mut self, op_id: u64, pending: &Pending, value: &OpValue) {
        if pending.locked_before {
            self.violate(
                Property::LockoutAbsorbing,
                op_id,
                "a recovery succeeded on a record observed locked".to_owned(),
            );
        }

        let OpValue::Secret { secret } = value else {
            return;
        };
        if !self.secrets.contains(secret) {
            let message = format!(
                "the recovery returned a secret that no registration of this user sent: {secret}"
            );
            self.violate(Property::LostRecord, op_id, message);
        }
    }

    fn complete_finish(&mut self, op_id: u64, pending: &Pending, outcome: &Outcome) {
        let Op::RecoveryFinish { right_password } = pending.op else {
            return;
        };

        match outcome {
            Outcome::Ok(_) if !right_password => self.violate(
                Property::WrongPasswordAccepted,
                op_id,
                "RecoveryFinish with a wrong KE3 succeeded".to_owned(),
            ),
            Outcome::Fail { reason, .. } if reason == "LOCKED" => self.observe_lock(),
            Outcome::Fail { reason, .. }
                if reason == "WRONG_PASSWORD" && right_password && self.is_certain(pending) =>
            {
                self.violate(
                    Property::LostRecord,
                    op_id,
                    "the registered password got WRONG_PASSWORD".to_owned(),
                );
            }
            _ => {}
        }
    }

    fn complete_read(&mut self, op_id: u64, pending: &Pending, value: &OpValue) {
        let OpValue::State {
            state,
            max_guesses,
            guesses_left,
        } = value
        else {
            return;
        };

        match state.as_str() {
            "locked" => self.observe_lock(),
            "not_registered" if self.is_certain(pending) => self.violate(
                Property::LostRecord,
                op_id,
                "an acknowledged registration reads as not registered".to_owned(),
            ),
            "registered" => {
                let used = max_guesses.saturating_sub(*guesses_left);
                self.check_registered_read(op_id, pending, used);
            }
            _ => {}
        }
    }

    fn check_registered_read(&mut self, op_id: u64, pending: &Pending, used: u32) {
        if pending.locked_before {
            self.violate(
                Property::LockoutAbsorbing,
                op_id,
                "a record observed locked reads as registered again".to_owned(),
            );
        }

        if pending.generation == self.generation {
            let bound = self.possible_starts - self.base.possible_starts
                + self.base.unknown_starts
                + self.open_starts();
            if used > bound {
                let message = format!(
                    "{used} guesses used, but at most {bound} RecoveryStarts may have counted"
                );
                self.violate(Property::PhantomIncrement, op_id, message);
            }
        }

        if !self.is_certain(pending) {
            return;
        }

        if used < pending.ok_starts_before {
            let message = format!(
                "{used} guesses used after {} ok RecoveryStarts",
                pending.ok_starts_before
            );
            self.violate(Property::LostIncrement, op_id, message);
        }

        // The committed count bounds how many unknown RecoveryStarts were counted, and so
        // released a KE2.
        // NOTE: an unknown RecoveryStart still in flight after this read (say, queued in a
        // paused node) can be counted later; the budget then relies on the servers' count.
        let counted_unknowns = used.saturating_sub(pending.ok_starts_before);
        self.unresolved = self.unresolved.min(counted_unknowns);
        self.enforce_budget(op_id);
        if let Some(last) = self.last_guesses_used
            && used < last
        {
            let message = format!("guesses used went from {last} down to {used} without a reset");
            self.violate(Property::CounterRollback, op_id, message);
        }
        self.last_guesses_used = Some(used);
    }

    /// Returns true when the record surely exists as the last certain reset left it: the
    /// operation belongs to the current generation and no reset of it may have happened.
    fn is_certain(&self, pending: &Pending) -> bool {
        pending.generation == self.generation
            && self.existence == Existence::Yes
            && self.possible_resets == 0
            && !self.locked
    }

    fn open_starts(&self) -> u32 {
        let open = self
            .pending
            .values()
            .filter(|pending| matches!(pending.op, Op::RecoveryStart { .. }))
            .count();
        u32::try_from(open).unwrap_or(u32::MAX)
    }

    fn observe_lock(&mut self) {
        if !self.locked {
            self.locked = true;
            self.lock_may_clear = false;
        }
    }

    fn violate(&mut self, property: Property, op_id: u64, message: String) {
        self.violations.push(Violation {
            property,
            user: self.user.clone(),
            op_id,
            message,
        });
    }
}
