//! The seed of a run and the folder that keeps its evidence.

use std::path::{Path, PathBuf};

use crate::checker::Verdict;
use crate::history::History;
use crate::nemesis::FaultTimeline;

/// Environment variable that sets the seed of a chaos run, to replay an earlier one.
pub const SEED_VARIABLE: &str = "KEYFLEET_CHAOS_SEED";

/// Returns the seed from `KEYFLEET_CHAOS_SEED`, or a random one when it is unset.
///
/// # Panics
///
/// Panics if the variable is set but is not a decimal `u64`, so that a mistyped replay does
/// not silently run another seed.
pub fn seed_from_env() -> u64 {
    match std::env::var(SEED_VARIABLE) {
        Ok(text) => text.trim().parse().unwrap_or_else(|error| {
            panic!("{SEED_VARIABLE}={text:?} is not a decimal u64 seed: {error}")
        }),
        Err(_) => fastrand::u64(..),
    }
}

/// The folder of one run: `seed.txt`, `history.jsonl`, `faults.jsonl`, `verdict.json` and a
/// copy of every node's log.
#[derive(Debug)]
pub struct RunFolder {
    path: PathBuf,
}

impl RunFolder {
    /// Creates `<parent>/<name>-seed-<seed>` and writes the seed into it.
    pub fn create(parent: &Path, name: &str, seed: u64) -> std::io::Result<Self> {
        let path = parent.join(format!("{name}-seed-{seed}"));
        std::fs::create_dir_all(&path)?;
        std::fs::write(path.join("seed.txt"), format!("{seed}\n"))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the history, the fault timeline and the verdict, and copies each node log in
    /// `logs` (node id, path).
    pub fn save(
        &self,
        history: &History,
        timeline: &FaultTimeline,
        verdict: &Verdict,
        logs: &[(u64, PathBuf)],
    ) -> std::io::Result<()> {
        history.save(&self.path.join("history.jsonl"))?;
        timeline.save(&self.path.join("faults.jsonl"))?;
        let verdict = serde_json::to_string_pretty(verdict)?;
        std::fs::write(self.path.join("verdict.json"), verdict)?;

        for (node, log) in logs {
            let copy = self.path.join(format!("node-{node}.log"));
            if let Err(error) = std::fs::copy(log, &copy) {
                tracing::warn!(node, log = %log.display(), %error, "failed to copy a node log");
            }
        }
        Ok(())
    }

    /// Deletes the folder, after a run that passed.
    pub fn remove(self) -> std::io::Result<()> {
        std::fs::remove_dir_all(&self.path)
    }
}
