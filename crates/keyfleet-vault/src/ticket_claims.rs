//! The sealed contents of a ticket.
//!
//! ```text
//! format u8 (2) | expires_at u64 | nonce (16 bytes) | record version u64 | guesses used u32
//!   | OPRF salt (16 bytes) | user id length u16 | user id | server state length u16
//!   | server state
//! ```
//!
//! Integers are big-endian. The server state is opaque-ke's serialized `ServerLogin` for a
//! login ticket and empty for a registration ticket. The plaintext is sealed with AES-256-GCM
//! under the fleet sealing key, with the ticket kind's purpose and the fleet id as the record
//! id, so a ticket opens only in the fleet and step that issued it.

use std::fmt;

use keyfleet_hsm::{Hsm, KeyLabel, SealContext, SealedBlob};
use zeroize::Zeroizing;

use crate::{RecordState, TicketKind, VaultError};

const FORMAT: u8 = 2;
/// Length of the ticket nonce.
pub(crate) const NONCE_LEN: usize = 16;

/// The state a ticket carries from a start step to its finish step.
pub(crate) struct TicketClaims {
    pub(crate) user: String,
    pub(crate) expires_at: u64,
    pub(crate) nonce: [u8; NONCE_LEN],
    pub(crate) record: RecordState,
    /// OPRF salt of the record the exchange runs against: the new record's for registration.
    pub(crate) oprf_salt: [u8; crate::OPRF_SALT_LEN],
    pub(crate) server_state: Zeroizing<Vec<u8>>,
}

/// Sealer of tickets: the HSM, the sealing key and the fleet id bound as the record id.
pub(crate) struct TicketSealer<'a> {
    pub(crate) hsm: &'a dyn Hsm,
    pub(crate) key: &'a KeyLabel,
    pub(crate) fleet_id: &'a str,
}

impl TicketSealer<'_> {
    /// Seals `claims` as a ticket of `kind`.
    pub(crate) async fn seal(
        &self,
        kind: TicketKind,
        claims: &TicketClaims,
    ) -> Result<SealedBlob, VaultError> {
        let plaintext = claims.encode();
        let context = SealContext::new(kind.purpose(), self.fleet_id.as_bytes());

        self.hsm
            .seal(self.key, &context, &plaintext)
            .await
            .map_err(VaultError::hsm("seal of a ticket"))
    }

    /// Opens a ticket of `kind` and checks that it was issued for `user` and has not expired
    /// at `now` (Unix seconds).
    pub(crate) async fn open(
        &self,
        kind: TicketKind,
        blob: &SealedBlob,
        user: &str,
        now: u64,
    ) -> Result<TicketClaims, VaultError> {
        let context = SealContext::new(kind.purpose(), self.fleet_id.as_bytes());
        let plaintext =
            self.hsm
                .unseal(self.key, &context, blob)
                .await
                .map_err(|error| match error {
                    keyfleet_hsm::HsmError::UnsealFailed { .. } => VaultError::TicketInvalid {
                        kind,
                        reason: "it failed authentication".to_owned(),
                    },
                    other => VaultError::hsm("unseal of a ticket")(other),
                })?;

        let claims = TicketClaims::decode(plaintext.expose_secret()).ok_or_else(|| {
            VaultError::TicketInvalid {
                kind,
                reason: format!("its contents are not ticket format {FORMAT}"),
            }
        })?;

        if claims.user != user {
            return Err(VaultError::TicketUserMismatch { kind });
        }

        if now >= claims.expires_at {
            return Err(VaultError::TicketExpired {
                kind,
                expires_at: claims.expires_at,
                now,
            });
        }

        Ok(claims)
    }
}

impl TicketClaims {
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let user = self.user.as_bytes();
        let mut out = Zeroizing::new(Vec::with_capacity(
            59 + user.len() + self.server_state.len(),
        ));

        out.push(FORMAT);
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.record.version.to_be_bytes());
        out.extend_from_slice(&self.record.guesses_used.to_be_bytes());
        out.extend_from_slice(&self.oprf_salt);
        push_prefixed(&mut out, user);
        push_prefixed(&mut out, &self.server_state);
        out
    }

    /// Decodes a plaintext written by [`TicketClaims::encode`], or returns `None`.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader(bytes);

        if reader.take::<1>()? != [FORMAT] {
            return None;
        }

        let expires_at = u64::from_be_bytes(reader.take()?);
        let nonce = reader.take()?;
        let version = u64::from_be_bytes(reader.take()?);
        let guesses_used = u32::from_be_bytes(reader.take()?);
        let oprf_salt = reader.take()?;
        let user = String::from_utf8(reader.take_prefixed()?.to_vec()).ok()?;
        let server_state = Zeroizing::new(reader.take_prefixed()?.to_vec());

        if !reader.0.is_empty() {
            return None;
        }

        Some(Self {
            user,
            expires_at,
            nonce,
            record: RecordState {
                version,
                guesses_used,
            },
            oprf_salt,
            server_state,
        })
    }
}

impl fmt::Debug for TicketClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketClaims([REDACTED])")
    }
}

fn push_prefixed(out: &mut Vec<u8>, field: &[u8]) {
    let len = u16::try_from(field.len()).expect("ticket fields are checked to be far below 64 KiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn take_prefixed(&mut self) -> Option<&[u8]> {
        let len = usize::from(u16::from_be_bytes(self.take()?));
        let (field, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> TicketClaims {
        TicketClaims {
            user: "alice".to_owned(),
            expires_at: 1_700_000_060,
            nonce: [7; NONCE_LEN],
            record: RecordState {
                version: 42,
                guesses_used: 3,
            },
            oprf_salt: [5; crate::OPRF_SALT_LEN],
            server_state: Zeroizing::new(vec![9; 192]),
        }
    }

    #[test]
    fn encode_then_decode() {
        let encoded = claims().encode();

        let decoded = TicketClaims::decode(&encoded).unwrap();

        assert_eq!(decoded.user, "alice");
        assert_eq!(decoded.expires_at, 1_700_000_060);
        assert_eq!(decoded.nonce, [7; NONCE_LEN]);
        assert_eq!(decoded.record.version, 42);
        assert_eq!(decoded.record.guesses_used, 3);
        assert_eq!(decoded.oprf_salt, [5; crate::OPRF_SALT_LEN]);
        assert_eq!(decoded.server_state.as_slice(), &[9; 192]);
    }

    #[test]
    fn decode_rejects_truncation_and_trailing_bytes() {
        let encoded = claims().encode();
        let mut trailing = encoded.to_vec();
        trailing.push(0);
        let mut other_format = encoded.to_vec();
        other_format[0] = 1;

        assert!(TicketClaims::decode(&encoded[..encoded.len() - 1]).is_none());
        assert!(TicketClaims::decode(&trailing).is_none());
        assert!(TicketClaims::decode(&other_format).is_none());
        assert!(TicketClaims::decode(&[]).is_none());
    }

    #[test]
    fn debug_hides_contents() {
        let printed = format!("{:?}", claims());

        assert!(!printed.contains("alice"), "{printed}");
    }
}
