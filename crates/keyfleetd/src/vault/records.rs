//! Delete and GetState.

use keyfleet_api::vault::{DeleteRequest, DeleteResponse, GetStateResponse, RecordState};
use keyfleet_raft::{Command, EraseOutcome, Response, UserRecord, UserStatus};
use tonic::Status;

use super::auth::Caller;
use super::{VaultService, request_id, status};

impl VaultService {
    pub(super) async fn delete_record(
        &self,
        caller: &Caller,
        request: DeleteRequest,
    ) -> Result<DeleteResponse, Status> {
        let node_id = self.replica.node_id;
        let request_id = request_id::derive("erase", &caller.record, &request.request_id, &[])?;
        let command = Command::Erase {
            user: caller.record.clone(),
        };

        let response = self.replica.run(request_id, command).await?;
        match response {
            Response::Erase(EraseOutcome::Erased) => {
                tracing::info!(node_id, user = %caller.record, "record deleted");
                Ok(DeleteResponse { deleted: true })
            }
            Response::Erase(EraseOutcome::NotFound) => Ok(DeleteResponse { deleted: false }),
            other => Err(status::internal(
                node_id,
                &format!("Erase returned an unexpected outcome: {other:?}"),
            )),
        }
    }

    /// Returns the record's state. A node that cannot serve the vault yet returns
    /// `FLEET_NOT_READY` here too, so GetState doubles as a readiness probe.
    pub(super) async fn record_state(&self, caller: &Caller) -> Result<GetStateResponse, Status> {
        self.core.vault().await?;
        self.replica.linearize().await?;
        let record = self.replica.local_user(&caller.record).await?;

        let response = match record {
            None
            | Some(UserRecord {
                status: UserStatus::Deleted,
                ..
            }) => GetStateResponse {
                state: RecordState::NotRegistered.into(),
                max_guesses: 0,
                guesses_left: 0,
            },
            Some(record) if record.status == UserStatus::Locked => GetStateResponse {
                state: RecordState::Locked.into(),
                max_guesses: record.max_guesses,
                guesses_left: 0,
            },
            Some(record) => GetStateResponse {
                state: RecordState::Registered.into(),
                max_guesses: record.max_guesses,
                guesses_left: record.guesses_left(),
            },
        };
        Ok(response)
    }
}
