//! Fixtures for tests against a real SoftHSM2 token. cargo-nextest runs each test in its own
//! process, so each test builds its own lab, creates its tokens, and only then opens them.

#![allow(dead_code, unreachable_pub)]

use keyfleet_hsm::{
    Exportability, HsmConfig, HsmSettings, KeyKind, KeyLabel, KeySpec, PinSource, Pkcs11Hsm,
};
use keyfleet_testkit::{SoftHsmLab, SoftHsmToken, softhsm_module_path};

pub fn label(text: &str) -> KeyLabel {
    KeyLabel::new(text).unwrap()
}

pub fn spec(text: &str, kind: KeyKind, exportability: Exportability) -> KeySpec {
    KeySpec::new(label(text), kind, exportability)
}

/// Builds settings for `token` with the PIN in a file, as the example configuration suggests.
pub fn settings(lab: &SoftHsmLab, token: &SoftHsmToken) -> HsmSettings {
    let pin_file = lab.write_secret_file(&format!("{}.pin", token.label), &token.user_pin);
    let mut config = HsmConfig::default();
    config.module = Some(softhsm_module_path());
    config.token_label = Some(token.label.clone());
    config.pin_file = Some(pin_file);
    config.resolve().unwrap()
}

/// Builds settings for `token` whose PIN source is `pin`.
pub fn settings_with_pin(token: &str, pin: PinSource) -> HsmSettings {
    let mut config = HsmConfig::default();
    config.module = Some(softhsm_module_path());
    config.token_label = Some(token.to_owned());
    match pin {
        PinSource::Env(name) => config.pin_env = Some(name),
        PinSource::File(path) => config.pin_file = Some(path),
    }
    config.resolve().unwrap()
}

/// Creates a lab with one token per label, activates it, and opens each token.
pub async fn open_tokens(labels: &[&str]) -> (SoftHsmLab, Vec<Pkcs11Hsm>) {
    let lab = SoftHsmLab::new();
    let tokens: Vec<_> = labels
        .iter()
        .map(|label| lab.create_token(label, "1234"))
        .collect();
    lab.activate();

    let mut opened = Vec::new();
    for token in &tokens {
        opened.push(Pkcs11Hsm::open(&settings(&lab, token)).await.unwrap());
    }
    (lab, opened)
}

/// Opens one token and provisions a fleet sealing key under the label `seal`.
pub async fn token_with_seal_key() -> (SoftHsmLab, Pkcs11Hsm) {
    use keyfleet_hsm::Hsm;

    let (lab, mut tokens) = open_tokens(&["node-1"]).await;
    let hsm = tokens.remove(0);
    hsm.provision(&spec(
        "seal",
        KeyKind::SealAes256,
        Exportability::WrappedOnly,
    ))
    .await
    .unwrap();
    (lab, hsm)
}

/// Opens a logged-in session on `token` straight through cryptoki, bypassing keyfleet, so a test
/// can put objects into the token that keyfleet itself would never make. Call it only after the
/// token was opened through [`Pkcs11Hsm`], which initializes the module and logs in.
pub fn raw_session(token: &str) -> cryptoki::session::Session {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};

    let context = Pkcs11::new(softhsm_module_path()).unwrap();
    // The module is already initialized by this process; the error reports that and is harmless.
    let _ = context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = context
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|slot| context.get_token_info(*slot).unwrap().label().trim_end() == token)
        .unwrap();
    context.open_rw_session(slot).unwrap()
}
