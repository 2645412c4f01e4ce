//! One workload client: a user, its password, the node it talks to, and what it believes about
//! its record.

use rand::RngCore;
use rand::rngs::OsRng;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::history::{History, Op, OpValue, Outcome};
use crate::vault_driver::{CallError, PreparedFinish, VaultDriver};
use crate::workload::WorkloadConfig;

/// Pause after a failed or unknown call.
const ERROR_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// The wrong password every wrong guess uses.
const WRONG_PASSWORD: &[u8] = b"chaos wrong password";

#[derive(Debug)]
pub(super) struct Client {
    id: u32,
    user: String,
    password: Vec<u8>,
    driver: VaultDriver,
    endpoints: Vec<String>,
    history: History,
    rng: fastrand::Rng,
    max_guesses: std::ops::RangeInclusive<u32>,
    burst: u32,
    /// False until a registration is acknowledged, and again after anything that may have
    /// replaced, deleted or locked the record; the next step then registers.
    registered: bool,
    /// True after a RecoveryStart with an unknown outcome: the next step reads the state, so
    /// the committed count bounds the guesses that start may have released.
    needs_read: bool,
}

impl Client {
    pub(super) fn new(
        config: &WorkloadConfig,
        history: History,
        id: u32,
        user: &str,
        endpoint: String,
        seed: u64,
    ) -> Self {
        let token = (config.tokens)(user);
        let driver = VaultDriver::new(
            &endpoint,
            token,
            &config.tenant,
            user,
            &config.fleet_id,
            config.rpc_timeout,
        )
        .expect("workload endpoints are valid URIs");

        Self {
            id,
            user: user.to_owned(),
            password: format!("chaos password of {user}").into_bytes(),
            driver,
            endpoints: config.endpoints.values().cloned().collect(),
            history,
            rng: fastrand::Rng::with_seed(seed),
            max_guesses: config.max_guesses.clone(),
            burst: config.burst,
            registered: false,
            needs_read: false,
        }
    }

    pub(super) fn is_registered(&self) -> bool {
        self.registered
    }

    /// Runs one step: a registration when the record needs one, otherwise a random action.
    pub(super) async fn step(&mut self) {
        if self.needs_read {
            if self.read_state().await {
                self.needs_read = false;
            }
            return;
        }
        if !self.registered {
            self.register().await;
            return;
        }

        match self.rng.u32(0..100) {
            0..45 => self.guess(false).await,
            45..65 => self.guess(true).await,
            65..82 => {
                self.read_state().await;
            }
            82..87 => self.delete().await,
            _ => self.burst().await,
        }
    }

    pub(super) async fn register(&mut self) {
        let mut secret = vec![0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let max_guesses = self.rng.u32(self.max_guesses.clone());
        let op = Op::Register {
            max_guesses,
            secret: hex(&secret),
        };
        let request_id = new_request_id();

        let driver = self.driver.clone();
        let password = self.password.clone();
        let call = driver.register(&password, &secret, max_guesses, &request_id);
        match self.record(op, &request_id, call, |()| OpValue::Done).await {
            Ok(()) => self.registered = true,
            Err(error) => self.after_error(&error),
        }
    }

    /// Starts and finishes one recovery with the right or a wrong password.
    async fn guess(&mut self, right: bool) {
        let password = if right {
            self.password.clone()
        } else {
            WRONG_PASSWORD.to_vec()
        };

        let Some(login) = self.start(right, &password).await else {
            return;
        };
        let finish = self.driver.prepare_finish(login, &password);
        self.finish(right, &finish).await;
    }

    /// Sends `burst` RecoveryStarts with a wrong password at once, then finishes each.
    async fn burst(&mut self) {
        let mut starts = JoinSet::new();

        for _ in 0..self.burst {
            let driver = self.driver.clone();
            let history = self.history.clone();
            let (id, user) = (self.id, self.user.clone());

            starts.spawn(async move {
                let request_id = new_request_id();
                let op = Op::RecoveryStart {
                    right_password: false,
                };
                let op_id = history.invoke(id, &user, &hex(&request_id), &op);
                let result = driver.recovery_start(WRONG_PASSWORD, &request_id).await;
                history.complete(op_id, outcome_of(&result, |_| OpValue::Done));
                result
            });
        }

        let mut logins = Vec::new();
        while let Some(joined) = starts.join_next().await {
            match joined {
                Ok(Ok(login)) => logins.push(login),
                Ok(Err(error)) => {
                    if matches!(error.outcome, Outcome::Unknown { .. }) {
                        self.needs_read = true;
                    }
                    self.after_error(&error);
                }
                Err(error) => tracing::error!(%error, "a burst RecoveryStart panicked"),
            }
        }

        for login in logins {
            let finish = self.driver.prepare_finish(login, WRONG_PASSWORD);
            self.finish(false, &finish).await;
        }
    }

    async fn start(
        &mut self,
        right: bool,
        password: &[u8],
    ) -> Option<crate::vault_driver::StartedLogin> {
        let request_id = new_request_id();
        let op = Op::RecoveryStart {
            right_password: right,
        };
        let driver = self.driver.clone();
        let call = driver.recovery_start(password, &request_id);

        match self.record(op, &request_id, call, |_| OpValue::Done).await {
            Ok(login) => Some(login),
            Err(error) => {
                self.after_error(&error);
                None
            }
        }
    }

    /// Sends one RecoveryFinish. Returns the error, if any.
    async fn finish(&mut self, right: bool, finish: &PreparedFinish) -> Option<CallError> {
        let request_id = new_request_id();
        let op = Op::RecoveryFinish {
            right_password: right,
        };
        let driver = self.driver.clone();
        let call = driver.send_finish(finish, &request_id);
        let to_value = |secret: &Vec<u8>| OpValue::Secret {
            secret: hex(secret),
        };

        match self.record(op, &request_id, call, to_value).await {
            Ok(_) => None,
            Err(error) => {
                if right && matches!(error.outcome, Outcome::Unknown { .. }) {
                    self.registered = false;
                }
                self.after_error(&error);
                Some(error)
            }
        }
    }

    /// Reads the record's state. Returns true if the read succeeded.
    pub(super) async fn read_state(&mut self) -> bool {
        let driver = self.driver.clone();
        let result = self
            .record(Op::GetState, &[], driver.state(), Clone::clone)
            .await;

        match result {
            Ok(OpValue::State { state, .. }) => {
                if state != "registered" {
                    self.registered = false;
                }
                true
            }
            Ok(_) => true,
            Err(error) => {
                self.after_error(&error);
                false
            }
        }
    }

    async fn delete(&mut self) {
        let request_id = new_request_id();
        let driver = self.driver.clone();
        let call = driver.delete(&request_id);

        if let Err(error) = self
            .record(Op::Delete, &request_id, call, |()| OpValue::Done)
            .await
        {
            self.after_error(&error);
        }
        self.registered = false;
    }

    /// Sends RecoveryStart with the right password until one returns a KE2 or `deadline`
    /// passes, and prepares the finish.
    pub(super) async fn start_right_guess(&mut self, deadline: Instant) -> Option<PreparedFinish> {
        let password = self.password.clone();

        while Instant::now() < deadline {
            if let Some(login) = self.start(true, &password).await {
                return Some(self.driver.prepare_finish(login, &password));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        None
    }

    /// Sends `finish` through `endpoints` until it succeeds or fails for sure, or `deadline`
    /// passes.
    pub(super) async fn finish_until_settled(
        &mut self,
        finish: &PreparedFinish,
        endpoints: &[String],
        deadline: Instant,
    ) {
        self.endpoints = endpoints.to_vec();
        self.switch_to(&endpoints[0]);

        while Instant::now() < deadline {
            let Some(error) = self.finish(true, finish).await else {
                return;
            };
            if !error.try_elsewhere() {
                return;
            }
        }
    }

    /// Follows a leader hint, or moves to another node after a timeout or a lost connection,
    /// and clears the registration flag when the record may have changed under the client.
    fn after_error(&mut self, error: &CallError) {
        if let Outcome::Fail { reason, .. } = &error.outcome
            && reason == "LOCKED"
        {
            self.registered = false;
        }

        if let Some(leader) = &error.leader_endpoint {
            let leader = leader.clone();
            self.switch_to(&leader);
            return;
        }

        if error.try_elsewhere() {
            let next = self.endpoints[self.rng.usize(..self.endpoints.len())].clone();
            self.switch_to(&next);
        }
    }

    fn switch_to(&mut self, endpoint: &str) {
        if self.driver.endpoint() == endpoint {
            return;
        }
        match self.driver.with_endpoint(endpoint) {
            Ok(driver) => self.driver = driver,
            Err(error) => tracing::warn!(endpoint, %error, "invalid leader endpoint ignored"),
        }
    }

    /// Records `call` in the history as `op`, and returns its result.
    async fn record<T, F>(
        &mut self,
        op: Op,
        request_id: &[u8],
        call: F,
        to_value: impl FnOnce(&T) -> OpValue,
    ) -> Result<T, CallError>
    where
        F: Future<Output = Result<T, CallError>>,
    {
        let may_reset = op.may_reset();
        let is_start = matches!(op, Op::RecoveryStart { .. });
        let op_id = self
            .history
            .invoke(self.id, &self.user, &hex(request_id), &op);
        let result = call.await;
        let outcome = outcome_of(&result, to_value);

        let unknown = matches!(outcome, Outcome::Unknown { .. });
        if unknown && may_reset {
            self.registered = false;
        }
        if unknown && is_start {
            self.needs_read = true;
        }
        self.history.complete(op_id, outcome);

        if result.is_err() {
            // Back off, so that a client facing a node that is down does not spin.
            tokio::time::sleep(ERROR_BACKOFF).await;
        }
        result
    }
}

fn outcome_of<T>(result: &Result<T, CallError>, to_value: impl FnOnce(&T) -> OpValue) -> Outcome {
    match result {
        Ok(value) => Outcome::Ok(to_value(value)),
        Err(error) => error.outcome.clone(),
    }
}

fn new_request_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    id
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
