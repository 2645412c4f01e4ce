//! Malformed client messages and oversized inputs are rejected with the message named.

mod common;

use keyfleet_vault::{
    CREDENTIAL_FINALIZATION_LEN, CREDENTIAL_REQUEST_LEN, MAX_CLIENT_CIPHERTEXT_LEN,
    MAX_USER_ID_LEN, REGISTRATION_REQUEST_LEN, REGISTRATION_UPLOAD_LEN, Suite, VaultError,
};
use opaque_ke::ClientRegistration;
use rand::rngs::OsRng;

use common::{count_guess, fixture, login_start, register};

/// Returns the message name of a `MalformedMessage` error.
fn malformed_name<T: std::fmt::Debug>(result: Result<T, VaultError>) -> &'static str {
    match result {
        Err(VaultError::MalformedMessage { message, .. }) => message,
        other => panic!("expected MalformedMessage, got {other:?}"),
    }
}

/// The bytes of a ristretto255 encoding that is not a valid point.
const INVALID_POINT: [u8; 32] = [0xff; 32];

#[tokio::test]
async fn registration_request_is_checked() {
    let fixture = fixture(&["node-1"]).await;
    let short = vec![0; REGISTRATION_REQUEST_LEN - 1];

    let wrong_length = fixture
        .vault
        .registration_start("alice", &short, None)
        .await;
    let not_a_point = fixture
        .vault
        .registration_start("alice", &INVALID_POINT, None)
        .await;

    assert_eq!(malformed_name(wrong_length), "RegistrationRequest");
    assert_eq!(malformed_name(not_a_point), "RegistrationRequest");
}

#[tokio::test]
async fn registration_upload_is_checked() {
    let fixture = fixture(&["node-1"]).await;
    let request = ClientRegistration::<Suite>::start(&mut OsRng, b"pw").unwrap();
    let start = fixture
        .vault
        .registration_start("alice", &request.message.serialize(), None)
        .await
        .unwrap();
    let mut not_a_point = vec![0; REGISTRATION_UPLOAD_LEN];
    not_a_point[..32].copy_from_slice(&INVALID_POINT);

    let wrong_length = fixture
        .vault
        .registration_finish("alice", &start.ticket, &[0; 10], b"secret")
        .await;
    let invalid_key = fixture
        .vault
        .registration_finish("alice", &start.ticket, &not_a_point, b"secret")
        .await;

    assert_eq!(malformed_name(wrong_length), "RegistrationUpload");
    assert_eq!(malformed_name(invalid_key), "RegistrationUpload");
}

#[tokio::test]
async fn client_ciphertext_size_is_limited() {
    let fixture = fixture(&["node-1"]).await;
    let request = ClientRegistration::<Suite>::start(&mut OsRng, b"pw").unwrap();
    let start = fixture
        .vault
        .registration_start("alice", &request.message.serialize(), None)
        .await
        .unwrap();
    let upload = [0; REGISTRATION_UPLOAD_LEN];

    let result = fixture
        .vault
        .registration_finish(
            "alice",
            &start.ticket,
            &upload,
            &[0; MAX_CLIENT_CIPHERTEXT_LEN + 1],
        )
        .await;

    assert!(
        matches!(
            result,
            Err(VaultError::ClientCiphertextTooLarge { len, .. }) if len == MAX_CLIENT_CIPHERTEXT_LEN + 1
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn credential_request_is_checked() {
    let fixture = fixture(&["node-1"]).await;
    let mut not_a_point = login_start(b"pw").1;
    not_a_point[..32].copy_from_slice(&INVALID_POINT);

    let wrong_length = fixture
        .vault
        .recovery_start("alice", &[0; CREDENTIAL_REQUEST_LEN + 1], None)
        .await;
    let invalid_element = fixture
        .vault
        .recovery_start("alice", &not_a_point, None)
        .await;

    assert_eq!(malformed_name(wrong_length), "CredentialRequest (KE1)");
    assert_eq!(malformed_name(invalid_element), "CredentialRequest (KE1)");
}

#[tokio::test]
async fn credential_finalization_is_checked() {
    let fixture = fixture(&["node-1"]).await;
    let (mut record, _) = register(&fixture.vault, "alice", b"pw", b"secret").await;
    count_guess(&mut record);
    let start = fixture
        .vault
        .recovery_start("alice", &login_start(b"pw").1, Some(&record))
        .await
        .unwrap();

    let result = fixture
        .vault
        .recovery_finish(
            "alice",
            &start.ticket,
            &[0; CREDENTIAL_FINALIZATION_LEN - 1],
            Some(&record),
        )
        .await;

    assert_eq!(malformed_name(result), "CredentialFinalization (KE3)");
}

#[tokio::test]
async fn user_id_is_checked() {
    let fixture = fixture(&["node-1"]).await;
    let too_long = "u".repeat(MAX_USER_ID_LEN + 1);
    let ke1 = login_start(b"pw").1;

    let empty = fixture.vault.recovery_start("", &ke1, None).await;
    let long = fixture.vault.recovery_start(&too_long, &ke1, None).await;

    assert!(
        matches!(empty, Err(VaultError::InvalidUserId { len: 0, .. })),
        "{empty:?}"
    );
    assert!(
        matches!(long, Err(VaultError::InvalidUserId { .. })),
        "{long:?}"
    );
}
