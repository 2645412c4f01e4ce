//! The one 3DH term that opaque-ke 4.0.1 leaves to the caller on the key-material path:
//! `ServerLoginBuilder::build` takes DH(server static private key, client ephemeral public key),
//! encoded as a compressed ristretto255 point, the same value that opaque-ke's own
//! `ServerLogin::start` computes.

use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use opaque_ke::Ristretto255;
use opaque_ke::generic_array::GenericArray;
use opaque_ke::generic_array::typenum::U32;
use opaque_ke::keypair::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

/// Computes `client_e_pk * server_s_sk`. opaque-ke's `PrivateKey` and `PublicKey` can only hold a
/// canonical non-zero scalar and a valid non-identity point, so decoding them again cannot fail.
pub(crate) fn server_static_dh(
    server_s_sk: &PrivateKey<Ristretto255>,
    client_e_pk: &PublicKey<Ristretto255>,
) -> GenericArray<u8, U32> {
    let sk_bytes = Zeroizing::new(<[u8; 32]>::from(server_s_sk.serialize()));
    let scalar = Zeroizing::new(
        Option::<Scalar>::from(Scalar::from_canonical_bytes(*sk_bytes))
            .expect("opaque-ke serializes private keys as canonical scalars"),
    );

    let point = CompressedRistretto(client_e_pk.serialize().into())
        .decompress()
        .expect("opaque-ke decodes public keys only from valid ristretto255 points");

    let shared = (point * *scalar).compress();
    GenericArray::from(shared.to_bytes())
}
