//! Key changes between two fleet epochs, by role.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::artifact::{FleetKeyArtifact, FleetPublicKey, KeyRole};

/// The kind of change of one key from one epoch to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyChange {
    /// The key is new in this epoch.
    Added,
    /// The key was in the previous epoch and is gone.
    Removed,
    /// The key kept its role and id but has another public key or algorithm.
    Changed,
}

/// One key change at one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyDelta {
    /// Epoch that made the change.
    pub epoch: u64,
    /// The change.
    pub change: KeyChange,
    /// Role of the key.
    pub role: KeyRole,
    /// Key id within its role.
    pub id: String,
    /// Public key before the change, hex.
    pub old_key: Option<String>,
    /// Public key after the change, hex.
    pub new_key: Option<String>,
}

/// Lists the keys added, removed and changed from `previous` to `current`; with no
/// previous epoch every key is added. Sorted by role and id.
pub fn key_delta(previous: Option<&FleetKeyArtifact>, current: &FleetKeyArtifact) -> Vec<KeyDelta> {
    let old = previous.map(index_keys).unwrap_or_default();
    let new = index_keys(current);

    let mut deltas = Vec::new();
    let all_ids: std::collections::BTreeSet<_> = old.keys().chain(new.keys()).cloned().collect();
    for (role, id) in all_ids {
        let before = old.get(&(role, id.clone()));
        let after = new.get(&(role, id.clone()));
        let change = match (before, after) {
            (None, Some(_)) => KeyChange::Added,
            (Some(_), None) => KeyChange::Removed,
            (Some(b), Some(a)) if b != a => KeyChange::Changed,
            _ => continue,
        };
        deltas.push(KeyDelta {
            epoch: current.epoch,
            change,
            role,
            id,
            old_key: before.map(|key| key.public_key.clone()),
            new_key: after.map(|key| key.public_key.clone()),
        });
    }
    deltas
}

fn index_keys(artifact: &FleetKeyArtifact) -> BTreeMap<(KeyRole, String), &FleetPublicKey> {
    artifact
        .keys
        .iter()
        .map(|key| ((key.role, key.id.clone()), key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{ARTIFACT_VERSION, KeyAlgorithm, QuorumRule};

    fn artifact(epoch: u64, keys: &[(KeyRole, &str, u8)]) -> FleetKeyArtifact {
        FleetKeyArtifact {
            version: ARTIFACT_VERSION,
            namespace: "ns".into(),
            fleet_id: "f".into(),
            epoch,
            created_at: 0,
            quorum: QuorumRule {
                voters: 1,
                majority: 1,
            },
            keys: keys
                .iter()
                .map(|(role, id, fill)| FleetPublicKey {
                    role: *role,
                    id: (*id).into(),
                    algorithm: KeyAlgorithm::Ed25519,
                    public_key: hex::encode([*fill; 32]),
                })
                .collect(),
        }
    }

    #[test]
    fn delta_lists_added_removed_changed() {
        let one = artifact(
            1,
            &[
                (KeyRole::NodeSigning, "n1", 1),
                (KeyRole::NodeSigning, "n2", 2),
                (KeyRole::OpaqueServer, "o", 3),
            ],
        );
        let two = artifact(
            2,
            &[
                (KeyRole::NodeSigning, "n1", 1),
                (KeyRole::NodeSigning, "n3", 4),
                (KeyRole::OpaqueServer, "o", 5),
            ],
        );
        let deltas = key_delta(Some(&one), &two);
        let summary: Vec<(KeyChange, &str)> = deltas
            .iter()
            .map(|delta| (delta.change, delta.id.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (KeyChange::Changed, "o"),
                (KeyChange::Removed, "n2"),
                (KeyChange::Added, "n3"),
            ]
        );
        assert_eq!(deltas[0].old_key, Some(hex::encode([3; 32])));
        assert_eq!(deltas[0].new_key, Some(hex::encode([5; 32])));
    }

    #[test]
    fn delta_of_first_epoch_adds_all() {
        let one = artifact(1, &[(KeyRole::NodeSigning, "n1", 1)]);
        let deltas = key_delta(None, &one);
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[0].change, KeyChange::Added);
    }
}
