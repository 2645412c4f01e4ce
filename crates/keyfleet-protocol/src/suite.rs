use opaque_ke::{CipherSuite, Ristretto255, TripleDh};

/// The OPAQUE cipher suite of protocol version 1: OPRF over ristretto255 with SHA-512, 3DH key
/// exchange over ristretto255 with SHA-512, and Argon2id as the key stretching function (KSF).
#[derive(Debug, Clone, Copy)]
pub struct Suite;

impl CipherSuite for Suite {
    type OprfCs = Ristretto255;
    type KeyExchange = TripleDh<Ristretto255, sha2::Sha512>;
    type Ksf = argon2::Argon2<'static>;
}
