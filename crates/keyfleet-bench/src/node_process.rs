use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::BenchError;

/// A child process that the benchmark started, killed with SIGKILL when dropped.
#[derive(Debug)]
pub(crate) struct OwnedChild {
    name: String,
    child: Option<Child>,
}

impl OwnedChild {
    /// Starts `command` with stdin closed and stdout and stderr appended to `log`.
    pub(crate) fn spawn(
        name: impl Into<String>,
        mut command: Command,
        log: &Path,
    ) -> Result<Self, BenchError> {
        let name = name.into();
        let log_file = open_log(log)?;
        let stderr = log_file
            .try_clone()
            .map_err(|error| BenchError::io("open the log file", log, error))?;

        let child = command
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr)
            .spawn()
            .map_err(|error| BenchError::Command {
                program: format!("{:?}", command.get_program()),
                reason: format!("{error}; check that it is installed"),
            })?;
        tracing::debug!(process = %name, pid = child.id(), "started");

        Ok(Self {
            name,
            child: Some(child),
        })
    }

    /// Returns the process id, or `None` after [`OwnedChild::kill`].
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Returns an error naming the process if it has exited.
    pub(crate) fn check_running(&mut self) -> Result<(), BenchError> {
        let Some(child) = self.child.as_mut() else {
            return Err(BenchError::Command {
                program: self.name.clone(),
                reason: "the process was stopped".to_owned(),
            });
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(BenchError::Command {
                program: self.name.clone(),
                reason: format!("the process exited with {status}; see its log"),
            }),
            Err(error) => Err(BenchError::Command {
                program: self.name.clone(),
                reason: format!("failed to poll the process: {error}"),
            }),
        }
    }

    /// Kills the process with SIGKILL and reaps it.
    pub(crate) fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // An error means that the process has exited already.
        let _ = child.kill();
        if let Err(error) = child.wait() {
            tracing::warn!(process = %self.name, %error, "failed to reap a killed process");
        }
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Ports the benchmark hands out: below Linux's default ephemeral range (32768 to 60999), so an
/// outgoing connection never takes a killed node's port as its source port, which would keep
/// the node from starting again on it. The test harness of `keyfleetd` uses 20000 to 32000.
const BENCH_PORTS: std::ops::RangeInclusive<u16> = 10_000..=19_999;

/// Attempts to find a free port before giving up.
const PORT_ATTEMPTS: usize = 1_000;

/// Returns a 127.0.0.1 address in [`BENCH_PORTS`] whose port was free a moment ago. Another
/// process may take it before the caller binds it, and the caller then fails with the port named
/// in its log.
pub(crate) fn free_local_address() -> Result<SocketAddr, BenchError> {
    use rand::Rng;

    let mut rng = rand::thread_rng();
    let mut last_error = None;
    for _ in 0..PORT_ATTEMPTS {
        let port = rng.gen_range(BENCH_PORTS);
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => {
                return listener.local_addr().map_err(|error| {
                    BenchError::io("read the bound address of", "127.0.0.1", error)
                });
            }
            Err(error) => last_error = Some(error),
        }
    }

    let error = last_error.unwrap_or_else(|| std::io::Error::other("no port tried"));
    Err(BenchError::io(
        "bind a free port in 10000-19999 on",
        "127.0.0.1",
        error,
    ))
}

/// Returns the resident set size of process `pid` in MiB, from `/proc/PID/status`.
pub(crate) fn resident_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;

    Some(kib / 1024.0)
}

fn open_log(path: &Path) -> Result<File, BenchError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| BenchError::io("open the log file", path, error))
}
