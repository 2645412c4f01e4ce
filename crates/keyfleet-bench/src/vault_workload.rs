//! The keyfleet workload: closed-loop clients that register users, recover with the right
//! password, and guess wrong passwords.

use std::sync::Arc;
use std::time::Duration;

use keyfleet_client::{LeaderRouter, RetryPolicy};
use keyfleet_protocol::{KsfParams, Suite};
use keyfleet_sdk::VaultClient;
use keyfleet_token::{TenantSigningKey, TokenClaims};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::BenchError;
use crate::latency::{OpRecorder, OpSummary, merge_all};
use crate::recovery_client::{BenchUser, guess_wrong, recover};

/// Lifetime of the tenant tokens the benchmark mints, in seconds: the vault's default maximum.
const TOKEN_LIFETIME_SECS: u64 = 3600;

/// Guesses left at which a wrong-password client registers its user again, before the record
/// locks.
const REREGISTER_AT_GUESSES_LEFT: u32 = 1;

type Ksf = <Suite as opaque_ke::CipherSuite>::Ksf;

/// Results of the keyfleet workload.
#[derive(Debug, Clone, Serialize)]
pub struct FleetSummary {
    /// Registrations of the user population, before the timed recovery phases.
    pub register: OpSummary,
    /// Right-password recoveries: the whole recovery, then its two calls.
    pub recovery: OpSummary,
    pub recovery_start: OpSummary,
    pub recovery_finish: OpSummary,
    /// Wrong-password recoveries: RecoveryStart (one committed guess each), then the rejected
    /// RecoveryFinish, then the registrations that refill the guesses.
    pub wrong_start: OpSummary,
    pub wrong_finish: OpSummary,
    pub wrong_reregister: OpSummary,
    /// Committed guesses per second in the wrong-password phase.
    pub wrong_guesses_per_sec: f64,
}

/// Clients of one fleet, with the tenant key that mints their tokens.
#[derive(Debug, Clone)]
pub(crate) struct VaultWorkload {
    router: LeaderRouter,
    sdk: VaultClient,
    tenant_key: Arc<TenantSigningKey>,
    tenant: String,
    fleet: String,
    ksf_params: KsfParams,
}

impl VaultWorkload {
    pub(crate) fn new(
        endpoints: Vec<String>,
        tenant_key: TenantSigningKey,
        tenant: &str,
        fleet: &str,
        ksf_params: KsfParams,
    ) -> Result<Self, BenchError> {
        let router =
            LeaderRouter::new(endpoints.clone(), RetryPolicy::default()).map_err(|error| {
                BenchError::Config {
                    setting: "endpoints",
                    reason: error.to_string(),
                }
            })?;
        let sdk = VaultClient::new(endpoints, RetryPolicy::default())
            .map_err(|error| BenchError::Config {
                setting: "endpoints",
                reason: error.to_string(),
            })?
            .with_ksf(ksf_params);

        Ok(Self {
            router,
            sdk,
            tenant_key: Arc::new(tenant_key),
            tenant: tenant.to_owned(),
            fleet: fleet.to_owned(),
            ksf_params,
        })
    }

    /// Registers `users` users with `concurrency` clients, then runs right-password recoveries
    /// and wrong-password recoveries for `phase` each.
    pub(crate) async fn run(
        &self,
        users: usize,
        concurrency: usize,
        phase: Duration,
    ) -> Result<FleetSummary, BenchError> {
        let population: Vec<BenchUser> = (0..users)
            .map(|index| self.user(&format!("user-{index}")))
            .collect::<Result<_, _>>()?;

        tracing::info!(users, concurrency, "registering the user population");
        let started = Instant::now();
        let parts = self
            .per_client(&population, concurrency, |workload, mine| async move {
                vec![workload.register_all(&mine).await]
            })
            .await?;
        let register = merge_all(parts);
        let register = register[0].summary(started.elapsed());
        if register.errors > 0 {
            return Err(BenchError::Vault {
                reason: format!(
                    "{} of {users} registrations failed, for example: {:?}",
                    register.errors, register.error_samples
                ),
            });
        }

        tracing::info!(?phase, "running right-password recoveries");
        let started = Instant::now();
        let deadline = started + phase;
        let parts = self
            .per_client(&population, concurrency, move |workload, mine| async move {
                workload.recover_until(&mine, deadline).await
            })
            .await?;
        let elapsed = started.elapsed();
        let recovery = merge_all(parts);

        tracing::info!(?phase, "running wrong-password recoveries");
        let victims: Vec<BenchUser> = (0..concurrency)
            .map(|index| self.user(&format!("wrong-{index}")))
            .collect::<Result<_, _>>()?;
        let started = Instant::now();
        let deadline = started + phase;
        let parts = self
            .per_client(&victims, concurrency, move |workload, mine| async move {
                workload.guess_until(&mine[0], deadline).await
            })
            .await?;
        let wrong_elapsed = started.elapsed();
        let wrong = merge_all(parts);

        Ok(FleetSummary {
            register,
            recovery: recovery[0].summary(elapsed),
            recovery_start: recovery[1].summary(elapsed),
            recovery_finish: recovery[2].summary(elapsed),
            wrong_guesses_per_sec: wrong[0].ok() as f64 / wrong_elapsed.as_secs_f64(),
            wrong_start: wrong[0].summary(wrong_elapsed),
            wrong_finish: wrong[1].summary(wrong_elapsed),
            wrong_reregister: wrong[2].summary(wrong_elapsed),
        })
    }

    /// Runs `work` in `concurrency` tasks, each with its share of `users` (user `i` goes to
    /// task `i % concurrency`), and returns each task's recorders.
    async fn per_client<F, Fut>(
        &self,
        users: &[BenchUser],
        concurrency: usize,
        work: F,
    ) -> Result<Vec<Vec<OpRecorder>>, BenchError>
    where
        F: Fn(Self, Vec<BenchUser>) -> Fut,
        Fut: Future<Output = Vec<OpRecorder>> + Send + 'static,
    {
        let mut tasks = JoinSet::new();
        for client in 0..concurrency {
            let mine: Vec<BenchUser> = users
                .iter()
                .skip(client)
                .step_by(concurrency)
                .cloned()
                .collect();
            tasks.spawn(work(self.clone(), mine));
        }

        let mut parts = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            parts.push(joined.map_err(|error| BenchError::Vault {
                reason: format!("a benchmark client task failed: {error}"),
            })?);
        }
        Ok(parts)
    }

    async fn register_all(&self, users: &[BenchUser]) -> OpRecorder {
        let mut recorder = OpRecorder::new("register");
        for user in users {
            self.register_one(user, &mut recorder).await;
        }
        recorder
    }

    async fn register_one(&self, user: &BenchUser, recorder: &mut OpRecorder) {
        let mut secret = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(secret.as_mut());

        let started = std::time::Instant::now();
        match self
            .sdk
            .register(&user.token, &user.user, &user.password, secret.as_ref(), 0)
            .await
        {
            Ok(_) => recorder.record(started.elapsed()),
            Err(error) => recorder.record_error(error.to_string()),
        }
    }

    /// Recovers each of `users` in turn until `deadline`. Returns the recorders of the whole
    /// recovery, RecoveryStart and RecoveryFinish.
    async fn recover_until(&self, users: &[BenchUser], deadline: Instant) -> Vec<OpRecorder> {
        let mut whole = OpRecorder::new("recovery");
        let mut start = OpRecorder::new("recovery_start");
        let mut finish = OpRecorder::new("recovery_finish");
        let ksf = self.ksf();

        for user in users.iter().cycle() {
            if Instant::now() >= deadline {
                break;
            }
            let started = std::time::Instant::now();
            match recover(&self.router, user, &ksf).await {
                Ok(times) => {
                    whole.record(started.elapsed());
                    start.record(times.start);
                    finish.record(times.finish);
                }
                Err(message) => whole.record_error(message),
            }
        }
        vec![whole, start, finish]
    }

    /// Guesses wrong passwords for `user` until `deadline`, registering the user again before
    /// the record locks. Returns the recorders of RecoveryStart, RecoveryFinish and the
    /// registrations.
    async fn guess_until(&self, user: &BenchUser, deadline: Instant) -> Vec<OpRecorder> {
        let mut start = OpRecorder::new("wrong_start");
        let mut finish = OpRecorder::new("wrong_finish");
        let mut reregister = OpRecorder::new("wrong_reregister");
        self.register_one(user, &mut reregister).await;

        while Instant::now() < deadline {
            match guess_wrong(&self.router, user).await {
                Ok(guess) => {
                    start.record(guess.times.start);
                    finish.record(guess.times.finish);
                    if guess.guesses_left <= REREGISTER_AT_GUESSES_LEFT {
                        self.register_one(user, &mut reregister).await;
                    }
                }
                Err(message) => {
                    start.record_error(message);
                    // The record may be locked after an unexpected failure: start afresh.
                    self.register_one(user, &mut reregister).await;
                }
            }
        }
        vec![start, finish, reregister]
    }

    fn ksf(&self) -> Ksf {
        self.ksf_params
            .argon2()
            .expect("the configuration checked the client KSF parameters")
    }

    fn user(&self, user: &str) -> Result<BenchUser, BenchError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let claims = TokenClaims {
            tenant: self.tenant.clone(),
            user: user.to_owned(),
            fleet: self.fleet.clone(),
            issued_at: now,
            expires_at: now + TOKEN_LIFETIME_SECS,
        };
        let token = self
            .tenant_key
            .mint(&claims)
            .map_err(|error| BenchError::Config {
                setting: "tenant",
                reason: format!("failed to mint a token for {user}: {error}"),
            })?;

        let mut password = vec![0u8; 16];
        OsRng.fill_bytes(&mut password);
        Ok(BenchUser {
            user: user.to_owned(),
            record_id: keyfleet_token::record_id(&self.tenant, user),
            fleet_id: self.fleet.clone(),
            token: Zeroizing::new(token),
            password: Zeroizing::new(hex::encode(password).into_bytes()),
        })
    }
}
