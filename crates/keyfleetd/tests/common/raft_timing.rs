/// The `[raft]` table of a test node's configuration. Times are in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct RaftTiming {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub snapshot_after_logs: u64,
    pub max_in_snapshot_log_to_keep: u64,
    pub write_timeout_ms: u64,
    pub learner_catch_up_timeout_ms: u64,
}

impl Default for RaftTiming {
    /// Heartbeats every 100 ms and elections after 500 to 1000 ms, so a failover takes seconds.
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            snapshot_after_logs: 5000,
            max_in_snapshot_log_to_keep: 1000,
            write_timeout_ms: 2000,
            learner_catch_up_timeout_ms: 3000,
        }
    }
}

impl RaftTiming {
    /// Returns the timing with a snapshot after every `logs` applied entries and no log kept
    /// behind it, so a follower that misses `logs` entries can only catch up from a snapshot.
    pub fn with_snapshots_every(logs: u64) -> Self {
        Self {
            snapshot_after_logs: logs,
            max_in_snapshot_log_to_keep: 0,
            ..Self::default()
        }
    }

    /// Returns the TOML `[raft]` table.
    pub fn to_toml(self) -> String {
        format!(
            "[raft]\n\
             heartbeat_interval_ms = {}\n\
             election_timeout_min_ms = {}\n\
             election_timeout_max_ms = {}\n\
             snapshot_after_logs = {}\n\
             max_in_snapshot_log_to_keep = {}\n\
             write_timeout_ms = {}\n\
             learner_catch_up_timeout_ms = {}\n",
            self.heartbeat_interval_ms,
            self.election_timeout_min_ms,
            self.election_timeout_max_ms,
            self.snapshot_after_logs,
            self.max_in_snapshot_log_to_keep,
            self.write_timeout_ms,
            self.learner_catch_up_timeout_ms,
        )
    }
}
