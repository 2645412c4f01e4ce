//! Finding key objects by label, with a cache of their handles.

use std::collections::HashMap;
use std::sync::Mutex;

use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::rv::device_error;
use crate::{HsmError, KeyLabel};

/// Object of a key that a lookup requests: a secret key, or one half of a key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum KeyObject {
    Secret,
    Private,
    Public,
}

impl KeyObject {
    pub(super) fn class(self) -> ObjectClass {
        match self {
            Self::Secret => ObjectClass::SECRET_KEY,
            Self::Private => ObjectClass::PRIVATE_KEY,
            Self::Public => ObjectClass::PUBLIC_KEY,
        }
    }
}

/// Handles of token objects found so far. A handle can go stale when the module drops its
/// sessions, so callers clear the cache whenever a call fails with a transient error.
#[derive(Default)]
pub(super) struct HandleCache {
    handles: Mutex<HashMap<(KeyLabel, KeyObject), ObjectHandle>>,
}

impl HandleCache {
    /// Finds the token object `label` of type `object`, from the cache when possible.
    pub(super) fn find(
        &self,
        session: &Session,
        token: &str,
        label: &KeyLabel,
        object: KeyObject,
    ) -> Result<ObjectHandle, HsmError> {
        let cache_key = (label.clone(), object);
        if let Some(handle) = self.lock().get(&cache_key) {
            return Ok(*handle);
        }

        let handle =
            find_uncached(session, token, label, object)?.ok_or_else(|| HsmError::KeyNotFound {
                label: label.to_string(),
                token: token.to_owned(),
            })?;
        self.lock().insert(cache_key, handle);
        Ok(handle)
    }

    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(KeyLabel, KeyObject), ObjectHandle>> {
        self.handles
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Looks the object up in the token. Two objects of one class under one label are ambiguous,
/// and the token must be fixed by hand rather than have one picked at random.
pub(super) fn find_uncached(
    session: &Session,
    token: &str,
    label: &KeyLabel,
    object: KeyObject,
) -> Result<Option<ObjectHandle>, HsmError> {
    let template = [
        Attribute::Token(true),
        Attribute::Class(object.class()),
        Attribute::Label(label.as_str().as_bytes().to_vec()),
    ];
    let found = session
        .find_objects(&template)
        .map_err(|error| device_error("C_FindObjects", token, error))?;

    match found.as_slice() {
        [] => Ok(None),
        [handle] => Ok(Some(*handle)),
        _ => Err(HsmError::KeyTooWeak {
            label: label.to_string(),
            token: token.to_owned(),
            reason: format!(
                "{} objects of class {} share the label, so the key is ambiguous",
                found.len(),
                object.class()
            ),
        }),
    }
}

/// Returns whether any token object, of any class, carries `label`.
pub(super) fn label_in_use(
    session: &Session,
    token: &str,
    label: &KeyLabel,
) -> Result<bool, HsmError> {
    let template = [
        Attribute::Token(true),
        Attribute::Label(label.as_str().as_bytes().to_vec()),
    ];
    let found = session
        .find_objects(&template)
        .map_err(|error| device_error("C_FindObjects", token, error))?;
    Ok(!found.is_empty())
}
