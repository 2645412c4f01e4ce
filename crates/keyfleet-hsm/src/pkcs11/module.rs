//! Loading PKCS#11 modules and finding tokens, once per process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::slot::Slot;

use super::rv::{device_error, return_value};
use crate::{HsmError, TokenSelector};

/// Modules loaded by this process, by path. `C_Initialize` runs once per module and process:
/// SoftHSM reads its configuration there, and a second `C_Finalize`/`C_Initialize` cycle would
/// invalidate every other session of the process.
static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

/// Loads and initializes the module at `path`, or returns the context already loaded.
pub(super) fn load(path: &Path) -> Result<Pkcs11, HsmError> {
    let modules = MODULES.get_or_init(Default::default);
    let mut modules = modules.lock().unwrap_or_else(|poison| poison.into_inner());
    if let Some(context) = modules.get(path) {
        return Ok(context.clone());
    }

    if !path.is_file() {
        return Err(HsmError::ModuleNotFound {
            path: path.to_owned(),
            reason: "no such file".into(),
        });
    }

    let context = Pkcs11::new(path).map_err(|error| HsmError::ModuleInit {
        path: path.to_owned(),
        reason: format!("not a loadable PKCS#11 module: {error}"),
    })?;
    initialize(&context, path)?;

    tracing::info!(module = %path.display(), "PKCS#11 module initialized");
    modules.insert(path.to_owned(), context.clone());
    Ok(context)
}

fn initialize(context: &Pkcs11, path: &Path) -> Result<(), HsmError> {
    let args = CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK);
    match context.initialize(args) {
        Ok(()) => Ok(()),
        Err(error) if return_value(&error) == Some(RvError::CryptokiAlreadyInitialized) => Ok(()),
        Err(error) => Err(HsmError::ModuleInit {
            path: path.to_owned(),
            reason: error.to_string(),
        }),
    }
}

/// Finds the slot that contains the token `selector` names. Slots are never chosen by number.
pub(super) fn find_token(
    context: &Pkcs11,
    module: &Path,
    selector: &TokenSelector,
) -> Result<Slot, HsmError> {
    let slots = context
        .get_slots_with_token()
        .map_err(|error| device_error("C_GetSlotList", &selector.label, error))?;

    let mut present = Vec::new();
    for slot in slots {
        let info = context
            .get_token_info(slot)
            .map_err(|error| device_error("C_GetTokenInfo", &selector.label, error))?;
        if !info.token_initialized() {
            continue;
        }
        let label = info.label().trim_end().to_owned();
        let matches = label == selector.label
            && agrees(&selector.manufacturer, info.manufacturer_id())
            && agrees(&selector.serial, info.serial_number())
            && agrees(&selector.model, info.model());
        if matches {
            return Ok(slot);
        }
        present.push(label);
    }

    Err(HsmError::TokenNotFound {
        label: selector.label.clone(),
        module: module.to_owned(),
        present,
    })
}

fn agrees(expected: &Option<String>, actual: &str) -> bool {
    expected
        .as_deref()
        .is_none_or(|value| value == actual.trim_end())
}
