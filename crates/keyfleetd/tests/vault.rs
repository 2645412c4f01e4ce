//! The public vault API against a real three-node cluster: guess limits under concurrency and
//! leader failure, replays, unknown users, malformed input and tenant tokens.

mod common;

use std::path::Path;
use std::time::Duration;

use common::RaftTiming;
use common::TestCluster;
use common::VaultOptions;
use common::WAIT;
use common::raw_vault::Failure;
use common::raw_vault::RawVault;
use common::raw_vault::random_request_id;
use common::raw_vault::record_id;
use keyfleet_api::vault::RecordState;
use keyfleet_api::vault::RecoveryStartRequest;
use keyfleet_raft::NodeId;
use tokio::time::Instant;
use tonic::Code;

const PASSWORD: &[u8] = b"correct horse battery staple";
const WRONG: &[u8] = b"wrong password";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

async fn launch() -> (TestCluster, NodeId) {
    TestCluster::launch_vault(3, RaftTiming::default(), VaultOptions::default()).await
}

async fn raw(cluster: &TestCluster, node: NodeId, user: &str) -> RawVault {
    RawVault::connect(&cluster.api_endpoint(node), cluster.token(user), user).await
}

/// Sends a recovery with the wrong password and returns the failure.
async fn wrong_guess(vault: &RawVault) -> Failure {
    let login = vault.start_login(WRONG).await.expect("RecoveryStart");
    let (finish, session_key) = vault.finish_request(login, WRONG);
    assert!(
        session_key.is_none(),
        "a wrong password verified on the client"
    );

    vault
        .send_recovery_finish(finish)
        .await
        .expect_err("a wrong password was accepted")
}

fn assert_wrong_password(failure: &Failure, guesses_left: u32) {
    assert_eq!(failure.code, Code::PermissionDenied, "{failure:?}");
    assert_eq!(failure.reason, "WRONG_PASSWORD", "{failure:?}");
    assert_eq!(failure.guesses_left, Some(guesses_left), "{failure:?}");
}

fn assert_locked(failure: &Failure) {
    assert_eq!(failure.code, Code::FailedPrecondition, "{failure:?}");
    assert_eq!(failure.reason, "LOCKED", "{failure:?}");
}

fn assert_failure(failure: &Failure, code: Code, reason: &str) {
    assert_eq!(failure.code, code, "{failure:?}");
    assert_eq!(failure.reason, reason, "{failure:?}");
}

async fn guesses_left(vault: &RawVault) -> u32 {
    let state = vault.state().await.expect("GetState");
    assert_eq!(state.state(), RecordState::Registered, "{state:?}");
    state.guesses_left
}

/// Returns the files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();

    for entry in std::fs::read_dir(dir).expect("read the data directory") {
        let path = entry.expect("read a directory entry").path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
            continue;
        }

        // A store rewrite renames its temporary file away, so a file may vanish mid-scan.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if bytes.windows(needle.len()).any(|window| window == needle) {
            found.push(path.display().to_string());
        }
    }

    found
}

/// Waits until no file in any node's data directory contains `needle`.
async fn wait_until_erased(cluster: &TestCluster, ids: &[NodeId], needle: &[u8]) {
    let deadline = Instant::now() + WAIT;

    loop {
        let remaining: Vec<String> = ids
            .iter()
            .flat_map(|id| files_containing(&cluster.data_dir(*id), needle))
            .collect();
        if remaining.is_empty() {
            return;
        }

        assert!(
            Instant::now() < deadline,
            "erased bytes are still in {remaining:?} after {WAIT:?}\n{}",
            cluster.log_report()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guess_limit_locks_and_erases() {
    let (cluster, leader) = launch().await;
    let alice = raw(&cluster, leader, "alice").await;
    alice.register(PASSWORD, SECRET, 3).await.expect("register");

    assert_wrong_password(&wrong_guess(&alice).await, 2);
    assert_eq!(alice.recover(PASSWORD).await.expect("recover"), SECRET);
    assert_eq!(guesses_left(&alice).await, 3, "a recovery resets the count");

    assert_wrong_password(&wrong_guess(&alice).await, 2);
    assert_wrong_password(&wrong_guess(&alice).await, 1);

    let record = cluster
        .client()
        .read_record(&common::user(&record_id("alice")))
        .await
        .expect("ReadRecord")
        .expect("alice has a record");
    let password_file = record.password_file.as_bytes().to_vec();
    let sealed_secret = record.sealed_secret.as_bytes().to_vec();
    assert!(
        !files_containing(&cluster.data_dir(leader), &password_file).is_empty(),
        "the scan below would pass without finding the password file even before the erase"
    );

    assert_locked(&wrong_guess(&alice).await);

    let right_after_lock = alice.start_login(PASSWORD).await.err().expect("locked");
    assert_locked(&right_after_lock);
    let state = alice.state().await.expect("GetState");
    assert_eq!(state.state(), RecordState::Locked);
    assert_eq!(state.guesses_left, 0);

    wait_until_erased(&cluster, &[1, 2, 3], &password_file).await;
    wait_until_erased(&cluster, &[1, 2, 3], &sealed_secret).await;

    alice
        .register(PASSWORD, SECRET, 3)
        .await
        .expect("a new registration unlocks the user");
    assert_eq!(alice.recover(PASSWORD).await.expect("recover"), SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_stop_at_limit() {
    let (cluster, leader) = launch().await;
    let bob = raw(&cluster, leader, "bob").await;
    bob.register(PASSWORD, SECRET, 10).await.expect("register");

    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let bob = bob.clone();
            tokio::spawn(async move { bob.start_login(WRONG).await.map(drop) })
        })
        .collect();

    let mut served = 0;
    let mut refused = 0;
    for attempt in attempts {
        match attempt.await.expect("the attempt task panicked") {
            Ok(()) => served += 1,
            Err(failure) => {
                assert_locked(&failure);
                refused += 1;
            }
        }
    }

    assert_eq!(served, 10, "KE2 responses served");
    assert_eq!(refused, 40, "attempts refused as locked");
    let state = bob.state().await.expect("GetState");
    assert_eq!(state.state(), RecordState::Locked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_between_steps() {
    let (mut cluster, first_leader) = launch().await;
    let carol = raw(&cluster, first_leader, "carol").await;
    carol.register(PASSWORD, SECRET, 5).await.expect("register");

    let login = carol.start_login(PASSWORD).await.expect("RecoveryStart");
    cluster.kill(first_leader);
    let survivors: Vec<NodeId> = [1, 2, 3]
        .into_iter()
        .filter(|id| *id != first_leader)
        .collect();
    let second_leader = cluster.wait_for_leader(&survivors).await;

    let carol = raw(&cluster, second_leader, "carol").await;
    assert_eq!(guesses_left(&carol).await, 4, "the one counted guess");
    let (finish, _) = carol.finish_request(login, PASSWORD);
    carol
        .send_recovery_finish(finish)
        .await
        .expect("the new leader finishes a login the old leader started");
    assert_eq!(guesses_left(&carol).await, 5);

    cluster.restart(first_leader).await;
    let login = carol.start_login(WRONG).await.expect("RecoveryStart");
    cluster.kill(second_leader);
    let survivors: Vec<NodeId> = [1, 2, 3]
        .into_iter()
        .filter(|id| *id != second_leader)
        .collect();
    let third_leader = cluster.wait_for_leader(&survivors).await;

    let carol = raw(&cluster, third_leader, "carol").await;
    let (finish, _) = carol.finish_request(login, WRONG);
    let failure = carol.send_recovery_finish(finish).await.unwrap_err();
    assert_wrong_password(&failure, 4);
    assert_eq!(guesses_left(&carol).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_change_nothing() {
    let (cluster, leader) = launch().await;
    let dave = raw(&cluster, leader, "dave").await;
    let upload = dave.register(PASSWORD, SECRET, 5).await.expect("register");

    let replayed_upload = dave
        .send_registration_finish(keyfleet_api::vault::RegistrationFinishRequest {
            request_id: random_request_id(),
            ..upload.clone()
        })
        .await
        .unwrap_err();
    assert_failure(&replayed_upload, Code::Aborted, "TICKET_STALE");
    dave.send_registration_finish(upload)
        .await
        .expect("a retry with the same request id returns the first outcome");

    let login = dave.start_login(PASSWORD).await.expect("RecoveryStart");
    let (finish, _) = dave.finish_request(login, PASSWORD);
    dave.send_recovery_finish(finish.clone())
        .await
        .expect("RecoveryFinish");
    assert_wrong_password(&wrong_guess(&dave).await, 4);

    let replayed_finish = dave
        .send_recovery_finish(keyfleet_api::vault::RecoveryFinishRequest {
            request_id: random_request_id(),
            ..finish
        })
        .await
        .unwrap_err();
    assert_failure(&replayed_finish, Code::Aborted, "TICKET_STALE");
    assert_eq!(
        guesses_left(&dave).await,
        4,
        "a replayed KE3 must not reset the count"
    );

    let start = RecoveryStartRequest {
        user_id: "dave".to_owned(),
        request_id: random_request_id(),
        credential_request: fresh_ke1(),
    };
    dave.send_recovery_start(start.clone()).await.unwrap();
    dave.send_recovery_start(start.clone()).await.unwrap();
    assert_eq!(guesses_left(&dave).await, 3, "a retried start counts once");

    dave.send_recovery_start(RecoveryStartRequest {
        credential_request: fresh_ke1(),
        ..start
    })
    .await
    .unwrap();
    assert_eq!(
        guesses_left(&dave).await,
        2,
        "a new KE1 under an old request id is a new guess"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_looks_like_wrong_password() {
    let (cluster, leader) = launch().await;
    // Two user ids of the same length, so that the tickets, which contain the id, have the
    // same length too.
    let frank = raw(&cluster, leader, "known").await;
    frank.register(PASSWORD, SECRET, 0).await.expect("register");
    let nobody = raw(&cluster, leader, "ghost").await;

    let known = frank.start_login(WRONG).await.expect("RecoveryStart");
    let unknown = nobody.start_login(WRONG).await.expect("RecoveryStart");
    assert_eq!(
        known.reply.credential_response.len(),
        unknown.reply.credential_response.len()
    );
    assert_eq!(known.reply.ticket.len(), unknown.reply.ticket.len());

    let (known_finish, _) = frank.finish_request(known, WRONG);
    let (unknown_finish, _) = nobody.finish_request(unknown, WRONG);
    let known_failure = frank.send_recovery_finish(known_finish).await.unwrap_err();
    let unknown_failure = nobody
        .send_recovery_finish(unknown_finish)
        .await
        .unwrap_err();

    assert_wrong_password(&known_failure, 9);
    assert_wrong_password(&unknown_failure, 9);
    assert!(
        !unknown_failure.message.contains("ghost"),
        "{unknown_failure:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_changes_nothing() {
    let (cluster, leader) = launch().await;
    let gina = raw(&cluster, leader, "gina").await;
    gina.register(PASSWORD, SECRET, 5).await.expect("register");
    let valid_ke1 = |bytes: Vec<u8>| RecoveryStartRequest {
        user_id: "gina".to_owned(),
        request_id: random_request_id(),
        credential_request: bytes,
    };

    let cases: Vec<(&str, RecoveryStartRequest, Code, &str)> = vec![
        (
            "short KE1",
            valid_ke1(vec![7; 95]),
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        ),
        (
            "KE1 off the curve",
            valid_ke1(vec![0xff; 96]),
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        ),
        (
            "short request id",
            RecoveryStartRequest {
                request_id: vec![1; 3],
                ..valid_ke1(fresh_ke1())
            },
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        ),
        (
            "empty user id",
            RecoveryStartRequest {
                user_id: String::new(),
                ..valid_ke1(fresh_ke1())
            },
            Code::PermissionDenied,
            "TOKEN_WRONG_USER",
        ),
    ];
    for (name, request, code, reason) in cases {
        let failure = gina.send_recovery_start(request).await.unwrap_err();
        assert_failure(&failure, code, reason);
        assert_eq!(guesses_left(&gina).await, 5, "{name} changed the count");
    }

    let oversized = gina
        .send_recovery_start(valid_ke1(vec![1; 64 * 1024]))
        .await
        .unwrap_err();
    assert_eq!(oversized.code, Code::OutOfRange, "{oversized:?}");
    assert_eq!(
        guesses_left(&gina).await,
        5,
        "an oversized message changed the count"
    );

    let untrusted_key = keyfleet_token::TenantSigningKey::generate();
    let now = common::now_unix_secs();
    let untrusted = untrusted_key
        .mint(&keyfleet_token::TokenClaims {
            tenant: common::TENANT.to_owned(),
            user: "gina".to_owned(),
            fleet: common::FLEET_ID.to_owned(),
            issued_at: now,
            expires_at: now + 300,
        })
        .unwrap();
    let tokens = [
        (
            "no bearer prefix",
            cluster.token("gina").replace('.', ""),
            "TOKEN_INVALID",
        ),
        ("garbage token", "not-a-token".to_owned(), "TOKEN_INVALID"),
        (
            "expired token",
            cluster.token_with_lifetime("gina", 600, 300),
            "TOKEN_EXPIRED",
        ),
        ("untrusted key", untrusted, "TOKEN_INVALID"),
    ];
    for (name, token, reason) in tokens {
        let failure = gina
            .with_token(token)
            .start_login(WRONG)
            .await
            .err()
            .unwrap_or_else(|| panic!("{name} was accepted"));
        assert_failure(&failure, Code::Unauthenticated, reason);
        assert_eq!(guesses_left(&gina).await, 5, "{name} changed the count");
    }

    let other_user = gina
        .with_token(cluster.token("mallory"))
        .start_login(WRONG)
        .await
        .err()
        .expect("a token for another user was accepted");
    assert_failure(&other_user, Code::PermissionDenied, "TOKEN_WRONG_USER");

    let login = gina.start_login(PASSWORD).await.expect("RecoveryStart");
    let (mut finish, _) = gina.finish_request(login, PASSWORD);
    let good_ticket = finish.ticket.clone();
    finish.ticket[20] ^= 1;
    let tampered = gina.send_recovery_finish(finish.clone()).await.unwrap_err();
    assert_failure(&tampered, Code::Aborted, "TICKET_INVALID");
    finish.ticket = good_ticket;
    finish.credential_finalization.truncate(63);
    let short_ke3 = gina.send_recovery_finish(finish).await.unwrap_err();
    assert_failure(&short_ke3, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(
        guesses_left(&gina).await,
        4,
        "only the started login counted"
    );

    let too_many = gina.register(PASSWORD, SECRET, 11).await.unwrap_err();
    assert_failure(&too_many, Code::InvalidArgument, "INVALID_ARGUMENT");
    let too_long = gina.register(PASSWORD, &[0; 2000], 5).await.unwrap_err();
    assert_failure(&too_long, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(
        guesses_left(&gina).await,
        4,
        "a rejected registration changed the record"
    );

    assert_eq!(gina.recover(PASSWORD).await.expect("recover"), SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_expire_and_unfinished_last_guess_locks() {
    let options = VaultOptions {
        ticket_ttl_secs: 1,
        ..VaultOptions::default()
    };
    let (cluster, leader) = TestCluster::launch_vault(3, RaftTiming::default(), options).await;
    let hank = raw(&cluster, leader, "hank").await;
    hank.register(PASSWORD, SECRET, 2).await.expect("register");

    let login = hank.start_login(PASSWORD).await.expect("RecoveryStart");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (finish, _) = hank.finish_request(login, PASSWORD);
    let expired = hank.send_recovery_finish(finish).await.unwrap_err();
    assert_failure(&expired, Code::Aborted, "TICKET_EXPIRED");
    assert_eq!(guesses_left(&hank).await, 1);

    hank.start_login(WRONG).await.expect("the last guess");
    let deadline = Instant::now() + WAIT;
    loop {
        let state = hank.state().await.expect("GetState");
        if state.state() == RecordState::Locked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "an unfinished last guess did not lock the record: {state:?}\n{}",
            cluster.log_report()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_state() {
    let (cluster, leader) = launch().await;
    let ivan = raw(&cluster, leader, "ivan").await;

    let missing = ivan.state().await.expect("GetState");
    assert_eq!(missing.state(), RecordState::NotRegistered);
    assert!(
        !ivan.delete().await.expect("Delete"),
        "deleted a missing record"
    );

    ivan.register(PASSWORD, SECRET, 4).await.expect("register");
    let state = ivan.state().await.expect("GetState");
    assert_eq!(state.state(), RecordState::Registered);
    assert_eq!(state.max_guesses, 4);
    assert_eq!(state.guesses_left, 4);

    assert!(ivan.delete().await.expect("Delete"));
    let deleted = ivan.state().await.expect("GetState");
    assert_eq!(deleted.state(), RecordState::NotRegistered);
}

fn fresh_ke1() -> Vec<u8> {
    opaque_ke::ClientLogin::<keyfleet_vault::Suite>::start(&mut rand::rngs::OsRng, WRONG)
        .unwrap()
        .message
        .serialize()
        .to_vec()
}
