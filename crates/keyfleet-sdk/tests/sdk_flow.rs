//! The SDK against an in-process fake vault on 127.0.0.1: OPAQUE messages, the backup
//! encryption, error mapping, leader hints and retries.

mod fake_vault;

use std::time::Duration;

use fake_vault::{FLEET, FakeFollower, FakeLeader, TENANT, calls_of, serve};
use keyfleet_sdk::{KsfParams, RecordStatus, RetryPolicy, SdkError, VaultClient};
use keyfleet_token::{TenantSigningKey, TokenClaims};

/// Cheap Argon2id parameters; protocol version 1's take about a second per guess.
const TEST_KSF: KsfParams = KsfParams {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};

const PASSWORD: &[u8] = b"correct horse battery staple";
const SECRET: [u8; 32] = [0x5a; 32];

fn token_for(user: &str) -> String {
    let claims = TokenClaims {
        tenant: TENANT.to_owned(),
        user: user.to_owned(),
        fleet: FLEET.to_owned(),
        issued_at: 1_700_000_000,
        expires_at: 4_000_000_000,
    };

    TenantSigningKey::generate().mint(&claims).unwrap()
}

fn policy(deadline: Duration) -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        deadline,
        rpc_timeout: Duration::from_secs(2),
    }
}

/// Starts a leader and a follower, and builds a client whose first endpoint is the follower.
async fn fleet() -> (FakeLeader, FakeFollower, VaultClient) {
    let leader = FakeLeader::new();
    let leader_address = serve(leader.clone()).await;
    let follower = FakeFollower::new(leader_address);
    let follower_address = serve(follower.clone()).await;

    let endpoints = [follower_address.to_string(), leader_address.to_string()];
    let client = VaultClient::new(endpoints, policy(Duration::from_secs(5)))
        .unwrap()
        .with_ksf(TEST_KSF);
    (leader, follower, client)
}

#[tokio::test]
async fn register_then_recover() {
    let (leader, follower, client) = fleet().await;
    let token = token_for("alice");

    let registration = client
        .register(&token, "alice", PASSWORD, &SECRET, 3)
        .await
        .unwrap();
    let secret = client.recover(&token, "alice", PASSWORD).await.unwrap();

    assert_eq!(registration.max_guesses, 3);
    assert_eq!(secret.as_slice(), SECRET);
    assert_eq!(calls_of(&follower.calls, "registration_start").len(), 1);
    assert!(calls_of(&follower.calls, "recovery_start").is_empty());
    assert_eq!(leader.calls_of("recovery_finish").len(), 1);
}

#[tokio::test]
async fn client_ciphertext_hides_secret() {
    let (leader, _follower, client) = fleet().await;
    let token = token_for("alice");

    client
        .register(&token, "alice", PASSWORD, &SECRET, 0)
        .await
        .unwrap();

    let uploads = leader.calls_of("registration_finish");
    assert_eq!(uploads.len(), 1);
    let secret_in_debug = format!("{:?}", SECRET.to_vec());
    let secret_inner = &secret_in_debug[1..secret_in_debug.len() - 1];
    assert!(!uploads[0].contains(secret_inner), "{}", uploads[0]);
}

#[tokio::test]
async fn wrong_password_counts_then_locks() {
    let (leader, _follower, client) = fleet().await;
    let token = token_for("bob");
    client
        .register(&token, "bob", PASSWORD, &SECRET, 2)
        .await
        .unwrap();

    let first = client.recover(&token, "bob", b"wrong").await.unwrap_err();
    let second = client.recover(&token, "bob", b"wrong").await.unwrap_err();
    let after = client.recover(&token, "bob", PASSWORD).await.unwrap_err();

    assert!(
        matches!(first, SdkError::WrongPassword { guesses_left: 1 }),
        "{first:?}"
    );
    assert!(matches!(second, SdkError::Locked), "{second:?}");
    assert!(matches!(after, SdkError::Locked), "{after:?}");
    assert_eq!(leader.calls_of("recovery_finish").len(), 2);
    assert_eq!(
        client.state(&token, "bob").await.unwrap(),
        RecordStatus::Locked
    );
}

#[tokio::test]
async fn success_resets_guesses() {
    let (_leader, _follower, client) = fleet().await;
    let token = token_for("carol");
    client
        .register(&token, "carol", PASSWORD, &SECRET, 4)
        .await
        .unwrap();

    let _ = client.recover(&token, "carol", b"wrong").await.unwrap_err();
    let after_wrong = client.state(&token, "carol").await.unwrap();
    client.recover(&token, "carol", PASSWORD).await.unwrap();
    let after_right = client.state(&token, "carol").await.unwrap();

    assert_eq!(
        after_wrong,
        RecordStatus::Registered {
            max_guesses: 4,
            guesses_left: 3
        }
    );
    assert_eq!(
        after_right,
        RecordStatus::Registered {
            max_guesses: 4,
            guesses_left: 4
        }
    );
}

#[tokio::test]
async fn unknown_user_is_wrong_password() {
    let (leader, _follower, client) = fleet().await;
    let token = token_for("nobody");

    let error = client
        .recover(&token, "nobody", PASSWORD)
        .await
        .unwrap_err();

    assert!(matches!(error, SdkError::WrongPassword { .. }), "{error:?}");
    assert_eq!(leader.calls_of("recovery_finish").len(), 1);
}

#[tokio::test]
async fn retry_resends_same_request() {
    let (leader, _follower, client) = fleet().await;
    let token = token_for("dave");
    client
        .register(&token, "dave", PASSWORD, &SECRET, 3)
        .await
        .unwrap();

    leader.fail_next("recovery_start");
    let secret = client.recover(&token, "dave", PASSWORD).await.unwrap();

    let starts = leader.calls_of("recovery_start");
    assert_eq!(secret.as_slice(), SECRET);
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[0], starts[1]);
}

#[tokio::test]
async fn delete_and_state() {
    let (_leader, _follower, client) = fleet().await;
    let token = token_for("erin");

    let before = client.state(&token, "erin").await.unwrap();
    client
        .register(&token, "erin", PASSWORD, &SECRET, 0)
        .await
        .unwrap();
    let registered = client.state(&token, "erin").await.unwrap();
    let deleted = client.delete(&token, "erin").await.unwrap();
    let deleted_again = client.delete(&token, "erin").await.unwrap();

    assert_eq!(before, RecordStatus::NotRegistered);
    assert_eq!(
        registered,
        RecordStatus::Registered {
            max_guesses: fake_vault::DEFAULT_MAX_GUESSES,
            guesses_left: fake_vault::DEFAULT_MAX_GUESSES
        }
    );
    assert!(deleted);
    assert!(!deleted_again);
}

#[tokio::test]
async fn permission_denied_is_not_retried() {
    let (leader, _follower, client) = fleet().await;
    let token = token_for("alice");

    let error = client.state(&token, "mallory").await.unwrap_err();

    assert!(
        matches!(error, SdkError::PermissionDenied { .. }),
        "{error:?}"
    );
    assert_eq!(leader.calls_of("get_state").len(), 1);
}

#[tokio::test]
async fn local_checks_send_nothing() {
    let (leader, follower, client) = fleet().await;
    let token = token_for("alice");

    let empty_secret = client.register(&token, "alice", PASSWORD, b"", 0).await;
    let long_secret = client
        .register(&token, "alice", PASSWORD, &[1; 513], 0)
        .await;
    let empty_password = client.recover(&token, "alice", b"").await;
    let bad_user = client.state(&token, "").await;
    let bad_token = client.state("not a token", "alice").await;

    for result in [empty_secret, long_secret] {
        assert!(
            matches!(result, Err(SdkError::InvalidArgument { .. })),
            "{result:?}"
        );
    }
    assert!(
        matches!(empty_password, Err(SdkError::InvalidArgument { .. })),
        "{empty_password:?}"
    );
    assert!(
        matches!(bad_user, Err(SdkError::InvalidArgument { .. })),
        "{bad_user:?}"
    );
    assert!(
        matches!(bad_token, Err(SdkError::InvalidToken { .. })),
        "{bad_token:?}"
    );
    assert!(leader.calls.lock().unwrap().is_empty());
    assert!(follower.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unreachable_fleet_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let client = VaultClient::new([address.to_string()], policy(Duration::from_millis(500)))
        .unwrap()
        .with_ksf(TEST_KSF);

    let error = client
        .state(&token_for("alice"), "alice")
        .await
        .unwrap_err();

    match error {
        SdkError::Unavailable { attempts, .. } => assert!(attempts > 1, "{attempts} attempts"),
        other => panic!("{other:?}"),
    }
}
