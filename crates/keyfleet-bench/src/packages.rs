use std::path::PathBuf;
use std::process::Command;

use crate::BenchError;

/// Returns the path of `program`, installing the Debian package `package` with apt-get first
/// when the program is missing from `PATH`.
pub(crate) fn ensure_installed(program: &str, package: &str) -> Result<PathBuf, BenchError> {
    if let Some(path) = find_in_path(program) {
        return Ok(path);
    }

    tracing::info!(
        program,
        package,
        "the program is missing; installing its package"
    );
    apt_get(&["update", "-qq"], package)?;
    apt_get(
        &["install", "-y", "-qq", "--no-install-recommends", package],
        package,
    )?;

    find_in_path(program).ok_or_else(|| BenchError::Command {
        program: program.to_owned(),
        reason: format!("not found in PATH after installing {package}"),
    })
}

fn apt_get(args: &[&str], package: &str) -> Result<(), BenchError> {
    let mut command = if is_root() {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("apt-get");
        sudo
    };
    let output = command
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|error| BenchError::Command {
            program: "apt-get".to_owned(),
            reason: error.to_string(),
        })?;

    if output.status.success() {
        return Ok(());
    }
    Err(BenchError::Command {
        program: format!("apt-get {}", args.join(" ")),
        reason: format!(
            "{}: {}; install {package} by hand",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    })
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Returns true when this process runs as root, as `id -u` reports it.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| output.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}
