//! The witness's durable, append-only log: one Merkle tree per namespace in a redb file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use keyfleet_bundle::merkle::{Hash, consistency_proof, inclusion_proof};
use keyfleet_bundle::{
    FleetKeyArtifact, KeyRole, ValidationBundle, WitnessIdentity, artifact_digest,
    countersignature_message, issue_bundle, sign_checkpoint, validate_namespace,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::WitnessError;
use crate::witness_key::WitnessKey;

/// Bundle JSON by namespace and epoch.
const ENTRIES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("entries");
/// Leaf hash by namespace and epoch; leaf `epoch - 1` of the namespace's tree.
const LEAVES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("leaves");
/// Epoch by namespace and artifact digest, so each digest is logged once.
const DIGESTS: TableDefinition<(&str, &[u8]), u64> = TableDefinition::new("digests");

/// The witness log. Appends are serialized by one lock and each commits with fsync before
/// it returns.
#[derive(Debug)]
pub struct WitnessLog {
    db: Database,
    key: WitnessKey,
    leaves: Mutex<BTreeMap<String, Vec<Hash>>>,
}

impl WitnessLog {
    /// Opens or creates the log at `path` and loads every namespace's leaves.
    pub fn open(path: &Path, key: WitnessKey) -> Result<Self, WitnessError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(ENTRIES)?;
        txn.open_table(LEAVES)?;
        txn.open_table(DIGESTS)?;
        txn.commit()?;

        let mut leaves: BTreeMap<String, Vec<Hash>> = BTreeMap::new();
        let read = db.begin_read()?;
        for row in read.open_table(LEAVES)?.iter()? {
            let (key, value) = row?;
            let (namespace, epoch) = key.value();
            let namespace_leaves = leaves.entry(namespace.to_owned()).or_default();
            let hash: Hash = value.value().try_into().map_err(|_| {
                WitnessError::Storage(format!("leaf {epoch} of {namespace} is not 32 bytes"))
            })?;
            if epoch != namespace_leaves.len() as u64 + 1 {
                return Err(WitnessError::Storage(format!(
                    "the log of {namespace} skips from {} to epoch {epoch}",
                    namespace_leaves.len()
                )));
            }
            namespace_leaves.push(hash);
        }
        tracing::info!(path = %path.display(), namespaces = leaves.len(), "opened the witness log");
        Ok(Self {
            db,
            key,
            leaves: Mutex::new(leaves),
        })
    }

    /// Returns the witness key.
    pub fn key(&self) -> &WitnessKey {
        &self.key
    }

    /// Signs the artifact of the next epoch and appends it; see the `WitnessArtifact` RPC.
    pub fn witness(
        &self,
        namespace: &str,
        artifact_bytes: &[u8],
        timestamp: u64,
    ) -> Result<ValidationBundle, WitnessError> {
        validate_namespace(namespace).map_err(WitnessError::Invalid)?;
        let artifact = FleetKeyArtifact::from_canonical_bytes(artifact_bytes)
            .map_err(|error| WitnessError::Invalid(error.to_string()))?;
        let digest = artifact_digest(artifact_bytes);

        let mut all_leaves = self.leaves.lock().unwrap_or_else(PoisonError::into_inner);
        let leaves = all_leaves
            .get(namespace)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Some(epoch) = self.logged_epoch(namespace, &digest)? {
            if epoch == leaves.len() as u64 {
                return self.stored_bundle(namespace, epoch);
            }
            return Err(WitnessError::EpochRule(format!(
                "the artifact's digest is already logged at epoch {epoch} of {namespace}"
            )));
        }
        let next = leaves.len() as u64 + 1;
        if artifact.epoch != next {
            return Err(WitnessError::EpochRule(format!(
                "epoch {} is not the next epoch of {namespace}: the log has {} entries, so the \
                 next artifact must have epoch {next}",
                artifact.epoch,
                leaves.len()
            )));
        }

        let identity = self.identity();
        let issued = issue_bundle(&identity, namespace, artifact_bytes, timestamp, leaves)?;
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            txn.open_table(ENTRIES)?
                .insert((namespace, next), issued.bundle.to_json().as_slice())?;
            txn.open_table(LEAVES)?
                .insert((namespace, next), issued.leaf.as_slice())?;
            txn.open_table(DIGESTS)?
                .insert((namespace, digest.as_slice()), next)?;
        }
        txn.commit()?;
        all_leaves
            .entry(namespace.to_owned())
            .or_default()
            .push(issued.leaf);
        tracing::info!(namespace, epoch = next, digest = %hex::encode(digest), "witnessed an artifact");
        Ok(issued.bundle)
    }

    /// Stores the operator's counter-signature of an entry once, after checking it with the
    /// artifact's fleet_signing key.
    pub fn add_countersignature(
        &self,
        namespace: &str,
        epoch: u64,
        countersignature: &[u8],
    ) -> Result<ValidationBundle, WitnessError> {
        let _append = self.leaves.lock().unwrap_or_else(PoisonError::into_inner);
        let mut bundle = self.stored_bundle(namespace, epoch)?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(countersignature);
        if !bundle.countersignature.is_empty() {
            if bundle.countersignature == encoded {
                return Ok(bundle);
            }
            return Err(WitnessError::CountersignatureExists {
                namespace: namespace.into(),
                epoch,
            });
        }
        check_countersignature(&bundle, countersignature)?;
        bundle.countersignature = encoded;

        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.open_table(ENTRIES)?
            .insert((namespace, epoch), bundle.to_json().as_slice())?;
        txn.commit()?;
        tracing::info!(namespace, epoch, "stored a counter-signature");
        Ok(bundle)
    }

    /// Returns the signed checkpoint of the namespace's newest tree.
    pub fn checkpoint(&self, namespace: &str) -> Result<String, WitnessError> {
        let leaves = self.namespace_leaves(namespace)?;
        sign_checkpoint(&self.identity(), namespace, &leaves)
            .map_err(|error| WitnessError::Storage(error.to_string()))
    }

    /// Returns an entry and its inclusion proof into the tree of `tree_size` leaves, or the
    /// newest tree when `tree_size` is 0.
    pub fn entry(
        &self,
        namespace: &str,
        epoch: u64,
        tree_size: u64,
    ) -> Result<(ValidationBundle, Vec<Hash>, u64), WitnessError> {
        let leaves = self.namespace_leaves(namespace)?;
        let size = if tree_size == 0 {
            leaves.len() as u64
        } else {
            tree_size
        };
        if epoch == 0 || epoch > size || size > leaves.len() as u64 {
            return Err(WitnessError::NotFound(format!(
                "epoch {epoch} is not in a tree of {size} entries; the log of {namespace} has {}",
                leaves.len()
            )));
        }
        let bundle = self.stored_bundle(namespace, epoch)?;
        let proof = inclusion_proof(epoch as usize - 1, &leaves[..size as usize])
            .expect("the epoch was checked against the size");
        Ok((bundle, proof, size))
    }

    /// Returns the consistency proof from `old_size` to `new_size` leaves.
    pub fn consistency(
        &self,
        namespace: &str,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, WitnessError> {
        let leaves = self.namespace_leaves(namespace)?;
        if old_size == 0 || old_size > new_size || new_size > leaves.len() as u64 {
            return Err(WitnessError::NotFound(format!(
                "no consistency proof from {old_size} to {new_size} entries; the log of \
                 {namespace} has {}",
                leaves.len()
            )));
        }
        Ok(
            consistency_proof(old_size as usize, &leaves[..new_size as usize])
                .expect("the sizes were checked"),
        )
    }

    fn identity(&self) -> WitnessIdentity<'_> {
        WitnessIdentity {
            name: self.key.name(),
            key: self.key.signing_key(),
        }
    }

    fn namespace_leaves(&self, namespace: &str) -> Result<Vec<Hash>, WitnessError> {
        let leaves = self.leaves.lock().unwrap_or_else(PoisonError::into_inner);
        leaves.get(namespace).cloned().ok_or_else(|| {
            WitnessError::NotFound(format!("the witness has no log for {namespace:?}"))
        })
    }

    fn logged_epoch(&self, namespace: &str, digest: &[u8]) -> Result<Option<u64>, WitnessError> {
        let read = self.db.begin_read()?;
        let table = read.open_table(DIGESTS)?;
        Ok(table.get((namespace, digest))?.map(|epoch| epoch.value()))
    }

    fn stored_bundle(&self, namespace: &str, epoch: u64) -> Result<ValidationBundle, WitnessError> {
        let read = self.db.begin_read()?;
        let table = read.open_table(ENTRIES)?;
        let Some(json) = table.get((namespace, epoch))? else {
            return Err(WitnessError::NotFound(format!(
                "the log of {namespace:?} has no epoch {epoch}"
            )));
        };
        ValidationBundle::from_json(json.value())
            .map_err(|error| WitnessError::Storage(format!("stored epoch {epoch}: {error}")))
    }
}

fn check_countersignature(
    bundle: &ValidationBundle,
    countersignature: &[u8],
) -> Result<(), WitnessError> {
    let artifact = FleetKeyArtifact::from_canonical_bytes(bundle.artifact.as_bytes())
        .map_err(|error| WitnessError::Storage(error.to_string()))?;
    let key_hex = artifact
        .keys_with_role(KeyRole::FleetSigning)
        .next()
        .map(|key| key.public_key.clone())
        .unwrap_or_default();
    let key = hex::decode(&key_hex)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .ok_or_else(|| {
            WitnessError::Invalid("the artifact's fleet_signing key is not an Ed25519 key".into())
        })?;
    let signature = Signature::from_slice(countersignature)
        .map_err(|_| WitnessError::Invalid("a counter-signature is 64 bytes".into()))?;
    let witness_signature = bundle.witness_signature_bytes()?;
    key.verify_strict(&countersignature_message(&witness_signature), &signature)
        .map_err(|_| {
            WitnessError::Invalid(
                "the counter-signature does not verify with the artifact's fleet_signing key"
                    .into(),
            )
        })
}
