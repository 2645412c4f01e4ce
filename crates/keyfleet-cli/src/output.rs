//! Printing command results on stdout, as text lines or as one JSON object.

use std::io::{self, Write};

use serde_json::Value;

use crate::cli_error::CliError;

/// Prints `value` as one JSON object with `json`, or else `text`, on stdout.
pub(crate) fn print_result(json: bool, text: &str, value: &Value) -> Result<(), CliError> {
    if json {
        print_line(&value.to_string())
    } else {
        print_line(text)
    }
}

/// Returns `count` followed by `singular` when it is 1, or else by `plural`, such as "1 user".
pub(crate) fn count_of(count: u64, singular: &str, plural: &str) -> String {
    let noun = if count == 1 { singular } else { plural };
    format!("{count} {noun}")
}

/// Prints `line` and a newline on stdout.
pub(crate) fn print_line(line: &str) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();

    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(CliError::Stdout)
}

/// Prints the result of a command that may print a secret. With `json`, stdout gets `value`.
/// Otherwise, with `secret_hex`, stdout gets only the hex line and the summary goes to stderr,
/// so that a script can read the secret alone. Without it, stdout gets the summary.
pub(crate) fn print_outcome_or_secret(
    json: bool,
    summary: &str,
    secret_hex: Option<&str>,
    value: &Value,
) -> Result<(), CliError> {
    if json {
        return print_line(&value.to_string());
    }

    match secret_hex {
        Some(hex) => {
            print_line(hex)?;
            eprintln!("{summary}");
            Ok(())
        }
        None => print_line(summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_of_picks_the_noun() {
        assert_eq!(count_of(0, "user", "users"), "0 users");
        assert_eq!(count_of(1, "user", "users"), "1 user");
        assert_eq!(count_of(2, "user", "users"), "2 users");
    }
}
