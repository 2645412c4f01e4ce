//! Reading the password from a file or from a prompt without echo.

use std::path::Path;

use zeroize::Zeroizing;

use crate::cli::PasswordArgs;
use crate::cli_error::CliError;
use crate::private_file::read_secret;

/// Largest password file the command reads, in bytes.
const MAX_PASSWORD_FILE_LEN: usize = 64 * 1024;

/// Reads the password from `--password-file`, or else prompts for it on the terminal. With
/// `confirm`, the prompt reads the password twice and the two entries must match.
pub(crate) fn read_password(
    args: &PasswordArgs,
    confirm: bool,
) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let password = match &args.password_file {
        Some(path) => read_password_file(path)?,
        None => prompt_password(confirm)?,
    };

    if password.is_empty() {
        let message = match &args.password_file {
            Some(path) => format!(
                "the first line of --password-file {} is empty; write the password on it",
                path.display()
            ),
            None => "the password is empty; enter a password".to_owned(),
        };
        return Err(CliError::InvalidInput(message));
    }

    Ok(password)
}

/// Reads the first line of `path`, without its line ending (`\n` or `\r\n`).
pub(crate) fn read_password_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let mut bytes = read_secret(path, MAX_PASSWORD_FILE_LEN)?;

    let line_len = first_line_len(&bytes);
    // `truncate` keeps the allocation, and `Zeroizing` clears all of it on drop.
    bytes.truncate(line_len);
    Ok(bytes)
}

/// Returns the length of the first line of `bytes`, without its line ending.
fn first_line_len(bytes: &[u8]) -> usize {
    let end = bytes
        .iter()
        .position(|&byte| byte == b'\n')
        .unwrap_or(bytes.len());

    if end > 0 && bytes[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

fn prompt_password(confirm: bool) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let first = Zeroizing::new(rpassword::prompt_password("Password: ").map_err(CliError::Prompt)?);

    if confirm {
        let second = Zeroizing::new(
            rpassword::prompt_password("Repeat the password: ").map_err(CliError::Prompt)?,
        );
        if *first != *second {
            return Err(CliError::InvalidInput(
                "the two passwords differ; run the command again".to_owned(),
            ));
        }
    }

    Ok(Zeroizing::new(first.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn password_from(contents: &[u8]) -> Result<Zeroizing<Vec<u8>>, CliError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        fs::write(&path, contents).unwrap();

        read_password(
            &PasswordArgs {
                password_file: Some(path),
            },
            true,
        )
    }

    #[test]
    fn trailing_newline_is_stripped() {
        assert_eq!(password_from(b"hunter2\n").unwrap().as_slice(), b"hunter2");
        assert_eq!(
            password_from(b"hunter2\r\n").unwrap().as_slice(),
            b"hunter2"
        );
    }

    #[test]
    fn only_first_line_is_read() {
        let password = password_from(b"first line\nsecond line\n").unwrap();

        assert_eq!(password.as_slice(), b"first line");
    }

    #[test]
    fn file_without_newline_is_whole() {
        let password = password_from(b"no newline at all").unwrap();

        assert_eq!(password.as_slice(), b"no newline at all");
    }

    #[test]
    fn inner_spaces_and_carriage_returns_are_kept() {
        let password = password_from(b" spaced\rpass \n").unwrap();

        assert_eq!(password.as_slice(), b" spaced\rpass ");
    }

    #[test]
    fn empty_password_is_rejected() {
        for contents in [&b""[..], b"\n", b"\r\n", b"\nsecond line"] {
            let result = password_from(contents);

            assert!(
                matches!(result, Err(CliError::InvalidInput(_))),
                "{contents:?}: {result:?}"
            );
        }
    }

    #[test]
    fn missing_file_is_a_file_error() {
        let result = read_password_file(Path::new("/nonexistent/keyfleet-password"));

        assert!(matches!(result, Err(CliError::File { .. })), "{result:?}");
    }
}
