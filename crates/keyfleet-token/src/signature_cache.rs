//! A bounded set of tokens whose signatures verified, so that a client that sends the same token
//! with every call of a login costs one Ed25519 verification, not one per call.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};

/// Number of tokens the cache remembers by default. Each entry takes a 32-byte digest and an
/// 8-byte expiry, plus the hash map's overhead.
pub const DEFAULT_SIGNATURE_CACHE_CAPACITY: usize = 65_536;

/// SHA-256 digests of a public key and a whole token (header, payload and signature) that
/// verified under that key, each with the token's "exp".
///
/// A hit skips only the signature check. The caller still decodes the claims and checks the
/// times on every call, so an expired token is rejected whether or not it is cached. The digest
/// covers the key as well as the token, so verifiers that share the cache but trust different
/// keys for a tenant do not accept each other's tokens.
///
/// Only tokens with a valid signature are inserted, so callers without a tenant key cannot fill
/// the cache. When it is full, an insert first drops the expired entries and, if none expired,
/// clears the whole cache.
#[derive(Clone)]
pub(crate) struct SignatureCache {
    entries: Arc<Mutex<HashMap<[u8; 32], u64>>>,
    capacity: usize,
}

impl SignatureCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Arc::new(Mutex::new(HashMap::new())),
            capacity,
        }
    }

    /// Returns whether the token of `digest` (from [`token_digest`]) verified before.
    pub(crate) fn contains(&self, digest: &[u8; 32]) -> bool {
        self.lock().contains_key(digest)
    }

    /// Remembers that the token of `digest` verified. `expires_at` is its "exp" in Unix
    /// seconds, and `now` the verifier's clock.
    pub(crate) fn insert(&self, digest: [u8; 32], expires_at: u64, now: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();

        if entries.len() >= self.capacity {
            entries.retain(|_, expiry| *expiry > now);
        }
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(digest, expires_at);
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Locks the map. A panic while the lock was held cannot leave the map half-updated in a
    /// way that matters, because each entry only saves a verification.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], u64>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for SignatureCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Returns the cache key of `token` under the public key `key`.
pub(crate) fn token_digest(key: &[u8; 32], token: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(key);
    hasher.update(token.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn remembers_inserted_tokens() {
        let cache = SignatureCache::new(4);
        cache.insert(token_digest(&KEY, "a.b.c"), 100, 10);

        assert!(cache.contains(&token_digest(&KEY, "a.b.c")));
        assert!(!cache.contains(&token_digest(&KEY, "a.b.d")));
    }

    #[test]
    fn entries_are_per_key() {
        let cache = SignatureCache::new(4);
        cache.insert(token_digest(&KEY, "a.b.c"), 100, 10);

        assert!(!cache.contains(&token_digest(&[8; 32], "a.b.c")));
    }

    #[test]
    fn full_cache_drops_expired_first() {
        let cache = SignatureCache::new(2);
        cache.insert(token_digest(&KEY, "expired"), 50, 10);
        cache.insert(token_digest(&KEY, "live"), 200, 10);

        cache.insert(token_digest(&KEY, "new"), 300, 100);

        assert!(!cache.contains(&token_digest(&KEY, "expired")));
        assert!(cache.contains(&token_digest(&KEY, "live")));
        assert!(cache.contains(&token_digest(&KEY, "new")));
    }

    #[test]
    fn full_cache_without_expired_clears() {
        let cache = SignatureCache::new(2);
        cache.insert(token_digest(&KEY, "one"), 500, 10);
        cache.insert(token_digest(&KEY, "two"), 500, 10);

        cache.insert(token_digest(&KEY, "three"), 500, 10);

        assert_eq!(cache.len(), 1);
        assert!(cache.contains(&token_digest(&KEY, "three")));
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = SignatureCache::new(0);
        cache.insert(token_digest(&KEY, "a.b.c"), 100, 10);

        assert!(!cache.contains(&token_digest(&KEY, "a.b.c")));
    }
}
