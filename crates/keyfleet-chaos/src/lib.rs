//! Jepsen-style chaos testing for keyfleet.
//!
//! Clients run a workload of registrations, right and wrong guesses, deletes and state reads
//! against a fleet while a nemesis kills, pauses and partitions its nodes. Every operation is
//! recorded twice in a [`History`]: when it is invoked and when it completes as ok, failed
//! (surely did not happen) or unknown (timed out or lost its connection). The [`check`]
//! function then verifies the guess budget and the other vault guarantees on that history,
//! including the committed state that final reads return after every fault is healed.

mod checker;
mod container;
mod fault_segments;
mod history;
mod nemesis;
mod proxy;
mod run_folder;
mod vault_driver;
mod workload;

pub use checker::{Property, Verdict, Violation, check};
pub use container::{ComposeNode, ContainerNemesis};
pub use fault_segments::{FaultSegments, KindSummary, count_outcomes, summary_table};
pub use history::{Event, History, Op, OpValue, Outcome, Phase};
pub use nemesis::{Fault, FaultTimeline, Nemesis, NemesisError, TimelineEntry, run_fault};
pub use proxy::{ProxyError, RaftProxy};
pub use run_folder::{RunFolder, SEED_VARIABLE, seed_from_env};
pub use vault_driver::{
    CONNECT_FAILED, CallError, PreparedFinish, StartedLogin, TEST_KSF, VaultDriver,
};
pub use workload::{TokenSource, Workload, WorkloadConfig, WorkloadReport, time_to_serve};
