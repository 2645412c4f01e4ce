//! One-time join tokens, kept in the memory of the leader that created them.
//!
//! A token moves through two stages. `Join` consumes a `Created` token and leaves it `Issued`,
//! bound to the transport key and challenge of the package it returned. `CompleteJoin` removes
//! the `Issued` entry before it checks the proof, so every token serves one join attempt.
//!
//! NOTE: the registry is not replicated. A token works only on the node that created it, in the
//! Raft term in which it created it. After a leader change the operator creates a new token,
//! because a node that leads again does so in a later term, which rejects its old tokens.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keyfleet_hsm::TransportPublicKey;
use keyfleet_raft::{NodeAddresses, NodeId};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::keys::hex;

/// Lifetime of a token when the request names none.
pub(crate) const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(600);
/// Maximum lifetime of a token.
pub(crate) const MAX_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Time a node has between `Join` and `CompleteJoin`: to unwrap the keys, start and call back.
pub(crate) const COMPLETION_WINDOW: Duration = Duration::from_secs(600);
/// Random bytes in a token. It is shown as lowercase hex, twice as many characters.
const TOKEN_BYTES: usize = 32;

/// A join token, zeroized on drop. `Debug` prints no contents.
pub(crate) struct JoinToken(Zeroizing<String>);

impl JoinToken {
    fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        OsRng.fill_bytes(&mut bytes[..]);
        Self(Zeroizing::new(hex::encode(&bytes[..])))
    }

    /// Returns the token text, to send to the operator once.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinToken([REDACTED])")
    }
}

/// Reason for rejecting a presented token. The messages never contain a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenRejection {
    #[error("this leader holds no join token for node {0}")]
    Unknown(NodeId),
    #[error("the join token for node {0} does not match")]
    Mismatch(NodeId),
    #[error("the join token for node {0} has expired")]
    Expired(NodeId),
    #[error("the join token for node {0} was used already")]
    Used(NodeId),
    #[error("node {0} has not called Join with this token, or its join was completed")]
    NotIssued(NodeId),
    #[error("the join token for node {0} was created in an earlier leader term of this node")]
    LeaderChanged(NodeId),
    #[error("the join token for node {0} was created for another transport key")]
    TransportKeyMismatch(NodeId),
}

/// A join whose package was handed out, waiting for `CompleteJoin`.
#[derive(Debug, Clone)]
pub(crate) struct IssuedJoin {
    pub(crate) addresses: NodeAddresses,
    pub(crate) transport_key: TransportPublicKey,
    pub(crate) challenge: [u8; 32],
}

enum Stage {
    Created,
    /// `Join` is building the package.
    Reserved,
    Issued(IssuedJoin),
}

struct Entry {
    digest: [u8; 32],
    expires_at: Instant,
    /// Raft term in which this node, as leader, created the token.
    term: u64,
    /// The transport key the operator approved: `Join` wraps the fleet keys for it only.
    transport_key: TransportPublicKey,
    stage: Stage,
}

/// The leader's open join tokens, by node id. At most one per node.
#[derive(Default)]
pub(crate) struct JoinTokens {
    entries: Mutex<HashMap<NodeId, Entry>>,
}

impl fmt::Debug for JoinTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinTokens").finish_non_exhaustive()
    }
}

impl JoinTokens {
    /// Creates a token for `node_id` and its `transport_key` that expires after `ttl` and works
    /// only in the leader term `term`, replacing any open token of that node. Returns the token
    /// and its expiry in Unix seconds.
    pub(crate) fn create(
        &self,
        node_id: NodeId,
        ttl: Duration,
        term: u64,
        transport_key: TransportPublicKey,
    ) -> (JoinToken, u64) {
        let token = JoinToken::generate();
        let entry = Entry {
            digest: digest(token.expose()),
            expires_at: Instant::now() + ttl,
            term,
            transport_key,
            stage: Stage::Created,
        };
        self.lock().insert(node_id, entry);

        let expires_at_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |now| (now + ttl).as_secs());
        (token, expires_at_unix)
    }

    /// Checks `presented` and `transport_key` against node `node_id`'s created token and
    /// reserves it for one `Join` in the leader term `term`. A mismatch leaves the token as it
    /// was.
    pub(crate) fn reserve(
        &self,
        node_id: NodeId,
        presented: &str,
        term: u64,
        transport_key: &TransportPublicKey,
    ) -> Result<(), TokenRejection> {
        let mut entries = self.lock();
        let entry = live_entry(&mut entries, node_id, presented, term)?;
        if entry.transport_key != *transport_key {
            return Err(TokenRejection::TransportKeyMismatch(node_id));
        }

        match entry.stage {
            Stage::Created => {
                entry.stage = Stage::Reserved;
                Ok(())
            }
            Stage::Reserved | Stage::Issued(_) => Err(TokenRejection::Used(node_id)),
        }
    }

    /// Records the package handed out for node `node_id`'s reserved token. The node has
    /// [`COMPLETION_WINDOW`] from now to complete the join.
    pub(crate) fn issue(&self, node_id: NodeId, issued: IssuedJoin) {
        if let Some(entry) = self.lock().get_mut(&node_id)
            && matches!(entry.stage, Stage::Reserved)
        {
            entry.stage = Stage::Issued(issued);
            entry.expires_at = Instant::now() + COMPLETION_WINDOW;
        }
    }

    /// Drops node `node_id`'s token, after a `Join` that failed.
    pub(crate) fn discard(&self, node_id: NodeId) {
        self.lock().remove(&node_id);
    }

    /// Checks `presented` against node `node_id`'s issued token in the leader term `term` and
    /// removes it. A mismatch leaves the token as it was.
    pub(crate) fn take_issued(
        &self,
        node_id: NodeId,
        presented: &str,
        term: u64,
    ) -> Result<IssuedJoin, TokenRejection> {
        let mut entries = self.lock();
        let entry = live_entry(&mut entries, node_id, presented, term)?;
        if !matches!(entry.stage, Stage::Issued(_)) {
            return Err(TokenRejection::NotIssued(node_id));
        }

        match entries.remove(&node_id).map(|entry| entry.stage) {
            Some(Stage::Issued(issued)) => Ok(issued),
            _ => Err(TokenRejection::NotIssued(node_id)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Returns node `node_id`'s entry if it has not expired, was created in the leader term `term`
/// and `presented` matches it. An expired entry, or one from another term, is removed.
fn live_entry<'a>(
    entries: &'a mut HashMap<NodeId, Entry>,
    node_id: NodeId,
    presented: &str,
    term: u64,
) -> Result<&'a mut Entry, TokenRejection> {
    let Some(entry) = entries.get(&node_id) else {
        return Err(TokenRejection::Unknown(node_id));
    };
    if entry.expires_at <= Instant::now() {
        entries.remove(&node_id);
        return Err(TokenRejection::Expired(node_id));
    }
    if entry.term != term {
        entries.remove(&node_id);
        return Err(TokenRejection::LeaderChanged(node_id));
    }
    if !bool::from(digest(presented).ct_eq(&entry.digest)) {
        return Err(TokenRejection::Mismatch(node_id));
    }
    entries
        .get_mut(&node_id)
        .ok_or(TokenRejection::Unknown(node_id))
}

/// Returns the SHA-256 of a token. The registry stores only digests, and compares them in
/// constant time.
fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERM: u64 = 3;

    fn transport_key() -> TransportPublicKey {
        let mut point = [7u8; 65];
        point[0] = 0x04;
        TransportPublicKey::from_sec1(&point).unwrap()
    }

    fn issued() -> IssuedJoin {
        IssuedJoin {
            addresses: NodeAddresses::new("127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()),
            transport_key: transport_key(),
            challenge: [1; 32],
        }
    }

    #[test]
    fn other_transport_key_is_rejected() {
        let tokens = JoinTokens::default();
        let (token, _) = tokens.create(4, DEFAULT_TOKEN_TTL, TERM, transport_key());
        let mut point = [9u8; 65];
        point[0] = 0x04;
        let other = TransportPublicKey::from_sec1(&point).unwrap();

        assert_eq!(
            tokens.reserve(4, token.expose(), TERM, &other),
            Err(TokenRejection::TransportKeyMismatch(4))
        );
        assert_eq!(
            tokens.reserve(4, token.expose(), TERM, &transport_key()),
            Ok(())
        );
    }

    #[test]
    fn token_serves_one_join() {
        let tokens = JoinTokens::default();
        let (token, _) = tokens.create(4, DEFAULT_TOKEN_TTL, TERM, transport_key());

        assert_eq!(
            tokens.reserve(4, token.expose(), TERM, &transport_key()),
            Ok(())
        );
        assert_eq!(
            tokens.reserve(4, token.expose(), TERM, &transport_key()),
            Err(TokenRejection::Used(4))
        );
        tokens.issue(4, issued());
        assert!(tokens.take_issued(4, token.expose(), TERM).is_ok());
        assert_eq!(
            tokens.take_issued(4, token.expose(), TERM).unwrap_err(),
            TokenRejection::Unknown(4)
        );
    }

    #[test]
    fn wrong_token_changes_nothing() {
        let tokens = JoinTokens::default();
        let (token, _) = tokens.create(4, DEFAULT_TOKEN_TTL, TERM, transport_key());

        assert_eq!(
            tokens.reserve(4, "not-the-token", TERM, &transport_key()),
            Err(TokenRejection::Mismatch(4))
        );
        assert_eq!(
            tokens.reserve(5, token.expose(), TERM, &transport_key()),
            Err(TokenRejection::Unknown(5))
        );
        assert_eq!(
            tokens.reserve(4, token.expose(), TERM, &transport_key()),
            Ok(())
        );
    }

    #[test]
    fn expired_token_is_rejected() {
        let tokens = JoinTokens::default();
        let (token, _) = tokens.create(4, Duration::ZERO, TERM, transport_key());

        assert_eq!(
            tokens.reserve(4, token.expose(), TERM, &transport_key()),
            Err(TokenRejection::Expired(4))
        );
        assert_eq!(
            tokens.reserve(4, token.expose(), TERM, &transport_key()),
            Err(TokenRejection::Unknown(4))
        );
    }

    #[test]
    fn completion_needs_an_issued_package() {
        let tokens = JoinTokens::default();
        let (token, _) = tokens.create(4, DEFAULT_TOKEN_TTL, TERM, transport_key());

        assert_eq!(
            tokens.take_issued(4, token.expose(), TERM).unwrap_err(),
            TokenRejection::NotIssued(4)
        );
        tokens
            .reserve(4, token.expose(), TERM, &transport_key())
            .unwrap();
        tokens.discard(4);
        assert_eq!(
            tokens.reserve(4, token.expose(), TERM, &transport_key()),
            Err(TokenRejection::Unknown(4))
        );
    }

    #[test]
    fn token_dies_with_its_term() {
        let tokens = JoinTokens::default();
        let (token, _) = tokens.create(4, DEFAULT_TOKEN_TTL, TERM, transport_key());

        assert_eq!(
            tokens.reserve(4, token.expose(), TERM + 1, &transport_key()),
            Err(TokenRejection::LeaderChanged(4))
        );
        assert_eq!(
            tokens.reserve(4, token.expose(), TERM, &transport_key()),
            Err(TokenRejection::Unknown(4))
        );
    }

    #[test]
    fn debug_hides_the_token() {
        let tokens = JoinTokens::default();
        let (token, _) = tokens.create(4, DEFAULT_TOKEN_TTL, TERM, transport_key());

        assert_eq!(format!("{token:?}"), "JoinToken([REDACTED])");
        assert_eq!(token.expose().len(), 2 * TOKEN_BYTES);
    }
}
