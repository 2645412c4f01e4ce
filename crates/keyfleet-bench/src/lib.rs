//! The keyfleet benchmark.
//!
//! [`run`] measures, in one run on one machine, so that ratios hold on a noisy machine:
//!
//! - the disk's fsync latency, in the directory that holds the fleet's data;
//! - the crypto ceiling: the OPAQUE server work of one recovery, both steps, on one core,
//!   with no network, no consensus and no HSM;
//! - the consensus anchor: a three-member etcd cluster on 127.0.0.1 doing one durable put per
//!   counter increment, at the benchmark's concurrency;
//! - a three-node keyfleet fleet doing registrations, right-password recoveries and
//!   wrong-password recoveries in a closed loop.
//!
//! The clients run Argon2id with the cheap parameters of [`BenchConfig::client_ksf`], so that
//! the client's key-stretching function does not compete with the nodes for the CPU. The vault
//! never runs the KSF, so its work is the same with any parameters. The benchmark times one
//! Argon2id run at protocol version 1's parameters and reports it on its own.

mod bench_error;
mod bench_report;
mod config;
mod crypto_ceiling;
mod etcd_anchor;
mod etcd_cluster;
mod etcd_proto;
mod fsync_probe;
mod latency;
mod local_fleet;
mod node_process;
mod packages;
mod recovery_client;
mod run;
mod targets;
mod vault_workload;

pub use bench_error::BenchError;
pub use bench_report::BenchReport;
pub use config::{BenchConfig, FleetTarget, MAX_CONCURRENCY, RemoteFleet};
pub use run::run;
