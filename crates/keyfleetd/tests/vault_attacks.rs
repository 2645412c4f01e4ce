//! Attacks on the public vault API by a caller that has a valid tenant token for the victim's
//! user id: extra password tests without counted guesses, ticket swaps, replays, tokens that
//! must be rejected, and secrets in the node logs.

mod common;

use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::FLEET_ID;
use common::RaftTiming;
use common::TENANT;
use common::TestCluster;
use common::VaultOptions;
use common::WAIT;
use common::now_unix_secs;
use common::raw_vault::Failure;
use common::raw_vault::RawVault;
use common::raw_vault::TEST_KSF;
use common::raw_vault::random_request_id;
use common::raw_vault::record_id;
use keyfleet_api::vault::RecordState;
use keyfleet_api::vault::RecoveryFinishRequest;
use keyfleet_api::vault::RecoveryStartRequest;
use keyfleet_api::vault::RegistrationFinishRequest;
use keyfleet_api::vault::RegistrationStartRequest;
use keyfleet_api::vault::vault_client::VaultClient;
use keyfleet_raft::NodeId;
use keyfleet_token::TenantSigningKey;
use keyfleet_token::TokenClaims;
use keyfleet_vault::KE_CONTEXT;
use keyfleet_vault::Suite;
use keyfleet_vault::client_identifiers;
use opaque_ke::ClientLogin;
use opaque_ke::ClientLoginFinishParameters;
use opaque_ke::ClientRegistration;
use opaque_ke::ClientRegistrationFinishParameters;
use opaque_ke::CredentialResponse;
use opaque_ke::RegistrationResponse;
use rand::rngs::OsRng;
use sha2::Digest;
use sha2::Sha512;
use tokio::time::Instant;
use tonic::Code;
use tonic::transport::Channel;

const PASSWORD: &[u8] = b"correct horse battery staple";
const WRONG: &[u8] = b"wrong password";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// Byte ranges of opaque-ke 4.0.1 serializations for the ristretto255 and SHA-512 suite.
const UPLOAD_MASKING_KEY: std::ops::Range<usize> = 32..96;
const REGISTRATION_RESPONSE_SERVER_KEY: std::ops::Range<usize> = 32..64;
const KE2_MASKING_NONCE: std::ops::Range<usize> = 32..64;
const KE2_MASKED_SERVER_KEY: std::ops::Range<usize> = 64..96;

async fn launch() -> (TestCluster, NodeId) {
    TestCluster::launch_vault(3, RaftTiming::default(), VaultOptions::default()).await
}

async fn raw(cluster: &TestCluster, node: NodeId, user: &str) -> RawVault {
    RawVault::connect(&cluster.api_endpoint(node), cluster.token(user), user).await
}

async fn guesses_left(vault: &RawVault) -> u32 {
    let state = vault.state().await.expect("GetState");
    assert_eq!(state.state(), RecordState::Registered, "{state:?}");
    state.guesses_left
}

fn assert_failure(failure: &Failure, code: Code, reason: &str) {
    assert_eq!(failure.code, code, "{failure:?}");
    assert_eq!(failure.reason, reason, "{failure:?}");
}

/// Computes HMAC-SHA512 (RFC 2104) of the concatenated `message` parts under a key of at most
/// one 128-byte block.
fn hmac_sha512(key: &[u8], message: &[&[u8]]) -> [u8; 64] {
    const BLOCK: usize = 128;
    assert!(key.len() <= BLOCK, "the key is longer than one block");

    let mut inner_pad = [0x36u8; BLOCK];
    let mut outer_pad = [0x5cu8; BLOCK];
    for (index, byte) in key.iter().enumerate() {
        inner_pad[index] ^= byte;
        outer_pad[index] ^= byte;
    }

    let mut inner = Sha512::new();
    inner.update(inner_pad);
    for part in message {
        inner.update(part);
    }
    let inner = inner.finalize();

    let mut outer = Sha512::new();
    outer.update(outer_pad);
    outer.update(inner);
    outer.finalize().into()
}

/// The output of one RegistrationStart for a candidate password: the OPAQUE masking key that
/// the candidate derives, and the server public key.
struct OracleAnswer {
    masking_key: Vec<u8>,
    server_public_key: Vec<u8>,
}

/// Sends RegistrationStart for `candidate` and derives the masking key that the candidate
/// password gives under the user's OPRF key. Returns `None` when the vault rejects the call.
async fn query_oprf(
    client: &mut VaultClient<Channel>,
    vault: &RawVault,
    candidate: &[u8],
) -> Option<OracleAnswer> {
    let start = ClientRegistration::<Suite>::start(&mut OsRng, candidate).unwrap();
    let reply = client
        .registration_start(vault.request(RegistrationStartRequest {
            user_id: vault.user().to_owned(),
            registration_request: start.message.serialize().to_vec(),
        }))
        .await
        .ok()?
        .into_inner();

    let record = record_id(vault.user());
    let ksf = TEST_KSF.argon2().unwrap();
    let response = RegistrationResponse::<Suite>::deserialize(&reply.registration_response)
        .expect("the vault sends a valid RegistrationResponse");
    let parameters =
        ClientRegistrationFinishParameters::new(client_identifiers(&record, FLEET_ID), Some(&ksf));
    let finished = start
        .state
        .finish(&mut OsRng, candidate, response, parameters)
        .expect("registration finishes on the client");
    let upload = finished.message.serialize();

    Some(OracleAnswer {
        masking_key: upload[UPLOAD_MASKING_KEY].to_vec(),
        server_public_key: reply.registration_response[REGISTRATION_RESPONSE_SERVER_KEY].to_vec(),
    })
}

/// Unmasks the server public key in `ke2` with `masking_key`, as an OPAQUE client does
/// (RFC 9807, section 6.3.2.2), and returns whether it matches `server_public_key`. A match
/// means that the masking key, and so the candidate password, is the registered one.
fn unmasks_server_key(ke2: &[u8], masking_key: &[u8], server_public_key: &[u8]) -> bool {
    let masking_nonce = &ke2[KE2_MASKING_NONCE];
    let pad = hmac_sha512(
        masking_key,
        &[masking_nonce, b"CredentialResponsePad", &[1]],
    );

    let unmasked: Vec<u8> = ke2[KE2_MASKED_SERVER_KEY]
        .iter()
        .zip(pad)
        .map(|(masked, pad)| masked ^ pad)
        .collect();
    unmasked == server_public_key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_start_is_no_oprf_oracle() {
    let (cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    victim
        .register(PASSWORD, SECRET, 3)
        .await
        .expect("register");

    let candidates: [&[u8]; 6] = [
        b"123456",
        b"password",
        b"hunter2",
        PASSWORD,
        b"letmein",
        b"qwerty",
    ];
    let mut client = VaultClient::connect(cluster.api_endpoint(leader))
        .await
        .expect("connect to the leader");
    let mut answers = Vec::new();
    for candidate in candidates {
        answers.push((candidate, query_oprf(&mut client, &victim, candidate).await));
    }

    // One counted guess, with a password that is not among the candidates.
    let login = victim.start_login(WRONG).await.expect("RecoveryStart");
    let ke2 = login.reply.credential_response;
    let guesses_used = 3 - guesses_left(&victim).await;

    let confirmed: Vec<String> = answers
        .iter()
        .filter_map(|(candidate, answer)| {
            let answer = answer.as_ref()?;
            unmasks_server_key(&ke2, &answer.masking_key, &answer.server_public_key)
                .then(|| String::from_utf8_lossy(candidate).into_owned())
        })
        .collect();
    let tested = answers
        .iter()
        .filter(|(_, answer)| answer.is_some())
        .count()
        + 1;

    assert!(
        confirmed.is_empty() || guesses_used as usize >= tested,
        "{tested} passwords were tested offline ({confirmed:?} confirmed) while the vault \
         counted {guesses_used} guesses"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_start_after_reregistration() {
    let (cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    let new_password: &[u8] = b"the password after the change";
    victim
        .register(PASSWORD, SECRET, 3)
        .await
        .expect("register");

    // The attacker tests a guess against the first registration, which costs one guess.
    let start = ClientLogin::<Suite>::start(&mut OsRng, new_password).unwrap();
    let request = RecoveryStartRequest {
        user_id: victim.user().to_owned(),
        request_id: random_request_id(),
        credential_request: start.message.serialize().to_vec(),
    };
    victim
        .send_recovery_start(request.clone())
        .await
        .expect("RecoveryStart");
    assert_eq!(guesses_left(&victim).await, 2);

    // The user changes the password.
    victim
        .register(new_password, SECRET, 3)
        .await
        .expect("register again");
    assert_eq!(guesses_left(&victim).await, 3);

    // The attacker replays the old request and tests the guess against the new record.
    let replayed = victim.send_recovery_start(request).await;
    let left = guesses_left(&victim).await;
    let replayed = match replayed {
        Ok(replayed) => replayed,
        Err(failure) => {
            assert_failure(&failure, Code::Aborted, "TICKET_STALE");
            assert_eq!(left, 3, "a rejected replay changed the count");
            return;
        }
    };

    let record = record_id(victim.user());
    let ksf = TEST_KSF.argon2().unwrap();
    let response = CredentialResponse::<Suite>::deserialize(&replayed.credential_response)
        .expect("the vault sends a valid KE2");
    let parameters = ClientLoginFinishParameters::new(
        Some(KE_CONTEXT),
        client_identifiers(&record, FLEET_ID),
        Some(&ksf),
    );
    let verified = start
        .state
        .finish(&mut OsRng, new_password, response, parameters)
        .is_ok();

    assert!(
        !verified || left < 3,
        "the replayed KE2 confirmed the new password, and {left} of 3 guesses are left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_upload_after_delete() {
    let (cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    let upload = victim
        .register(PASSWORD, SECRET, 3)
        .await
        .expect("register");

    assert!(victim.delete().await.expect("Delete"), "no record deleted");

    let replayed = victim
        .send_registration_finish(RegistrationFinishRequest {
            request_id: random_request_id(),
            ..upload
        })
        .await;
    let state = victim.state().await.expect("GetState");

    assert!(
        replayed.is_err(),
        "a replayed upload was accepted after Delete"
    );
    assert_eq!(
        state.state(),
        RecordState::NotRegistered,
        "the deleted record is back: {state:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_ticket_cannot_reset() {
    let (cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    victim
        .register(PASSWORD, SECRET, 5)
        .await
        .expect("register");

    let older = victim.start_login(PASSWORD).await.expect("first start");
    let newer = victim.start_login(WRONG).await.expect("second start");
    assert_eq!(guesses_left(&victim).await, 3);

    let (older_finish, session_key) = victim.finish_request(older, PASSWORD);
    assert!(
        session_key.is_some(),
        "the right password failed on the client"
    );
    let failure = victim
        .send_recovery_finish(older_finish)
        .await
        .expect_err("a ticket older than the latest guess reset the count");
    assert_failure(&failure, Code::Aborted, "TICKET_STALE");
    assert_eq!(guesses_left(&victim).await, 3);

    let (newer_finish, _) = victim.finish_request(newer, WRONG);
    let failure = victim
        .send_recovery_finish(newer_finish)
        .await
        .expect_err("a wrong password was accepted");
    assert_failure(&failure, Code::PermissionDenied, "WRONG_PASSWORD");
    assert_eq!(failure.guesses_left, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_finishes_reset_once() {
    let (cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    victim
        .register(PASSWORD, SECRET, 5)
        .await
        .expect("register");

    let login = victim.start_login(PASSWORD).await.expect("start");
    let (finish, _) = victim.finish_request(login, PASSWORD);
    let attempts: Vec<_> = (0..4)
        .map(|_| {
            let victim = victim.clone();
            let finish = RecoveryFinishRequest {
                request_id: random_request_id(),
                ..finish.clone()
            };
            tokio::spawn(async move { victim.send_recovery_finish(finish).await })
        })
        .collect();

    let mut released = 0;
    for attempt in attempts {
        match attempt.await.expect("the finish task panicked") {
            Ok(_) => released += 1,
            Err(failure) => assert_failure(&failure, Code::Aborted, "TICKET_STALE"),
        }
    }

    assert_eq!(
        released, 1,
        "one login ticket released the secret {released} times"
    );
    assert_eq!(guesses_left(&victim).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_tickets_rejected() {
    let (cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    let attacker = raw(&cluster, leader, "attacker").await;
    let upload = victim
        .register(PASSWORD, SECRET, 5)
        .await
        .expect("register");
    attacker
        .register(PASSWORD, SECRET, 5)
        .await
        .expect("register the attacker");

    // A login ticket of another user whose password the attacker knows.
    let login = attacker.start_login(PASSWORD).await.expect("start");
    let (attacker_finish, _) = attacker.finish_request(login, PASSWORD);
    let foreign = victim
        .send_recovery_finish(RecoveryFinishRequest {
            user_id: victim.user().to_owned(),
            ..attacker_finish.clone()
        })
        .await
        .expect_err("another user's login ticket was accepted");
    assert_failure(&foreign, Code::Aborted, "TICKET_INVALID");

    // A registration ticket where a login ticket belongs.
    let kind_swap = victim
        .send_recovery_finish(RecoveryFinishRequest {
            user_id: victim.user().to_owned(),
            request_id: random_request_id(),
            ticket: upload.ticket.clone(),
            credential_finalization: attacker_finish.credential_finalization.clone(),
        })
        .await
        .expect_err("a registration ticket was accepted by RecoveryFinish");
    assert_failure(&kind_swap, Code::Aborted, "TICKET_INVALID");

    // A login ticket where a registration ticket belongs.
    let reverse_swap = victim
        .send_registration_finish(RegistrationFinishRequest {
            request_id: random_request_id(),
            ticket: attacker_finish.ticket.clone(),
            ..upload.clone()
        })
        .await
        .expect_err("a login ticket was accepted by RegistrationFinish");
    assert_failure(&reverse_swap, Code::Aborted, "TICKET_INVALID");

    // Truncated and bit-flipped tickets.
    let mut flipped = attacker_finish.ticket.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    let truncated = attacker_finish.ticket[..attacker_finish.ticket.len() - 1].to_vec();
    for ticket in [flipped, truncated, Vec::new()] {
        let failure = attacker
            .send_recovery_finish(RecoveryFinishRequest {
                request_id: random_request_id(),
                ticket,
                ..attacker_finish.clone()
            })
            .await
            .expect_err("a damaged ticket was accepted");
        assert!(
            failure.reason == "TICKET_INVALID" || failure.reason == "INVALID_ARGUMENT",
            "{failure:?}"
        );
    }

    assert_eq!(guesses_left(&victim).await, 5);
    assert_eq!(guesses_left(&attacker).await, 4);
}

/// Mints a token for `user` with `key`, `tenant` and `fleet`, valid for five minutes.
fn mint(key: &TenantSigningKey, tenant: &str, user: &str, fleet: &str) -> String {
    let issued_at = now_unix_secs();
    let claims = TokenClaims {
        tenant: tenant.to_owned(),
        user: user.to_owned(),
        fleet: fleet.to_owned(),
        issued_at,
        expires_at: issued_at + 300,
    };

    key.mint(&claims).expect("the claims are valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_rejected() {
    let (cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    victim
        .register(PASSWORD, SECRET, 5)
        .await
        .expect("register");

    let untrusted = TenantSigningKey::generate();
    let trusted = cluster.tenant_key();
    let valid = cluster.token("victim");
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    let none_header = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.{}",
        parts[1], parts[2]
    );
    parts[2] = parts[2].chars().rev().collect();
    let bad_signature = parts.join(".");

    let cases = [
        (
            "untrusted key",
            mint(&untrusted, TENANT, "victim", FLEET_ID),
        ),
        (
            "other fleet",
            mint(trusted, TENANT, "victim", "other-fleet"),
        ),
        ("other tenant", mint(trusted, "other", "victim", FLEET_ID)),
        ("empty signature", unsigned),
        ("alg none", none_header),
        ("damaged signature", bad_signature),
        ("huge token", "a".repeat(7000)),
        ("empty token", String::new()),
    ];
    for (case, token) in cases {
        let failure = victim
            .with_token(token)
            .start_login(PASSWORD)
            .await
            .err()
            .unwrap_or_else(|| panic!("{case}: RecoveryStart was served"));
        assert_failure(&failure, Code::Unauthenticated, "TOKEN_INVALID");
    }

    let other_user = victim
        .with_token(cluster.token("attacker"))
        .start_login(PASSWORD)
        .await
        .err()
        .expect("a token for another user was accepted");
    assert_failure(&other_user, Code::PermissionDenied, "TOKEN_WRONG_USER");

    let expired = victim
        .with_token(cluster.token_with_lifetime("victim", 600, 300))
        .start_login(PASSWORD)
        .await
        .err()
        .expect("an expired token was accepted");
    assert_failure(&expired, Code::Unauthenticated, "TOKEN_EXPIRED");

    assert_eq!(
        guesses_left(&victim).await,
        5,
        "a rejected call counted a guess"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_ids_count_nothing() {
    let (cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    victim
        .register(PASSWORD, SECRET, 5)
        .await
        .expect("register");
    let ke1 = ClientLogin::<Suite>::start(&mut OsRng, PASSWORD)
        .unwrap()
        .message
        .serialize()
        .to_vec();

    for request_id in [Vec::new(), vec![0; 15], vec![0; 17], vec![0; 4096]] {
        let len = request_id.len();
        let failure = victim
            .send_recovery_start(RecoveryStartRequest {
                user_id: victim.user().to_owned(),
                request_id,
                credential_request: ke1.clone(),
            })
            .await
            .expect_err("a malformed request id was accepted");
        assert_failure(&failure, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert!(failure.message.contains(&len.to_string()), "{failure:?}");
    }

    let oversized = victim
        .send_recovery_start(RecoveryStartRequest {
            user_id: victim.user().to_owned(),
            request_id: random_request_id(),
            credential_request: vec![7; 64 * 1024],
        })
        .await
        .expect_err("an oversized KE1 was accepted");
    // tonic rejects a message over the node's decode limit before the vault receives it.
    assert_eq!(oversized.code, Code::OutOfRange, "{oversized:?}");
    assert!(oversized.message.contains("8192"), "{oversized:?}");

    assert_eq!(guesses_left(&victim).await, 5);
}

/// Returns the log file of node `id`, which sits next to its data directory.
fn log_file(cluster: &TestCluster, id: NodeId) -> PathBuf {
    let data_dir = cluster.data_dir(id);
    let dir = data_dir.parent().expect("the data directory has a parent");
    dir.join("keyfleetd.log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_contain_no_secrets() {
    let (cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    let upload = victim
        .register(PASSWORD, SECRET, 3)
        .await
        .expect("register");
    assert_eq!(
        victim.recover(PASSWORD).await.expect("recover"),
        SECRET.to_vec()
    );

    let login = victim.start_login(WRONG).await.expect("start");
    let ticket = login.reply.ticket.clone();
    let (finish, _) = victim.finish_request(login, WRONG);
    victim
        .send_recovery_finish(finish)
        .await
        .expect_err("a wrong password was accepted");
    let token = cluster.token("victim");
    victim
        .with_token(format!("{token}x"))
        .state()
        .await
        .expect_err("a damaged token was accepted");

    let ticket_hex: String = ticket.iter().map(|byte| format!("{byte:02x}")).collect();
    let upload_hex: String = upload
        .registration_upload
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let secrets = [
        ("password", String::from_utf8_lossy(PASSWORD).into_owned()),
        ("secret", String::from_utf8_lossy(SECRET).into_owned()),
        (
            "token signature",
            token.rsplit('.').next().unwrap().to_owned(),
        ),
        ("ticket", ticket_hex[..32].to_owned()),
        ("upload", upload_hex[..32].to_owned()),
    ];
    for id in [1, 2, 3] {
        let path = log_file(&cluster, id);
        let log = std::fs::read_to_string(&path).expect("read the node log");
        for (what, value) in &secrets {
            assert!(
                !log.contains(value.as_str()),
                "node {id} logged the {what}: {}",
                path.display()
            );
        }
    }
}

/// Returns the files under `dir` whose bytes contain `needle`. Files that vanish or cannot be
/// read during the scan, as a compaction replaces them, are skipped.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };

    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
            continue;
        }

        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if bytes.windows(needle.len()).any(|window| window == needle) {
            found.push(path.display().to_string());
        }
    }

    found
}

/// Waits until `present` holds for the files of node `id` that contain `needle`.
async fn wait_for_files(
    cluster: &TestCluster,
    id: NodeId,
    needle: &[u8],
    present: bool,
    what: &str,
) {
    let deadline = Instant::now() + WAIT;

    loop {
        let found = files_containing(&cluster.data_dir(id), needle);
        if found.is_empty() != present {
            return;
        }

        assert!(
            Instant::now() < deadline,
            "node {id}: {what} after {WAIT:?}, files {found:?}\n{}",
            cluster.log_report()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Returns the sealed password file and sealed secret of `user`, read through Raft.
async fn sealed_blobs(cluster: &TestCluster, user: &str) -> (Vec<u8>, Vec<u8>) {
    let record = cluster
        .client()
        .read_record(&common::user(&record_id(user)))
        .await
        .expect("ReadRecord")
        .expect("the user has a record");

    (
        record.password_file.as_bytes().to_vec(),
        record.sealed_secret.as_bytes().to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_erases_on_every_node() {
    let (cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    victim
        .register(PASSWORD, SECRET, 3)
        .await
        .expect("register");
    let (password_file, sealed_secret) = sealed_blobs(&cluster, "victim").await;
    for id in [1, 2, 3] {
        wait_for_files(&cluster, id, &password_file, true, "never stored").await;
    }

    assert!(victim.delete().await.expect("Delete"), "no record deleted");

    for id in [1, 2, 3] {
        wait_for_files(
            &cluster,
            id,
            &password_file,
            false,
            "kept the password file",
        )
        .await;
        wait_for_files(&cluster, id, &sealed_secret, false, "kept the secret").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_follower_erases_after_restart() {
    let (mut cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    victim
        .register(PASSWORD, SECRET, 2)
        .await
        .expect("register");
    let (password_file, sealed_secret) = sealed_blobs(&cluster, "victim").await;
    let follower = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a three-node cluster has a follower");
    wait_for_files(&cluster, follower, &password_file, true, "never stored").await;

    cluster.kill(follower);
    for expected in ["WRONG_PASSWORD", "LOCKED"] {
        let login = victim.start_login(WRONG).await.expect("RecoveryStart");
        let (finish, _) = victim.finish_request(login, WRONG);
        let failure = victim
            .send_recovery_finish(finish)
            .await
            .expect_err("a wrong password was accepted");
        assert_eq!(failure.reason, expected, "{failure:?}");
    }

    cluster.restart(follower).await;
    wait_for_files(
        &cluster,
        follower,
        &password_file,
        false,
        "kept the password file",
    )
    .await;
    wait_for_files(&cluster, follower, &sealed_secret, false, "kept the secret").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_start_after_lock_and_reregistration() {
    let (cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    let new_password: &[u8] = b"the password after the lockout";
    victim
        .register(PASSWORD, SECRET, 1)
        .await
        .expect("register");

    // The attacker spends the only guess, with the password the user picks next.
    let start = ClientLogin::<Suite>::start(&mut OsRng, new_password).unwrap();
    let request = RecoveryStartRequest {
        user_id: victim.user().to_owned(),
        request_id: random_request_id(),
        credential_request: start.message.serialize().to_vec(),
    };
    let reply = victim
        .send_recovery_start(request.clone())
        .await
        .expect("RecoveryStart");
    let failure = victim
        .send_recovery_finish(RecoveryFinishRequest {
            user_id: victim.user().to_owned(),
            request_id: random_request_id(),
            ticket: reply.ticket,
            credential_finalization: vec![1; 64],
        })
        .await
        .expect_err("a random KE3 was accepted");
    assert_failure(&failure, Code::FailedPrecondition, "LOCKED");

    victim
        .register(new_password, SECRET, 1)
        .await
        .expect("register after the lockout");

    let replayed = victim.send_recovery_start(request).await;
    let left = guesses_left(&victim).await;
    let replayed = match replayed {
        Ok(replayed) => replayed,
        Err(failure) => {
            assert_failure(&failure, Code::Aborted, "TICKET_STALE");
            assert_eq!(left, 1, "a rejected replay changed the count");
            return;
        }
    };

    let record = record_id(victim.user());
    let ksf = TEST_KSF.argon2().unwrap();
    let response = CredentialResponse::<Suite>::deserialize(&replayed.credential_response)
        .expect("the vault sends a valid KE2");
    let parameters = ClientLoginFinishParameters::new(
        Some(KE_CONTEXT),
        client_identifiers(&record, FLEET_ID),
        Some(&ksf),
    );
    let verified = start
        .state
        .finish(&mut OsRng, new_password, response, parameters)
        .is_ok();

    assert!(
        !verified || left < 1,
        "the replayed KE2 confirmed the new password, and {left} of 1 guess is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_record_lifecycle() {
    let (cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    let new_password: &[u8] = b"the password after the delete";
    victim
        .register(PASSWORD, SECRET, 3)
        .await
        .expect("register");

    assert!(victim.delete().await.expect("first Delete"));
    assert!(
        !victim.delete().await.expect("second Delete"),
        "a second Delete reported a deleted record"
    );

    let state = victim.state().await.expect("GetState");
    assert_eq!(state.state(), RecordState::NotRegistered, "{state:?}");
    assert_eq!(state.max_guesses, 0, "{state:?}");

    let login = victim.start_login(PASSWORD).await.expect("RecoveryStart");
    let (finish, session_key) = victim.finish_request(login, PASSWORD);
    assert!(
        session_key.is_none(),
        "the deleted record's password still verified on the client"
    );
    let failure = victim
        .send_recovery_finish(finish)
        .await
        .expect_err("a deleted record released a secret");
    assert_failure(&failure, Code::PermissionDenied, "WRONG_PASSWORD");
    assert_eq!(failure.guesses_left, Some(9));

    victim
        .register(new_password, SECRET, 3)
        .await
        .expect("register after the delete");
    assert_eq!(guesses_left(&victim).await, 3);
    assert_eq!(
        victim
            .recover(new_password)
            .await
            .expect("recover after the delete"),
        SECRET.to_vec()
    );

    let record = cluster
        .client()
        .read_record(&common::user(&record_id("victim")))
        .await
        .expect("ReadRecord")
        .expect("the user has a record");
    assert_eq!(record.status, keyfleet_raft::UserStatus::Registered);
    assert_ne!(record.oprf_salt, [0; keyfleet_raft::OPRF_SALT_LEN]);
}

/// Returns the node ids of a three-node cluster other than `id`.
fn others(id: NodeId) -> Vec<NodeId> {
    [1, 2, 3].into_iter().filter(|other| *other != id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_erases_after_restart() {
    let (mut cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    victim
        .register(PASSWORD, SECRET, 1)
        .await
        .expect("register");
    let (password_file, sealed_secret) = sealed_blobs(&cluster, "victim").await;
    wait_for_files(&cluster, leader, &password_file, true, "never stored").await;

    let login = victim.start_login(WRONG).await.expect("RecoveryStart");
    let (finish, _) = victim.finish_request(login, WRONG);
    let failure = victim
        .send_recovery_finish(finish)
        .await
        .expect_err("a wrong password was accepted");
    // The leader has applied the lock; its compaction runs now.
    cluster.kill(leader);
    assert_failure(&failure, Code::FailedPrecondition, "LOCKED");

    cluster.wait_for_leader(&others(leader)).await;
    cluster.restart(leader).await;
    wait_for_files(
        &cluster,
        leader,
        &password_file,
        false,
        "kept the password file",
    )
    .await;
    wait_for_files(&cluster, leader, &sealed_secret, false, "kept the secret").await;
}

/// Returns a random sealed blob of `len` bytes, unique enough to search the data files for.
fn random_blob(len: usize) -> keyfleet_raft::SealedBlob {
    let mut bytes = vec![0u8; len];
    rand::RngCore::fill_bytes(&mut OsRng, &mut bytes);
    keyfleet_raft::SealedBlob::new(bytes)
}

/// Builds a `Register` request for the node API, with random blobs of `len` bytes.
fn raw_register(user: &keyfleet_raft::UserId, len: usize) -> keyfleet_raft::Request {
    keyfleet_raft::Request {
        request_id: common::new_request_id(),
        command: keyfleet_raft::Command::Register {
            expected_version: None,
            user: user.clone(),
            password_file: random_blob(len),
            sealed_secret: random_blob(len),
            max_guesses: 3,
            oprf_salt: [7; keyfleet_raft::OPRF_SALT_LEN],
        },
    }
}

/// Sends `request` until it is acknowledged, or until it fails after `killed` is set. Retries
/// carry the same request id, so a write is applied once however often it is sent.
async fn write_until_killed(
    client: &keyfleet_client::FleetClient,
    request: &keyfleet_raft::Request,
    killed: &AtomicBool,
) -> bool {
    loop {
        if client.write(request).await.is_ok() {
            return true;
        }
        if killed.load(Ordering::SeqCst) {
            return false;
        }
    }
}

/// Registers and erases records through the node API until a write fails after `killed` is
/// set, and returns the acknowledged registrations with whether their erase was acknowledged
/// too. `progress` counts the acknowledged registrations.
async fn register_and_erase(
    client: keyfleet_client::FleetClient,
    killed: Arc<AtomicBool>,
    progress: Arc<AtomicUsize>,
) -> Vec<(keyfleet_raft::UserId, keyfleet_raft::SealedBlob, bool)> {
    let mut acknowledged = Vec::new();

    for index in 0.. {
        let user = common::user(&format!("{TENANT}/bulk-{index}"));
        let request = raw_register(&user, 8 * 1024);
        let keyfleet_raft::Command::Register { password_file, .. } = &request.command else {
            unreachable!("raw_register builds a Register");
        };
        let password_file = password_file.clone();
        if !write_until_killed(&client, &request, &killed).await {
            break;
        }
        acknowledged.push((user.clone(), password_file, false));
        progress.fetch_add(1, Ordering::SeqCst);

        if index % 2 == 1 {
            continue;
        }
        let erase = keyfleet_raft::Request {
            request_id: common::new_request_id(),
            command: keyfleet_raft::Command::Erase { user },
        };
        if !write_until_killed(&client, &erase, &killed).await {
            // The erase may have committed before the write failed, so this record's state is
            // unknown.
            acknowledged.pop();
            break;
        }
        if let Some(last) = acknowledged.last_mut() {
            last.2 = true;
        }
    }

    acknowledged
}

/// Returns the files under `dir` whose names are not one of the two store files or the
/// snapshot directory, and the files in the snapshot directory that are not snapshot files. A
/// store rewrite or a snapshot install in progress has a temporary file of its own, and a
/// snapshot build or receive a temporary `.tmp` file, which are expected.
fn unexpected_files(dir: &Path) -> Vec<String> {
    let expected = [
        keyfleet_raft::LOG_FILE_NAME,
        keyfleet_raft::STATE_MACHINE_FILE_NAME,
        keyfleet_raft::SNAPSHOT_DIR_NAME,
    ];

    let mut unexpected: Vec<String> = std::fs::read_dir(dir)
        .expect("read the data directory")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !expected.contains(&name.as_str()))
        .filter(|name| !is_rewrite_in_progress(name))
        .collect();
    unexpected.extend(
        std::fs::read_dir(dir.join(keyfleet_raft::SNAPSHOT_DIR_NAME))
            .expect("read the snapshot directory")
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.ends_with(".snap") && !name.ends_with(".tmp")),
    );
    unexpected
}

/// Counts the temporary files of rewrites, installs and snapshots under `dir`.
fn rewrite_files(dir: &Path) -> usize {
    let snapshot_temps = std::fs::read_dir(dir.join(keyfleet_raft::SNAPSHOT_DIR_NAME))
        .expect("read the snapshot directory")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
        .count();

    std::fs::read_dir(dir)
        .expect("read the data directory")
        .flatten()
        .filter(|entry| is_rewrite_in_progress(&entry.file_name().to_string_lossy()))
        .count()
        + snapshot_temps
}

/// Returns true for the temporary file of a rewrite of one of the two stores, or of a snapshot
/// install into the state machine.
fn is_rewrite_in_progress(name: &str) -> bool {
    [
        keyfleet_raft::LOG_FILE_NAME,
        keyfleet_raft::STATE_MACHINE_FILE_NAME,
    ]
    .iter()
    .any(|store| name == format!("{store}.rewrite"))
        || name == format!("{}.install", keyfleet_raft::STATE_MACHINE_FILE_NAME)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_fleet_keeps_acknowledged_writes() {
    let (mut cluster, _) = launch().await;
    let fast_policy = keyfleet_client::RetryPolicy {
        deadline: Duration::from_secs(2),
        ..common::test_policy()
    };
    let killed = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn(register_and_erase(
        cluster.client_with_policy(&[1, 2, 3], fast_policy),
        killed.clone(),
        progress.clone(),
    ));

    let deadline = Instant::now() + WAIT;
    while progress.load(Ordering::SeqCst) < 8 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    killed.store(true, Ordering::SeqCst);
    for id in [1, 2, 3] {
        cluster.kill(id);
    }
    let acknowledged = writer.await.expect("the writer task panicked");
    assert!(
        acknowledged.len() >= 4,
        "only {} registrations before the kill",
        acknowledged.len()
    );

    for id in [1, 2, 3] {
        cluster.restart(id).await;
    }
    let ids = [1, 2, 3];
    cluster.wait_for_leader(&ids).await;

    for id in ids {
        let unexpected = unexpected_files(&cluster.data_dir(id));
        assert!(
            unexpected.is_empty(),
            "node {id} left files other than its two stores and snapshots: {unexpected:?}"
        );

        // A rewrite's or a snapshot's temporary file is there only while it is written: one
        // left from the kill is removed when the store opens.
        let deadline = Instant::now() + WAIT;
        while rewrite_files(&cluster.data_dir(id)) > 0 {
            assert!(
                Instant::now() < deadline,
                "node {id} kept a temporary file for {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let client = cluster.client();
    for (user, password_file, erased) in &acknowledged {
        let record = client
            .read_record(user)
            .await
            .expect("ReadRecord")
            .unwrap_or_else(|| panic!("the acknowledged record of {user} is gone"));
        if *erased {
            assert_eq!(
                record.status,
                keyfleet_raft::UserStatus::Deleted,
                "{user}: an acknowledged erase was lost"
            );
        } else {
            assert_eq!(
                record.password_file.as_bytes(),
                password_file.as_bytes(),
                "{user}: the acknowledged password file changed"
            );
        }
    }
}

/// Runs `rounds` lockouts of `user`: a failed last guess, then a new registration.
async fn lock_and_reregister(vault: RawVault, rounds: usize) -> Result<(), String> {
    for round in 0..rounds {
        let login = vault.start_login(WRONG).await.map_err(|failure| {
            format!(
                "{}: round {round}: RecoveryStart: {failure:?}",
                vault.user()
            )
        })?;
        let (finish, _) = vault.finish_request(login, WRONG);
        match vault.send_recovery_finish(finish).await {
            Err(failure) if failure.reason == "LOCKED" => {}
            other => {
                return Err(format!(
                    "{}: round {round}: expected LOCKED, got {other:?}",
                    vault.user()
                ));
            }
        }
        vault
            .register(PASSWORD, SECRET, 1)
            .await
            .map_err(|failure| format!("{}: round {round}: register: {failure:?}", vault.user()))?;
    }
    Ok(())
}

/// Runs `rounds` successful recoveries of `user`, each followed by a new registration.
async fn recover_and_reregister(vault: RawVault, rounds: usize) -> Result<(), String> {
    for round in 0..rounds {
        let secret = vault
            .recover(PASSWORD)
            .await
            .map_err(|failure| format!("{}: round {round}: recover: {failure:?}", vault.user()))?;
        if secret != SECRET {
            return Err(format!(
                "{}: round {round}: recovered another secret",
                vault.user()
            ));
        }
        vault
            .register(PASSWORD, SECRET, 5)
            .await
            .map_err(|failure| format!("{}: round {round}: register: {failure:?}", vault.user()))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_during_lockouts_succeed() {
    let (cluster, leader) = launch().await;
    let mut tasks = Vec::new();

    for index in 0..3 {
        let locker = raw(&cluster, leader, &format!("locker-{index}")).await;
        locker
            .register(PASSWORD, SECRET, 1)
            .await
            .expect("register a locker");
        tasks.push(tokio::spawn(lock_and_reregister(locker, 6)));

        let user = raw(&cluster, leader, &format!("user-{index}")).await;
        user.register(PASSWORD, SECRET, 5)
            .await
            .expect("register a user");
        tasks.push(tokio::spawn(recover_and_reregister(user, 6)));
    }

    let mut failures = Vec::new();
    for task in tasks {
        if let Err(failure) = task.await.expect("a login task panicked") {
            failures.push(failure);
        }
    }
    assert!(
        failures.is_empty(),
        "calls failed while records were locked: {failures:#?}\n{}",
        cluster.log_report()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_is_no_tenant_token() {
    let (cluster, leader) = launch().await;
    let alice = raw(&cluster, leader, "alice").await;
    alice
        .register(PASSWORD, SECRET, 3)
        .await
        .expect("registration with the tenant token");
    let admin = cluster.admin_request(());
    let bearer = admin
        .metadata()
        .get("authorization")
        .expect("admin_request sets authorization")
        .to_str()
        .expect("ASCII")
        .to_owned();
    let admin_token = bearer
        .strip_prefix("Bearer ")
        .expect("a Bearer value")
        .to_owned();

    let with_admin = alice.with_token(admin_token);
    let state = with_admin
        .state()
        .await
        .expect_err("GetState accepted the admin token");
    let Err(start) = with_admin.start_login(WRONG).await else {
        panic!("RecoveryStart accepted the admin token");
    };
    let delete = with_admin
        .delete()
        .await
        .expect_err("Delete accepted the admin token");

    assert_eq!(state.code, Code::Unauthenticated, "{state:?}");
    assert_eq!(start.code, Code::Unauthenticated, "{start:?}");
    assert_eq!(delete.code, Code::Unauthenticated, "{delete:?}");
    assert_eq!(guesses_left(&alice).await, 3);
    assert_eq!(
        alice.recover(PASSWORD).await.expect("recovery"),
        SECRET,
        "the record changed"
    );
}

/// Returns the lines of node `id`'s log, over all its starts, that contain `needle`.
fn log_lines_with(cluster: &TestCluster, id: NodeId, needle: &str) -> Vec<String> {
    let text = std::fs::read_to_string(log_file(cluster, id)).unwrap_or_default();

    text.lines()
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_node_erases_after_restart() {
    let (mut cluster, leader) = launch().await;
    let victim = raw(&cluster, leader, "victim").await;
    victim
        .register(PASSWORD, SECRET, 3)
        .await
        .expect("register");
    let (password_file, sealed_secret) = sealed_blobs(&cluster, "victim").await;
    wait_for_files(&cluster, leader, &password_file, true, "never stored").await;

    assert!(victim.delete().await.expect("Delete"), "no record deleted");
    // The leader applied the erase before it acknowledged it. The kills most likely come before
    // any node finishes its compaction round.
    for id in [1, 2, 3] {
        cluster.kill(id);
    }
    let log_lines_before = log_lines_with(&cluster, leader, "").len();
    cluster.restart(leader).await;

    wait_for_files(
        &cluster,
        leader,
        &password_file,
        false,
        "kept the password file without a quorum",
    )
    .await;
    wait_for_files(&cluster, leader, &sealed_secret, false, "kept the secret").await;

    tokio::time::sleep(Duration::from_secs(20)).await;
    let failed_rounds = log_lines_with(&cluster, leader, "compaction after an erase failed");
    let log_lines = log_lines_with(&cluster, leader, "").len() - log_lines_before;
    assert!(failed_rounds.len() <= 2, "{failed_rounds:#?}");
    assert!(
        log_lines <= 200,
        "{log_lines} log lines in about 20 s without a quorum\n{}",
        cluster.log_report()
    );
}
