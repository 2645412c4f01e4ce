//! The performance targets of a three-node fleet on one machine, checked against one run.

use serde::Serialize;

use crate::bench_report::{BenchReport, NodeSummary};

/// Concurrency at which the recovery-start latency target applies.
pub(crate) const TARGET_CONCURRENCY: usize = 64;
/// Highest recovery-start p99 at [`TARGET_CONCURRENCY`] clients, in milliseconds.
const MAX_START_P99_MS: f64 = 25.0;
/// Lowest ratio of full recoveries per second to the single-core crypto ceiling.
const MIN_CEILING_RATIO: f64 = 0.5;
/// Highest resident memory of a node, in MiB.
const MAX_RESIDENT_MIB: f64 = 256.0;
/// Maximum time from a node's restart until it serves again, in seconds.
const MAX_RESTART_SECS: f64 = 10.0;
/// Maximum time from a new node's start until it has caught up, in seconds.
const MAX_CATCH_UP_SECS: f64 = 60.0;

/// One target and how this run measured against it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// The quantity the target bounds.
    pub target: &'static str,
    /// The bound, in words.
    pub bound: &'static str,
    /// This run's measurement, in words.
    pub measured: String,
    /// `met`, `not met`, or `not measured` with the reason.
    pub verdict: String,
}

/// Checks every target against `report`.
pub(crate) fn check_targets(report: &BenchReport) -> Vec<TargetCheck> {
    let fleet = &report.fleet;
    let mut checks = Vec::new();

    checks.push(match &report.etcd {
        Some(etcd) => {
            let ratio = fleet.wrong_guesses_per_sec / etcd.per_sec.max(f64::MIN_POSITIVE);
            TargetCheck {
                target: "committed guesses per second",
                bound: ">= etcd increments per second (ratio >= 1)",
                measured: format!(
                    "{:.1}/s vs etcd {:.1}/s: ratio {ratio:.2}",
                    fleet.wrong_guesses_per_sec, etcd.per_sec
                ),
                verdict: verdict(ratio >= 1.0),
            }
        }
        None => TargetCheck {
            target: "committed guesses per second",
            bound: ">= etcd increments per second (ratio >= 1)",
            measured: format!("{:.1}/s", fleet.wrong_guesses_per_sec),
            verdict: "not measured: etcd was skipped".to_owned(),
        },
    });

    let ceiling = report.crypto_ceiling.recoveries_per_sec_per_core;
    let ratio = fleet.recovery.per_sec / ceiling.max(f64::MIN_POSITIVE);
    checks.push(TargetCheck {
        target: "full recoveries per second",
        bound: ">= half the single-core crypto ceiling (ratio >= 0.5)",
        measured: format!(
            "{:.1}/s vs ceiling {ceiling:.1}/s: ratio {ratio:.3}",
            fleet.recovery.per_sec
        ),
        verdict: verdict(ratio >= MIN_CEILING_RATIO),
    });

    let p99 = fleet.recovery_start.p99_ms;
    checks.push(TargetCheck {
        target: "recovery-start p99 at 64 clients",
        bound: "<= 25 ms",
        measured: format!("{p99:.1} ms at {} clients", report.settings.concurrency),
        verdict: if report.settings.concurrency == TARGET_CONCURRENCY {
            verdict(p99 <= MAX_START_P99_MS)
        } else {
            format!(
                "not measured: the run used {} clients",
                report.settings.concurrency
            )
        },
    });

    checks.extend(node_checks(report.nodes.as_ref(), report.settings.users));
    checks.push(TargetCheck {
        target: "throughput at 1M users within 20% of 1k users",
        bound: "ratio >= 0.8",
        measured: format!("this run had {} users", report.settings.users),
        verdict: "not measured: compare runs with --users; see docs/benchmarks.md".to_owned(),
    });
    checks.push(learner_check(report.nodes.as_ref(), report.settings.users));

    checks
}

fn learner_check(nodes: Option<&NodeSummary>, users: usize) -> TargetCheck {
    let target = "new node caught up by snapshot";
    let bound = "< 60 s at 1M users";
    let Some(nodes) = nodes else {
        return TargetCheck {
            target,
            bound,
            measured: "-".to_owned(),
            verdict: "not measured: the benchmark did not start the fleet".to_owned(),
        };
    };

    let Some(secs) = nodes.learner_catch_up_secs else {
        return TargetCheck {
            target,
            bound,
            measured: nodes.learner_error.clone().unwrap_or_default(),
            verdict: "not met: the new node did not catch up".to_owned(),
        };
    };

    if !nodes.learner_by_snapshot {
        return TargetCheck {
            target,
            bound,
            measured: format!(
                "{secs:.2} s for node {} at {users} users, from log entries",
                nodes.learner
            ),
            verdict: "not measured: the new node caught up from log entries, without a snapshot"
                .to_owned(),
        };
    }
    TargetCheck {
        target,
        bound,
        measured: format!(
            "{secs:.2} s for node {} at {users} users, with a snapshot",
            nodes.learner
        ),
        verdict: at_scale(secs < MAX_CATCH_UP_SECS, users),
    }
}

fn node_checks(nodes: Option<&NodeSummary>, users: usize) -> Vec<TargetCheck> {
    let Some(nodes) = nodes else {
        let reason = "not measured: the benchmark did not start the fleet".to_owned();
        return vec![
            TargetCheck {
                target: "node resident memory",
                bound: "< 256 MiB at 1M users",
                measured: "-".to_owned(),
                verdict: reason.clone(),
            },
            TargetCheck {
                target: "node restart until serving",
                bound: "<= 10 s at 1M users",
                measured: "-".to_owned(),
                verdict: reason,
            },
        ];
    };

    let max_rss = nodes.resident_mib.values().copied().fold(0.0_f64, f64::max);
    vec![
        TargetCheck {
            target: "node resident memory",
            bound: "< 256 MiB at 1M users",
            measured: format!("max {max_rss:.1} MiB at {users} users"),
            verdict: at_scale(max_rss < MAX_RESIDENT_MIB, users),
        },
        TargetCheck {
            target: "node restart until serving",
            bound: "<= 10 s at 1M users",
            measured: format!(
                "{:.2} s for node {} at {users} users",
                nodes.restart_serving_secs, nodes.restarted_node
            ),
            verdict: at_scale(nodes.restart_serving_secs <= MAX_RESTART_SECS, users),
        },
    ]
}

fn verdict(met: bool) -> String {
    if met { "met" } else { "not met" }.to_owned()
}

/// A verdict for a bound that applies at one million users, measured at `users`.
fn at_scale(met: bool, users: usize) -> String {
    if users >= 1_000_000 {
        verdict(met)
    } else if met {
        format!("met at {users} users; 1M not measured")
    } else {
        format!("not met at {users} users")
    }
}
