//! A pool of logged-in PKCS#11 sessions on one token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::rv::{device_error, return_value};
use crate::{HsmError, PinSource};

/// PINs that logged in to a token in this process, by module path and token label.
///
/// A second login to a token that is already logged in returns `CKR_USER_ALREADY_LOGGED_IN`
/// without checking the PIN. Comparing against the PIN that did log in keeps a wrong PIN from
/// passing unnoticed when a second handle opens the same token.
static LOGGED_IN: OnceLock<Mutex<HashMap<(PathBuf, String), SecretString>>> = OnceLock::new();

/// Open sessions waiting for work. A PKCS#11 session is `Send` but not `Sync`, so each call
/// takes one out, uses it on a single blocking thread, and puts it back.
///
/// Login state belongs to the token and the process, not to a session: after the first login
/// every new session is already logged in, which the module reports as
/// `CKR_USER_ALREADY_LOGGED_IN`, and that is success.
pub(super) struct SessionPool {
    context: Pkcs11,
    module: PathBuf,
    slot: Slot,
    token: String,
    pin: SecretString,
    pin_source: PinSource,
    idle: Mutex<Vec<Session>>,
}

impl SessionPool {
    pub(super) fn new(
        context: Pkcs11,
        module: PathBuf,
        slot: Slot,
        token: String,
        pin: SecretString,
        pin_source: PinSource,
    ) -> Self {
        Self {
            context,
            module,
            slot,
            token,
            pin,
            pin_source,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn token(&self) -> &str {
        &self.token
    }

    /// Takes an idle session, or opens and logs in a new one.
    pub(super) fn checkout(&self) -> Result<Session, HsmError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .pop();
        match idle {
            Some(session) => Ok(session),
            None => self.open(),
        }
    }

    /// Returns a healthy session to the pool.
    pub(super) fn checkin(&self, session: Session) {
        self.idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(session);
    }

    /// Closes every idle session, after a failure that may have made them all stale.
    pub(super) fn discard_idle(&self) {
        let stale = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        drop(stale);
    }

    /// Opens a read-write session and logs the user in.
    pub(super) fn open(&self) -> Result<Session, HsmError> {
        let session = self
            .context
            .open_rw_session(self.slot)
            .map_err(|error| device_error("C_OpenSession", &self.token, error))?;
        self.login(&session)?;
        Ok(session)
    }

    fn login(&self, session: &Session) -> Result<(), HsmError> {
        let Err(error) = session.login(UserType::User, Some(&self.pin)) else {
            self.remember_pin();
            return Ok(());
        };

        match return_value(&error) {
            Some(RvError::UserAlreadyLoggedIn) => self.check_pin_matches_login(),
            Some(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange) => {
                Err(HsmError::PinRejected {
                    token: self.token.clone(),
                    pin_source: self.pin_source.to_string(),
                })
            }
            Some(RvError::PinLocked) => Err(HsmError::PinLocked {
                token: self.token.clone(),
            }),
            _ => Err(device_error("C_Login", &self.token, error)),
        }
    }

    fn logins(&self) -> std::sync::MutexGuard<'_, HashMap<(PathBuf, String), SecretString>> {
        LOGGED_IN
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn remember_pin(&self) {
        let key = (self.module.clone(), self.token.clone());
        let pin = SecretString::from(self.pin.expose_secret().to_owned());
        self.logins().insert(key, pin);
    }

    fn check_pin_matches_login(&self) -> Result<(), HsmError> {
        let logins = self.logins();
        let Some(known) = logins.get(&(self.module.clone(), self.token.clone())) else {
            tracing::warn!(
                token = %self.token,
                "token was already logged in by other code in this process; the configured PIN \
                 was not checked"
            );
            return Ok(());
        };

        let same = known
            .expose_secret()
            .as_bytes()
            .ct_eq(self.pin.expose_secret().as_bytes());
        if bool::from(same) {
            Ok(())
        } else {
            Err(HsmError::PinRejected {
                token: self.token.clone(),
                pin_source: self.pin_source.to_string(),
            })
        }
    }
}
