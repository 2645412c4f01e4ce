//! A RecoveryStart that is broken on purpose: it sends the KE2 first and counts the guess
//! afterwards, the order the guess budget forbids. The chaos suite runs a fleet built with it to
//! show that its checker catches the extra guesses. Compiled only with the Cargo feature
//! `broken-count-guess-after-answer`, which refuses to build without debug assertions.

use keyfleet_api::vault::RecoveryStartResponse;
use keyfleet_raft::{RequestId, UserStatus};
use keyfleet_vault::{RecordState, Vault};
use openraft::async_runtime::WatchReceiver;
use tonic::Status;

use super::super::auth::Caller;
use super::super::{VaultService, status};

impl VaultService {
    /// Returns true while this node's own Raft metrics name it leader, which a leader cut off
    /// from its quorum still does until it learns of a newer term.
    pub(super) fn believes_it_leads(&self) -> bool {
        let metrics = self.replica.raft.metrics();
        let leader = metrics.borrow_watched().current_leader;
        leader == Some(self.replica.node_id)
    }

    /// Builds the KE2 from this node's applied record without a Raft write, and commits the
    /// guess in the background after the reply is built. A leader cut off from its quorum
    /// keeps answering, and the guesses it answers are never counted.
    pub(super) async fn answer_before_counting(
        &self,
        caller: &Caller,
        credential_request: &[u8],
        request_id: RequestId,
        vault: &Vault,
    ) -> Result<RecoveryStartResponse, Status> {
        let node_id = self.replica.node_id;
        let record = self.replica.local_user(&caller.record).await?;

        let stored = match record {
            Some(record) if record.status == UserStatus::Locked => return Err(status::locked()),
            Some(record) if record.status == UserStatus::Registered => {
                let state = RecordState {
                    version: record.version,
                    guesses_used: record.guesses_used.saturating_add(1),
                };
                Some(self.stored_record(&record, state)?)
            }
            _ => None,
        };

        let start = vault
            .recovery_start(caller.record.as_str(), credential_request, stored.as_ref())
            .await
            .map_err(|error| status::vault_error(node_id, error))?;

        let service = self.clone();
        let caller = caller.clone();
        tokio::spawn(async move {
            if let Err(error) = service.consume_guess(&caller, request_id).await {
                tracing::warn!(node_id, user = %caller.record, code = ?error.code(), "counting a guess after its answer failed");
            }
        });

        Ok(RecoveryStartResponse {
            credential_response: start.response,
            ticket: start.ticket.as_bytes().to_vec(),
            bundle_epoch: self.replica.bundle_epoch().await?,
        })
    }
}
