//! The operation history: one `invoke` event when a client sends an operation and one
//! `complete` event with its outcome, in the order the recorder saw them.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// A vault operation as the workload invokes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Op {
    /// RegistrationStart and RegistrationFinish, recorded as one operation because only the
    /// finish changes state. `secret` is the hex of the registered secret.
    Register {
        max_guesses: u32,
        secret: String,
    },
    /// RecoveryStart with a KE1 for the right or a wrong password. An ok outcome means the
    /// client received a KE2, which tests one password.
    RecoveryStart {
        right_password: bool,
    },
    /// RecoveryFinish with the KE3 of a right password, or random bytes for a wrong one.
    RecoveryFinish {
        right_password: bool,
    },
    Delete,
    GetState,
}

impl Op {
    /// Returns true for operations that may start a new guess budget for the record: a
    /// registration, a recovery with the right password, and a delete.
    pub fn may_reset(&self) -> bool {
        match self {
            Op::Register { .. } | Op::Delete => true,
            Op::RecoveryFinish { right_password } => *right_password,
            Op::RecoveryStart { .. } | Op::GetState => false,
        }
    }
}

/// The value an ok operation returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "value", rename_all = "snake_case")]
pub enum OpValue {
    /// The operation took effect and returned nothing the checker uses.
    Done,
    /// A recovery returned this secret, in hex.
    Secret { secret: String },
    /// GetState returned this state: `not_registered`, `registered` or `locked`.
    State {
        state: String,
        max_guesses: u32,
        guesses_left: u32,
    },
}

/// The result of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outcome {
    Ok(OpValue),
    /// The operation surely did not take effect. `reason` is the vault's ErrorInfo reason,
    /// such as `LOCKED` or `WRONG_PASSWORD`.
    Fail {
        reason: String,
        guesses_left: Option<u32>,
    },
    /// The operation may or may not have taken effect, now or later.
    Unknown {
        reason: String,
    },
}

/// Whether an event starts or ends an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Invoke,
    Complete,
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Operation id, unique in the history, shared by its invoke and complete events.
    pub op_id: u64,
    /// Workload client that ran the operation.
    pub client: u32,
    pub user: String,
    /// Hex of the vault request id, or empty for calls without one.
    pub request_id: String,
    pub phase: Phase,
    /// Monotonic time since the history began, in nanoseconds.
    pub time_ns: u64,
    pub op: Op,
    /// The outcome, on `complete` events only.
    pub outcome: Option<Outcome>,
}

/// A shared, append-only recorder of events. Cloning is cheap and shares the events.
#[derive(Debug, Clone)]
pub struct History {
    inner: Arc<Mutex<Recorder>>,
}

#[derive(Debug)]
struct Recorder {
    start: Instant,
    next_op_id: u64,
    invoked: usize,
    events: Vec<Event>,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Recorder {
                start: Instant::now(),
                next_op_id: 1,
                invoked: 0,
                events: Vec::new(),
            })),
        }
    }

    /// Builds a history from events, for the checker's tests and for replays of saved files.
    pub fn from_events(events: Vec<Event>) -> Self {
        let next_op_id = events.iter().map(|event| event.op_id).max().unwrap_or(0) + 1;
        let invoked = events
            .iter()
            .filter(|event| event.phase == Phase::Invoke)
            .count();

        Self {
            inner: Arc::new(Mutex::new(Recorder {
                start: Instant::now(),
                next_op_id,
                invoked,
                events,
            })),
        }
    }

    /// Records the invocation of `op` and returns its operation id.
    pub fn invoke(&self, client: u32, user: &str, request_id: &str, op: &Op) -> u64 {
        let mut recorder = self.lock();
        let op_id = recorder.next_op_id;
        recorder.next_op_id += 1;
        recorder.invoked += 1;

        let event = Event {
            op_id,
            client,
            user: user.to_owned(),
            request_id: request_id.to_owned(),
            phase: Phase::Invoke,
            time_ns: recorder.elapsed_ns(),
            op: op.clone(),
            outcome: None,
        };
        recorder.events.push(event);
        op_id
    }

    /// Records the completion of operation `op_id` with `outcome`.
    ///
    /// # Panics
    ///
    /// Panics if `op_id` was never invoked, which is a bug in the workload.
    pub fn complete(&self, op_id: u64, outcome: Outcome) {
        let mut recorder = self.lock();
        let invoke = recorder
            .events
            .iter()
            .rev()
            .find(|event| event.op_id == op_id && event.phase == Phase::Invoke)
            .cloned()
            .unwrap_or_else(|| panic!("operation {op_id} completed without an invoke event"));

        let event = Event {
            phase: Phase::Complete,
            time_ns: recorder.elapsed_ns(),
            outcome: Some(outcome),
            ..invoke
        };
        recorder.events.push(event);
    }

    /// Returns the time since the history began, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.lock().elapsed_ns()
    }

    /// Returns a copy of every event, in recording order.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// Returns the number of operations invoked.
    pub fn op_count(&self) -> usize {
        self.lock().invoked
    }

    /// Writes the events to `path` as JSON lines.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);

        for event in self.events() {
            serde_json::to_writer(&mut file, &event)?;
            file.write_all(b"\n")?;
        }
        file.flush()
    }

    /// Reads a history that [`History::save`] wrote.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let file = std::io::BufReader::new(std::fs::File::open(path)?);
        let mut events = Vec::new();

        for line in file.lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            events.push(serde_json::from_str(&line)?);
        }
        Ok(Self::from_events(events))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Recorder {
    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
