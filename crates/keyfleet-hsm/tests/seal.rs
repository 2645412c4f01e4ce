//! Sealing and unsealing with AES-256-GCM in a real SoftHSM2 token.

mod common;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use keyfleet_hsm::{
    Exportability, Hsm, HsmError, IV_LEN, KeyKind, MAX_PLAINTEXT_LEN, SealContext, SealedBlob,
};
use keyfleet_testkit::SoftHsmLab;

use common::{label, settings, spec, token_with_seal_key};

const CONTEXT: SealContext<'static> = SealContext {
    purpose: "opaque-password-file",
    record_id: b"alice",
};

#[tokio::test]
async fn seal_unseal_round_trip() {
    let (_lab, hsm) = token_with_seal_key().await;

    let blob = hsm
        .seal(&label("seal"), &CONTEXT, b"backup key")
        .await
        .unwrap();
    let opened = hsm.unseal(&label("seal"), &CONTEXT, &blob).await.unwrap();

    assert_eq!(opened.expose_secret(), b"backup key");
    assert_eq!(blob.key_label(), label("seal"));
}

#[tokio::test]
async fn seal_empty_plaintext_round_trips() {
    let (_lab, hsm) = token_with_seal_key().await;

    let blob = hsm.seal(&label("seal"), &CONTEXT, b"").await.unwrap();
    let opened = hsm.unseal(&label("seal"), &CONTEXT, &blob).await.unwrap();

    assert!(opened.is_empty());
}

#[tokio::test]
async fn seal_uses_fresh_iv_each_time() {
    let (_lab, hsm) = token_with_seal_key().await;

    let first = hsm.seal(&label("seal"), &CONTEXT, b"same").await.unwrap();
    let second = hsm.seal(&label("seal"), &CONTEXT, b"same").await.unwrap();

    assert_ne!(first.as_bytes(), second.as_bytes());
}

#[tokio::test]
async fn unseal_rejects_tampered_blob() {
    let (_lab, hsm) = token_with_seal_key().await;
    let blob = hsm
        .seal(&label("seal"), &CONTEXT, b"backup key")
        .await
        .unwrap();
    let header_len = 4 + 1 + 1 + "seal".len();
    let positions = [
        ("IV", header_len),
        ("ciphertext", header_len + IV_LEN),
        ("tag", blob.as_bytes().len() - 1),
    ];

    for (part, position) in positions {
        let mut bytes = blob.as_bytes().to_vec();
        bytes[position] ^= 0x01;
        let tampered = SealedBlob::from_bytes(bytes).unwrap();

        let error = hsm
            .unseal(&label("seal"), &CONTEXT, &tampered)
            .await
            .unwrap_err();

        assert!(
            matches!(error, HsmError::UnsealFailed { .. }),
            "{part}: {error:?}"
        );
        assert!(
            error.to_string().contains("failed authentication"),
            "{part}: {error}"
        );
    }
}

#[tokio::test]
async fn unseal_rejects_wrong_context() {
    let (_lab, hsm) = token_with_seal_key().await;
    let blob = hsm
        .seal(&label("seal"), &CONTEXT, b"backup key")
        .await
        .unwrap();
    let other_purpose = SealContext::new("client-secret", b"alice");
    let other_record = SealContext::new("opaque-password-file", b"mallory");

    for context in [other_purpose, other_record] {
        let error = hsm
            .unseal(&label("seal"), &context, &blob)
            .await
            .unwrap_err();

        assert!(
            matches!(error, HsmError::UnsealFailed { .. }),
            "{context:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn unseal_rejects_same_label_other_key() {
    let (_lab, tokens) = common::open_tokens(&["node-1", "node-2"]).await;
    let seal_spec = spec("seal", KeyKind::SealAes256, Exportability::WrappedOnly);
    for hsm in &tokens {
        hsm.provision(&seal_spec).await.unwrap();
    }

    let blob = tokens[0]
        .seal(&label("seal"), &CONTEXT, b"secret")
        .await
        .unwrap();
    let error = tokens[1]
        .unseal(&label("seal"), &CONTEXT, &blob)
        .await
        .unwrap_err();

    assert!(matches!(error, HsmError::UnsealFailed { .. }), "{error:?}");
}

#[tokio::test]
async fn unseal_names_the_blobs_key() {
    let (_lab, hsm) = token_with_seal_key().await;
    hsm.provision(&spec(
        "seal-v2",
        KeyKind::SealAes256,
        Exportability::WrappedOnly,
    ))
    .await
    .unwrap();
    let blob = hsm.seal(&label("seal"), &CONTEXT, b"secret").await.unwrap();

    let error = hsm
        .unseal(&label("seal-v2"), &CONTEXT, &blob)
        .await
        .unwrap_err();

    let message = error.to_string();
    assert!(message.contains("sealed under key \"seal\""), "{message}");
    assert!(message.contains("not \"seal-v2\""), "{message}");
}

#[tokio::test]
async fn seal_with_missing_key_names_it() {
    let (_lab, hsm) = token_with_seal_key().await;

    let error = hsm
        .seal(&label("absent"), &CONTEXT, b"x")
        .await
        .unwrap_err();

    assert!(matches!(error, HsmError::KeyNotFound { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("key label \"absent\" not found on token \"node-1\""),
        "{message}"
    );
}

#[tokio::test]
async fn seal_rejects_oversized_plaintext() {
    let (_lab, hsm) = token_with_seal_key().await;
    let plaintext = vec![0u8; MAX_PLAINTEXT_LEN + 1];

    let error = hsm
        .seal(&label("seal"), &CONTEXT, &plaintext)
        .await
        .unwrap_err();

    assert!(
        error.to_string().contains("exceeds the sealing limit"),
        "{error}"
    );
}

/// The blob format and associated data checked against the RustCrypto AES-GCM implementation
/// with a key imported into the token in the clear.
#[tokio::test]
async fn seal_matches_independent_aes_gcm() {
    let lab = SoftHsmLab::new();
    let token = lab.create_token("node-1", "1234");
    let key = [0x42u8; 32];
    lab.import_aes_key(&token, "kat", &key);
    lab.activate();
    let hsm = keyfleet_hsm::Pkcs11Hsm::open(&settings(&lab, &token))
        .await
        .unwrap();

    let blob = hsm
        .seal(&label("kat"), &CONTEXT, b"known answer")
        .await
        .unwrap();

    let bytes = blob.as_bytes();
    let header_len = 4 + 1 + 1 + "kat".len();
    let nonce = Nonce::from_slice(&bytes[header_len..header_len + IV_LEN]);
    let mut aad = b"keyfleet/seal\x01".to_vec();
    for field in [&b"kat"[..], b"opaque-password-file", b"alice"] {
        aad.extend_from_slice(&(field.len() as u32).to_be_bytes());
        aad.extend_from_slice(field);
    }
    let cipher = Aes256Gcm::new_from_slice(&key).unwrap();
    let payload = Payload {
        msg: &bytes[header_len + IV_LEN..],
        aad: &aad,
    };
    let plaintext = cipher.decrypt(nonce, payload).unwrap();
    assert_eq!(plaintext, b"known answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_seals_share_the_pool() {
    let (_lab, hsm) = token_with_seal_key().await;

    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let hsm = hsm.clone();
        tasks.push(tokio::spawn(async move {
            let record = i.to_be_bytes();
            let context = SealContext::new("load", &record);
            let blob = hsm.seal(&label("seal"), &context, &record).await.unwrap();
            let opened = hsm.unseal(&label("seal"), &context, &blob).await.unwrap();
            assert_eq!(opened.expose_secret(), record);
        }));
    }

    for task in tasks {
        task.await.unwrap();
    }
}
