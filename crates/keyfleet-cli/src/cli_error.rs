use std::io;
use std::path::PathBuf;

use keyfleet_sdk::SdkError;
use keyfleet_token::TokenError;

use crate::exit_code::Exit;

/// Failure of a `keyfleet` command. Its message is printed after `keyfleet: `.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Options that are missing or conflict, found after clap's own checks.
    #[error("{0}")]
    Usage(String),

    /// An input value that is invalid, such as an empty password.
    #[error("{0}")]
    InvalidInput(String),

    /// An output file exists and `--force` was not given.
    #[error("{} already exists; pass --force to overwrite it, or choose another path", path.display())]
    OutputExists { path: PathBuf },

    /// A file could not be read or written.
    #[error("failed to {action} {}: {source}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The password prompt failed, typically because there is no terminal.
    #[error("failed to read the password from the terminal: {0}; pass --password-file FILE")]
    Prompt(#[source] io::Error),

    /// Writing to stdout failed.
    #[error("failed to write to stdout: {0}")]
    Stdout(#[source] io::Error),

    /// A token or key operation failed.
    #[error(transparent)]
    Token(#[from] TokenError),

    /// A vault call failed.
    #[error(transparent)]
    Sdk(#[from] SdkError),

    /// A node API call failed.
    #[error(transparent)]
    Node(#[from] keyfleet_client::ClientError),

    /// No node reported a leader in time.
    #[error("{0}")]
    NotReady(String),

    /// The cluster has a quorum, but not every voter is healthy.
    #[error("{0}")]
    Degraded(String),

    /// The cluster has no leader with a quorum.
    #[error("{0}")]
    NoQuorum(String),

    /// A change the command itself refuses, such as shrinking below three voters.
    #[error("{0}")]
    Rejected(String),

    /// A snapshot file failed its checks.
    #[error("{} is not a valid snapshot: {source}", path.display())]
    Snapshot {
        path: PathBuf,
        #[source]
        source: keyfleet_raft::SnapshotFileError,
    },
    /// The benchmark failed to set up or run.
    #[error(transparent)]
    Bench(#[from] keyfleet_bench::BenchError),
    /// A fleet key check failed: a bundle or the witness log is not what the pinned keys
    /// allow.
    #[error("{0}")]
    CheckFailed(String),

    /// A witness call failed.
    #[error(transparent)]
    Witness(#[from] keyfleet_witness::WitnessCallError),
}

impl CliError {
    /// Returns the exit status that `keyfleet --help` documents for this failure.
    pub(crate) fn exit(&self) -> Exit {
        match self {
            Self::Usage(_) | Self::OutputExists { .. } => Exit::Usage,
            Self::InvalidInput(_) | Self::Token(_) => Exit::InvalidArgument,
            // A file named by an option that does not exist is a usage error, like a bad option.
            Self::File { source, .. } if source.kind() == io::ErrorKind::NotFound => Exit::Usage,
            Self::File { .. } | Self::Prompt(_) | Self::Stdout(_) => Exit::Failure,
            Self::Sdk(error) => sdk_exit(error),
            Self::Node(error) => node_exit(error),
            Self::NotReady(_) => Exit::Unavailable,
            Self::Degraded(_) => Exit::Degraded,
            Self::NoQuorum(_) => Exit::NoQuorum,
            Self::Rejected(_) => Exit::Rejected,
            Self::Snapshot { .. } => Exit::SnapshotInvalid,
            Self::Bench(keyfleet_bench::BenchError::Config { .. }) => Exit::Usage,
            Self::Bench(_) => Exit::Failure,
            Self::CheckFailed(_) => Exit::CheckFailed,
            Self::Witness(error) => witness_exit(error),
        }
    }
}

fn node_exit(error: &keyfleet_client::ClientError) -> Exit {
    use keyfleet_client::ClientError;
    use tonic::Code;

    match error {
        ClientError::NoEndpoints
        | ClientError::InvalidEndpoint { .. }
        | ClientError::InvalidPolicy { .. }
        | ClientError::InvalidTls { .. }
        | ClientError::Tls { .. } => Exit::Usage,
        // A file named by an option that does not exist is a usage error, like a bad option.
        ClientError::TlsFile { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            Exit::Usage
        }
        ClientError::InvalidArgument { .. } => Exit::InvalidArgument,
        ClientError::Rpc {
            code: Code::Unauthenticated | Code::PermissionDenied,
            ..
        } => Exit::Unauthenticated,
        ClientError::Rpc {
            code: Code::InvalidArgument,
            ..
        } => Exit::InvalidArgument,
        ClientError::Rpc {
            code: Code::FailedPrecondition | Code::AlreadyExists,
            ..
        } => Exit::Rejected,
        ClientError::Unavailable { .. } | ClientError::DeadlineExceeded { .. } => Exit::Unavailable,
        _ => Exit::Failure,
    }
}

fn witness_exit(error: &keyfleet_witness::WitnessCallError) -> Exit {
    use keyfleet_witness::WitnessCallError;
    use tonic::Code;

    match error {
        WitnessCallError::Endpoint { .. } => Exit::Usage,
        WitnessCallError::Status { status, .. } => match status.code() {
            Code::Unavailable | Code::DeadlineExceeded => Exit::Unavailable,
            Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists => {
                Exit::InvalidArgument
            }
            Code::PermissionDenied => Exit::Unauthenticated,
            _ => Exit::Failure,
        },
        WitnessCallError::Malformed { .. } => Exit::CheckFailed,
    }
}

fn sdk_exit(error: &SdkError) -> Exit {
    match error {
        SdkError::WrongPassword { .. } => Exit::WrongPassword,
        SdkError::Locked => Exit::Locked,
        SdkError::Unavailable { .. } => Exit::Unavailable,
        SdkError::Unauthenticated { .. }
        | SdkError::PermissionDenied { .. }
        | SdkError::InvalidToken { .. } => Exit::Unauthenticated,
        SdkError::InvalidArgument { .. } => Exit::InvalidArgument,
        SdkError::Config(_) => Exit::Usage,
        SdkError::Bundle(_) | SdkError::BundleMissing => Exit::CheckFailed,
        _ => Exit::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_errors_map_to_documented_codes() {
        let cases = [
            (SdkError::WrongPassword { guesses_left: 2 }, 3),
            (SdkError::Locked, 4),
            (
                SdkError::Unavailable {
                    message: "no quorum".to_owned(),
                    attempts: 5,
                },
                5,
            ),
            (
                SdkError::Unauthenticated {
                    reason: "TOKEN_EXPIRED".to_owned(),
                    message: "expired".to_owned(),
                },
                6,
            ),
            (
                SdkError::PermissionDenied {
                    message: "other user".to_owned(),
                },
                6,
            ),
            (
                SdkError::InvalidToken {
                    reason: "not a JWT".to_owned(),
                },
                6,
            ),
            (
                SdkError::InvalidArgument {
                    field: Some("secret".to_owned()),
                    message: "too long".to_owned(),
                },
                7,
            ),
            (
                SdkError::TicketRejected {
                    reason: "TICKET_EXPIRED".to_owned(),
                    message: "expired".to_owned(),
                },
                1,
            ),
            (
                SdkError::Protocol {
                    reason: "bad message".to_owned(),
                },
                1,
            ),
            (
                SdkError::Internal {
                    message: "HSM failure".to_owned(),
                },
                1,
            ),
            (
                SdkError::Config(keyfleet_client::ClientError::NoEndpoints),
                2,
            ),
        ];

        for (error, expected) in cases {
            let printed = format!("{error:?}");

            assert_eq!(CliError::Sdk(error).exit().code(), expected, "{printed}");
        }
    }

    #[test]
    fn local_errors_map_to_documented_codes() {
        let missing = || io::Error::from(io::ErrorKind::NotFound);
        let cases = [
            (CliError::Usage("no token".to_owned()), 2),
            (
                CliError::OutputExists {
                    path: PathBuf::from("secret.bin"),
                },
                2,
            ),
            (CliError::InvalidInput("empty password".to_owned()), 7),
            (
                CliError::File {
                    action: "read",
                    path: PathBuf::from("token"),
                    source: missing(),
                },
                2,
            ),
            (
                CliError::File {
                    action: "read",
                    path: PathBuf::from("token"),
                    source: io::Error::from(io::ErrorKind::PermissionDenied),
                },
                1,
            ),
            (CliError::Prompt(missing()), 1),
            (
                CliError::Node(keyfleet_client::ClientError::TlsFile {
                    path: PathBuf::from("fleet-ca.pem"),
                    source: missing(),
                }),
                2,
            ),
            (
                CliError::Node(keyfleet_client::ClientError::Tls {
                    endpoint: "http://127.0.0.1:1".to_owned(),
                    code: tonic::Code::Unavailable,
                    message: "invalid peer certificate: UnknownIssuer".to_owned(),
                    hint: "pass the fleet CA certificate",
                }),
                2,
            ),
        ];

        for (error, expected) in cases {
            let printed = format!("{error:?}");

            assert_eq!(error.exit().code(), expected, "{printed}");
        }
    }

    #[test]
    fn output_exists_names_the_fix() {
        let error = CliError::OutputExists {
            path: PathBuf::from("secret.bin"),
        };

        assert!(error.to_string().contains("--force"), "{error}");
    }
}
