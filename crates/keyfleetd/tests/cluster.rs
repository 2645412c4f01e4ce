//! keyfleetd clusters of real processes: elections, failover, crash recovery, snapshots,
//! membership changes and request deduplication.

mod common;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::RaftTiming;
use common::TestCluster;
use common::WAIT;
use common::consume_guess;
use common::counted_guesses;
use common::read_ok;
use common::register;
use common::test_policy;
use common::user;
use common::write_ok;
use keyfleet_api::LEADER_API_METADATA;
use keyfleet_api::LEADER_ID_METADATA;
use keyfleet_api::node::WriteRequest;
use keyfleet_api::node::node_client::NodeClient;
use keyfleet_client::FleetClient;
use keyfleet_client::RetryPolicy;
use keyfleet_client::StatusResponse;
use keyfleet_raft::GuessOutcome;
use keyfleet_raft::NodeId;
use keyfleet_raft::RegisterOutcome;
use keyfleet_raft::Response;
use keyfleet_raft::UserId;
use keyfleet_raft::UserStatus;
use tokio::time::Instant;

fn voter_ids(status: &StatusResponse) -> BTreeSet<NodeId> {
    status.voters.iter().map(|member| member.id).collect()
}

fn learner_ids(status: &StatusResponse) -> BTreeSet<NodeId> {
    status.learners.iter().map(|member| member.id).collect()
}

fn others(ids: &[NodeId], excluded: NodeId) -> Vec<NodeId> {
    ids.iter().copied().filter(|id| *id != excluded).collect()
}

/// Waits until `counter` reaches `target`, or panics after [`WAIT`].
async fn wait_for_count(counter: &AtomicU64, target: u64, description: &str) {
    let deadline = Instant::now() + WAIT;

    while counter.load(Ordering::SeqCst) < target {
        assert!(
            Instant::now() < deadline,
            "{description}: only {} of {target} within {WAIT:?}",
            counter.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_commits_writes() {
    let (cluster, leader) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let client = cluster.client();
    let alice = user("alice");

    let (registered, register_index) = write_ok(&cluster, &client, &register(&alice, 5)).await;
    assert_eq!(
        registered,
        Response::Register(RegisterOutcome::Created {
            version: register_index
        })
    );

    let (guess, guess_index) = write_ok(&cluster, &client, &consume_guess(&alice)).await;
    assert!(
        guess_index > register_index,
        "{guess_index} <= {register_index}"
    );
    assert_eq!(
        guess,
        Response::ConsumeGuess(GuessOutcome::Counted {
            guesses_used: 1,
            guesses_left: 4,
            version: guess_index,
            oprf_salt: [0; 16],
        })
    );

    let record = read_ok(&cluster, &client, &alice).await;
    assert_eq!(record.guesses_used, 1);
    assert_eq!(record.max_guesses, 5);
    assert_eq!(record.status, UserStatus::Registered);
    assert_eq!(record.version, guess_index);
    assert_eq!(record.password_file.as_bytes(), b"test password file");

    let expected_voters = BTreeSet::from([1, 2, 3]);
    for id in 1..=3 {
        let status = cluster.wait_for_applied(id, guess_index).await;

        assert_eq!(status.node_id, id);
        assert_eq!(status.leader_id, leader, "node {id} names another leader");
        assert_eq!(status.leader_api_addr, cluster.addresses(leader).api);
        assert_eq!(
            voter_ids(&status),
            expected_voters,
            "voters seen by node {id}"
        );
        assert!(status.learners.is_empty(), "node {id} lists learners");
    }

    let unknown = client.read_record(&user("nobody")).await;
    assert!(matches!(unknown, Ok(None)), "{unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_fails_over() {
    let (mut cluster, old_leader) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let client = cluster.client();
    let alice = user("alice");

    write_ok(&cluster, &client, &register(&alice, 10)).await;
    let (first, _) = write_ok(&cluster, &client, &consume_guess(&alice)).await;
    assert_eq!(counted_guesses(&first), 1);

    cluster.kill(old_leader);
    let killed_at = Instant::now();

    let (second, _) = write_ok(&cluster, &client, &consume_guess(&alice)).await;
    let failover = killed_at.elapsed();
    println!(
        "failover time (kill -9 of leader node {old_leader} to the first committed write): \
         {failover:?}"
    );
    assert_eq!(counted_guesses(&second), 2);

    let survivors = others(&[1, 2, 3], old_leader);
    let new_leader = cluster.wait_for_leader(&survivors).await;
    assert_ne!(new_leader, old_leader);

    for expected in 3..=5 {
        let (guess, _) = write_ok(&cluster, &client, &consume_guess(&alice)).await;
        assert_eq!(counted_guesses(&guess), expected);
    }

    let record = read_ok(&cluster, &client, &alice).await;
    assert_eq!(record.guesses_used, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_catches_up() {
    let (mut cluster, old_leader) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let client = cluster.client();
    let alice = user("alice");

    write_ok(&cluster, &client, &register(&alice, 50)).await;
    cluster.kill(old_leader);

    for expected in 1..=10 {
        let (guess, _) = write_ok(&cluster, &client, &consume_guess(&alice)).await;
        assert_eq!(counted_guesses(&guess), expected);
    }

    let survivors = others(&[1, 2, 3], old_leader);
    let new_leader = cluster.wait_for_leader(&survivors).await;
    let target = cluster.expect_status(new_leader).await.applied_index;

    cluster.restart(old_leader).await;

    let description = format!("following node {new_leader} and applying index {target}");
    let status = cluster
        .wait_for_status(old_leader, &description, |status| {
            status.leader_id == new_leader && status.applied_index >= target
        })
        .await;
    assert_eq!(status.state, "Follower");

    let record = read_ok(&cluster, &client, &alice).await;
    assert_eq!(record.guesses_used, 10);

    let (guess, index) = write_ok(&cluster, &client, &consume_guess(&alice)).await;
    assert_eq!(counted_guesses(&guess), 11);
    cluster.wait_for_applied(old_leader, index).await;
}

/// Outcomes of `ConsumeGuess` writes for one user, as the writer saw them.
#[derive(Debug, Default, Clone)]
struct GuessLedger {
    acked: u32,
    unknown: u32,
    max_acked_guesses_used: u32,
}

/// Sends `ConsumeGuess` for each user in turn until `stop` is set, and records which writes
/// were acknowledged and which have an unknown outcome.
async fn write_guesses_until(
    client: FleetClient,
    users: Vec<UserId>,
    stop: Arc<AtomicBool>,
    acked_total: Arc<AtomicU64>,
) -> BTreeMap<UserId, GuessLedger> {
    let mut ledgers: BTreeMap<UserId, GuessLedger> = BTreeMap::new();

    for user in users.iter().cycle() {
        if stop.load(Ordering::SeqCst) {
            break;
        }

        let ledger = ledgers.entry(user.clone()).or_default();

        match client.write(&consume_guess(user)).await {
            Ok((response, _)) => {
                ledger.acked += 1;
                ledger.max_acked_guesses_used = ledger
                    .max_acked_guesses_used
                    .max(counted_guesses(&response));
                acked_total.fetch_add(1, Ordering::SeqCst);
            }
            Err(error) => {
                println!("ConsumeGuess for {user} has an unknown outcome: {error}");
                ledger.unknown += 1;
            }
        }
    }

    ledgers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_all_keeps_counters() {
    let (mut cluster, _) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let client = cluster.client();
    let users: Vec<UserId> = (0..3).map(|i| user(&format!("user-{i}"))).collect();

    for user in &users {
        write_ok(&cluster, &client, &register(user, 1000)).await;
    }

    // A short deadline, so the write in flight at the crash gives up soon.
    let writer_policy = RetryPolicy {
        deadline: Duration::from_secs(3),
        ..test_policy()
    };
    let writer_client = cluster.client_with_policy(&[1, 2, 3], writer_policy);
    let stop = Arc::new(AtomicBool::new(false));
    let acked_total = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(write_guesses_until(
        writer_client,
        users.clone(),
        stop.clone(),
        acked_total.clone(),
    ));

    wait_for_count(&acked_total, 30, "acknowledged guesses before the crash").await;
    for id in 1..=3 {
        cluster.kill(id);
    }
    stop.store(true, Ordering::SeqCst);
    let ledgers = writer.await.expect("the writer task panicked");

    for id in 1..=3 {
        cluster.restart(id).await;
    }
    cluster.wait_for_leader(&[1, 2, 3]).await;

    for user in &users {
        let ledger = ledgers.get(user).cloned().unwrap_or_default();
        let record = read_ok(&cluster, &client, user).await;
        println!(
            "{user}: {ledger:?}, guesses_used after restart {}",
            record.guesses_used
        );

        assert!(
            record.guesses_used >= ledger.acked,
            "{user}: guesses_used {} is below the {} acknowledged guesses",
            record.guesses_used,
            ledger.acked
        );
        assert!(
            record.guesses_used >= ledger.max_acked_guesses_used,
            "{user}: guesses_used {} went back from acknowledged {}",
            record.guesses_used,
            ledger.max_acked_guesses_used
        );
        assert!(
            record.guesses_used <= ledger.acked + ledger.unknown,
            "{user}: guesses_used {} is above the {} guesses sent",
            record.guesses_used,
            ledger.acked + ledger.unknown
        );
        if ledger.unknown == 0 {
            assert_eq!(record.guesses_used, ledger.acked, "{user}");
        }

        // A guess whose outcome the writer never learned is still pending, and may commit after
        // the read above: a node restarted as leader of its old term can commit it later. So the next
        // guess counts one more than the read, plus at most the unknown guesses.
        let (guess, _) = write_ok(&cluster, &client, &consume_guess(user)).await;
        let counted = counted_guesses(&guess);
        assert!(
            counted > record.guesses_used,
            "{user}: the next guess counted {counted}, not above the {} read before it",
            record.guesses_used
        );
        assert!(
            counted <= ledger.acked + ledger.unknown + 1,
            "{user}: the next guess counted {counted}, above the {} guesses sent plus one",
            ledger.acked + ledger.unknown
        );
        if ledger.unknown == 0 {
            assert_eq!(counted, record.guesses_used + 1, "{user}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_gets_snapshot() {
    let timing = RaftTiming::with_snapshots_every(10);
    let (mut cluster, leader) = TestCluster::launch(3, 3, timing).await;
    let client = cluster.client();
    let alice = user("alice");

    let (_, register_index) = write_ok(&cluster, &client, &register(&alice, 100)).await;

    let follower = others(&[1, 2, 3], leader)[0];
    let before = cluster.wait_for_applied(follower, register_index).await;
    let old_last_log = before.last_log_index;
    cluster.terminate(follower).await;

    let mut last_index = 0;
    for expected in 1..=60 {
        let (guess, index) = write_ok(&cluster, &client, &consume_guess(&alice)).await;
        assert_eq!(counted_guesses(&guess), expected);
        last_index = index;
    }

    // The leader must also have purged the entries the follower lacks, or it sends them from
    // the log. It purges after a snapshot, but may wait while a replication stream uses them.
    let leader_condition = format!("a snapshot and a log purge past index {old_last_log}");
    cluster
        .wait_for_status(leader, &leader_condition, |status| {
            status.snapshot_index > old_last_log && status.purged_index > old_last_log
        })
        .await;

    // The follower builds no snapshot of its own for a long time after the restart, so a
    // snapshot on it past its old log can only be one that the leader sent.
    let follower_timing = RaftTiming {
        snapshot_after_logs: 1_000_000,
        ..timing
    };
    cluster.set_timing(follower, follower_timing);
    cluster.restart(follower).await;

    let follower_condition =
        format!("applying index {last_index} from a snapshot past index {old_last_log}");
    let after = cluster
        .wait_for_status(follower, &follower_condition, |status| {
            status.applied_index >= last_index && status.snapshot_index > old_last_log
        })
        .await;
    println!(
        "follower {follower}: last log index {old_last_log} before the stop, snapshot index {} \
         after the restart",
        after.snapshot_index
    );

    let record = read_ok(&cluster, &client, &alice).await;
    assert_eq!(record.guesses_used, 60);
}

/// Sends `ConsumeGuess` for `user` until `stop` is set. Returns the number of acknowledged
/// writes and the errors of the others.
async fn write_until_stopped(
    client: FleetClient,
    user: UserId,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> Vec<String> {
    let mut errors = Vec::new();

    while !stop.load(Ordering::SeqCst) {
        let expected = acked.load(Ordering::SeqCst) + 1;

        match client.write(&consume_guess(&user)).await {
            Ok((response, index)) => {
                let used = u64::from(counted_guesses(&response));
                if used != expected {
                    errors.push(format!(
                        "write at index {index}: guesses_used {used}, expected {expected}"
                    ));
                }
                acked.fetch_add(1, Ordering::SeqCst);
            }
            Err(error) => errors.push(error.to_string()),
        }
    }

    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_change_under_load() {
    let (mut cluster, leader) = TestCluster::launch(4, 3, RaftTiming::default()).await;
    cluster.start(4).await;

    let client = cluster.client();
    let bob = user("bob");
    write_ok(&cluster, &client, &register(&bob, 100_000)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(write_until_stopped(
        cluster.client(),
        bob.clone(),
        stop.clone(),
        acked.clone(),
    ));
    wait_for_count(&acked, 5, "background writes before the learner").await;

    let learner_index = match client.add_learner(4, &cluster.addresses(4)).await {
        Ok(index) => index,
        Err(error) => panic!("AddLearner 4 failed: {error}\n{}", cluster.log_report()),
    };
    cluster
        .wait_for_status(4, "listing itself as a learner", |status| {
            learner_ids(status).contains(&4) && status.applied_index >= learner_index
        })
        .await;

    let four_voters = BTreeSet::from([1, 2, 3, 4]);
    if let Err(error) = client.change_membership(&four_voters, false).await {
        panic!(
            "ChangeMembership to {four_voters:?} failed: {error}\n{}",
            cluster.log_report()
        );
    }
    let after_promotion = acked.load(Ordering::SeqCst);
    wait_for_count(
        &acked,
        after_promotion + 5,
        "background writes after the promotion",
    )
    .await;

    let removed = others(&[1, 2, 3], leader)[0];
    let final_voters: BTreeSet<NodeId> = four_voters
        .iter()
        .copied()
        .filter(|id| *id != removed)
        .collect();
    if let Err(error) = client.change_membership(&final_voters, false).await {
        panic!(
            "ChangeMembership to {final_voters:?} failed: {error}\n{}",
            cluster.log_report()
        );
    }
    let after_removal = acked.load(Ordering::SeqCst);
    wait_for_count(
        &acked,
        after_removal + 5,
        "background writes after the removal",
    )
    .await;

    stop.store(true, Ordering::SeqCst);
    let errors = writer.await.expect("the writer task panicked");
    assert!(
        errors.is_empty(),
        "background writes failed: {errors:#?}\n{}",
        cluster.log_report()
    );

    let written = acked.load(Ordering::SeqCst);
    let record = read_ok(&cluster, &client, &bob).await;
    assert_eq!(u64::from(record.guesses_used), written);

    for id in &final_voters {
        let status = cluster
            .wait_for_status(*id, "seeing the final voters", |status| {
                voter_ids(status) == final_voters && status.applied_index >= record.version
            })
            .await;

        assert!(
            status.learners.is_empty(),
            "node {id} lists learners {:?}",
            status.learners
        );
    }

    cluster.terminate(removed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_request_applied_once() {
    let (cluster, leader) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let client = cluster.client();
    let alice = user("alice");

    write_ok(&cluster, &client, &register(&alice, 5)).await;
    let request = consume_guess(&alice);

    let (first, first_index) = write_ok(&cluster, &client, &request).await;
    assert_eq!(counted_guesses(&first), 1);

    // A follower rejects the write and names the leader in the metadata.
    let follower = others(&[1, 2, 3], leader)[0];
    let mut raw = NodeClient::connect(cluster.api_endpoint(follower))
        .await
        .expect("connect to the follower's node API");
    let payload = postcard::to_stdvec(&request).expect("encode the request");
    let status = raw
        .write(cluster.admin_request(WriteRequest { request: payload }))
        .await
        .expect_err("a follower must not accept a write");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let hinted_id = status
        .metadata()
        .get(LEADER_ID_METADATA)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let hinted_api = status
        .metadata()
        .get(LEADER_API_METADATA)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    assert_eq!(hinted_id, Some(leader.to_string()));
    assert_eq!(hinted_api, Some(cluster.addresses(leader).api));

    // The same request, through a client built with the follower's endpoint only, follows the hint.
    let follower_client = cluster.client_for(&[follower]);
    let (second, second_index) = write_ok(&cluster, &follower_client, &request).await;
    assert_eq!(second, first);

    let leader_client = cluster.client_for(&[leader]);
    let (third, third_index) = write_ok(&cluster, &leader_client, &request).await;
    assert_eq!(third, first);

    let record = read_ok(&cluster, &client, &alice).await;
    assert_eq!(record.guesses_used, 1);

    let (next, _) = write_ok(&cluster, &client, &consume_guess(&alice)).await;
    assert_eq!(counted_guesses(&next), 2);

    // Each retry is a log entry of its own, which returns the first outcome and changes nothing.
    assert!(
        second_index > first_index,
        "retry through the follower: index {second_index}, first attempt {first_index}"
    );
    assert!(
        third_index > second_index,
        "retry through the leader: index {third_index}, previous {second_index}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_rejects_writes_and_reads() {
    let (mut cluster, leader) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let client = cluster.client();
    let alice = user("alice");
    write_ok(&cluster, &client, &register(&alice, 10)).await;
    write_ok(&cluster, &client, &consume_guess(&alice)).await;

    let followers = others(&[1, 2, 3], leader);
    for follower in &followers {
        cluster.kill(*follower);
    }
    let mut alone = NodeClient::connect(cluster.api_endpoint(leader))
        .await
        .expect("connect to the isolated node's API");
    let payload = postcard::to_stdvec(&consume_guess(&alice)).expect("encode the request");

    let write = alone
        .write(cluster.admin_request(WriteRequest { request: payload }))
        .await
        .expect_err("a node without quorum must not acknowledge a write");
    let read = alone
        .read_record(
            cluster.admin_request(keyfleet_api::node::ReadRecordRequest {
                user: alice.as_str().to_owned(),
            }),
        )
        .await
        .expect_err("a node without quorum must not serve a current read");

    assert_eq!(write.code(), tonic::Code::Unavailable, "{write:?}");
    assert!(write.message().contains("quorum"), "{write:?}");
    assert_eq!(read.code(), tonic::Code::Unavailable, "{read:?}");
    assert!(read.message().contains("quorum"), "{read:?}");

    cluster.restart(followers[0]).await;
    let (after, _) = write_ok(&cluster, &client, &consume_guess(&alice)).await;
    // The rejected write may still commit once the quorum is back: its outcome was unknown.
    let counted = counted_guesses(&after);
    assert!(
        (2..=3).contains(&counted),
        "guesses counted after healing: {counted}"
    );
}

/// A follower that misses writes with large blobs catches up from a snapshot of about 15 MiB,
/// sent in many chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_snapshot_reaches_follower() {
    let timing = RaftTiming::with_snapshots_every(10);
    let (mut cluster, leader) = TestCluster::launch(3, 3, timing).await;
    let client = cluster.client();
    let follower = others(&[1, 2, 3], leader)[0];
    cluster.terminate(follower).await;

    let mut last_index = 0;
    for i in 0..120u8 {
        let request = keyfleet_raft::Request {
            request_id: common::new_request_id(),
            command: keyfleet_raft::Command::Register {
                expected_version: None,
                user: user(&format!("big-{i}")),
                password_file: keyfleet_raft::SealedBlob::new(vec![i; 64 * 1024]),
                sealed_secret: keyfleet_raft::SealedBlob::new(vec![!i; 64 * 1024]),
                max_guesses: 5,
                oprf_salt: [0; 16],
            },
        };
        let (_, index) = write_ok(&cluster, &client, &request).await;
        last_index = index;
    }
    cluster
        .wait_for_status(
            leader,
            "a snapshot and a purge near the last write",
            |status| {
                status.snapshot_index + 20 >= last_index && status.purged_index + 20 >= last_index
            },
        )
        .await;

    cluster.set_timing(
        follower,
        RaftTiming {
            snapshot_after_logs: 1_000_000,
            ..timing
        },
    );
    cluster.restart(follower).await;
    let caught_up = cluster.wait_for_applied(follower, last_index).await;

    assert_eq!(caught_up.state, "Follower", "{caught_up:?}");
    assert!(caught_up.snapshot_index > 0, "{caught_up:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_learner_is_not_promoted() {
    let (cluster, leader) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let client = cluster.client();
    // A new leader may not have committed its first entry yet, and until it has, openraft
    // rejects membership changes as "already undergoing a configuration change".
    write_ok(&cluster, &client, &register(&user("before"), 3)).await;
    let mut raw = NodeClient::connect(cluster.api_endpoint(leader))
        .await
        .expect("connect to the leader's node API");
    let unreachable = keyfleet_api::node::Member {
        id: 9,
        raft_addr: common::free_port::free_local_address().to_string(),
        api_addr: common::free_port::free_local_address().to_string(),
    };

    let add = raw
        .add_learner(
            cluster.admin_request(keyfleet_api::node::AddLearnerRequest {
                member: Some(unreachable),
            }),
        )
        .await
        .expect_err("a learner that is never reached has not caught up");
    let promote = raw
        .change_membership(
            cluster.admin_request(keyfleet_api::node::ChangeMembershipRequest {
                voters: vec![1, 2, 3, 9],
                retain: false,
            }),
        )
        .await
        .expect_err("a learner that has not caught up must not become a voter");

    assert_eq!(add.code(), tonic::Code::DeadlineExceeded, "{add:?}");
    assert!(
        add.message().contains("learner 9 did not replicate"),
        "{add:?}"
    );
    assert_eq!(
        promote.code(),
        tonic::Code::FailedPrecondition,
        "{promote:?}"
    );
    assert!(
        promote.message().contains("node 9 has replicated"),
        "{promote:?}"
    );
    write_ok(&cluster, &client, &register(&user("after"), 3)).await;
    let status = cluster.expect_status(leader).await;
    assert_eq!(status.voters.len(), 3, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_with_member_address_rejected() {
    let (cluster, leader) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let mut raw = NodeClient::connect(cluster.api_endpoint(leader))
        .await
        .expect("connect to the leader's node API");
    let node_2 = cluster.addresses(2);
    let raft_port = node_2.raft.rsplit(':').next().unwrap().to_owned();
    let cases = [
        (
            "raft",
            node_2.raft.clone(),
            common::free_port::free_local_address().to_string(),
        ),
        (
            "api",
            common::free_port::free_local_address().to_string(),
            node_2.api.clone(),
        ),
        // The same address written with a host name.
        (
            "raft",
            format!("localhost:{raft_port}"),
            common::free_port::free_local_address().to_string(),
        ),
    ];

    for (kind, raft_addr, api_addr) in cases {
        let rejected = raw
            .add_learner(
                cluster.admin_request(keyfleet_api::node::AddLearnerRequest {
                    member: Some(keyfleet_api::node::Member {
                        id: 9,
                        raft_addr,
                        api_addr,
                    }),
                }),
            )
            .await
            .expect_err("a learner at a member's address");
        assert_eq!(
            rejected.code(),
            tonic::Code::AlreadyExists,
            "{kind}: {rejected:?}"
        );
        assert!(
            rejected
                .message()
                .contains(&format!("node 2 already uses the {kind} address")),
            "{kind}: {rejected:?}"
        );
    }

    let same = common::free_port::free_local_address().to_string();
    let rejected = raw
        .add_learner(
            cluster.admin_request(keyfleet_api::node::AddLearnerRequest {
                member: Some(keyfleet_api::node::Member {
                    id: 9,
                    raft_addr: same.clone(),
                    api_addr: same,
                }),
            }),
        )
        .await
        .expect_err("one address for both ports");
    assert_eq!(
        rejected.code(),
        tonic::Code::InvalidArgument,
        "{rejected:?}"
    );

    let status = cluster.expect_status(leader).await;
    assert_eq!(status.voters.len(), 3, "{status:?}");
    assert!(status.learners.is_empty(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_rejects_trailing_bytes() {
    let (cluster, leader) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let mut raw = NodeClient::connect(cluster.api_endpoint(leader))
        .await
        .expect("connect to the leader's node API");
    let mut payload = postcard::to_stdvec(&register(&user("alice"), 3)).expect("encode");
    payload.extend_from_slice(&[1, 2, 3]);

    let status = raw
        .write(cluster.admin_request(WriteRequest { request: payload }))
        .await
        .expect_err("extra bytes after the request");

    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("3 bytes follow"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_api_needs_admin_token() {
    let (cluster, leader) = TestCluster::launch(3, 3, RaftTiming::default()).await;
    let mut raw = NodeClient::connect(cluster.api_endpoint(leader))
        .await
        .expect("connect to the leader's node API");
    let payload = postcard::to_stdvec(&register(&user("mallory"), 3)).expect("encode");

    let without = raw
        .write(WriteRequest {
            request: payload.clone(),
        })
        .await
        .expect_err("a write without the admin token was accepted");
    assert_eq!(without.code(), tonic::Code::Unauthenticated, "{without:?}");

    let mut wrong = tonic::Request::new(WriteRequest { request: payload });
    wrong.metadata_mut().insert(
        "authorization",
        "Bearer not-the-admin-token".parse().unwrap(),
    );
    let wrong = raw
        .write(wrong)
        .await
        .expect_err("a wrong admin token was accepted");
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated, "{wrong:?}");

    let read = raw
        .read_record(keyfleet_api::node::ReadRecordRequest {
            user: "mallory".to_owned(),
        })
        .await
        .expect_err("a record read without the admin token was accepted");
    assert_eq!(read.code(), tonic::Code::Unauthenticated, "{read:?}");

    let status = raw
        .status(keyfleet_api::node::StatusRequest {})
        .await
        .expect("Status needs no admin token");
    assert_eq!(status.into_inner().node_id, leader);

    let record = cluster
        .client()
        .read_record(&user("mallory"))
        .await
        .expect("ReadRecord with the admin token");
    assert!(record.is_none(), "a rejected write created a record");
}

/// Returns the `authorization` value that carries the cluster's admin token.
fn admin_bearer(cluster: &TestCluster) -> String {
    let request = cluster.admin_request(());
    let value = request
        .metadata()
        .get("authorization")
        .expect("admin_request sets authorization");

    value.to_str().expect("the admin token is ASCII").to_owned()
}

/// Wraps `message` in a request whose `authorization` is `header`, or has none.
fn request_with_header<T>(message: T, header: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(header) = header {
        let value = header.parse().expect("a valid header value");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_admin_headers_change_nothing() {
    let (mut cluster, leader) = TestCluster::launch(4, 3, RaftTiming::default()).await;
    write_ok(&cluster, &cluster.client(), &register(&user("before"), 3)).await;
    cluster.start(4).await;

    let bearer = admin_bearer(&cluster);
    let token = bearer.strip_prefix("Bearer ").expect("a Bearer value");
    let tenant_bearer = format!("Bearer {}", cluster.token("mallory"));
    let half_token = format!("Bearer {}", &token[..token.len() / 2]);
    let longer_token = format!("Bearer {token}x");
    let upper_token = format!("Bearer {}", token.to_uppercase());
    let double_space = format!("Bearer  {token}");
    let headers: Vec<Option<&str>> = vec![
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some(token),
        Some(&half_token),
        Some(&longer_token),
        Some(&upper_token),
        Some(&double_space),
        Some(&tenant_bearer),
    ];
    let before = cluster.expect_status(leader).await;
    let mut raw = NodeClient::connect(cluster.api_endpoint(leader))
        .await
        .expect("connect to the leader's node API");
    let mut fresh = NodeClient::connect(cluster.api_endpoint(4))
        .await
        .expect("connect to the uninitialized node's node API");
    let reset = postcard::to_stdvec(&register(&user("mallory"), 1000)).expect("encode");
    let members = vec![keyfleet_api::node::Member {
        id: 4,
        raft_addr: cluster.addresses(4).raft.clone(),
        api_addr: cluster.addresses(4).api.clone(),
    }];

    for header in &headers {
        let write = raw
            .write(request_with_header(
                WriteRequest {
                    request: reset.clone(),
                },
                *header,
            ))
            .await
            .expect_err("Write accepted a bad admin header");
        assert_eq!(write.code(), tonic::Code::Unauthenticated, "{header:?}");

        let read = raw
            .read_record(request_with_header(
                keyfleet_api::node::ReadRecordRequest {
                    user: "before".to_owned(),
                },
                *header,
            ))
            .await
            .expect_err("ReadRecord accepted a bad admin header");
        assert_eq!(read.code(), tonic::Code::Unauthenticated, "{header:?}");

        let initialize = fresh
            .initialize(request_with_header(
                keyfleet_api::node::InitializeRequest {
                    members: members.clone(),
                },
                *header,
            ))
            .await
            .expect_err("Initialize accepted a bad admin header");
        assert_eq!(
            initialize.code(),
            tonic::Code::Unauthenticated,
            "{header:?}"
        );

        let add = raw
            .add_learner(request_with_header(
                keyfleet_api::node::AddLearnerRequest {
                    member: members.first().cloned(),
                },
                *header,
            ))
            .await
            .expect_err("AddLearner accepted a bad admin header");
        assert_eq!(add.code(), tonic::Code::Unauthenticated, "{header:?}");

        let change = raw
            .change_membership(request_with_header(
                keyfleet_api::node::ChangeMembershipRequest {
                    voters: vec![leader],
                    retain: false,
                },
                *header,
            ))
            .await
            .expect_err("ChangeMembership accepted a bad admin header");
        assert_eq!(change.code(), tonic::Code::Unauthenticated, "{header:?}");

        let status = raw
            .status(request_with_header(
                keyfleet_api::node::StatusRequest {},
                *header,
            ))
            .await;
        assert!(status.is_ok(), "Status failed with {header:?}: {status:?}");
    }

    let after = cluster.expect_status(leader).await;
    assert_eq!(voter_ids(&after), voter_ids(&before));
    assert_eq!(learner_ids(&after), learner_ids(&before));
    assert_eq!(after.last_log_index, before.last_log_index);
    let fresh_status = cluster.expect_status(4).await;
    assert!(fresh_status.voters.is_empty(), "{fresh_status:?}");
    let mallory = cluster
        .client()
        .read_record(&user("mallory"))
        .await
        .expect("read with the admin token");
    assert!(mallory.is_none(), "a rejected write created a record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_client_debug_hides_admin_token() {
    let cluster = TestCluster::prepare(1, RaftTiming::default());
    let bearer = admin_bearer(&cluster);
    let token = bearer.strip_prefix("Bearer ").expect("a Bearer value");

    let printed = format!("{:?} {:#?}", cluster.client(), cluster.client());

    assert!(!printed.contains(token), "{printed}");
    assert!(printed.contains("REDACTED"), "{printed}");
}

/// Starts `keyfleetd` on node 1's configuration with `admin_line` in place of its
/// `admin_token_file` line, and returns its exit status and output, or `None` for the status
/// if it still runs after ten seconds (it is killed then).
fn start_with_admin_line(
    cluster: &TestCluster,
    admin_line: &str,
) -> (Option<std::process::ExitStatus>, String) {
    let node_dir = cluster
        .data_dir(1)
        .parent()
        .expect("the data directory is inside the node directory")
        .to_owned();
    let config = std::fs::read_to_string(node_dir.join("keyfleetd.toml")).expect("read config");
    let rewritten: Vec<String> = config
        .lines()
        .map(|line| {
            if line.starts_with("admin_token_file") {
                admin_line.to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect();
    let config_path = node_dir.join("admin-probe.toml");
    std::fs::write(&config_path, rewritten.join("\n")).expect("write config");
    let log_path = node_dir.join("admin-probe.log");
    let log = std::fs::File::create(&log_path).expect("create log");

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyfleetd"))
        .arg("--config")
        .arg(&config_path)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("clone log"))
        .stderr(log)
        .spawn()
        .expect("start keyfleetd");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut exited = false;
    while std::time::Instant::now() < deadline {
        exited = child.try_wait().expect("poll keyfleetd").is_some();
        if exited {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !exited {
        let _ = child.kill();
    }
    let waited = child.wait().expect("reap keyfleetd");
    let status = exited.then_some(waited);

    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    (status, output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_admin_token_files_stop_start() {
    let cluster = TestCluster::prepare(1, RaftTiming::default());
    let dir = tempfile::tempdir().expect("temporary directory");
    let short = dir.path().join("short");
    std::fs::write(&short, "too-short\n").expect("write");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").expect("write");
    let missing = dir.path().join("missing");
    let directory = dir.path().join("directory");
    std::fs::create_dir(&directory).expect("create directory");
    let line =
        |path: &std::path::Path| format!("admin_token_file = {:?}", path.display().to_string());
    let cases = [
        (String::new(), "admin_token_file is not set"),
        (line(&short), "9 bytes long"),
        (line(&empty), "0 bytes long"),
        (line(&missing), "No such file"),
        (line(&directory), "Is a directory"),
    ];

    for (admin_line, expected) in cases {
        let (status, output) = start_with_admin_line(&cluster, &admin_line);

        let status = status.unwrap_or_else(|| panic!("{admin_line:?} started a node: {output}"));
        assert!(!status.success(), "{admin_line:?}: {status}");
        assert!(output.contains(expected), "{admin_line:?}: {output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_admin_token_stops_start() {
    let cluster = TestCluster::prepare(1, RaftTiming::default());
    let dir = tempfile::tempdir().expect("temporary directory");
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{}\n", "é".repeat(32))).expect("write");
    let admin_line = format!("admin_token_file = {:?}", token.display().to_string());

    let (status, output) = start_with_admin_line(&cluster, &admin_line);

    assert!(status.is_some(), "the node started: {output}");
    assert!(output.contains("admin token"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_admin_calls_rate_limit_logs() {
    let (cluster, leader) = TestCluster::launch(1, 1, RaftTiming::default()).await;
    let mut raw = NodeClient::connect(cluster.api_endpoint(leader))
        .await
        .expect("connect to the node API");
    let calls = 500;

    for _ in 0..calls {
        let status = raw
            .read_record(keyfleet_api::node::ReadRecordRequest {
                user: "mallory".to_owned(),
            })
            .await
            .expect_err("a read without the admin token was accepted");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    }

    let log_path = cluster
        .data_dir(leader)
        .parent()
        .expect("the data directory is inside the node directory")
        .join("keyfleetd.log");
    let log = std::fs::read_to_string(log_path).expect("read the node log");
    let logged = log
        .lines()
        .filter(|line| line.contains("without the admin token rejected"))
        .count();
    assert!(
        logged <= 20,
        "{logged} log lines for {calls} rejected calls"
    );
}
