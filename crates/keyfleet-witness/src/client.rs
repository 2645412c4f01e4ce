//! A client of the witness API for one namespace.

use keyfleet_bundle::ValidationBundle;
use keyfleet_bundle::merkle::Hash;
use thiserror::Error;
use tonic::transport::Channel;

use crate::api;
use crate::api::witness_client::WitnessClient as GrpcClient;

/// A failed witness call.
#[derive(Debug, Error)]
pub enum WitnessCallError {
    /// The endpoint is not a valid URI.
    #[error("invalid witness endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The endpoint as given.
        endpoint: String,
        /// The parse error.
        reason: String,
    },
    /// The call failed.
    #[error(
        "witness call {call} failed with {code:?}: {message}",
        code = status.code(),
        message = status.message()
    )]
    Status {
        /// Name of the RPC.
        call: &'static str,
        /// The gRPC status.
        status: Box<tonic::Status>,
    },
    /// The witness sent a response that cannot be decoded.
    #[error("the witness sent a malformed {call} response: {reason}")]
    Malformed {
        /// Name of the RPC.
        call: &'static str,
        /// The decoding error.
        reason: String,
    },
}

/// An entry as the witness serves it.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// The stored bundle.
    pub bundle: ValidationBundle,
    /// Inclusion proof of the entry into the tree of `tree_size` leaves.
    pub inclusion_proof: Vec<Hash>,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
}

/// A witness client bound to one namespace.
#[derive(Debug, Clone)]
pub struct WitnessClient {
    grpc: GrpcClient<Channel>,
    namespace: String,
}

impl WitnessClient {
    /// Connects lazily to `endpoint` (`host:port` or an `http://` URI).
    pub fn connect_lazy(endpoint: &str, namespace: &str) -> Result<Self, WitnessCallError> {
        let uri = if endpoint.contains("://") {
            endpoint.to_owned()
        } else {
            format!("http://{endpoint}")
        };
        let channel = Channel::from_shared(uri)
            .map_err(|error| WitnessCallError::Endpoint {
                endpoint: endpoint.into(),
                reason: error.to_string(),
            })?
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30))
            .connect_lazy();
        Ok(Self {
            grpc: GrpcClient::new(channel),
            namespace: namespace.into(),
        })
    }

    /// Returns the namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Witnesses the next artifact; see the `WitnessArtifact` RPC. `operator_signature` signs
    /// the artifact's [`keyfleet_bundle::submission_message`].
    pub async fn witness_artifact(
        &mut self,
        artifact: &[u8],
        operator_signature: &[u8],
    ) -> Result<ValidationBundle, WitnessCallError> {
        const CALL: &str = "WitnessArtifact";
        let response = self
            .grpc
            .witness_artifact(api::WitnessArtifactRequest {
                namespace: self.namespace.clone(),
                artifact: artifact.to_vec(),
                operator_signature: operator_signature.to_vec(),
            })
            .await
            .map_err(|status| status_error(CALL, status))?
            .into_inner();
        decode_bundle(CALL, &response.bundle)
    }

    /// Stores a counter-signature; see the `AddCountersignature` RPC.
    pub async fn add_countersignature(
        &mut self,
        epoch: u64,
        countersignature: &[u8],
    ) -> Result<ValidationBundle, WitnessCallError> {
        const CALL: &str = "AddCountersignature";
        let response = self
            .grpc
            .add_countersignature(api::AddCountersignatureRequest {
                namespace: self.namespace.clone(),
                epoch,
                countersignature: countersignature.to_vec(),
            })
            .await
            .map_err(|status| status_error(CALL, status))?
            .into_inner();
        decode_bundle(CALL, &response.bundle)
    }

    /// Returns the newest signed checkpoint.
    pub async fn checkpoint(&mut self) -> Result<String, WitnessCallError> {
        let response = self
            .grpc
            .get_checkpoint(api::GetCheckpointRequest {
                namespace: self.namespace.clone(),
            })
            .await
            .map_err(|status| status_error("GetCheckpoint", status))?;
        Ok(response.into_inner().checkpoint)
    }

    /// Returns the entry of `epoch` with its inclusion proof into the tree of `tree_size`.
    pub async fn entry(
        &mut self,
        epoch: u64,
        tree_size: u64,
    ) -> Result<LogEntry, WitnessCallError> {
        const CALL: &str = "GetEntry";
        let response = self
            .grpc
            .get_entry(api::GetEntryRequest {
                namespace: self.namespace.clone(),
                epoch,
                tree_size,
            })
            .await
            .map_err(|status| status_error(CALL, status))?
            .into_inner();
        Ok(LogEntry {
            bundle: decode_bundle(CALL, &response.bundle)?,
            inclusion_proof: decode_proof(CALL, response.inclusion_proof)?,
            tree_size: response.tree_size,
        })
    }

    /// Returns the consistency proof from `old_size` to `new_size` leaves.
    pub async fn consistency_proof(
        &mut self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, WitnessCallError> {
        const CALL: &str = "GetConsistencyProof";
        let response = self
            .grpc
            .get_consistency_proof(api::GetConsistencyProofRequest {
                namespace: self.namespace.clone(),
                old_size,
                new_size,
            })
            .await
            .map_err(|status| status_error(CALL, status))?
            .into_inner();
        decode_proof(CALL, response.proof)
    }

    /// Returns the verifier key the witness reports for itself.
    pub async fn verifier_key(&mut self) -> Result<String, WitnessCallError> {
        let response = self
            .grpc
            .get_verifier_key(api::GetVerifierKeyRequest {})
            .await
            .map_err(|status| status_error("GetVerifierKey", status))?;
        Ok(response.into_inner().verifier_key)
    }
}

fn status_error(call: &'static str, status: tonic::Status) -> WitnessCallError {
    WitnessCallError::Status {
        call,
        status: Box::new(status),
    }
}

fn decode_bundle(call: &'static str, bytes: &[u8]) -> Result<ValidationBundle, WitnessCallError> {
    ValidationBundle::from_json(bytes).map_err(|error| WitnessCallError::Malformed {
        call,
        reason: error.to_string(),
    })
}

fn decode_proof(call: &'static str, hashes: Vec<Vec<u8>>) -> Result<Vec<Hash>, WitnessCallError> {
    hashes
        .into_iter()
        .map(|hash| {
            Hash::try_from(hash).map_err(|_| WitnessCallError::Malformed {
                call,
                reason: "a proof hash is not 32 bytes".into(),
            })
        })
        .collect()
}
