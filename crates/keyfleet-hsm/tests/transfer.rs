//! Moving fleet secret keys between two real SoftHSM2 tokens, wrapped under an ECDH-agreed key.

mod common;

use keyfleet_hsm::{Exportability, Hsm, HsmError, KeyKind, Pkcs11Hsm, SealContext, WrappedKey};

use common::{label, open_tokens, spec};

const CONTEXT: SealContext<'static> = SealContext {
    purpose: "opaque-server-setup",
    record_id: b"fleet",
};

/// Provisions the fleet keys on `tokens[0]` and a transport key on every token.
async fn fleet_of(labels: &[&str]) -> (keyfleet_testkit::SoftHsmLab, Vec<keyfleet_hsm::Pkcs11Hsm>) {
    let (lab, tokens) = open_tokens(labels).await;
    tokens[0]
        .provision(&spec(
            "seal",
            KeyKind::SealAes256,
            Exportability::WrappedOnly,
        ))
        .await
        .unwrap();
    tokens[0]
        .provision(&spec(
            "oprf",
            KeyKind::HmacSha512,
            Exportability::WrappedOnly,
        ))
        .await
        .unwrap();
    for hsm in &tokens {
        hsm.provision(&spec(
            "transport",
            KeyKind::TransportP256,
            Exportability::Never,
        ))
        .await
        .unwrap();
    }
    (lab, tokens)
}

/// Wraps `source`'s fleet sealing key for `target`'s transport key.
async fn wrap_seal_key_for(source: &Pkcs11Hsm, target: &Pkcs11Hsm) -> WrappedKey {
    let recipient = target
        .transport_public_key(&label("transport"))
        .await
        .unwrap();
    source.wrap_key(&label("seal"), &recipient).await.unwrap()
}

#[tokio::test]
async fn seal_key_moves_between_tokens() {
    let (_lab, tokens) = fleet_of(&["node-1", "node-2"]).await;
    let (source, target) = (&tokens[0], &tokens[1]);

    let recipient = target
        .transport_public_key(&label("transport"))
        .await
        .unwrap();
    let wrapped = source.wrap_key(&label("seal"), &recipient).await.unwrap();
    let received = WrappedKey::from_bytes(&wrapped.to_bytes()).unwrap();
    let seal_spec = spec("seal", KeyKind::SealAes256, Exportability::WrappedOnly);
    target
        .unwrap_key(&label("transport"), &received, &seal_spec)
        .await
        .unwrap();

    let blob = source
        .seal(&label("seal"), &CONTEXT, b"server setup")
        .await
        .unwrap();
    let opened = target
        .unseal(&label("seal"), &CONTEXT, &blob)
        .await
        .unwrap();
    assert_eq!(opened.expose_secret(), b"server setup");
    let reverse = target
        .seal(&label("seal"), &CONTEXT, b"back")
        .await
        .unwrap();
    let opened = source
        .unseal(&label("seal"), &CONTEXT, &reverse)
        .await
        .unwrap();
    assert_eq!(opened.expose_secret(), b"back");
}

#[tokio::test]
async fn hmac_key_moves_between_tokens() {
    let (_lab, tokens) = fleet_of(&["node-1", "node-2"]).await;
    let (source, target) = (&tokens[0], &tokens[1]);

    let recipient = target
        .transport_public_key(&label("transport"))
        .await
        .unwrap();
    let wrapped = source.wrap_key(&label("oprf"), &recipient).await.unwrap();
    let oprf_spec = spec("oprf", KeyKind::HmacSha512, Exportability::WrappedOnly);
    target
        .unwrap_key(&label("transport"), &wrapped, &oprf_spec)
        .await
        .unwrap();

    let expected = source.hmac_sha512(&label("oprf"), b"alice").await.unwrap();
    let actual = target.hmac_sha512(&label("oprf"), b"alice").await.unwrap();
    assert_eq!(expected.as_slice(), actual.as_slice());
}

#[tokio::test]
async fn unwrap_fails_for_another_token() {
    let (_lab, tokens) = fleet_of(&["node-1", "node-2", "intruder"]).await;

    let wrapped = wrap_seal_key_for(&tokens[0], &tokens[1]).await;
    let seal_spec = spec("seal", KeyKind::SealAes256, Exportability::WrappedOnly);
    let error = tokens[2]
        .unwrap_key(&label("transport"), &wrapped, &seal_spec)
        .await
        .unwrap_err();

    assert!(matches!(error, HsmError::UnwrapFailed { .. }), "{error:?}");
    assert!(
        error.to_string().contains("wrapped for another token"),
        "{error}"
    );
    let seal = tokens[2]
        .seal(&label("seal"), &CONTEXT, b"x")
        .await
        .unwrap_err();
    assert!(matches!(seal, HsmError::KeyNotFound { .. }), "{seal:?}");
}

#[tokio::test]
async fn unwrap_rejects_tampered_wrapped_key() {
    let (_lab, tokens) = fleet_of(&["node-1", "node-2"]).await;
    let wrapped = wrap_seal_key_for(&tokens[0], &tokens[1]).await;
    let mut bytes = wrapped.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    let tampered = WrappedKey::from_bytes(&bytes).unwrap();

    let seal_spec = spec("seal", KeyKind::SealAes256, Exportability::WrappedOnly);
    let error = tokens[1]
        .unwrap_key(&label("transport"), &tampered, &seal_spec)
        .await
        .unwrap_err();

    assert!(matches!(error, HsmError::UnwrapFailed { .. }), "{error:?}");
}

#[tokio::test]
async fn unwrap_rejects_kind_mismatch_and_taken_label() {
    let (_lab, tokens) = fleet_of(&["node-1", "node-2"]).await;
    let wrapped = wrap_seal_key_for(&tokens[0], &tokens[1]).await;

    let as_hmac = spec("seal", KeyKind::HmacSha512, Exportability::WrappedOnly);
    let mismatch = tokens[1]
        .unwrap_key(&label("transport"), &wrapped, &as_hmac)
        .await
        .unwrap_err();
    let onto_transport = spec("transport", KeyKind::SealAes256, Exportability::WrappedOnly);
    let taken = tokens[1]
        .unwrap_key(&label("transport"), &wrapped, &onto_transport)
        .await
        .unwrap_err();

    assert!(
        mismatch
            .to_string()
            .contains("asks for a HMAC-SHA512 secret"),
        "{mismatch}"
    );
    assert!(matches!(taken, HsmError::KeyExists { .. }), "{taken:?}");
}

#[tokio::test]
async fn never_exportable_key_cannot_be_wrapped() {
    let (_lab, tokens) = fleet_of(&["node-1", "node-2"]).await;
    tokens[0]
        .provision(&spec("local", KeyKind::SealAes256, Exportability::Never))
        .await
        .unwrap();
    let recipient = tokens[1]
        .transport_public_key(&label("transport"))
        .await
        .unwrap();

    let error = tokens[0]
        .wrap_key(&label("local"), &recipient)
        .await
        .unwrap_err();

    assert!(error.to_string().contains("C_WrapKey failed"), "{error}");
    assert!(error.to_string().contains("KeyUnextractable"), "{error}");
}

#[tokio::test]
async fn unwrap_rejects_wrong_wrapped_length() {
    let (_lab, tokens) = fleet_of(&["node-1", "node-2"]).await;
    let wrapped = wrap_seal_key_for(&tokens[0], &tokens[1]).await;
    let bytes = wrapped.to_bytes();
    let short = WrappedKey::from_bytes(&bytes[..bytes.len() - 8]).unwrap();

    let seal_spec = spec("seal", KeyKind::SealAes256, Exportability::WrappedOnly);
    let error = tokens[1]
        .unwrap_key(&label("transport"), &short, &seal_spec)
        .await
        .unwrap_err();

    assert!(
        error.to_string().contains("32 wrapped bytes cannot hold"),
        "{error}"
    );
}

#[tokio::test]
async fn wrap_rejects_point_off_the_curve() {
    let (_lab, tokens) = fleet_of(&["node-1"]).await;
    let mut point = [0xffu8; keyfleet_hsm::P256_POINT_LEN];
    point[0] = 0x04;
    let recipient = keyfleet_hsm::TransportPublicKey::from_sec1(&point).unwrap();

    let error = tokens[0]
        .wrap_key(&label("seal"), &recipient)
        .await
        .unwrap_err();

    assert!(matches!(error, HsmError::InvalidInput { .. }), "{error:?}");
    assert!(
        error.to_string().contains("not usable for ECDH on P-256"),
        "{error}"
    );
}
