//! Reading secrets from files, and writing them to files that only the owner can read.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use crate::cli_error::CliError;

/// Mode of every file the command writes a secret to.
const PRIVATE_MODE: u32 = 0o600;

/// Reads at most `max_len` bytes of `path` into a zeroized buffer.
///
/// # Errors
/// [`CliError::InvalidInput`] when the file is longer than `max_len` bytes, and
/// [`CliError::File`] when it cannot be read.
pub(crate) fn read_secret(path: &Path, max_len: usize) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let file = File::open(path).map_err(|source| file_error("read", path, source))?;

    // Room for one byte past the limit, so that an oversized file is detected without
    // reading all of it, and the buffer never grows and leaves a copy behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(max_len + 1));
    file.take(max_len as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| file_error("read", path, source))?;

    if bytes.len() > max_len {
        return Err(CliError::InvalidInput(format!(
            "{} is longer than {max_len} bytes; use a smaller file",
            path.display()
        )));
    }

    Ok(bytes)
}

/// Reads a text file such as a token or a PEM key, of at most `max_len` bytes.
pub(crate) fn read_secret_text(path: &Path, max_len: usize) -> Result<Zeroizing<String>, CliError> {
    let bytes = read_secret(path, max_len)?;

    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(CliError::InvalidInput(format!(
            "{} is not UTF-8 text",
            path.display()
        ))),
    }
}

/// Writes `bytes` to `path` with mode 0600. An existing file is kept and an error returned,
/// unless `force` is set.
pub(crate) fn write_private(path: &Path, bytes: &[u8], force: bool) -> Result<(), CliError> {
    let mut options = OpenOptions::new();
    options.write(true).mode(PRIVATE_MODE);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }

    let mut file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            CliError::OutputExists {
                path: path.to_owned(),
            }
        } else {
            file_error("create", path, source)
        }
    })?;

    // `mode` applies only to a new file, so an overwritten file gets 0600 here.
    file.set_permissions(PermissionsExt::from_mode(PRIVATE_MODE))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all())
        .map_err(|source| file_error("write", path, source))
}

/// Checks, before a call that costs a guess, that [`write_private`] can later create `path`:
/// it is not an existing file (unless `force`) nor a directory, and its directory exists and
/// takes new files.
pub(crate) fn check_output(path: &Path, force: bool) -> Result<(), CliError> {
    if path.is_dir() {
        return Err(CliError::InvalidInput(format!(
            "{} is a directory; pass a file path to write the secret to",
            path.display()
        )));
    }

    if path.exists() && !force {
        return Err(CliError::OutputExists {
            path: path.to_owned(),
        });
    }

    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let probe = dir.join(format!(".keyfleet-write-check-{}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_MODE)
        .open(&probe)
        .map_err(|source| file_error("create a file in", dir, source))?;
    std::fs::remove_file(&probe).map_err(|source| file_error("remove", &probe, source))
}

fn file_error(action: &'static str, path: &Path, source: io::Error) -> CliError {
    CliError::File {
        action,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn output_check_rejects_unwritable_paths() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("existing.key");
        fs::write(&existing, b"old").unwrap();

        let missing_dir = check_output(&dir.path().join("no-such-dir/secret.key"), false);
        let directory = check_output(dir.path(), true);
        let exists = check_output(&existing, false);

        assert!(
            matches!(missing_dir, Err(CliError::File { .. })),
            "{missing_dir:?}"
        );
        assert!(
            matches!(directory, Err(CliError::InvalidInput(_))),
            "{directory:?}"
        );
        assert!(
            matches!(exists, Err(CliError::OutputExists { .. })),
            "{exists:?}"
        );
        assert!(check_output(&existing, true).is_ok());
        assert!(check_output(&dir.path().join("new.key"), false).is_ok());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "the check left a file behind"
        );
    }

    #[test]
    fn written_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.bin");

        write_private(&path, b"secret", false).unwrap();

        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, PRIVATE_MODE);
        assert_eq!(fs::read(&path).unwrap(), b"secret");
    }

    #[test]
    fn existing_file_is_kept_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.bin");
        fs::write(&path, b"old").unwrap();

        let result = write_private(&path, b"new", false);

        assert!(
            matches!(result, Err(CliError::OutputExists { .. })),
            "{result:?}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"old");
    }

    #[test]
    fn force_overwrites_and_tightens_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.bin");
        fs::write(&path, b"old secret").unwrap();
        fs::set_permissions(&path, PermissionsExt::from_mode(0o644)).unwrap();

        write_private(&path, b"new", true).unwrap();

        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, PRIVATE_MODE);
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn read_secret_enforces_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.bin");
        fs::write(&path, [1u8; 10]).unwrap();

        assert_eq!(read_secret(&path, 10).unwrap().len(), 10);
        assert!(matches!(
            read_secret(&path, 9),
            Err(CliError::InvalidInput(_))
        ));
    }

    #[test]
    fn missing_file_names_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing");

        let error = read_secret(&path, 10).unwrap_err();

        assert!(matches!(error, CliError::File { .. }), "{error:?}");
        assert!(error.to_string().contains("missing"), "{error}");
    }

    #[test]
    fn non_utf8_text_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        fs::write(&path, [0xff, 0xfe]).unwrap();

        let result = read_secret_text(&path, 100);

        assert!(
            matches!(result, Err(CliError::InvalidInput(_))),
            "{result:?}"
        );
    }
}
