//! The checker on hand-made histories: a clean one passes, each broken guarantee is caught,
//! and an unknown outcome that could exceed the budget fails.

use keyfleet_chaos::{Event, History, Op, OpValue, Outcome, Phase, Property, Verdict, check};

const USER: &str = "alice";

/// Builds a history one event at a time, on a clock that advances 1 µs per event.
#[derive(Default)]
struct Builder {
    events: Vec<Event>,
    next_op_id: u64,
    time_ns: u64,
}

impl Builder {
    fn invoke(&mut self, op: Op) -> u64 {
        self.next_op_id += 1;
        self.time_ns += 1000;
        self.events.push(Event {
            op_id: self.next_op_id,
            client: 0,
            user: USER.to_owned(),
            request_id: format!("{:032x}", self.next_op_id),
            phase: Phase::Invoke,
            time_ns: self.time_ns,
            op,
            outcome: None,
        });
        self.next_op_id
    }

    fn complete(&mut self, op_id: u64, outcome: Outcome) {
        let invoke = self
            .events
            .iter()
            .find(|event| event.op_id == op_id)
            .expect("the operation was invoked")
            .clone();
        self.time_ns += 1000;
        self.events.push(Event {
            phase: Phase::Complete,
            time_ns: self.time_ns,
            outcome: Some(outcome),
            ..invoke
        });
    }

    fn run(&mut self, op: Op, outcome: Outcome) -> &mut Self {
        let op_id = self.invoke(op);
        self.complete(op_id, outcome);
        self
    }

    fn register(&mut self, max_guesses: u32, secret: &str) -> &mut Self {
        let op = Op::Register {
            max_guesses,
            secret: secret.to_owned(),
        };
        self.run(op, ok())
    }

    fn start(&mut self, outcome: Outcome) -> &mut Self {
        let op = Op::RecoveryStart {
            right_password: false,
        };
        self.run(op, outcome)
    }

    fn wrong_guess(&mut self) -> &mut Self {
        self.start(ok());
        let op = Op::RecoveryFinish {
            right_password: false,
        };
        self.run(op, fail("WRONG_PASSWORD"))
    }

    fn recover(&mut self, outcome: Outcome) -> &mut Self {
        let start = Op::RecoveryStart {
            right_password: true,
        };
        self.run(start, ok());
        let finish = Op::RecoveryFinish {
            right_password: true,
        };
        self.run(finish, outcome)
    }

    fn state(&mut self, state: &str, max_guesses: u32, guesses_left: u32) -> &mut Self {
        let value = OpValue::State {
            state: state.to_owned(),
            max_guesses,
            guesses_left,
        };
        self.run(Op::GetState, Outcome::Ok(value))
    }

    fn history(&self) -> History {
        History::from_events(self.events.clone())
    }
}

fn ok() -> Outcome {
    Outcome::Ok(OpValue::Done)
}

fn fail(reason: &str) -> Outcome {
    Outcome::Fail {
        reason: reason.to_owned(),
        guesses_left: None,
    }
}

fn unknown() -> Outcome {
    Outcome::Unknown {
        reason: "timed out".to_owned(),
    }
}

fn secret(hex: &str) -> Outcome {
    Outcome::Ok(OpValue::Secret {
        secret: hex.to_owned(),
    })
}

/// Returns the properties of the violations, or panics if the verdict is not invalid.
fn violated(builder: &Builder) -> Vec<Property> {
    match check(&builder.history()) {
        Verdict::Invalid { violations } => violations.iter().map(|v| v.property).collect(),
        other => panic!("expected an invalid verdict, got {other:?}"),
    }
}

#[test]
fn clean_history_passes() {
    let mut history = Builder::default();
    history
        .register(3, "aa")
        .wrong_guess()
        .state("registered", 3, 2)
        .wrong_guess()
        .recover(secret("aa"))
        .state("registered", 3, 3)
        .wrong_guess()
        .wrong_guess()
        .wrong_guess()
        .start(fail("LOCKED"))
        .state("locked", 3, 0)
        .register(2, "bb")
        .recover(secret("bb"))
        .state("registered", 2, 2);

    let verdict = check(&history.history());

    assert_eq!(verdict, Verdict::Valid { users: 1, ops: 21 });
}

#[test]
fn budget_exceeded_is_caught() {
    let mut history = Builder::default();
    history
        .register(2, "aa")
        .wrong_guess()
        .wrong_guess()
        .wrong_guess()
        .state("locked", 2, 0);

    assert_eq!(violated(&history), vec![Property::GuessBudget]);
}

#[test]
fn failed_register_keeps_old_limit() {
    let mut history = Builder::default();
    history.register(2, "aa");
    history.run(
        Op::Register {
            max_guesses: 100,
            secret: "bb".to_owned(),
        },
        fail("INVALID_ARGUMENT"),
    );
    history
        .wrong_guess()
        .wrong_guess()
        .wrong_guess()
        .state("locked", 2, 0);

    assert_eq!(violated(&history), vec![Property::GuessBudget]);
}

#[test]
fn unknown_start_over_budget_fails() {
    let mut history = Builder::default();
    history
        .register(2, "aa")
        .wrong_guess()
        .wrong_guess()
        .start(unknown())
        .state("locked", 2, 0);

    assert_eq!(violated(&history), vec![Property::GuessBudget]);
}

#[test]
fn unknown_start_never_completing_counts() {
    let mut history = Builder::default();
    history.register(1, "aa").wrong_guess();
    history.invoke(Op::RecoveryStart {
        right_password: false,
    });
    history.state("locked", 1, 0);

    let properties = violated(&history);

    assert!(
        properties.contains(&Property::GuessBudget),
        "{properties:?}"
    );
}

#[test]
fn unknown_recovery_may_reset_budget() {
    let mut history = Builder::default();
    history
        .register(3, "aa")
        .wrong_guess()
        .wrong_guess()
        .recover(unknown())
        .wrong_guess()
        .wrong_guess()
        .state("registered", 3, 1);

    let verdict = check(&history.history());

    assert!(verdict.is_valid(), "{verdict:?}");
}

#[test]
fn lost_increment_is_caught() {
    let mut history = Builder::default();
    history
        .register(3, "aa")
        .wrong_guess()
        .state("registered", 3, 3);

    assert_eq!(violated(&history), vec![Property::LostIncrement]);
}

#[test]
fn phantom_increment_is_caught() {
    let mut history = Builder::default();
    history
        .register(3, "aa")
        .wrong_guess()
        .state("registered", 3, 1);

    assert_eq!(violated(&history), vec![Property::PhantomIncrement]);
}

#[test]
fn counter_rollback_is_caught() {
    let mut history = Builder::default();
    history
        .register(5, "aa")
        .wrong_guess()
        .start(unknown())
        .state("registered", 5, 3)
        .state("registered", 5, 4);

    assert_eq!(violated(&history), vec![Property::CounterRollback]);
}

#[test]
fn lockout_undone_is_caught() {
    let mut history = Builder::default();
    history
        .register(2, "aa")
        .start(fail("LOCKED"))
        .state("registered", 2, 2);

    assert_eq!(violated(&history), vec![Property::LockoutAbsorbing]);
}

#[test]
fn recovery_after_lockout_is_caught() {
    let mut history = Builder::default();
    history
        .register(2, "aa")
        .state("locked", 2, 0)
        .recover(secret("aa"))
        .state("registered", 2, 2);

    let properties = violated(&history);

    assert!(
        properties.contains(&Property::LockoutAbsorbing),
        "{properties:?}"
    );
}

#[test]
fn lost_registration_is_caught() {
    let mut history = Builder::default();
    history.register(3, "aa").state("not_registered", 0, 0);

    assert_eq!(violated(&history), vec![Property::LostRecord]);
}

#[test]
fn wrong_secret_is_caught() {
    let mut history = Builder::default();
    history
        .register(3, "aa")
        .recover(secret("bb"))
        .state("registered", 3, 3);

    assert_eq!(violated(&history), vec![Property::LostRecord]);
}

#[test]
fn rejected_right_password_is_caught() {
    let mut history = Builder::default();
    history
        .register(3, "aa")
        .recover(fail("WRONG_PASSWORD"))
        .state("registered", 3, 2);

    assert_eq!(violated(&history), vec![Property::LostRecord]);
}

#[test]
fn accepted_wrong_password_is_caught() {
    let mut history = Builder::default();
    history.register(3, "aa").start(ok());
    history.run(
        Op::RecoveryFinish {
            right_password: false,
        },
        secret(""),
    );
    history.state("registered", 3, 3);

    let properties = violated(&history);

    assert!(
        properties.contains(&Property::WrongPasswordAccepted),
        "{properties:?}"
    );
}

#[test]
fn missing_final_read_is_unknown() {
    let mut history = Builder::default();
    history.register(3, "aa").wrong_guess();

    let verdict = check(&history.history());

    assert!(matches!(verdict, Verdict::Unknown { .. }), "{verdict:?}");
    assert!(!verdict.is_valid());
}

#[test]
fn failed_final_read_is_unknown() {
    let mut history = Builder::default();
    history.register(3, "aa").run(Op::GetState, unknown());

    let verdict = check(&history.history());

    assert!(matches!(verdict, Verdict::Unknown { .. }), "{verdict:?}");
}

#[test]
fn saved_history_loads_back() {
    let mut history = Builder::default();
    history
        .register(2, "aa")
        .wrong_guess()
        .wrong_guess()
        .start(unknown())
        .state("locked", 2, 0);
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("history.jsonl");

    history.history().save(&path).expect("save the history");
    let loaded = History::load(&path).expect("load the history");

    assert_eq!(loaded.events(), history.history().events());
    assert_eq!(check(&loaded), check(&history.history()));
}
