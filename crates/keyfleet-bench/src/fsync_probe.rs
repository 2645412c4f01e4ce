use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::BenchError;
use crate::latency::{OpRecorder, OpSummary};

/// Size of each probe write, about one small Raft log entry batch.
const WRITE_BYTES: usize = 4096;

/// Latency of one 4 KiB write followed by `fdatasync`, on the disk under test.
#[derive(Debug, Clone, Serialize)]
pub struct FsyncSummary {
    /// Directory the probe wrote in.
    pub dir: String,
    /// Write and fdatasync latency percentiles. `per_sec` counts syncs per second in a loop.
    pub latency: OpSummary,
}

/// Appends 4 KiB and calls `fdatasync`, `rounds` times, in a scratch file under `dir`, and
/// returns the latency of each round. The file is removed afterwards.
pub(crate) fn measure_fsync(dir: &Path, rounds: u32) -> Result<FsyncSummary, BenchError> {
    let path = dir.join("fsync-probe.bin");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|error| BenchError::io("create the fsync probe file", &path, error))?;

    let block = vec![0x5a_u8; WRITE_BYTES];
    let mut recorder = OpRecorder::new("fsync");
    let started = Instant::now();

    for _ in 0..rounds {
        let round = Instant::now();
        file.write_all(&block)
            .and_then(|()| file.sync_data())
            .map_err(|error| BenchError::io("write and sync the fsync probe file", &path, error))?;
        recorder.record(round.elapsed());
    }

    let elapsed = started.elapsed();
    drop(file);
    std::fs::remove_file(&path)
        .map_err(|error| BenchError::io("remove the fsync probe file", &path, error))?;

    Ok(FsyncSummary {
        dir: dir.display().to_string(),
        latency: recorder.summary(elapsed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_probe_counts_every_round() {
        let dir = tempfile::tempdir().unwrap();

        let summary = measure_fsync(dir.path(), 5).unwrap();

        assert_eq!(summary.latency.ok, 5);
        assert!(summary.latency.p50_ms > 0.0);
        assert!(!dir.path().join("fsync-probe.bin").exists());
    }
}
