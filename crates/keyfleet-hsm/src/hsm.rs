use zeroize::Zeroizing;

use crate::{
    HsmError, KeyLabel, KeySpec, Provisioned, SealContext, SealedBlob, SecretBytes,
    TransportPublicKey, WrappedKey,
};

/// An Ed25519 signature, `R ‖ S`.
pub type Ed25519Signature = [u8; 64];
/// An Ed25519 public key in its standard 32-byte encoding.
pub type Ed25519PublicKey = [u8; 32];

/// The operations the vault needs from an HSM, and nothing more.
///
/// Keys are named by label and stay in the token. Implementations run their blocking calls off
/// the async runtime's worker threads.
#[async_trait::async_trait]
pub trait Hsm: Send + Sync + std::fmt::Debug {
    /// Seals `plaintext` with AES-256-GCM under the token key `key`, with a fresh random IV and
    /// `context` bound as associated data.
    async fn seal(
        &self,
        key: &KeyLabel,
        context: &SealContext<'_>,
        plaintext: &[u8],
    ) -> Result<SealedBlob, HsmError>;

    /// Opens a blob sealed by [`Hsm::seal`] under the same key and context.
    ///
    /// # Errors
    /// [`HsmError::UnsealFailed`] when the blob was tampered with, was sealed for another
    /// context, or was sealed under a different key of the same label.
    async fn unseal(
        &self,
        key: &KeyLabel,
        context: &SealContext<'_>,
        blob: &SealedBlob,
    ) -> Result<SecretBytes, HsmError>;

    /// Signs `message` with the Ed25519 private key `key` (pure EdDSA, RFC 8032).
    async fn sign_ed25519(
        &self,
        key: &KeyLabel,
        message: &[u8],
    ) -> Result<Ed25519Signature, HsmError>;

    /// Reads the public half of the Ed25519 key pair `key`.
    async fn ed25519_public_key(&self, key: &KeyLabel) -> Result<Ed25519PublicKey, HsmError>;

    /// Computes HMAC-SHA512 of `data` under the token-held generic secret `key`.
    async fn hmac_sha512(
        &self,
        key: &KeyLabel,
        data: &[u8],
    ) -> Result<Zeroizing<[u8; 64]>, HsmError>;

    /// Reads the public half of the P-256 transport key pair `key`, which another token needs
    /// in order to wrap keys for this one.
    async fn transport_public_key(&self, key: &KeyLabel) -> Result<TransportPublicKey, HsmError>;

    /// Wraps the secret key `key` for the token that contains `recipient`'s private half.
    async fn wrap_key(
        &self,
        key: &KeyLabel,
        recipient: &TransportPublicKey,
    ) -> Result<WrappedKey, HsmError>;

    /// Unwraps `wrapped` with the transport private key `transport` and stores it in the token
    /// as `spec`, which must name the wrapped key's kind and a label not yet in use.
    async fn unwrap_key(
        &self,
        transport: &KeyLabel,
        wrapped: &WrappedKey,
        spec: &KeySpec,
    ) -> Result<(), HsmError>;

    /// Draws `len` random bytes from the token's generator.
    async fn random_bytes(&self, len: usize) -> Result<SecretBytes, HsmError>;

    /// Makes sure the token contains a key that meets `spec`: generates one when the label is
    /// free, keeps one that meets it, and rejects one whose attributes are weaker.
    async fn provision(&self, spec: &KeySpec) -> Result<Provisioned, HsmError>;
}
