//! The benchmark's smoke mode, end to end: the fsync probe, the crypto ceiling, a real etcd
//! cluster and a local fleet of real keyfleetd processes with SoftHSM2 tokens. It checks that
//! every part ran and produced samples, and asserts nothing about speed.

use keyfleet_bench::{BenchConfig, FleetTarget};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_smoke_runs_every_part() {
    let keyfleetd = env!("CARGO_BIN_EXE_keyfleetd").into();
    let config = BenchConfig::smoke(FleetTarget::Local { keyfleetd });

    let report = keyfleet_bench::run(&config)
        .await
        .expect("the smoke run completes");

    assert!(report.machine.cores >= 1);
    assert!(report.machine.fsync.latency.ok > 0, "no fsync sample");
    assert!(
        report.crypto_ceiling.server_recovery.ok > 0,
        "no ceiling sample"
    );
    assert!(report.crypto_ceiling.client_ksf_v1_ms > 0.0);

    let etcd = report.etcd.as_ref().expect("the smoke run includes etcd");
    assert!(etcd.ok > 0, "no etcd increment");
    assert_eq!(etcd.errors, 0, "etcd errors: {:?}", etcd.error_samples);

    let fleet = &report.fleet;
    assert_eq!(fleet.register.ok, config.users as u64);
    assert!(fleet.recovery.ok > 0, "no recovery");
    assert_eq!(
        fleet.recovery.errors, 0,
        "{:?}",
        fleet.recovery.error_samples
    );
    assert_eq!(fleet.recovery_start.ok, fleet.recovery.ok);
    assert!(fleet.wrong_start.ok > 0, "no wrong-password guess");
    assert_eq!(
        fleet.wrong_start.errors, 0,
        "{:?}",
        fleet.wrong_start.error_samples
    );
    assert!(fleet.wrong_reregister.ok >= config.concurrency as u64);

    let nodes = report
        .nodes
        .as_ref()
        .expect("a local fleet reports its nodes");
    assert_eq!(nodes.resident_mib.len(), 3);
    assert!(nodes.restart_serving_secs > 0.0);
    assert_eq!(nodes.learner, 4);
    assert!(
        nodes.learner_catch_up_secs.is_some_and(|secs| secs > 0.0),
        "{:?}",
        nodes.learner_error
    );
    assert_eq!(report.targets.len(), 7);

    let json = serde_json::to_value(&report).expect("the report serializes");
    assert!(json["fleet"]["recovery_start"]["p99_ms"].is_number());
    assert!(report.to_string().contains("etcd increment"));
}
