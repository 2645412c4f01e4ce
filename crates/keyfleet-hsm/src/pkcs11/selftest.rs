//! The start-up self-test: every failure names what to fix.

use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use super::{Pkcs11Hsm, policy};
use crate::{Hsm, HsmError, KeyKind, KeyLabel, KeySpec, SealContext};

/// Summary of a passing self-test.
#[derive(Debug, Clone)]
pub struct SelfTestReport {
    pub token: String,
    pub keys: Vec<KeyLabel>,
    pub elapsed: Duration,
}

impl Pkcs11Hsm {
    /// Checks that the token offers the mechanisms `specs` need and that each key exists and
    /// meets its spec. Then exercises each key: seals and unseals a probe, signs and verifies
    /// with an independent Ed25519 implementation, computes an HMAC, reads the transport key.
    pub async fn self_test(&self, specs: &[KeySpec]) -> Result<SelfTestReport, HsmError> {
        let started = Instant::now();

        for spec in specs {
            self.inner
                .require_mechanisms(policy::required_mechanisms(spec.kind))?;
        }
        for spec in specs {
            let spec = spec.clone();
            self.run("self-test key check", move |call| {
                policy::check(call.session, call.token(), &spec)
            })
            .await?;
        }
        for spec in specs {
            self.probe(spec).await?;
        }

        let report = SelfTestReport {
            token: self.token_label().to_owned(),
            keys: specs.iter().map(|spec| spec.label.clone()).collect(),
            elapsed: started.elapsed(),
        };
        tracing::info!(
            token = %report.token,
            keys = report.keys.len(),
            elapsed_ms = report.elapsed.as_millis() as u64,
            "HSM self-test passed"
        );
        Ok(report)
    }

    async fn probe(&self, spec: &KeySpec) -> Result<(), HsmError> {
        match spec.kind {
            KeyKind::SealAes256 => self.probe_seal(&spec.label).await,
            KeyKind::SigningEd25519 => self.probe_signing(&spec.label).await,
            KeyKind::HmacSha512 => self.probe_hmac(&spec.label).await,
            KeyKind::TransportP256 => self.transport_public_key(&spec.label).await.map(drop),
        }
    }

    async fn probe_seal(&self, key: &KeyLabel) -> Result<(), HsmError> {
        let probe = self.random_bytes(32).await?;
        let context = SealContext::new("keyfleet.self-test", self.token_label().as_bytes());

        let blob = self.seal(key, &context, probe.expose_secret()).await?;
        let opened = self.unseal(key, &context, &blob).await?;

        if !opened.ct_eq(probe.expose_secret()) {
            return Err(failed(
                "seal and unseal",
                "the unsealed probe differs from the original",
            ));
        }
        Ok(())
    }

    async fn probe_signing(&self, key: &KeyLabel) -> Result<(), HsmError> {
        let message = b"keyfleet HSM self-test";

        let signature = self.sign_ed25519(key, message).await?;
        let public = self.ed25519_public_key(key).await?;

        let verifying = VerifyingKey::from_bytes(&public)
            .map_err(|error| failed("Ed25519 sign and verify", &error.to_string()))?;
        verifying
            .verify(message, &Signature::from_bytes(&signature))
            .map_err(|_| {
                failed(
                    "Ed25519 sign and verify",
                    "the token's signature does not verify under its own public key",
                )
            })
    }

    async fn probe_hmac(&self, key: &KeyLabel) -> Result<(), HsmError> {
        let first = self.hmac_sha512(key, b"keyfleet HSM self-test").await?;
        let second = self.hmac_sha512(key, b"keyfleet HSM self-test").await?;

        if first.as_slice() != second.as_slice() {
            return Err(failed("HMAC-SHA512", "two MACs of one message differ"));
        }
        Ok(())
    }
}

fn failed(step: &'static str, reason: &str) -> HsmError {
    HsmError::SelfTestFailed {
        step,
        reason: reason.to_owned(),
    }
}
