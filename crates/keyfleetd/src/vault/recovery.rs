//! RecoveryStart and RecoveryFinish: the guess-limited OPAQUE login.

use keyfleet_api::vault::{
    RecoveryFinishRequest, RecoveryFinishResponse, RecoveryStartRequest, RecoveryStartResponse,
};
use keyfleet_raft::{
    Command, GuessOutcome, LockOutcome, ResetOutcome, Response, UserRecord, UserStatus,
};
use keyfleet_vault::{LoginAttempt, LoginTicket, RecordState, SessionKey, StoredRecord, Vault};
use tonic::Status;

use super::auth::Caller;
use super::{VaultService, request_id, status};

#[cfg(feature = "broken-count-guess-after-answer")]
mod answer_first;

/// A guess that `ConsumeGuess` counted.
struct CountedGuess {
    guesses_used: u32,
    version: u64,
    oprf_salt: [u8; keyfleet_raft::OPRF_SALT_LEN],
    last: bool,
}

impl VaultService {
    pub(super) async fn start_recovery(
        &self,
        caller: &Caller,
        request: RecoveryStartRequest,
    ) -> Result<RecoveryStartResponse, Status> {
        let node_id = self.replica.node_id;
        let user = caller.record.as_str();

        Vault::check_credential_request(user, &request.credential_request)
            .map_err(|error| status::vault_error(node_id, error))?;
        let request_id = request_id::derive(
            "consume_guess",
            &caller.record,
            &request.request_id,
            &[&request.credential_request],
        )?;
        let vault = self.core.vault().await?;

        #[cfg(feature = "broken-count-guess-after-answer")]
        if self.believes_it_leads() {
            return self
                .answer_before_counting(caller, &request.credential_request, request_id, &vault)
                .await;
        }

        let counted = self.consume_guess(caller, request_id).await?;
        let stored = match &counted {
            Some(guess) => self.counted_record(caller, guess).await?,
            None => None,
        };

        if let (Some(guess), Some(_)) = (&counted, &stored)
            && guess.last
        {
            self.lockouts
                .lock_after_ticket_expiry(caller.record.clone(), guess.version);
        }

        let start = vault
            .recovery_start(user, &request.credential_request, stored.as_ref())
            .await
            .map_err(|error| status::vault_error(node_id, error))?;

        Ok(RecoveryStartResponse {
            credential_response: start.response,
            ticket: start.ticket.as_bytes().to_vec(),
            bundle_epoch: self.replica.bundle_epoch().await?,
        })
    }

    /// Commits one guess. Returns the counted guess, `None` for a user with no record, or the
    /// `LOCKED` status for a record with no guess left, which it locks.
    async fn consume_guess(
        &self,
        caller: &Caller,
        request_id: keyfleet_raft::RequestId,
    ) -> Result<Option<CountedGuess>, Status> {
        let command = Command::ConsumeGuess {
            user: caller.record.clone(),
        };
        let response = self.replica.run(request_id, command).await?;
        match response {
            Response::ConsumeGuess(GuessOutcome::Counted {
                guesses_used,
                version,
                oprf_salt,
                ..
            }) => {
                metrics::counter!(crate::metrics::GUESSES_COUNTED).increment(1);
                Ok(Some(CountedGuess {
                    guesses_used,
                    version,
                    oprf_salt,
                    last: false,
                }))
            }
            Response::ConsumeGuess(GuessOutcome::LastGuessCounted {
                guesses_used,
                version,
                oprf_salt,
            }) => {
                metrics::counter!(crate::metrics::GUESSES_COUNTED).increment(1);
                Ok(Some(CountedGuess {
                    guesses_used,
                    version,
                    oprf_salt,
                    last: true,
                }))
            }
            Response::ConsumeGuess(GuessOutcome::NotFound) => Ok(None),
            Response::ConsumeGuess(GuessOutcome::Locked) => {
                self.lock_exhausted(caller).await?;
                Err(status::locked())
            }
            Response::Rejected(rejection) => Err(status::rejected(&rejection)),
            other => Err(status::internal(
                self.replica.node_id,
                &format!("ConsumeGuess returned an unexpected outcome: {other:?}"),
            )),
        }
    }

    /// Locks a registered record that has no guess left: a guess beyond the budget means the
    /// last one was not finished successfully.
    async fn lock_exhausted(&self, caller: &Caller) -> Result<(), Status> {
        let Some(record) = self.replica.local_user(&caller.record).await? else {
            return Ok(());
        };

        if record.status == UserStatus::Registered {
            let outcome = self
                .lockouts
                .lock_now(caller.record.clone(), record.version)
                .await?;
            tracing::info!(node_id = self.replica.node_id, user = %caller.record, ?outcome, "exhausted record locked");
        }
        Ok(())
    }

    /// Reads the record the guess was counted on, with the state right after the count. Returns
    /// `None` when the record was erased, deleted or locked since, so the login runs on the
    /// dummy record.
    ///
    /// A retry that the dedup table serves returns the first outcome, which may belong to an
    /// earlier registration. Building its KE2 from the current record would evaluate the new
    /// registration's OPRF without counting a guess, so a salt that differs is `TICKET_STALE`.
    async fn counted_record(
        &self,
        caller: &Caller,
        guess: &CountedGuess,
    ) -> Result<Option<StoredRecord>, Status> {
        let record = self.replica.local_user(&caller.record).await?;

        let Some(record) = record.filter(|record| record.status == UserStatus::Registered) else {
            return Ok(None);
        };

        if record.oprf_salt != guess.oprf_salt {
            return Err(status::stale(
                "recovery start: the user registered again after this guess was counted",
            ));
        }

        let state = RecordState {
            version: guess.version,
            guesses_used: guess.guesses_used,
        };
        self.stored_record(&record, state).map(Some)
    }

    fn stored_record(
        &self,
        record: &UserRecord,
        state: RecordState,
    ) -> Result<StoredRecord, Status> {
        let node_id = self.replica.node_id;
        let blob = |bytes: &[u8]| {
            keyfleet_hsm::SealedBlob::from_bytes(bytes.to_vec())
                .map_err(|error| status::internal(node_id, &error))
        };

        Ok(StoredRecord {
            password_file: blob(record.password_file.as_bytes())?,
            sealed_secret: blob(record.sealed_secret.as_bytes())?,
            oprf_salt: record.oprf_salt,
            state,
        })
    }

    pub(super) async fn finish_recovery(
        &self,
        caller: &Caller,
        request: RecoveryFinishRequest,
    ) -> Result<RecoveryFinishResponse, Status> {
        let node_id = self.replica.node_id;
        let request_id = request_id::derive(
            "reset_guesses",
            &caller.record,
            &request.request_id,
            &[&request.ticket, &request.credential_finalization],
        )?;

        let vault = self.core.vault().await?;
        let ticket = LoginTicket::from_bytes(request.ticket)
            .map_err(|error| status::vault_error(node_id, error))?;
        let attempt = vault
            .recovery_verify(
                caller.record.as_str(),
                &ticket,
                &request.credential_finalization,
            )
            .await
            .map_err(|error| status::vault_error(node_id, error))?;

        let LoginAttempt {
            issued_at,
            session_key,
        } = attempt;
        match session_key {
            Some(session_key) => {
                self.release_secret(caller, &vault, request_id, issued_at, &session_key)
                    .await
            }
            None => Err(self.failed_guess(caller, issued_at).await?),
        }
    }

    /// Resets the count at the ticket's version, then returns the secret of the record at the
    /// reset's version, encrypted under the session key.
    async fn release_secret(
        &self,
        caller: &Caller,
        vault: &Vault,
        request_id: keyfleet_raft::RequestId,
        issued_at: RecordState,
        session_key: &SessionKey,
    ) -> Result<RecoveryFinishResponse, Status> {
        let node_id = self.replica.node_id;
        let command = Command::ResetGuesses {
            user: caller.record.clone(),
            expected_version: issued_at.version,
        };
        let response = self.replica.run(request_id, command).await?;
        let version = match response {
            Response::ResetGuesses(ResetOutcome::Reset { version }) => version,
            Response::ResetGuesses(ResetOutcome::Locked) => return Err(status::locked()),
            Response::ResetGuesses(
                ResetOutcome::VersionMismatch { .. } | ResetOutcome::NotFound,
            ) => return Err(status::stale("login ticket")),
            other => {
                return Err(status::internal(
                    node_id,
                    &format!("ResetGuesses returned an unexpected outcome: {other:?}"),
                ));
            }
        };

        // The record must be the one the reset applied to: a registration that replaced it
        // right after the reset has another secret.
        let record = self
            .replica
            .local_user(&caller.record)
            .await?
            .filter(|record| record.version == version)
            .ok_or_else(|| status::stale("login ticket"))?;
        let stored = self.stored_record(&record, issued_at)?;

        let encrypted_secret = vault
            .encrypt_recovered_secret(caller.record.as_str(), session_key, &stored)
            .await
            .map_err(|error| status::vault_error(node_id, error))?;
        tracing::info!(node_id, user = %caller.record, version, "recovery succeeded; guesses reset");
        metrics::counter!(crate::metrics::RECOVERIES_SUCCEEDED).increment(1);

        Ok(RecoveryFinishResponse { encrypted_secret })
    }

    /// Builds the status returned for a KE3 that did not verify, and locks the record when the
    /// guess was its last.
    async fn failed_guess(
        &self,
        caller: &Caller,
        issued_at: RecordState,
    ) -> Result<Status, Status> {
        // A lagging node's own state can show a lock that a later registration replaced, or miss
        // one, so the record is read at the leader's commit index, as GetState reads it.
        self.replica.linearize().await?;
        let record = self.replica.local_user(&caller.record).await?;
        let record = record.filter(|record| record.status != UserStatus::Deleted);

        let Some(record) = record else {
            // NOTE: an unknown user always shows the fleet default less one guess, so repeated
            // attempts distinguish an unknown user from a registered one. GetState distinguishes
            // them too, for a caller with a token for that user.
            let guesses_left = self.limits.default_max_guesses.saturating_sub(1);
            if let Some(suppressed) = self.unknown_user_guesses.allow() {
                tracing::info!(node_id = self.replica.node_id, user = %caller.record, suppressed, "recovery for a user with no record failed");
            }
            return Ok(status::wrong_password(guesses_left));
        };

        if record.status == UserStatus::Locked {
            return Ok(status::locked());
        }

        if issued_at.guesses_used >= record.max_guesses {
            let outcome = self
                .lockouts
                .lock_now(caller.record.clone(), issued_at.version)
                .await?;
            if let LockOutcome::Locked { .. } | LockOutcome::AlreadyLocked { .. } = outcome {
                tracing::info!(node_id = self.replica.node_id, user = %caller.record, "last guess failed; record locked");
                return Ok(status::locked());
            }
        }

        tracing::info!(node_id = self.replica.node_id, user = %caller.record, guesses_left = record.guesses_left(), "wrong password");
        Ok(status::wrong_password(record.guesses_left()))
    }
}
