use std::process::ExitCode;

/// Exit status of the `keyfleet` command, as `keyfleet --help` documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    Ok = 0,
    Failure = 1,
    Usage = 2,
    WrongPassword = 3,
    Locked = 4,
    Unavailable = 5,
    Unauthenticated = 6,
    InvalidArgument = 7,
    Degraded = 8,
    NoQuorum = 9,
    Rejected = 10,
    SnapshotInvalid = 11,
    CheckFailed = 12,
}

impl Exit {
    /// Returns the numeric exit status.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}
