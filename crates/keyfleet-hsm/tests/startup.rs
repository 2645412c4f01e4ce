//! Opening a token: each start-up failure and its message, PIN sources, and recovery from a
//! lost login.

mod common;

use std::path::PathBuf;

use keyfleet_hsm::{Exportability, Hsm, HsmError, KeyKind, PinSource, Pkcs11Hsm, SealContext};
use keyfleet_testkit::{SoftHsmLab, softhsm_module_path};

use common::{label, settings, settings_with_pin, spec};

#[tokio::test]
async fn open_reports_wrong_pin() {
    let lab = SoftHsmLab::new();
    lab.create_token("node-1", "1234");
    let pin_file = lab.write_secret_file("wrong.pin", "9999\n");
    lab.activate();

    let settings = settings_with_pin("node-1", PinSource::File(pin_file.clone()));
    let error = Pkcs11Hsm::open(&settings).await.unwrap_err();

    assert!(matches!(error, HsmError::PinRejected { .. }), "{error:?}");
    let message = error.to_string();
    let expected = format!(
        "PIN rejected by token \"node-1\"; check the PIN in file {}",
        pin_file.display()
    );
    assert!(message.contains(&expected), "{message}");
    assert!(!message.contains("9999"), "{message}");
}

#[tokio::test]
async fn open_rejects_wrong_pin_while_logged_in() {
    let lab = SoftHsmLab::new();
    let token = lab.create_token("node-1", "1234");
    let wrong = lab.write_secret_file("wrong.pin", "9999");
    lab.activate();
    let _first = Pkcs11Hsm::open(&settings(&lab, &token)).await.unwrap();

    let second = Pkcs11Hsm::open(&settings_with_pin("node-1", PinSource::File(wrong))).await;

    let error = second.unwrap_err();
    assert!(matches!(error, HsmError::PinRejected { .. }), "{error:?}");
}

#[tokio::test]
async fn open_reports_unknown_token_with_present_labels() {
    let lab = SoftHsmLab::new();
    let token = lab.create_token("node-1", "1234");
    lab.create_token("node-2", "1234");
    lab.activate();

    let mut settings = settings(&lab, &token);
    settings.token.label = "node-9".into();
    let error = Pkcs11Hsm::open(&settings).await.unwrap_err();

    assert!(matches!(error, HsmError::TokenNotFound { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("token label \"node-9\" not found"),
        "{message}"
    );
    assert!(message.contains("tokens present: "), "{message}");
    assert!(message.contains("node-1"), "{message}");
    assert!(message.contains("node-2"), "{message}");
    assert!(!message.contains(", ;"), "{message}");
    assert!(
        !message.ends_with(", ; correct hsm.token_label or initialize the token"),
        "{message}"
    );
}

#[tokio::test]
async fn open_reports_missing_module() {
    let lab = SoftHsmLab::new();
    let token = lab.create_token("node-1", "1234");
    lab.activate();

    let mut settings = settings(&lab, &token);
    settings.module = PathBuf::from("/nonexistent/libvendor-pkcs11.so");
    let error = Pkcs11Hsm::open(&settings).await.unwrap_err();

    assert!(
        matches!(error, HsmError::ModuleNotFound { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("PKCS#11 module not found at /nonexistent/libvendor-pkcs11.so"),
        "{message}"
    );
}

#[tokio::test]
async fn open_reports_file_that_is_not_a_module() {
    let lab = SoftHsmLab::new();
    let token = lab.create_token("node-1", "1234");
    let bogus = lab.write_secret_file("not-a-module.so", "plain text");
    lab.activate();

    let mut settings = settings(&lab, &token);
    settings.module = bogus;
    let error = Pkcs11Hsm::open(&settings).await.unwrap_err();

    assert!(matches!(error, HsmError::ModuleInit { .. }), "{error:?}");
    assert!(
        error.to_string().contains("not a loadable PKCS#11 module"),
        "{error}"
    );
}

#[tokio::test]
async fn open_reads_pin_from_environment() {
    let lab = SoftHsmLab::new();
    lab.create_token("node-1", "1234");
    lab.activate_with_env(&[("KEYFLEET_TEST_HSM_PIN", "1234")]);

    let settings = settings_with_pin("node-1", PinSource::Env("KEYFLEET_TEST_HSM_PIN".into()));
    let hsm = Pkcs11Hsm::open(&settings).await.unwrap();

    assert_eq!(hsm.token_label(), "node-1");
}

#[tokio::test]
async fn open_reports_unset_pin_variable() {
    let lab = SoftHsmLab::new();
    lab.create_token("node-1", "1234");
    lab.activate();

    let settings = settings_with_pin("node-1", PinSource::Env("KEYFLEET_TEST_UNSET_PIN".into()));
    let error = Pkcs11Hsm::open(&settings).await.unwrap_err();

    assert!(
        matches!(error, HsmError::PinUnavailable { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("environment variable KEYFLEET_TEST_UNSET_PIN"),
        "{error}"
    );
}

#[tokio::test]
async fn open_accepts_pkcs11_uri() {
    let lab = SoftHsmLab::new();
    lab.create_token("node-1", "1234");
    let pin_file = lab.write_secret_file("uri.pin", "1234");
    lab.activate();

    let uri = format!(
        "pkcs11:token=node-1?module-path={}&pin-source=file:{}",
        softhsm_module_path().display(),
        pin_file.display()
    );
    let mut config = keyfleet_hsm::HsmConfig::default();
    config.uri = Some(uri);
    let hsm = Pkcs11Hsm::open(&config.resolve().unwrap()).await.unwrap();

    assert_eq!(hsm.token_label(), "node-1");
}

/// Logging the token out behind the pool's back, as an HSM that reaps idle logins would, makes
/// the pooled session and cached handles stale. The next call must log in again and succeed.
#[tokio::test]
async fn call_recovers_after_logout() {
    let lab = SoftHsmLab::new();
    let token = lab.create_token("node-1", "1234");
    lab.activate();
    let hsm = Pkcs11Hsm::open(&settings(&lab, &token)).await.unwrap();
    hsm.provision(&spec("seal", KeyKind::SealAes256, Exportability::Never))
        .await
        .unwrap();
    let context = SealContext::new("probe", b"r");
    let blob = hsm.seal(&label("seal"), &context, b"before").await.unwrap();

    log_out_everywhere("node-1");
    let opened = hsm.unseal(&label("seal"), &context, &blob).await.unwrap();

    assert_eq!(opened.expose_secret(), b"before");
}

fn log_out_everywhere(token: &str) {
    let session = common::raw_session(token);

    session.logout().unwrap();

    assert!(matches!(
        session.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RwPublic
    ));
}
