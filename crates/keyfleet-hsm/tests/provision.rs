//! Key provisioning and the start-up self-test on a real SoftHSM2 token.

mod common;

use keyfleet_hsm::{Exportability, Hsm, HsmError, KeyKind, KeyLabels, Pkcs11Hsm, Provisioned};
use keyfleet_testkit::SoftHsmLab;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};

use common::{open_tokens, raw_session, settings, spec};

#[tokio::test]
async fn provision_creates_then_reuses() {
    let (_lab, tokens) = open_tokens(&["node-1"]).await;
    let hsm = &tokens[0];

    for kind in [
        KeyKind::SealAes256,
        KeyKind::HmacSha512,
        KeyKind::SigningEd25519,
        KeyKind::TransportP256,
    ] {
        let exportability = match kind.is_secret_key() {
            true => Exportability::WrappedOnly,
            false => Exportability::Never,
        };
        let key = spec(&format!("{kind:?}"), kind, exportability);

        assert_eq!(
            hsm.provision(&key).await.unwrap(),
            Provisioned::Created,
            "{kind}"
        );
        assert_eq!(
            hsm.provision(&key).await.unwrap(),
            Provisioned::Existing,
            "{kind}"
        );
    }
}

#[tokio::test]
async fn self_test_passes_after_provisioning() {
    let (_lab, tokens) = open_tokens(&["node-1"]).await;
    let hsm = &tokens[0];
    let specs = KeyLabels::default().specs();
    for key in &specs {
        hsm.provision(key).await.unwrap();
    }

    let report = hsm.self_test(&specs).await.unwrap();

    assert_eq!(report.token, "node-1");
    assert_eq!(report.keys.len(), 4);
}

#[tokio::test]
async fn self_test_names_missing_key() {
    let (_lab, tokens) = open_tokens(&["node-1"]).await;

    let error = tokens[0]
        .self_test(&KeyLabels::default().specs())
        .await
        .unwrap_err();

    assert!(matches!(error, HsmError::KeyNotFound { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("key label \"keyfleet-seal\" not found on token \"node-1\""),
        "{message}"
    );
}

/// Keys made with OpenSC's pkcs11-tool that fall short of the policy in one attribute each.
#[tokio::test]
async fn provision_rejects_weaker_keys() {
    let lab = SoftHsmLab::new();
    let token = lab.create_token("node-1", "1234");
    let keygen = |label: &str, key_type: &str, extra: &[&str]| {
        let mut args = vec!["--keygen", "--key-type", key_type, "--label", label];
        args.extend_from_slice(extra);
        lab.pkcs11_tool(&token, &args);
    };
    keygen("not-sensitive", "AES:32", &[]);
    keygen("extractable", "AES:32", &["--sensitive", "--extractable"]);
    keygen("short", "AES:16", &["--sensitive"]);
    keygen("generic", "GENERIC:64", &["--sensitive"]);
    lab.activate();
    let hsm = Pkcs11Hsm::open(&settings(&lab, &token)).await.unwrap();

    let cases = [
        ("not-sensitive", KeyKind::SealAes256, "not sensitive"),
        ("extractable", KeyKind::SealAes256, "it is extractable"),
        (
            "short",
            KeyKind::SealAes256,
            "16 bytes long, expected at least 32",
        ),
        (
            "generic",
            KeyKind::SealAes256,
            "key type is CKK_GENERIC_SECRET, expected CKK_AES",
        ),
        (
            "extractable",
            KeyKind::HmacSha512,
            "key type is CKK_AES, expected CKK_GENERIC_SECRET",
        ),
    ];
    for (label, kind, expected) in cases {
        let error = hsm
            .provision(&spec(label, kind, Exportability::Never))
            .await
            .unwrap_err();

        assert!(
            matches!(error, HsmError::KeyTooWeak { .. }),
            "{label}: {error:?}"
        );
        assert!(error.to_string().contains(expected), "{label}: {error}");
    }
}

#[tokio::test]
async fn provision_rejects_exportable_key_pair() {
    let (_lab, tokens) = open_tokens(&["node-1"]).await;
    let key = spec(
        "signing",
        KeyKind::SigningEd25519,
        Exportability::WrappedOnly,
    );

    let error = tokens[0].provision(&key).await.unwrap_err();

    assert!(
        error.to_string().contains("key pairs are not transferred"),
        "{error}"
    );
}

#[tokio::test]
async fn self_test_names_missing_mechanism() {
    // SoftHSM 2.6.1 reads the first name of a "-" list together with the minus sign, so it
    // ignores that name. Repeating the name makes the second copy disable the mechanism.
    let lab = SoftHsmLab::with_conf_lines(&["slots.mechanisms = -CKM_SHA512_HMAC,CKM_SHA512_HMAC"]);
    let token = lab.create_token("node-1", "1234");
    lab.activate();
    let hsm = Pkcs11Hsm::open(&settings(&lab, &token)).await.unwrap();

    let error = hsm
        .self_test(&KeyLabels::default().specs())
        .await
        .unwrap_err();

    assert!(
        matches!(error, HsmError::MechanismUnsupported { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("mechanism CKM_SHA512_HMAC not offered by token \"node-1\""),
        "{message}"
    );
    assert!(message.contains("it offers: "), "{message}");
    assert!(message.contains("CKM_AES_GCM"), "{message}");
}

/// Puts a 16-byte AES key into the token under `label` with `C_UnwrapKey`, for which SoftHSM 2.6
/// reports `CKA_VALUE_LEN` as 0, so the policy cannot read its length from the attribute.
fn unwrap_short_aes_key(token: &str, label: &str, extractable: bool) {
    let session = raw_session(token);
    let session_key = |len: u64, extra: &[Attribute]| {
        let mut template = vec![Attribute::Token(false), Attribute::ValueLen(len.into())];
        template.extend_from_slice(extra);
        session
            .generate_key(&Mechanism::AesKeyGen, &template)
            .unwrap()
    };
    let kek = session_key(32, &[Attribute::Wrap(true), Attribute::Unwrap(true)]);
    let short = session_key(
        16,
        &[Attribute::Extractable(true), Attribute::Sensitive(false)],
    );
    let wrapped = session
        .wrap_key(&Mechanism::AesKeyWrapPad, kek, short)
        .unwrap();

    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(extractable),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    session
        .unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped, &template)
        .unwrap();
}

#[tokio::test]
async fn provision_measures_unwrapped_short_keys() {
    let (_lab, tokens) = open_tokens(&["node-1"]).await;
    let hsm = &tokens[0];
    unwrap_short_aes_key("node-1", "wrappable", true);
    unwrap_short_aes_key("node-1", "sealed-in", false);

    let cases = [
        (
            "wrappable",
            Exportability::WrappedOnly,
            "16 bytes long, expected at least 32",
        ),
        (
            "sealed-in",
            Exportability::Never,
            "its length is not reported",
        ),
    ];
    for (label, exportability, expected) in cases {
        let key = spec(label, KeyKind::SealAes256, exportability);

        let provisioned = hsm.provision(&key).await.unwrap_err();
        let self_test = hsm.self_test(&[key]).await.unwrap_err();

        assert!(
            provisioned.to_string().contains(expected),
            "{label}: {provisioned}"
        );
        assert!(
            matches!(self_test, HsmError::KeyTooWeak { .. }),
            "{label}: {self_test:?}"
        );
    }
}
