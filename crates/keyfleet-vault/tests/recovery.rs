//! Registration and recovery end to end: opaque-ke's client against the vault on SoftHSM2.

mod common;

use keyfleet_hsm::KeyKind;
use keyfleet_vault::{
    CREDENTIAL_REQUEST_LEN, RecordState, StoredRecord, VaultError, open_recovered_secret,
};
use opaque_ke::errors::ProtocolError;

use common::{
    OPRF_SEED, REGISTERED_VERSION, SEAL, count_guess, fixture, load_vault, login_finish,
    login_start, recover, register, transfer_key,
};

const SECRET: &[u8] = b"client ciphertext of a 256-bit backup key";

#[tokio::test]
async fn recovery_returns_the_secret() {
    let fixture = fixture(&["node-1"]).await;
    let (mut record, export_key) =
        register(&fixture.vault, "alice", b"correct horse", SECRET).await;

    let (client, outcome) = recover(&fixture.vault, "alice", b"correct horse", &mut record).await;
    let recovered = outcome.unwrap();
    let secret =
        open_recovered_secret(&client.session_key, "alice", &recovered.encrypted_secret).unwrap();

    assert_eq!(secret.as_slice(), SECRET);
    assert_eq!(
        recovered.session_key.expose_secret().as_slice(),
        client.session_key.as_slice()
    );
    assert_eq!(client.export_key.as_slice(), export_key.as_slice());
    assert_eq!(
        recovered.issued_at,
        RecordState {
            version: REGISTERED_VERSION + 1,
            guesses_used: 1,
        }
    );
}

#[tokio::test]
async fn wrong_password_fails() {
    let fixture = fixture(&["node-1"]).await;
    let (mut record, _) = register(&fixture.vault, "alice", b"correct horse", SECRET).await;
    count_guess(&mut record);
    let (state, ke1) = login_start(b"wrong horse");

    let start = fixture
        .vault
        .recovery_start("alice", &ke1, Some(&record))
        .await
        .unwrap();
    let client = login_finish(state, "alice", b"wrong horse", &start.response);
    // A client that cannot open its envelope has no KE3, so an attacker sends 64 guessed bytes.
    let finish = fixture
        .vault
        .recovery_finish("alice", &start.ticket, &[0x42; 64], Some(&record))
        .await;

    assert!(
        matches!(client, Err(ProtocolError::InvalidLoginError)),
        "{:?}",
        client.as_ref().err()
    );
    assert!(
        matches!(finish, Err(VaultError::WrongPassword)),
        "{finish:?}"
    );
}

#[tokio::test]
async fn ke3_from_another_session_fails() {
    let fixture = fixture(&["node-1"]).await;
    let (mut record, _) = register(&fixture.vault, "alice", b"correct horse", SECRET).await;
    count_guess(&mut record);
    let (first_state, first_ke1) = login_start(b"correct horse");
    let (_, second_ke1) = login_start(b"correct horse");

    let first = fixture
        .vault
        .recovery_start("alice", &first_ke1, Some(&record))
        .await
        .unwrap();
    let second = fixture
        .vault
        .recovery_start("alice", &second_ke1, Some(&record))
        .await
        .unwrap();
    let client = login_finish(first_state, "alice", b"correct horse", &first.response).unwrap();
    let finish = fixture
        .vault
        .recovery_finish(
            "alice",
            &second.ticket,
            &client.message.serialize(),
            Some(&record),
        )
        .await;

    assert!(
        matches!(finish, Err(VaultError::WrongPassword)),
        "{finish:?}"
    );
}

#[tokio::test]
async fn unknown_user_looks_like_known_user() {
    let fixture = fixture(&["node-1"]).await;
    let (mut record, _) = register(&fixture.vault, "alice", b"correct horse", SECRET).await;
    count_guess(&mut record);
    let (_, known_ke1) = login_start(b"correct horse");
    let (unknown_state, unknown_ke1) = login_start(b"correct horse");

    let known = fixture
        .vault
        .recovery_start("alice", &known_ke1, Some(&record))
        .await
        .unwrap();
    let unknown = fixture
        .vault
        .recovery_start("mallory", &unknown_ke1, None)
        .await
        .unwrap();
    let client = login_finish(
        unknown_state,
        "mallory",
        b"correct horse",
        &unknown.response,
    );
    let finish = fixture
        .vault
        .recovery_finish("mallory", &unknown.ticket, &[0x42; 64], None)
        .await;

    assert_eq!(known.response.len(), unknown.response.len());
    // "alice" and "mallory" differ by two bytes, and the ticket carries the user id.
    assert_eq!(
        known.ticket.as_bytes().len() + 2,
        unknown.ticket.as_bytes().len()
    );
    assert!(
        matches!(client, Err(ProtocolError::InvalidLoginError)),
        "{:?}",
        client.as_ref().err()
    );
    assert!(
        matches!(finish, Err(VaultError::WrongPassword)),
        "{finish:?}"
    );
}

#[tokio::test]
async fn unknown_user_ke2_is_deterministic_in_oprf() {
    let fixture = fixture(&["node-1"]).await;
    let ke1 = login_start(b"guess").1;

    let first = fixture
        .vault
        .recovery_start("mallory", &ke1, None)
        .await
        .unwrap();
    let second = fixture
        .vault
        .recovery_start("mallory", &ke1, None)
        .await
        .unwrap();

    // The OPRF evaluation comes first in KE2 and uses the same per-user key each time, as it
    // would for a registered user. The rest of KE2 is fresh per session.
    assert_eq!(first.response[..32], second.response[..32]);
    assert_ne!(first.response[32..], second.response[32..]);
    assert_eq!(ke1.len(), CREDENTIAL_REQUEST_LEN);
}

#[tokio::test]
async fn two_recoveries_succeed() {
    let fixture = fixture(&["node-1"]).await;
    let (mut record, _) = register(&fixture.vault, "alice", b"correct horse", SECRET).await;

    let (first_client, first) =
        recover(&fixture.vault, "alice", b"correct horse", &mut record).await;
    let (second_client, second) =
        recover(&fixture.vault, "alice", b"correct horse", &mut record).await;

    assert!(first.is_ok(), "{first:?}");
    assert!(second.is_ok(), "{second:?}");
    assert_ne!(first_client.session_key, second_client.session_key);
    assert_eq!(first_client.export_key, second_client.export_key);
}

#[tokio::test]
async fn token_with_same_seed_recovers() {
    let mut fixture = fixture(&["node-1", "node-2"]).await;
    let (mut record, _) = register(&fixture.vault, "alice", b"correct horse", SECRET).await;
    let node_2 = fixture.tokens.remove(1);
    transfer_key(&fixture.tokens[0], &node_2, SEAL, KeyKind::SealAes256).await;
    transfer_key(&fixture.tokens[0], &node_2, OPRF_SEED, KeyKind::HmacSha512).await;

    let vault_2 = load_vault(&node_2, &fixture.sealed_setup, &fixture.clock).await;
    let (_, outcome) = recover(&vault_2, "alice", b"correct horse", &mut record).await;

    assert!(outcome.is_ok(), "{outcome:?}");
}

#[tokio::test]
async fn token_with_other_seed_fails() {
    let mut fixture = fixture(&["node-1", "node-2"]).await;
    let (mut record, _) = register(&fixture.vault, "alice", b"correct horse", SECRET).await;
    let node_2 = fixture.tokens.remove(1);
    transfer_key(&fixture.tokens[0], &node_2, SEAL, KeyKind::SealAes256).await;
    common::provision(&node_2, OPRF_SEED, KeyKind::HmacSha512).await;

    let vault_2 = load_vault(&node_2, &fixture.sealed_setup, &fixture.clock).await;
    count_guess(&mut record);
    let (state, ke1) = login_start(b"correct horse");
    let start = vault_2
        .recovery_start("alice", &ke1, Some(&record))
        .await
        .unwrap();
    let client = login_finish(state, "alice", b"correct horse", &start.response);

    assert!(
        matches!(client, Err(ProtocolError::InvalidLoginError)),
        "{:?}",
        client.as_ref().err()
    );
}

#[tokio::test]
async fn password_file_of_another_user_fails() {
    let fixture = fixture(&["node-1"]).await;
    let (alice, _) = register(&fixture.vault, "alice", b"correct horse", SECRET).await;
    let mut swapped = StoredRecord {
        state: RecordState {
            version: REGISTERED_VERSION,
            guesses_used: 0,
        },
        ..alice
    };
    count_guess(&mut swapped);
    let (_, ke1) = login_start(b"correct horse");

    let start = fixture
        .vault
        .recovery_start("bob", &ke1, Some(&swapped))
        .await;

    assert!(matches!(start, Err(VaultError::Hsm { .. })), "{start:?}");
}
