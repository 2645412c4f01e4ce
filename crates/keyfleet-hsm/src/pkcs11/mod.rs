//! [`Pkcs11Hsm`]: the [`Hsm`] trait over a PKCS#11 module.

mod handles;
mod module;
mod ops;
mod policy;
mod rv;
mod selftest;
mod session;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cryptoki::mechanism::MechanismType;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

pub use selftest::SelfTestReport;

use self::handles::{HandleCache, KeyObject};
use self::session::SessionPool;
use crate::{
    Ed25519PublicKey, Ed25519Signature, Hsm, HsmError, HsmSettings, KeyLabel, KeySpec, Provisioned,
    SealContext, SealedBlob, SecretBytes, TransportPublicKey, WrappedKey,
};

/// An [`Hsm`] backed by one token of a PKCS#11 module.
///
/// Cloning is cheap and shares the session pool. Each call runs on a blocking thread, at most
/// `max_sessions` at a time. A call that fails because its session or a key handle went stale
/// is retried once on a new, logged-in session with its keys looked up again.
#[derive(Clone)]
pub struct Pkcs11Hsm {
    inner: Arc<Inner>,
}

struct Inner {
    module: PathBuf,
    pool: SessionPool,
    mechanisms: Vec<MechanismType>,
    handles: HandleCache,
    permits: Semaphore,
    /// SoftHSM before 2.7 races between `C_FindObjects` and object creation, so key generation
    /// and unwrapping run one at a time.
    creating: Mutex<()>,
}

/// One operation's view of the token: a session of its own and the shared handle cache.
pub(super) struct Call<'a> {
    session: &'a Session,
    inner: &'a Inner,
}

impl Call<'_> {
    fn find(&self, label: &KeyLabel, object: KeyObject) -> Result<ObjectHandle, HsmError> {
        self.inner
            .handles
            .find(self.session, self.token(), label, object)
    }

    fn token(&self) -> &str {
        self.inner.pool.token()
    }

    fn fail(&self, operation: &'static str, error: cryptoki::error::Error) -> HsmError {
        rv::device_error(operation, self.token(), error)
    }
}

impl Pkcs11Hsm {
    /// Loads the module, finds the token by label and logs in.
    ///
    /// # Errors
    /// Each start-up failure names its fix: [`HsmError::ModuleNotFound`],
    /// [`HsmError::TokenNotFound`] with the labels present, [`HsmError::PinRejected`],
    /// [`HsmError::PinUnavailable`].
    pub async fn open(settings: &HsmSettings) -> Result<Self, HsmError> {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&settings))
            .await
            .map_err(|error| HsmError::Worker {
                reason: error.to_string(),
            })?
    }

    fn open_blocking(settings: &HsmSettings) -> Result<Self, HsmError> {
        let pin = settings.pin.read()?;
        let context = module::load(&settings.module)?;
        let slot = module::find_token(&context, &settings.module, &settings.token)?;
        let token = settings.token.label.clone();
        let mechanisms = context
            .get_mechanism_list(slot)
            .map_err(|error| rv::device_error("C_GetMechanismList", &token, error))?;

        let pool = SessionPool::new(
            context,
            settings.module.clone(),
            slot,
            token,
            pin,
            settings.pin.clone(),
        );
        let first = pool.open()?;
        pool.checkin(first);

        tracing::info!(
            module = %settings.module.display(),
            token = pool.token(),
            max_sessions = settings.max_sessions,
            "HSM token opened"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                module: settings.module.clone(),
                pool,
                mechanisms,
                handles: HandleCache::default(),
                permits: Semaphore::new(settings.max_sessions),
                creating: Mutex::new(()),
            }),
        })
    }

    /// Returns the token's label.
    pub fn token_label(&self) -> &str {
        self.inner.pool.token()
    }

    /// Mechanisms the token offers, by their PKCS#11 names.
    pub fn mechanism_names(&self) -> Vec<String> {
        self.inner
            .mechanisms
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Runs `operation` on a pooled session on a blocking thread, retrying once on a fresh
    /// session when it fails with a transient error.
    async fn run<T, F>(&self, name: &'static str, operation: F) -> Result<T, HsmError>
    where
        T: Send + 'static,
        F: Fn(&Call<'_>) -> Result<T, HsmError> + Send + 'static,
    {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| HsmError::Worker {
                reason: "the HSM session pool is closed".into(),
            })?;
        let inner = self.inner.clone();

        tokio::task::spawn_blocking(move || inner.run_with_retry(name, &operation))
            .await
            .map_err(|error| HsmError::Worker {
                reason: format!("{name}: {error}"),
            })?
    }
}

impl Inner {
    fn run_with_retry<T>(
        &self,
        name: &'static str,
        operation: &dyn Fn(&Call<'_>) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        let session = self.pool.checkout()?;
        let first = operation(&Call {
            session: &session,
            inner: self,
        });

        let error = match first {
            Err(error) if error.is_transient() => error,
            result => {
                self.pool.checkin(session);
                return result;
            }
        };

        tracing::warn!(
            token = self.pool.token(),
            operation = name,
            %error,
            "HSM session or handle went stale; retrying once on a new session"
        );
        drop(session);
        self.pool.discard_idle();
        self.handles.clear();

        let session = self.pool.open()?;
        let second = operation(&Call {
            session: &session,
            inner: self,
        });
        match &second {
            Err(error) if error.is_transient() => {
                tracing::error!(token = self.pool.token(), operation = name, %error, "HSM retry failed");
            }
            _ => self.pool.checkin(session),
        }
        second
    }

    fn require_mechanisms(&self, needed: &[MechanismType]) -> Result<(), HsmError> {
        let Some(missing) = needed.iter().find(|m| !self.mechanisms.contains(m)) else {
            return Ok(());
        };
        Err(HsmError::MechanismUnsupported {
            mechanism: missing.to_string(),
            token: self.pool.token().to_owned(),
            offered: self.mechanisms.iter().map(ToString::to_string).collect(),
        })
    }

    fn provision(&self, call: &Call<'_>, spec: &KeySpec) -> Result<Provisioned, HsmError> {
        if !spec.kind.is_secret_key() && spec.exportability != crate::Exportability::Never {
            return Err(HsmError::InvalidInput {
                reason: format!(
                    "{} {:?} must use Exportability::Never: key pairs are not transferred",
                    spec.kind, spec.label
                ),
            });
        }
        self.require_mechanisms(policy::required_mechanisms(spec.kind))?;
        let _creating = self.creating.lock().unwrap_or_else(|p| p.into_inner());

        match policy::check(call.session, call.token(), spec) {
            Ok(()) => return Ok(Provisioned::Existing),
            Err(HsmError::KeyNotFound { .. }) => {}
            Err(error) => return Err(error),
        }
        if handles::label_in_use(call.session, call.token(), &spec.label)? {
            return Err(HsmError::KeyTooWeak {
                label: spec.label.to_string(),
                token: call.token().to_owned(),
                reason: format!(
                    "an object of another class already uses the label; a {} needs it",
                    spec.kind
                ),
            });
        }

        policy::generate(call.session, call.token(), spec)?;
        tracing::info!(token = call.token(), label = %spec.label, kind = %spec.kind, "generated HSM key");
        Ok(Provisioned::Created)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        tracing::info!(token = self.pool.token(), "HSM token closed");
    }
}

impl fmt::Debug for Pkcs11Hsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Hsm")
            .field("module", &self.inner.module)
            .field("token", &self.inner.pool.token())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Hsm for Pkcs11Hsm {
    async fn seal(
        &self,
        key: &KeyLabel,
        context: &SealContext<'_>,
        plaintext: &[u8],
    ) -> Result<SealedBlob, HsmError> {
        let (key, purpose, record) = (
            key.clone(),
            context.purpose.to_owned(),
            context.record_id.to_vec(),
        );
        let plaintext = Zeroizing::new(plaintext.to_vec());
        self.run("seal", move |call| {
            ops::seal(call, &key, &SealContext::new(&purpose, &record), &plaintext)
        })
        .await
    }

    async fn unseal(
        &self,
        key: &KeyLabel,
        context: &SealContext<'_>,
        blob: &SealedBlob,
    ) -> Result<SecretBytes, HsmError> {
        let (key, purpose, record) = (
            key.clone(),
            context.purpose.to_owned(),
            context.record_id.to_vec(),
        );
        let blob = blob.clone();
        self.run("unseal", move |call| {
            ops::unseal(call, &key, &SealContext::new(&purpose, &record), &blob)
        })
        .await
    }

    async fn sign_ed25519(
        &self,
        key: &KeyLabel,
        message: &[u8],
    ) -> Result<Ed25519Signature, HsmError> {
        let (key, message) = (key.clone(), message.to_vec());
        self.run("sign", move |call| ops::sign_ed25519(call, &key, &message))
            .await
    }

    async fn ed25519_public_key(&self, key: &KeyLabel) -> Result<Ed25519PublicKey, HsmError> {
        let key = key.clone();
        self.run("read public key", move |call| {
            ops::ed25519_public_key(call, &key)
        })
        .await
    }

    async fn hmac_sha512(
        &self,
        key: &KeyLabel,
        data: &[u8],
    ) -> Result<Zeroizing<[u8; 64]>, HsmError> {
        let (key, data) = (key.clone(), Zeroizing::new(data.to_vec()));
        self.run("hmac", move |call| ops::hmac_sha512(call, &key, &data))
            .await
    }

    async fn transport_public_key(&self, key: &KeyLabel) -> Result<TransportPublicKey, HsmError> {
        let key = key.clone();
        self.run("read transport key", move |call| {
            ops::transport_public_key(call, &key)
        })
        .await
    }

    async fn wrap_key(
        &self,
        key: &KeyLabel,
        recipient: &TransportPublicKey,
    ) -> Result<WrappedKey, HsmError> {
        self.inner
            .require_mechanisms(policy::required_mechanisms(crate::KeyKind::TransportP256))?;
        let (key, recipient) = (key.clone(), recipient.clone());
        self.run("wrap key", move |call| {
            ops::wrap_key(call, &key, &recipient)
        })
        .await
    }

    async fn unwrap_key(
        &self,
        transport: &KeyLabel,
        wrapped: &WrappedKey,
        spec: &KeySpec,
    ) -> Result<(), HsmError> {
        self.inner
            .require_mechanisms(policy::required_mechanisms(crate::KeyKind::TransportP256))?;
        let (transport, wrapped, target) = (transport.clone(), wrapped.clone(), spec.clone());
        let inner = self.inner.clone();
        self.run("unwrap key", move |call| {
            let _creating = inner.creating.lock().unwrap_or_else(|p| p.into_inner());
            ops::unwrap_key(call, &transport, &wrapped, &target)
        })
        .await?;

        tracing::info!(token = self.token_label(), label = %spec.label, kind = %spec.kind, "unwrapped a transferred key");
        Ok(())
    }

    async fn random_bytes(&self, len: usize) -> Result<SecretBytes, HsmError> {
        self.run("random", move |call| ops::random_bytes(call, len))
            .await
    }

    async fn provision(&self, spec: &KeySpec) -> Result<Provisioned, HsmError> {
        let spec_owned = spec.clone();
        let inner = self.inner.clone();
        self.run("provision", move |call| inner.provision(call, &spec_owned))
            .await
    }
}
