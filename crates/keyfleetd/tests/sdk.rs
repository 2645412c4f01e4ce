//! The client SDK against a real three-node cluster: protocol version 1's own Argon2
//! parameters, leader hints, typed errors and failover.

mod common;

use common::RaftTiming;
use common::TestCluster;
use common::VaultOptions;
use common::raw_vault::TEST_KSF;
use keyfleet_raft::NodeId;
use keyfleet_sdk::RecordStatus;
use keyfleet_sdk::SdkError;
use keyfleet_sdk::VaultClient;

const PASSWORD: &[u8] = b"correct horse battery staple";
const BACKUP_KEY: [u8; 32] = [0x5a; 32];

/// Returns an SDK client over every node, with the followers first, so that the first call
/// must follow a leader hint.
fn client_followers_first(cluster: &TestCluster, leader: NodeId) -> VaultClient {
    let mut ids: Vec<NodeId> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    ids.push(leader);
    let endpoints: Vec<String> = ids.iter().map(|id| cluster.api_endpoint(*id)).collect();

    VaultClient::new(endpoints, common::test_policy()).expect("build the SDK client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_round_trip_with_protocol_ksf() {
    let (cluster, leader) =
        TestCluster::launch_vault(3, RaftTiming::default(), VaultOptions::default()).await;
    let client = client_followers_first(&cluster, leader);
    let token = cluster.token("alice");

    let registered = client
        .register(&token, "alice", PASSWORD, &BACKUP_KEY, 3)
        .await
        .expect("register");
    assert_eq!(registered.max_guesses, 3);

    let wrong = client
        .recover(&token, "alice", b"not the password")
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, SdkError::WrongPassword { guesses_left: 2 }),
        "{wrong:?}"
    );

    let recovered = client
        .recover(&token, "alice", PASSWORD)
        .await
        .expect("recover");
    assert_eq!(recovered.as_slice(), &BACKUP_KEY);

    let state = client.state(&token, "alice").await.expect("state");
    assert_eq!(
        state,
        RecordStatus::Registered {
            max_guesses: 3,
            guesses_left: 3
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_errors_and_failover() {
    let (mut cluster, leader) =
        TestCluster::launch_vault(3, RaftTiming::default(), VaultOptions::default()).await;
    let client = client_followers_first(&cluster, leader).with_ksf(TEST_KSF);
    let token = cluster.token("bob");

    client
        .register(&token, "bob", PASSWORD, &BACKUP_KEY, 2)
        .await
        .expect("register");

    let unknown = client
        .recover(&cluster.token("nobody"), "nobody", PASSWORD)
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, SdkError::WrongPassword { guesses_left: 9 }),
        "{unknown:?}"
    );

    let wrong_user = client.recover(&token, "carol", PASSWORD).await.unwrap_err();
    assert!(
        matches!(wrong_user, SdkError::PermissionDenied { .. }),
        "{wrong_user:?}"
    );

    let expired = client
        .state(&cluster.token_with_lifetime("bob", 600, 300), "bob")
        .await
        .unwrap_err();
    assert!(
        matches!(&expired, SdkError::Unauthenticated { reason, .. } if reason == "TOKEN_EXPIRED"),
        "{expired:?}"
    );

    cluster.kill(leader);
    let recovered = client
        .recover(&token, "bob", PASSWORD)
        .await
        .expect("recover after the leader was killed");
    assert_eq!(recovered.as_slice(), &BACKUP_KEY);

    for guesses_left in [1, 0] {
        let outcome = client.recover(&token, "bob", b"wrong").await.unwrap_err();
        match guesses_left {
            0 => assert!(matches!(outcome, SdkError::Locked), "{outcome:?}"),
            left => assert!(
                matches!(outcome, SdkError::WrongPassword { guesses_left } if guesses_left == left),
                "{outcome:?}"
            ),
        }
    }

    let locked = client.recover(&token, "bob", PASSWORD).await.unwrap_err();
    assert!(matches!(locked, SdkError::Locked), "{locked:?}");
    assert_eq!(
        client.state(&token, "bob").await.expect("state"),
        RecordStatus::Locked
    );

    assert!(client.delete(&token, "bob").await.expect("delete"));
    assert_eq!(
        client.state(&token, "bob").await.expect("state"),
        RecordStatus::NotRegistered
    );
}
