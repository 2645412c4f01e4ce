//! Publishing a fleet key epoch from the running fleet. The leader builds the artifact from the
//! fleet's real public keys and has the witness log it. Then it counter-signs the witness
//! signature with its HSM-held Ed25519 key and stores the bundle in the replicated state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use keyfleet_api::node::{NodeSigningKey, PublishBundleRequest, PublishBundleResponse};
use keyfleet_bundle::{
    ARTIFACT_VERSION, FleetKeyArtifact, FleetPublicKey, KeyAlgorithm, KeyRole, QuorumRule,
    ValidationBundle, artifact_digest, countersignature_message, submission_message,
    validate_namespace,
};
use keyfleet_hsm::{Ed25519PublicKey, Hsm, KeyLabel};
use keyfleet_raft::{Command, NodeId, PublishBundleOutcome, Request, RequestId, Response};
use keyfleet_witness::{WitnessCallError, WitnessClient};
use openraft::async_runtime::WatchReceiver;
use rand::RngCore;
use rand::rngs::OsRng;
use tokio::sync::{Mutex, OnceCell};
use tonic::{Code, Status};

use crate::replica::Replica;
use crate::vault::FleetCore;

/// Key id of the fleet signing key in the artifact.
const FLEET_SIGNING_KEY_ID: &str = "fleet";
/// Key id of the OPAQUE server key in the artifact.
const OPAQUE_SERVER_KEY_ID: &str = "opaque";

/// Publishes validation bundles from this node, and reports its HSM-held signing key.
pub(crate) struct BundlePublisher {
    replica: Replica,
    core: Arc<FleetCore>,
    hsm: Arc<dyn Hsm>,
    signing_key: KeyLabel,
    /// The public half of `signing_key`, read from the HSM once.
    signing_public_key: OnceCell<Ed25519PublicKey>,
    /// Held for a whole publication, so that two calls on this node never race for one epoch.
    publishing: Mutex<()>,
}

impl std::fmt::Debug for BundlePublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundlePublisher")
            .field("node_id", &self.replica.node_id)
            .field("signing_key", &self.signing_key)
            .finish_non_exhaustive()
    }
}

impl BundlePublisher {
    pub(crate) fn new(
        replica: Replica,
        core: Arc<FleetCore>,
        hsm: Arc<dyn Hsm>,
        signing_key: KeyLabel,
    ) -> Self {
        Self {
            replica,
            core,
            hsm,
            signing_key,
            signing_public_key: OnceCell::new(),
            publishing: Mutex::new(()),
        }
    }

    /// Returns the public half of this node's HSM-held Ed25519 key.
    pub(crate) async fn signing_public_key(&self) -> Result<Ed25519PublicKey, Status> {
        let node_id = self.replica.node_id;
        self.signing_public_key
            .get_or_try_init(|| async {
                self.hsm
                    .ed25519_public_key(&self.signing_key)
                    .await
                    .map_err(|error| {
                        tracing::error!(node_id, %error, "reading the node's signing key failed");
                        Status::internal(format!(
                            "node {node_id} cannot read its signing key from the HSM: {error}"
                        ))
                    })
            })
            .await
            .copied()
    }

    /// Publishes the next epoch; see the `PublishBundle` RPC.
    pub(crate) async fn publish(
        &self,
        request: PublishBundleRequest,
    ) -> Result<PublishBundleResponse, Status> {
        let node_id = self.replica.node_id;
        validate_namespace(&request.namespace).map_err(Status::invalid_argument)?;
        let _publishing = self.publishing.lock().await;
        self.replica.linearize().await?;

        let own_key = self.signing_public_key().await?;
        let current = self.current_bundle().await?;
        let epoch = match &current {
            Some(current) => {
                check_fleet_signing_key(node_id, current, &own_key)?;
                current.epoch() + 1
            }
            None => 1,
        };
        // A publication that stopped after the witness logged this epoch, but before the Raft
        // write, left an entry that only the same artifact can complete. The artifact is
        // rebuilt with the logged creation time, and it is adopted only if it is byte for byte
        // the logged one, that is, made of the fleet's current keys.
        let logged = self.logged_artifact(&request, epoch).await?;
        let created_at = logged
            .as_ref()
            .map_or_else(unix_now, |logged| logged.created_at);
        let artifact = self
            .build_artifact(&request, epoch, &own_key, created_at)
            .await?;
        let canonical = artifact
            .to_canonical_bytes()
            .map_err(|error| Status::internal(format!("cannot encode the artifact: {error}")))?;
        if let Some(logged) = logged {
            check_adoptable(epoch, &logged.canonical, &canonical)?;
            tracing::info!(
                node_id,
                epoch,
                "completing the epoch that the witness logged without a counter-signature"
            );
        }

        let bundle = self
            .witness_and_countersign(&request, epoch, &canonical)
            .await?;
        let bundle_json = bundle.to_json();
        let log_index = self.store(epoch, bundle_json.clone()).await?;
        tracing::info!(
            node_id,
            epoch,
            digest = %bundle.digest,
            log_index,
            namespace = %request.namespace,
            "published a fleet key epoch"
        );
        Ok(PublishBundleResponse {
            epoch,
            bundle: bundle_json,
            log_index,
        })
    }

    async fn current_bundle(&self) -> Result<Option<CurrentBundle>, Status> {
        let Some(record) = self.replica.local_bundle().await? else {
            return Ok(None);
        };
        let bundle = ValidationBundle::from_json(&record.bundle_json)
            .map_err(|error| Status::internal(format!("the stored bundle is invalid: {error}")))?;
        let artifact = FleetKeyArtifact::from_canonical_bytes(bundle.artifact.as_bytes()).map_err(
            |error| Status::internal(format!("the stored artifact is invalid: {error}")),
        )?;
        Ok(Some(CurrentBundle { artifact }))
    }

    /// Returns the artifact that the witness has logged for `epoch`, if it has one.
    async fn logged_artifact(
        &self,
        request: &PublishBundleRequest,
        epoch: u64,
    ) -> Result<Option<LoggedArtifact>, Status> {
        let mut witness = WitnessClient::connect_lazy(&request.witness, &request.namespace)
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        let entry = match witness.entry(epoch, 0).await {
            Ok(entry) => entry,
            Err(WitnessCallError::Status { status, .. }) if status.code() == Code::NotFound => {
                return Ok(None);
            }
            Err(error) => return Err(witness_status(error)),
        };

        let canonical = entry.bundle.artifact.into_bytes();
        let artifact = FleetKeyArtifact::from_canonical_bytes(&canonical).map_err(|error| {
            Status::unavailable(format!(
                "the witness holds an invalid artifact for epoch {epoch}: {error}"
            ))
        })?;
        Ok(Some(LoggedArtifact {
            created_at: artifact.created_at,
            canonical,
        }))
    }

    /// Builds the artifact of `epoch` from the OPAQUE setup, this node's key as the fleet
    /// signing key, and the voters' keys.
    async fn build_artifact(
        &self,
        request: &PublishBundleRequest,
        epoch: u64,
        own_key: &Ed25519PublicKey,
        created_at: u64,
    ) -> Result<FleetKeyArtifact, Status> {
        let vault = self.core.vault().await?;
        let voters: Vec<NodeId> = self
            .replica
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .voter_ids()
            .collect();
        let node_keys = voter_keys(self.replica.node_id, own_key, &voters, &request.node_keys)?;

        let mut keys = vec![
            FleetPublicKey {
                role: KeyRole::OpaqueServer,
                id: OPAQUE_SERVER_KEY_ID.into(),
                algorithm: KeyAlgorithm::Ristretto255,
                public_key: hex_string(&vault.setup().server_public_key()),
            },
            FleetPublicKey {
                role: KeyRole::FleetSigning,
                id: FLEET_SIGNING_KEY_ID.into(),
                algorithm: KeyAlgorithm::Ed25519,
                public_key: hex_string(own_key),
            },
        ];
        for (id, key) in &node_keys {
            keys.push(FleetPublicKey {
                role: KeyRole::NodeSigning,
                id: format!("node-{id}"),
                algorithm: KeyAlgorithm::Ed25519,
                public_key: hex_string(key),
            });
        }
        let voter_count = voters.len() as u32;
        let fleet = self.replica.local_fleet().await?.ok_or_else(|| {
            Status::failed_precondition("the fleet has no OPAQUE setup yet; retry shortly")
        })?;
        FleetKeyArtifact {
            version: ARTIFACT_VERSION,
            namespace: request.namespace.clone(),
            fleet_id: fleet.fleet_id,
            epoch,
            created_at,
            quorum: QuorumRule {
                voters: voter_count,
                majority: voter_count / 2 + 1,
            },
            keys,
        }
        .normalize()
        .map_err(|error| Status::internal(format!("cannot build the artifact: {error}")))
    }

    /// Has the witness log the artifact, under a submission signed in the HSM, and stores the
    /// HSM's counter-signature of the witness signature with the witness.
    async fn witness_and_countersign(
        &self,
        request: &PublishBundleRequest,
        epoch: u64,
        canonical: &[u8],
    ) -> Result<ValidationBundle, Status> {
        let namespace = &request.namespace;
        let mut witness = WitnessClient::connect_lazy(&request.witness, namespace)
            .map_err(|error| Status::invalid_argument(error.to_string()))?;

        let submission = submission_message(namespace, epoch, &artifact_digest(canonical));
        let submission_signature = self.sign(&submission).await?;
        let bundle = witness
            .witness_artifact(canonical, &submission_signature)
            .await
            .map_err(witness_status)?;
        check_witnessed(&bundle, epoch, canonical)?;

        let witness_signature = bundle
            .witness_signature_bytes()
            .map_err(|error| Status::unavailable(format!("the witness sent {error}")))?;
        let countersignature = self
            .sign(&countersignature_message(&witness_signature))
            .await?;
        let bundle = witness
            .add_countersignature(epoch, &countersignature)
            .await
            .map_err(witness_status)?;
        check_witnessed(&bundle, epoch, canonical)?;
        if bundle.countersignature_bytes().ok().as_deref() != Some(&countersignature[..]) {
            return Err(Status::unavailable(
                "the witness returned the entry without this node's counter-signature",
            ));
        }
        Ok(bundle)
    }

    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], Status> {
        let node_id = self.replica.node_id;
        self.hsm
            .sign_ed25519(&self.signing_key, message)
            .await
            .map_err(|error| {
                tracing::error!(node_id, %error, "signing in the HSM failed");
                Status::internal(format!("node {node_id} failed to sign in its HSM: {error}"))
            })
    }

    async fn store(&self, epoch: u64, bundle_json: Vec<u8>) -> Result<u64, Status> {
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        let written = self
            .replica
            .write(Request {
                request_id: RequestId::from_bytes(id),
                command: Command::PublishBundle { epoch, bundle_json },
            })
            .await?;
        match written.response {
            Response::PublishBundle(
                PublishBundleOutcome::Published | PublishBundleOutcome::AlreadyPublished,
            ) => Ok(written.log_index),
            Response::PublishBundle(PublishBundleOutcome::NotNewer { current_epoch }) => {
                Err(Status::failed_precondition(format!(
                    "the fleet already stores epoch {current_epoch}, so epoch {epoch} was not \
                     stored; publish again"
                )))
            }
            Response::Rejected(rejection) => Err(Status::invalid_argument(rejection.to_string())),
            other => Err(Status::internal(format!(
                "PublishBundle returned an unexpected outcome: {other:?}"
            ))),
        }
    }
}

/// An artifact that the witness has logged, in its canonical bytes.
struct LoggedArtifact {
    created_at: u64,
    canonical: Vec<u8>,
}

/// Requires that the artifact the witness logged for `epoch` is the one this node builds.
fn check_adoptable(epoch: u64, logged: &[u8], built: &[u8]) -> Result<(), Status> {
    if logged == built {
        return Ok(());
    }
    Err(Status::failed_precondition(format!(
        "the witness logged another artifact for epoch {epoch} (digest {}) than the fleet's \
         current keys make (digest {}): the voters or their keys changed since, or another \
         publisher wrote it. Compare the two with `keyfleet audit`; a witness log entry cannot \
         be replaced, so the namespace needs the witness operator's help to move on",
        hex_string(&artifact_digest(logged)),
        hex_string(&artifact_digest(built)),
    )))
}

/// The applied bundle's artifact.
struct CurrentBundle {
    artifact: FleetKeyArtifact,
}

impl CurrentBundle {
    fn epoch(&self) -> u64 {
        self.artifact.epoch
    }
}

/// Requires that this node's key is the current bundle's fleet signing key, because clients
/// pin that key and reject a bundle counter-signed by another.
fn check_fleet_signing_key(
    node_id: NodeId,
    current: &CurrentBundle,
    own_key: &Ed25519PublicKey,
) -> Result<(), Status> {
    let own_hex = hex_string(own_key);
    let fleet_key = current
        .artifact
        .keys_with_role(KeyRole::FleetSigning)
        .next()
        .map(|key| key.public_key.as_str())
        .unwrap_or_default();
    if fleet_key == own_hex {
        return Ok(());
    }
    let holder = current
        .artifact
        .keys_with_role(KeyRole::NodeSigning)
        .find(|key| key.public_key == fleet_key)
        .map_or_else(|| "no current node".to_owned(), |key| key.id.clone());
    Err(Status::failed_precondition(format!(
        "node {node_id}'s HSM key is not the fleet signing key of epoch {}, which {holder} \
         holds; transfer leadership to that node (`keyfleet members transfer-leader`) and \
         publish again",
        current.epoch()
    )))
}

/// Returns every voter's key by node id: this node's from its HSM, the others' from the
/// request. Rejects a missing voter, a key of a non-voter, a malformed key, and an entry for
/// this node that differs from its HSM key.
fn voter_keys(
    node_id: NodeId,
    own_key: &Ed25519PublicKey,
    voters: &[NodeId],
    requested_keys: &[NodeSigningKey],
) -> Result<BTreeMap<NodeId, Ed25519PublicKey>, Status> {
    let mut keys = BTreeMap::new();
    for entry in requested_keys {
        if !voters.contains(&entry.node_id) {
            return Err(Status::invalid_argument(format!(
                "node {} is not a voter; send the keys of voters {voters:?} only",
                entry.node_id
            )));
        }
        let key: Ed25519PublicKey = entry.public_key.as_slice().try_into().map_err(|_| {
            Status::invalid_argument(format!(
                "the key of node {} is {} bytes; an Ed25519 public key is 32",
                entry.node_id,
                entry.public_key.len()
            ))
        })?;
        if entry.node_id == node_id && key != *own_key {
            return Err(Status::invalid_argument(format!(
                "the key given for node {node_id} is not the key its HSM holds"
            )));
        }
        keys.insert(entry.node_id, key);
    }
    keys.insert(node_id, *own_key);
    if let Some(missing) = voters.iter().find(|id| !keys.contains_key(id)) {
        return Err(Status::failed_precondition(format!(
            "the request has no key for voter {missing}; send every voter's signing key as \
             its Status reports it"
        )));
    }
    Ok(keys)
}

/// Checks that the witness returned the entry of `canonical` at `epoch`.
fn check_witnessed(bundle: &ValidationBundle, epoch: u64, canonical: &[u8]) -> Result<(), Status> {
    if bundle.epoch != epoch || bundle.artifact.as_bytes() != canonical {
        return Err(Status::unavailable(format!(
            "the witness returned epoch {} with another artifact than the one sent for epoch \
             {epoch}",
            bundle.epoch
        )));
    }
    Ok(())
}

fn witness_status(error: WitnessCallError) -> Status {
    match &error {
        WitnessCallError::Endpoint { .. } => Status::invalid_argument(error.to_string()),
        WitnessCallError::Status { status, .. } => match status.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                Status::unavailable(error.to_string())
            }
            _ => Status::failed_precondition(error.to_string()),
        },
        WitnessCallError::Malformed { .. } => Status::unavailable(error.to_string()),
    }
}

fn hex_string(bytes: &[u8]) -> String {
    crate::keys::hex::encode(bytes)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(node_id: NodeId, fill: u8) -> NodeSigningKey {
        NodeSigningKey {
            node_id,
            public_key: vec![fill; 32],
        }
    }

    #[test]
    fn voter_keys_cover_every_voter() {
        let keys = voter_keys(1, &[1; 32], &[1, 2, 3], &[entry(2, 2), entry(3, 3)]).unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[&1], [1; 32]);
        assert_eq!(keys[&3], [3; 32]);
    }

    #[test]
    fn voter_keys_reject_missing_voter() {
        let error = voter_keys(1, &[1; 32], &[1, 2, 3], &[entry(2, 2)]).unwrap_err();
        assert_eq!(error.code(), tonic::Code::FailedPrecondition);
        assert!(error.message().contains("voter 3"), "{}", error.message());
    }

    #[test]
    fn voter_keys_reject_non_voter() {
        let error = voter_keys(1, &[1; 32], &[1, 2], &[entry(2, 2), entry(9, 9)]).unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn voter_keys_reject_wrong_own_key() {
        let error = voter_keys(1, &[1; 32], &[1, 2], &[entry(1, 7), entry(2, 2)]).unwrap_err();
        assert!(error.message().contains("not the key its HSM holds"));
    }

    #[test]
    fn voter_keys_reject_short_key() {
        let short = NodeSigningKey {
            node_id: 2,
            public_key: vec![2; 31],
        };
        let error = voter_keys(1, &[1; 32], &[1, 2], &[short]).unwrap_err();
        assert!(error.message().contains("31 bytes"));
    }
}
