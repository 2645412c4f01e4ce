use std::collections::BTreeMap;
use std::fmt::{self, Write};

use keyfleet_raft::NodeId;
use serde::Serialize;

use crate::crypto_ceiling::CeilingSummary;
use crate::fsync_probe::FsyncSummary;
use crate::latency::OpSummary;
use crate::targets::TargetCheck;
use crate::vault_workload::FleetSummary;

/// Everything one benchmark run measured. `Display` renders it as tables, and it serializes
/// to JSON.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub machine: MachineSummary,
    pub settings: SettingsSummary,
    pub crypto_ceiling: CeilingSummary,
    /// etcd increments, absent when etcd was skipped.
    pub etcd: Option<OpSummary>,
    pub fleet: FleetSummary,
    /// Node measurements, present when the benchmark started the fleet itself.
    pub nodes: Option<NodeSummary>,
    pub targets: Vec<TargetCheck>,
}

/// The machine the run measured.
#[derive(Debug, Clone, Serialize)]
pub struct MachineSummary {
    /// CPUs available to this process.
    pub cores: usize,
    /// `/proc/loadavg` when the run started and when it ended.
    pub load_at_start: String,
    pub load_at_end: String,
    pub fsync: FsyncSummary,
}

/// The settings of the run.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsSummary {
    pub concurrency: usize,
    pub users: usize,
    pub phase_secs: f64,
    /// The clients' Argon2id parameters: memory in KiB, passes, lanes.
    pub client_ksf: [u32; 3],
    /// `local` for a fleet the benchmark started, or the endpoints it called.
    pub fleet: String,
}

/// Measurements of the nodes of a local fleet.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSummary {
    /// Resident set size of each node after the workload, in MiB.
    pub resident_mib: BTreeMap<NodeId, f64>,
    /// The follower that was killed and started again.
    pub restarted_node: NodeId,
    /// Time from its start until its readiness was SERVING, in seconds.
    pub restart_serving_secs: f64,
    /// The node added as a learner after the restart.
    pub learner: NodeId,
    /// Time from the learner's start until the leader had replicated to it the entry that added
    /// it, in seconds, or `None` when `AddLearner` failed.
    pub learner_catch_up_secs: Option<f64>,
    /// Whether the learner installed a snapshot, rather than receiving only log entries.
    pub learner_by_snapshot: bool,
    /// The error of a failed `AddLearner`.
    pub learner_error: Option<String>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_header(&mut out)?;
        self.write_ops(&mut out)?;
        self.write_targets(&mut out)?;
        f.write_str(&out)
    }
}

impl BenchReport {
    fn write_header(&self, out: &mut String) -> fmt::Result {
        let machine = &self.machine;
        let fsync = &machine.fsync.latency;
        let settings = &self.settings;
        let ksf = settings.client_ksf;

        writeln!(out, "machine: {} cores", machine.cores)?;
        writeln!(out, "load average at start: {}", machine.load_at_start)?;
        writeln!(out, "load average at end:   {}", machine.load_at_end)?;
        writeln!(
            out,
            "fsync (4 KiB write + fdatasync) in {}: p50 {:.2} ms, p99 {:.2} ms, {:.0} syncs/s",
            machine.fsync.dir, fsync.p50_ms, fsync.p99_ms, fsync.per_sec
        )?;
        writeln!(
            out,
            "fleet: {}; {} clients, {} users, {:.0} s per phase; client Argon2id m={} KiB t={} p={}",
            settings.fleet,
            settings.concurrency,
            settings.users,
            settings.phase_secs,
            ksf[0],
            ksf[1],
            ksf[2]
        )?;
        writeln!(
            out,
            "client Argon2id at protocol version 1 (64 MiB, t=3, p=4): {:.0} ms per run, not \
             included below",
            self.crypto_ceiling.client_ksf_v1_ms
        )?;
        if let Some(nodes) = &self.nodes {
            let rss: Vec<String> = nodes
                .resident_mib
                .iter()
                .map(|(id, mib)| format!("node {id} {mib:.1} MiB"))
                .collect();
            writeln!(
                out,
                "resident memory after the workload: {}",
                rss.join(", ")
            )?;
            writeln!(
                out,
                "node {} killed and started again: serving after {:.2} s",
                nodes.restarted_node, nodes.restart_serving_secs
            )?;
            let transfer = if nodes.learner_by_snapshot {
                "installed a snapshot"
            } else {
                "log entries only, no snapshot"
            };
            match (nodes.learner_catch_up_secs, &nodes.learner_error) {
                (Some(secs), _) => writeln!(
                    out,
                    "node {} added as a learner: caught up after {secs:.2} s ({transfer})",
                    nodes.learner
                )?,
                (None, error) => writeln!(
                    out,
                    "node {} added as a learner: did not catch up: {}",
                    nodes.learner,
                    error.as_deref().unwrap_or("no error recorded")
                )?,
            }
        }
        writeln!(out)
    }

    fn write_ops(&self, out: &mut String) -> fmt::Result {
        writeln!(
            out,
            "{:<34} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9}",
            "operation", "ok", "errors", "per sec", "p50 ms", "p99 ms", "p99.9 ms"
        )?;
        let ceiling = &self.crypto_ceiling;
        write_row(
            out,
            "crypto ceiling (1 core, server)",
            &ceiling.server_recovery,
            Some(ceiling.recoveries_per_sec_per_core),
        )?;
        if let Some(etcd) = &self.etcd {
            write_row(out, "etcd increment (3 members)", etcd, None)?;
        }
        let fleet = &self.fleet;
        let rows = [
            ("keyfleet register", &fleet.register),
            ("keyfleet recovery (right pw)", &fleet.recovery),
            ("  recovery start (1 guess)", &fleet.recovery_start),
            ("  recovery finish", &fleet.recovery_finish),
            ("keyfleet wrong-pw start (1 guess)", &fleet.wrong_start),
            ("  wrong-pw finish", &fleet.wrong_finish),
            ("  re-register", &fleet.wrong_reregister),
        ];
        for (label, summary) in rows {
            write_row(out, label, summary, None)?;
        }
        let mut all: Vec<&OpSummary> = rows.iter().map(|(_, summary)| *summary).collect();
        all.extend(self.etcd.as_ref());
        for summary in all {
            for sample in &summary.error_samples {
                writeln!(out, "error in {}: {sample}", summary.name)?;
            }
        }
        writeln!(out)
    }

    fn write_targets(&self, out: &mut String) -> fmt::Result {
        writeln!(
            out,
            "{:<46} {:<52} {:<44} verdict",
            "target", "bound", "measured"
        )?;
        for check in &self.targets {
            writeln!(
                out,
                "{:<46} {:<52} {:<44} {}",
                check.target, check.bound, check.measured, check.verdict
            )?;
        }
        Ok(())
    }
}

/// Writes one table row. `per_sec`, when given, replaces the summary's throughput.
fn write_row(
    out: &mut String,
    label: &str,
    summary: &OpSummary,
    per_sec: Option<f64>,
) -> fmt::Result {
    writeln!(
        out,
        "{label:<34} {:>9} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2}",
        summary.ok,
        summary.errors,
        per_sec.unwrap_or(summary.per_sec),
        summary.p50_ms,
        summary.p99_ms,
        summary.p999_ms
    )
}
