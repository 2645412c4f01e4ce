//! Key generation, PEM and hex encodings, OpenSSL interoperability, and the verifier's trust
//! list.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyfleet_token::{TenantPublicKey, TenantSigningKey, TokenClaims, TokenError, TokenVerifier};

fn claims() -> TokenClaims {
    TokenClaims {
        tenant: "acme".into(),
        user: "alice@example.com".into(),
        fleet: "fleet-eu-1".into(),
        issued_at: 1_700_000_000,
        expires_at: 1_700_000_300,
    }
}

fn openssl_available() -> bool {
    let found = Command::new("openssl").arg("version").output().is_ok();
    if !found {
        eprintln!("skipped: no `openssl` command on PATH");
    }
    found
}

/// Runs `openssl` with `args` and returns its standard output.
fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn signing_key_pem_round_trip() {
    let key = TenantSigningKey::generate();
    let pem = key.to_pkcs8_pem();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));

    let loaded = TenantSigningKey::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(loaded.public_key(), key.public_key());

    // Ed25519 signatures are deterministic, so both keys mint the same token.
    assert_eq!(
        loaded.mint(&claims()).unwrap(),
        key.mint(&claims()).unwrap()
    );
}

#[test]
fn signing_key_rejects_bad_pem() {
    let cases = [
        ("empty", String::new()),
        ("garbage", "not a key".to_owned()),
        (
            "public key",
            TenantSigningKey::generate().public_key().to_spki_pem(),
        ),
    ];
    for (name, pem) in cases {
        let result = TenantSigningKey::from_pkcs8_pem(&pem);
        assert!(
            matches!(result, Err(TokenError::InvalidKey { .. })),
            "case {name:?}: {result:?}"
        );
    }
}

#[test]
fn signing_key_loads_openssl_pem() {
    if !openssl_available() {
        return;
    }
    let pem = String::from_utf8(openssl(&["genpkey", "-algorithm", "ed25519"])).unwrap();
    let key = TenantSigningKey::from_pkcs8_pem(&pem).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("tenant.pem");
    std::fs::write(&key_path, &pem).unwrap();

    let public_pem =
        String::from_utf8(openssl(&["pkey", "-in", path_str(&key_path), "-pubout"])).unwrap();
    assert_eq!(
        TenantPublicKey::parse(&public_pem).unwrap(),
        key.public_key()
    );
}

#[test]
fn openssl_reads_written_pem() {
    if !openssl_available() {
        return;
    }
    let key = TenantSigningKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("tenant.pem");
    std::fs::write(&key_path, key.to_pkcs8_pem().as_bytes()).unwrap();

    let public_pem =
        String::from_utf8(openssl(&["pkey", "-in", path_str(&key_path), "-pubout"])).unwrap();
    assert_eq!(public_pem, key.public_key().to_spki_pem());
}

#[test]
fn openssl_signed_token_verifies() {
    // OpenSSL signs here in place of a tenant's own JWT library.
    if !openssl_available() {
        return;
    }
    let pem = String::from_utf8(openssl(&["genpkey", "-algorithm", "ed25519"])).unwrap();
    let key = TenantSigningKey::from_pkcs8_pem(&pem).unwrap();

    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(
        br#"{"iss":"acme","sub":"alice@example.com","aud":"fleet-eu-1","iat":1700000000,"exp":1700000300}"#,
    );
    let signing_input = format!("{header}.{payload}");

    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("tenant.pem");
    let input_path = dir.path().join("input");
    std::fs::write(&key_path, &pem).unwrap();
    std::fs::write(&input_path, &signing_input).unwrap();
    let signature = openssl(&[
        "pkeyutl",
        "-sign",
        "-rawin",
        "-inkey",
        path_str(&key_path),
        "-in",
        path_str(&input_path),
    ]);
    assert_eq!(signature.len(), 64);

    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(&signature));
    let mut verifier = TokenVerifier::new("fleet-eu-1", 3600);
    verifier.trust("acme", key.public_key()).unwrap();
    let verified = verifier.verify(&token, 1_700_000_010).unwrap();
    assert_eq!(verified.user, "alice@example.com");

    // The minted token carries the same signature, because Ed25519 is deterministic.
    assert_eq!(key.mint(&claims()).unwrap(), token);
}

#[test]
fn signing_key_debug_is_redacted() {
    let key = TenantSigningKey::generate();
    let debug = format!("{key:?}");
    assert_eq!(debug, "TenantSigningKey(<redacted>)");

    let public_hex = key.public_key().to_hex();
    assert!(!debug.contains(&public_hex));
    let pem = key.to_pkcs8_pem();
    let pem_body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    assert!(!debug.contains(&pem_body));
}

#[test]
fn public_key_hex_round_trip() {
    let key = TenantSigningKey::generate().public_key();
    let hex = key.to_hex();
    assert_eq!(hex.len(), 64);
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(TenantPublicKey::parse(&hex).unwrap(), key);
    assert_eq!(TenantPublicKey::parse(&hex.to_uppercase()).unwrap(), key);
    assert_eq!(TenantPublicKey::parse(&format!("  {hex}\n")).unwrap(), key);
    assert_eq!(key.to_string(), hex);
}

#[test]
fn public_key_pem_round_trip() {
    let key = TenantSigningKey::generate().public_key();
    let pem = key.to_spki_pem();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(TenantPublicKey::parse(&pem).unwrap(), key);
}

#[test]
fn public_key_rejects_bad_text() {
    let valid = TenantSigningKey::generate().public_key().to_hex();
    let cases = [
        ("empty", String::new()),
        ("63 hex characters", valid[..63].to_owned()),
        ("66 hex characters", format!("{valid}00")),
        ("non-hex character", format!("{}g", &valid[..63])),
        // The y coordinate 2 has no x on the curve, so this does not decompress.
        ("not a curve point", format!("02{}", "0".repeat(62))),
        // The identity point has order 1.
        ("identity point", format!("01{}", "0".repeat(62))),
        (
            "private key PEM",
            TenantSigningKey::generate().to_pkcs8_pem().to_string(),
        ),
        (
            "truncated PEM",
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n".to_owned(),
        ),
    ];
    for (name, text) in cases {
        let result = TenantPublicKey::parse(&text);
        assert!(
            matches!(result, Err(TokenError::InvalidKey { .. })),
            "case {name:?}: {result:?}"
        );
    }
}

#[test]
fn trust_rejects_invalid_tenant_id() {
    let mut verifier = TokenVerifier::new("fleet-eu-1", 3600);
    let key = TenantSigningKey::generate().public_key();
    let result = verifier.trust("Acme", key);
    assert!(matches!(result, Err(TokenError::InvalidTenantId { .. })));
}

#[test]
fn trust_rejects_second_key() {
    let mut verifier = TokenVerifier::new("fleet-eu-1", 3600);
    let first = TenantSigningKey::generate().public_key();
    let second = TenantSigningKey::generate().public_key();

    verifier.trust("acme", first.clone()).unwrap();
    assert!(verifier.trust("acme", first).is_ok());
    let result = verifier.trust("acme", second);
    assert!(
        matches!(&result, Err(TokenError::TenantAlreadyTrusted { tenant }) if tenant == "acme"),
        "{result:?}"
    );
}

#[test]
fn verifier_keeps_tenants_apart() {
    let acme = TenantSigningKey::generate();
    let globex = TenantSigningKey::generate();
    let mut verifier = TokenVerifier::new("fleet-eu-1", 3600);
    verifier.trust("acme", acme.public_key()).unwrap();
    verifier.trust("globex", globex.public_key()).unwrap();

    let mut globex_claims = claims();
    globex_claims.tenant = "globex".into();
    let verified = verifier
        .verify(&globex.mint(&globex_claims).unwrap(), 1_700_000_010)
        .unwrap();
    assert_eq!(verified.tenant, "globex");

    // globex's key cannot mint for acme.
    let forged = globex.mint(&claims()).unwrap();
    let error = verifier.verify(&forged, 1_700_000_010).unwrap_err();
    assert!(matches!(error, TokenError::BadSignature), "{error:?}");
}
