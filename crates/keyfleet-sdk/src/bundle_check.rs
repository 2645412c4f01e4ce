//! Fleet key validation in the SDK: the client pins only the witness and operator root keys,
//! fetches the fleet's validation bundle, verifies it, and checks that the OPAQUE server key of
//! each session is the one the bundle names.

use std::sync::{Arc, Mutex, PoisonError};

use keyfleet_api::vault::{GetBundleRequest, GetBundleResponse};
use keyfleet_bundle::{BundleVerifier, TrustAnchors, ValidationBundle, VerifiedBundle};
use keyfleet_client::Operation;

use crate::{SdkError, VaultClient};

/// The pinned anchors and the newest bundle accepted, shared by a client's clones.
#[derive(Debug, Clone)]
pub(crate) struct BundleCheck {
    verifier: Arc<Mutex<BundleVerifier>>,
}

impl BundleCheck {
    pub(crate) fn new(anchors: TrustAnchors) -> Self {
        Self {
            verifier: Arc::new(Mutex::new(BundleVerifier::new(anchors))),
        }
    }

    fn newest_epoch(&self) -> Option<u64> {
        self.lock().newest().map(VerifiedBundle::epoch)
    }

    fn accept(&self, bundle: &ValidationBundle) -> Result<VerifiedBundle, SdkError> {
        let mut verifier = self.lock();
        let verified = verifier.accept(bundle).map_err(SdkError::Bundle)?;
        Ok(verified.clone())
    }

    fn newest(&self) -> Option<VerifiedBundle> {
        self.lock().newest().cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BundleVerifier> {
        self.verifier.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl VaultClient {
    /// Pins the witness and operator root keys. From then on the client fetches and verifies
    /// the fleet's validation bundle, accepts newer epochs over the air and rejects older ones.
    /// Every registration and recovery also checks that the vault's OPAQUE server key is the
    /// one the newest bundle names.
    pub fn with_trust_anchors(mut self, anchors: TrustAnchors) -> Self {
        self.bundle_check = Some(BundleCheck::new(anchors));
        self
    }

    /// Returns the newest bundle this client has verified, if it pins trust anchors and has
    /// seen one.
    pub fn verified_bundle(&self) -> Option<VerifiedBundle> {
        self.bundle_check.as_ref().and_then(BundleCheck::newest)
    }

    /// Fetches the fleet's current bundle with `GetBundle` and verifies it against the pinned
    /// anchors and the newest bundle seen so far.
    ///
    /// # Errors
    /// [`SdkError::Bundle`] naming the failed check, [`SdkError::InvalidArgument`] when the
    /// client pins no anchors, and the other variants for failed calls.
    pub async fn refresh_bundle(&self) -> Result<VerifiedBundle, SdkError> {
        let Some(check) = &self.bundle_check else {
            return Err(SdkError::InvalidArgument {
                field: Some("trust_anchors".to_owned()),
                message: "the client pins no witness and operator keys; call \
                          VaultClient::with_trust_anchors first"
                    .to_owned(),
            });
        };
        // The leader returns NOT_FOUND while the fleet has published no bundle. The closure
        // turns that into a reply of epoch 0, so the retry loop does not count a failed call.
        let reply = self
            .send(
                &Operation::on_leader("get_bundle"),
                |mut client| async move {
                    match client.get_bundle(GetBundleRequest {}).await {
                        Err(status) if status.code() == tonic::Code::NotFound => {
                            Ok(tonic::Response::new(GetBundleResponse::default()))
                        }
                        other => other,
                    }
                },
            )
            .await?;
        if reply.epoch == 0 {
            return Err(SdkError::BundleMissing);
        }
        let bundle = ValidationBundle::from_json(&reply.bundle).map_err(SdkError::Bundle)?;
        if bundle.epoch != reply.epoch {
            return Err(SdkError::Protocol {
                reason: format!(
                    "GetBundle named epoch {} but sent the bundle of epoch {}",
                    reply.epoch, bundle.epoch
                ),
            });
        }
        check.accept(&bundle)
    }

    /// Fetches and verifies the fleet's bundle before a session starts, unless the client has
    /// verified one already. A client whose pins do not match the fleet then fails before its
    /// KE1 goes out, so it spends no guess. Does nothing when the client pins no anchors.
    pub(crate) async fn verify_fleet_first(&self) -> Result<(), SdkError> {
        match &self.bundle_check {
            Some(check) if check.newest().is_none() => self.refresh_bundle().await.map(drop),
            _ => Ok(()),
        }
    }

    /// Makes sure the client has verified the bundle of `epoch`, the epoch a session response
    /// names, and returns it. Returns `None` when the client pins no anchors.
    pub(crate) async fn bundle_for_epoch(
        &self,
        epoch: u64,
    ) -> Result<Option<VerifiedBundle>, SdkError> {
        let Some(check) = &self.bundle_check else {
            return Ok(None);
        };
        if epoch == 0 {
            return Err(SdkError::BundleMissing);
        }
        let newest = check.newest_epoch();
        if newest.is_some_and(|newest| epoch < newest) {
            return Err(SdkError::Bundle(keyfleet_bundle::BundleError::StaleEpoch {
                epoch,
                newest: newest.unwrap_or_default(),
            }));
        }
        let verified = match check.newest() {
            Some(verified) if verified.epoch() == epoch => verified,
            _ => self.refresh_bundle().await?,
        };
        // A bundle newer than the response's epoch may have been published in between.
        if verified.epoch() < epoch {
            return Err(SdkError::Bundle(keyfleet_bundle::BundleError::StaleEpoch {
                epoch: verified.epoch(),
                newest: epoch,
            }));
        }
        Ok(Some(verified))
    }
}

/// Checks the OPAQUE server public key a session used against `bundle`.
pub(crate) fn check_server_key(
    bundle: Option<&VerifiedBundle>,
    server_public_key: &[u8],
) -> Result<(), SdkError> {
    match bundle {
        Some(bundle) => bundle
            .check_opaque_server_key(server_public_key)
            .map_err(SdkError::Bundle),
        None => Ok(()),
    }
}
