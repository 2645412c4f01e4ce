//! Login and registration tickets: tampering, expiry, another user, another step, staleness.

mod common;

use keyfleet_vault::{
    DEFAULT_TICKET_TTL_SECS, LoginTicket, MAX_TICKET_LEN, RegistrationTicket, TicketKind,
    VaultError,
};

use common::{count_guess, fixture, login_finish, login_start, register};

const SECRET: &[u8] = b"client ciphertext";

/// Registers alice, counts a guess, and runs recovery start and the client's finish. Returns
/// the fixture, the record, the login ticket and the KE3 bytes.
async fn started_recovery() -> (
    common::Fixture,
    keyfleet_vault::StoredRecord,
    LoginTicket,
    Vec<u8>,
) {
    let fixture = fixture(&["node-1"]).await;
    let (mut record, _) = register(&fixture.vault, "alice", b"correct horse", SECRET).await;
    count_guess(&mut record);
    let (state, ke1) = login_start(b"correct horse");
    let start = fixture
        .vault
        .recovery_start("alice", &ke1, Some(&record))
        .await
        .unwrap();
    let client = login_finish(state, "alice", b"correct horse", &start.response).unwrap();

    (
        fixture,
        record,
        start.ticket,
        client.message.serialize().to_vec(),
    )
}

#[tokio::test]
async fn tampered_login_ticket_is_rejected() {
    let (fixture, record, ticket, ke3) = started_recovery().await;
    let bytes = ticket.as_bytes();

    for position in [bytes.len() / 2, bytes.len() - 1] {
        let mut changed = bytes.to_vec();
        changed[position] ^= 0x01;
        let changed = LoginTicket::from_bytes(changed).unwrap();

        let finish = fixture
            .vault
            .recovery_finish("alice", &changed, &ke3, Some(&record))
            .await;

        assert!(
            matches!(
                finish,
                Err(VaultError::TicketInvalid {
                    kind: TicketKind::Login,
                    ..
                })
            ),
            "byte {position}: {finish:?}"
        );
    }
}

#[tokio::test]
async fn expired_login_ticket_is_rejected() {
    let (fixture, record, ticket, ke3) = started_recovery().await;
    fixture.clock.advance(DEFAULT_TICKET_TTL_SECS);

    let finish = fixture
        .vault
        .recovery_finish("alice", &ticket, &ke3, Some(&record))
        .await;

    assert!(
        matches!(
            finish,
            Err(VaultError::TicketExpired {
                kind: TicketKind::Login,
                ..
            })
        ),
        "{finish:?}"
    );
}

#[tokio::test]
async fn login_ticket_valid_until_expiry() {
    let (fixture, record, ticket, ke3) = started_recovery().await;
    fixture.clock.advance(DEFAULT_TICKET_TTL_SECS - 1);

    let finish = fixture
        .vault
        .recovery_finish("alice", &ticket, &ke3, Some(&record))
        .await;

    assert!(finish.is_ok(), "{finish:?}");
}

#[tokio::test]
async fn login_ticket_for_other_user_is_rejected() {
    let (fixture, _, ticket, ke3) = started_recovery().await;
    let (mut bob, _) = register(&fixture.vault, "bob", b"battery staple", SECRET).await;
    count_guess(&mut bob);

    let finish = fixture
        .vault
        .recovery_finish("bob", &ticket, &ke3, Some(&bob))
        .await;

    assert!(
        matches!(
            finish,
            Err(VaultError::TicketUserMismatch {
                kind: TicketKind::Login
            })
        ),
        "{finish:?}"
    );
}

#[tokio::test]
async fn login_ticket_after_record_change_is_stale() {
    let (fixture, mut record, ticket, ke3) = started_recovery().await;
    count_guess(&mut record);

    let finish = fixture
        .vault
        .recovery_finish("alice", &ticket, &ke3, Some(&record))
        .await;
    let erased = fixture
        .vault
        .recovery_finish("alice", &ticket, &ke3, None)
        .await;

    assert!(
        matches!(finish, Err(VaultError::TicketStale { .. })),
        "{finish:?}"
    );
    assert!(
        matches!(erased, Err(VaultError::TicketStale { .. })),
        "{erased:?}"
    );
}

#[tokio::test]
async fn registration_ticket_is_not_a_login_ticket() {
    let fixture = fixture(&["node-1"]).await;
    let request = opaque_ke::ClientRegistration::<keyfleet_vault::Suite>::start(
        &mut rand::rngs::OsRng,
        b"correct horse",
    )
    .unwrap();
    let start = fixture
        .vault
        .registration_start("alice", &request.message.serialize(), None)
        .await
        .unwrap();
    let as_login = LoginTicket::from_bytes(start.ticket.as_bytes().to_vec()).unwrap();

    let finish = fixture
        .vault
        .recovery_finish("alice", &as_login, &[0; 64], None)
        .await;

    assert!(
        matches!(
            finish,
            Err(VaultError::TicketInvalid {
                kind: TicketKind::Login,
                ..
            })
        ),
        "{finish:?}"
    );
}

#[tokio::test]
async fn registration_ticket_checks() {
    let fixture = fixture(&["node-1"]).await;
    let request = opaque_ke::ClientRegistration::<keyfleet_vault::Suite>::start(
        &mut rand::rngs::OsRng,
        b"correct horse",
    )
    .unwrap();
    let start = fixture
        .vault
        .registration_start("alice", &request.message.serialize(), None)
        .await
        .unwrap();
    let upload = [0u8; keyfleet_vault::REGISTRATION_UPLOAD_LEN];
    let mut changed = start.ticket.as_bytes().to_vec();
    let last = changed.len() - 1;
    changed[last] ^= 0x01;
    let changed = RegistrationTicket::from_bytes(changed).unwrap();

    let other_user = fixture
        .vault
        .registration_finish("bob", &start.ticket, &upload, SECRET)
        .await;
    let tampered = fixture
        .vault
        .registration_finish("alice", &changed, &upload, SECRET)
        .await;
    fixture.clock.advance(DEFAULT_TICKET_TTL_SECS);
    let expired = fixture
        .vault
        .registration_finish("alice", &start.ticket, &upload, SECRET)
        .await;

    assert!(
        matches!(other_user, Err(VaultError::TicketUserMismatch { .. })),
        "{other_user:?}"
    );
    assert!(
        matches!(
            tampered,
            Err(VaultError::TicketInvalid {
                kind: TicketKind::Registration,
                ..
            })
        ),
        "{tampered:?}"
    );
    assert!(
        matches!(expired, Err(VaultError::TicketExpired { .. })),
        "{expired:?}"
    );
}

#[test]
fn oversized_or_headerless_ticket_is_rejected() {
    let oversized = LoginTicket::from_bytes(vec![0; MAX_TICKET_LEN + 1]);
    let headerless = LoginTicket::from_bytes(vec![0; 64]);

    assert!(
        matches!(oversized, Err(VaultError::TicketInvalid { .. })),
        "{oversized:?}"
    );
    assert!(
        matches!(headerless, Err(VaultError::TicketInvalid { .. })),
        "{headerless:?}"
    );
}
