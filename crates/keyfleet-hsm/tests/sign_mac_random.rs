//! Ed25519 signing, HMAC-SHA512 and random bytes from a real SoftHSM2 token.

mod common;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use keyfleet_hsm::{Exportability, Hsm, HsmError, KeyKind};

use common::{label, open_tokens, spec};

#[tokio::test]
async fn ed25519_signature_verifies_independently() {
    let (_lab, tokens) = open_tokens(&["node-1"]).await;
    let hsm = &tokens[0];
    hsm.provision(&spec(
        "signing",
        KeyKind::SigningEd25519,
        Exportability::Never,
    ))
    .await
    .unwrap();

    let signature = hsm
        .sign_ed25519(&label("signing"), b"fleet keys v1")
        .await
        .unwrap();
    let public = hsm.ed25519_public_key(&label("signing")).await.unwrap();

    let verifying = VerifyingKey::from_bytes(&public).unwrap();
    let signature = Signature::from_bytes(&signature);
    assert!(verifying.verify(b"fleet keys v1", &signature).is_ok());
    assert!(verifying.verify(b"fleet keys v2", &signature).is_err());
}

#[tokio::test]
async fn ed25519_public_key_is_stable() {
    let (_lab, tokens) = open_tokens(&["node-1"]).await;
    let hsm = &tokens[0];
    let signing = spec("signing", KeyKind::SigningEd25519, Exportability::Never);
    hsm.provision(&signing).await.unwrap();

    let first = hsm.ed25519_public_key(&label("signing")).await.unwrap();
    hsm.provision(&signing).await.unwrap();
    let second = hsm.ed25519_public_key(&label("signing")).await.unwrap();

    assert_eq!(first, second);
}

#[tokio::test]
async fn sign_with_seal_key_is_rejected() {
    let (_lab, tokens) = open_tokens(&["node-1"]).await;
    let hsm = &tokens[0];
    hsm.provision(&spec("seal", KeyKind::SealAes256, Exportability::Never))
        .await
        .unwrap();

    let error = hsm.sign_ed25519(&label("seal"), b"x").await.unwrap_err();

    assert!(matches!(error, HsmError::KeyNotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn hmac_is_deterministic_per_key_and_message() {
    let (_lab, tokens) = open_tokens(&["node-1"]).await;
    let hsm = &tokens[0];
    for name in ["oprf-a", "oprf-b"] {
        hsm.provision(&spec(name, KeyKind::HmacSha512, Exportability::WrappedOnly))
            .await
            .unwrap();
    }

    let first = hsm.hmac_sha512(&label("oprf-a"), b"alice").await.unwrap();
    let again = hsm.hmac_sha512(&label("oprf-a"), b"alice").await.unwrap();
    let other_message = hsm.hmac_sha512(&label("oprf-a"), b"bob").await.unwrap();
    let other_key = hsm.hmac_sha512(&label("oprf-b"), b"alice").await.unwrap();

    assert_eq!(first.as_slice(), again.as_slice());
    assert_ne!(first.as_slice(), other_message.as_slice());
    assert_ne!(first.as_slice(), other_key.as_slice());
    assert_ne!(first.as_slice(), [0u8; 64].as_slice());
}

#[tokio::test]
async fn random_bytes_have_requested_length() {
    let (_lab, tokens) = open_tokens(&["node-1"]).await;
    let hsm = &tokens[0];

    let first = hsm.random_bytes(32).await.unwrap();
    let second = hsm.random_bytes(32).await.unwrap();
    let empty = hsm.random_bytes(0).await.unwrap();

    assert_eq!(first.len(), 32);
    assert!(!first.ct_eq(second.expose_secret()));
    assert!(empty.is_empty());
}

#[tokio::test]
async fn random_bytes_rejects_huge_request() {
    let (_lab, tokens) = open_tokens(&["node-1"]).await;

    let error = tokens[0].random_bytes(1 << 20).await.unwrap_err();

    assert!(error.to_string().contains("the limit is 65536"), "{error}");
}
