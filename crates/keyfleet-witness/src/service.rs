//! The `keyfleet.witness.v1.Witness` gRPC service over a [`WitnessLog`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tonic::{Request, Response, Status};

use crate::api::witness_server::Witness;
use crate::api::{
    AddCountersignatureRequest, AddCountersignatureResponse, GetCheckpointRequest,
    GetCheckpointResponse, GetConsistencyProofRequest, GetConsistencyProofResponse,
    GetEntryRequest, GetEntryResponse, GetVerifierKeyRequest, GetVerifierKeyResponse,
    WitnessArtifactRequest, WitnessArtifactResponse,
};
use crate::error::WitnessError;
use crate::operator_keys::OperatorKeys;
use crate::witness_log::WitnessLog;

/// Largest artifact accepted, in bytes.
const MAX_ARTIFACT_LEN: usize = 32 * 1024;

/// The witness gRPC service.
#[derive(Debug, Clone)]
pub struct WitnessService {
    log: Arc<WitnessLog>,
    operator_keys: Arc<OperatorKeys>,
}

impl WitnessService {
    /// Creates the service over `log`, accepting submissions signed by `operator_keys`.
    pub fn new(log: Arc<WitnessLog>, operator_keys: Arc<OperatorKeys>) -> Self {
        Self { log, operator_keys }
    }

    /// Runs `work` on the blocking pool, because redb commits wait for fsync.
    async fn blocking<T, F>(&self, work: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&WitnessLog) -> Result<T, WitnessError> + Send + 'static,
    {
        let log = Arc::clone(&self.log);
        tokio::task::spawn_blocking(move || work(&log))
            .await
            .map_err(|error| Status::internal(format!("witness task failed: {error}")))?
            .map_err(Status::from)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

#[tonic::async_trait]
impl Witness for WitnessService {
    async fn witness_artifact(
        &self,
        request: Request<WitnessArtifactRequest>,
    ) -> Result<Response<WitnessArtifactResponse>, Status> {
        let WitnessArtifactRequest {
            namespace,
            artifact,
            operator_signature,
        } = request.into_inner();
        if artifact.len() > MAX_ARTIFACT_LEN {
            return Err(Status::invalid_argument(format!(
                "the artifact is {} bytes, more than the limit of {MAX_ARTIFACT_LEN}",
                artifact.len()
            )));
        }
        self.operator_keys
            .authorize(&namespace, &artifact, &operator_signature)
            .map_err(Status::from)?;
        let bundle = self
            .blocking(move |log| log.witness(&namespace, &artifact, unix_now()))
            .await?;
        Ok(Response::new(WitnessArtifactResponse {
            bundle: bundle.to_json(),
        }))
    }

    async fn add_countersignature(
        &self,
        request: Request<AddCountersignatureRequest>,
    ) -> Result<Response<AddCountersignatureResponse>, Status> {
        let AddCountersignatureRequest {
            namespace,
            epoch,
            countersignature,
        } = request.into_inner();
        let bundle = self
            .blocking(move |log| log.add_countersignature(&namespace, epoch, &countersignature))
            .await?;
        Ok(Response::new(AddCountersignatureResponse {
            bundle: bundle.to_json(),
        }))
    }

    async fn get_checkpoint(
        &self,
        request: Request<GetCheckpointRequest>,
    ) -> Result<Response<GetCheckpointResponse>, Status> {
        let namespace = request.into_inner().namespace;
        let checkpoint = self.blocking(move |log| log.checkpoint(&namespace)).await?;
        Ok(Response::new(GetCheckpointResponse { checkpoint }))
    }

    async fn get_entry(
        &self,
        request: Request<GetEntryRequest>,
    ) -> Result<Response<GetEntryResponse>, Status> {
        let GetEntryRequest {
            namespace,
            epoch,
            tree_size,
        } = request.into_inner();
        let (bundle, proof, tree_size) = self
            .blocking(move |log| log.entry(&namespace, epoch, tree_size))
            .await?;
        Ok(Response::new(GetEntryResponse {
            bundle: bundle.to_json(),
            inclusion_proof: proof.iter().map(|hash| hash.to_vec()).collect(),
            tree_size,
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<GetConsistencyProofResponse>, Status> {
        let GetConsistencyProofRequest {
            namespace,
            old_size,
            new_size,
        } = request.into_inner();
        let proof = self
            .blocking(move |log| log.consistency(&namespace, old_size, new_size))
            .await?;
        Ok(Response::new(GetConsistencyProofResponse {
            proof: proof.iter().map(|hash| hash.to_vec()).collect(),
        }))
    }

    async fn get_verifier_key(
        &self,
        _request: Request<GetVerifierKeyRequest>,
    ) -> Result<Response<GetVerifierKeyResponse>, Status> {
        Ok(Response::new(GetVerifierKeyResponse {
            verifier_key: self.log.key().verifier().to_string(),
        }))
    }
}
