//! The admin token of the node API. The calls that write commands, read records or change
//! membership need `authorization: Bearer <admin token>`. The node API shares its port with the
//! public vault API, and a caller with raw node API access could reset any guess count.

use std::fmt;
use std::path::Path;

use keyfleet_api::ErrorReason;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Code, Request, Status};
use zeroize::Zeroizing;

use crate::error_status::error_status;

/// Shortest admin token accepted, in bytes.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

const BEARER: &str = "Bearer ";

/// The node API's admin token, zeroized on drop. `Debug` prints no contents.
#[derive(Clone)]
pub struct AdminToken(Zeroizing<String>);

impl AdminToken {
    /// Reads the token from the first line of `path`.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|error| {
            format!(
                "reading the admin token file {} failed: {error}",
                path.display()
            )
        })?);
        let token = text.lines().next().unwrap_or_default().trim();

        if let Some(bad) = token.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "the admin token in {} contains {bad:?}; use printable ASCII without spaces, \
                 which gRPC metadata can carry",
                path.display()
            ));
        }

        if token.len() < MIN_ADMIN_TOKEN_LEN {
            return Err(format!(
                "the admin token in {} is {} bytes long; write at least {MIN_ADMIN_TOKEN_LEN} \
                 random characters on its first line",
                path.display(),
                token.len()
            ));
        }

        warn_if_readable_by_others(path);
        Ok(Self(Zeroizing::new(token.to_owned())))
    }

    /// Checks that `request` carries this token. The SHA-256 digests of the two tokens are
    /// compared in constant time, so neither the contents nor the length of the token leak
    /// through the time the check takes. The caller logs a rejection.
    pub(crate) fn check<T>(&self, node_id: u64, request: &Request<T>) -> Result<(), Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(strip_bearer);

        let matches = presented.is_some_and(|token| {
            let presented = Sha256::digest(token.as_bytes());
            let expected = Sha256::digest(self.0.as_bytes());
            bool::from(presented.ct_eq(&expected))
        });
        if matches {
            return Ok(());
        }

        Err(error_status(
            Code::Unauthenticated,
            ErrorReason::TokenInvalid,
            format!(
                "node {node_id}'s node API needs `authorization: Bearer <admin token>`, the \
                 token in the node's admin_token_file"
            ),
            &[],
        ))
    }
}

/// Returns the credentials after a `Bearer` scheme, which HTTP compares case-insensitively.
pub(crate) fn strip_bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_at_checked(BEARER.len())?;

    scheme.eq_ignore_ascii_case(BEARER).then_some(credentials)
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;

    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", metadata.permissions().mode() & 0o777), "the admin token file is readable by other users; chmod 600 it");
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_file(contents: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-token");
        std::fs::write(&path, contents).unwrap();
        (dir, path)
    }

    fn request_with(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(header) = header {
            request
                .metadata_mut()
                .insert("authorization", header.parse().unwrap());
        }
        request
    }

    #[test]
    fn short_token_is_rejected() {
        let (_dir, path) = token_file("too-short\n");

        let error = AdminToken::read(&path).unwrap_err();

        assert!(error.contains("9 bytes long"), "{error}");
    }

    #[test]
    fn check_accepts_only_the_token() {
        let secret = "a".repeat(40);
        let (_dir, path) = token_file(&format!("{secret}\nignored second line\n"));
        let token = AdminToken::read(&path).unwrap();

        assert!(
            token
                .check(1, &request_with(Some(&format!("Bearer {secret}"))))
                .is_ok()
        );
        assert!(
            token
                .check(1, &request_with(Some(&format!("bearer {secret}"))))
                .is_ok()
        );
        for header in [
            None,
            Some(secret.as_str()),
            Some("Bearer wrong"),
            Some("Bearer"),
        ] {
            let status = token.check(1, &request_with(header)).unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{header:?}");
        }
    }

    #[test]
    fn non_ascii_token_is_rejected() {
        let (_dir, path) = token_file(&"é".repeat(32));

        let error = AdminToken::read(&path).unwrap_err();

        assert!(error.contains("printable ASCII"), "{error}");
    }

    #[test]
    fn debug_hides_the_token() {
        let (_dir, path) = token_file(&"s".repeat(40));

        let printed = format!("{:?}", AdminToken::read(&path).unwrap());

        assert_eq!(printed, "AdminToken([REDACTED])");
    }
}
