//! Minting, verification and rejection of tenant tokens, through the public API only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;
use keyfleet_token::{
    CLOCK_LEEWAY_SECS, MAX_TOKEN_LEN, TenantSigningKey, TokenClaims, TokenError, TokenVerifier,
    peek_claims,
};

const FLEET: &str = "fleet-eu-1";
const TENANT: &str = "acme";
const USER: &str = "alice@example.com";
const IAT: u64 = 1_700_000_000;
const EXP: u64 = 1_700_000_300;
const NOW: u64 = 1_700_000_010;
const MAX_LIFETIME: u64 = 3600;

fn claims() -> TokenClaims {
    TokenClaims {
        tenant: TENANT.into(),
        user: USER.into(),
        fleet: FLEET.into(),
        issued_at: IAT,
        expires_at: EXP,
    }
}

fn verifier_for(key: &TenantSigningKey) -> TokenVerifier {
    let mut verifier = TokenVerifier::new(FLEET, MAX_LIFETIME);
    verifier.trust(TENANT, key.public_key()).unwrap();
    verifier
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs arbitrary header and payload bytes with `key`'s seed, as another JWT library would.
fn sign_raw(key: &TenantSigningKey, header: &[u8], payload: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(payload));
    let dalek = dalek_key(key);
    let signature = dalek.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&signature.to_bytes()))
}

/// Recovers the ed25519-dalek key through the PKCS#8 PEM, the only public way out.
fn dalek_key(key: &TenantSigningKey) -> ed25519_dalek::SigningKey {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    ed25519_dalek::SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem()).unwrap()
}

const HEADER: &[u8] = br#"{"alg":"EdDSA","typ":"JWT"}"#;

fn payload_with(fields: &str) -> Vec<u8> {
    format!("{{{fields}}}").into_bytes()
}

const GOOD_FIELDS: &str = r#""iss":"acme","sub":"alice@example.com","aud":"fleet-eu-1","iat":1700000000,"exp":1700000300"#;

#[test]
fn mint_then_verify() {
    let key = TenantSigningKey::generate();
    let token = key.mint(&claims()).unwrap();
    let verified = verifier_for(&key).verify(&token, NOW).unwrap();
    assert_eq!(verified.tenant, TENANT);
    assert_eq!(verified.user, USER);
    assert_eq!(verified.expires_at, EXP);
}

#[test]
fn minted_token_has_standard_header_and_claims() {
    let key = TenantSigningKey::generate();
    let token = key.mint(&claims()).unwrap();
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3);

    let header = URL_SAFE_NO_PAD.decode(segments[0]).unwrap();
    assert_eq!(header, HEADER);

    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments[1]).unwrap()).unwrap();
    assert_eq!(payload["iss"], TENANT);
    assert_eq!(payload["sub"], USER);
    assert_eq!(payload["aud"], FLEET);
    assert_eq!(payload["iat"], IAT);
    assert_eq!(payload["exp"], EXP);
}

#[test]
fn raw_signed_token_verifies() {
    // The helper that the rejection cases use must itself produce an accepted token.
    let key = TenantSigningKey::generate();
    let token = sign_raw(&key, HEADER, &payload_with(GOOD_FIELDS));
    assert!(verifier_for(&key).verify(&token, NOW).is_ok());
}

#[test]
fn header_without_typ_verifies() {
    let key = TenantSigningKey::generate();
    let token = sign_raw(&key, br#"{"alg":"EdDSA"}"#, &payload_with(GOOD_FIELDS));
    assert!(verifier_for(&key).verify(&token, NOW).is_ok());
}

#[test]
fn unknown_claims_and_header_parameters_are_ignored() {
    let key = TenantSigningKey::generate();
    let fields = format!(r#"{GOOD_FIELDS},"jti":"abc","scope":["x"]"#);
    let token = sign_raw(
        &key,
        br#"{"alg":"EdDSA","typ":"JWT","kid":"k1"}"#,
        &payload_with(&fields),
    );
    assert!(verifier_for(&key).verify(&token, NOW).is_ok());
}

#[test]
fn peek_claims_reads_unverified_token() {
    let key = TenantSigningKey::generate();
    let token = key.mint(&claims()).unwrap();
    assert_eq!(peek_claims(&token).unwrap(), claims());

    // peek_claims checks no signature, so a token from an untrusted key still decodes.
    let other = TenantSigningKey::generate();
    let token = other.mint(&claims()).unwrap();
    assert_eq!(peek_claims(&token).unwrap().fleet, FLEET);
}

#[test]
fn peek_claims_rejects_malformed_token() {
    assert!(matches!(
        peek_claims("a.b"),
        Err(TokenError::Malformed { .. })
    ));
}

/// One rejected header or claims set, signed correctly by the trusted key.
struct SignedCase {
    name: &'static str,
    header: &'static [u8],
    fields: String,
    expected: fn(&TokenError) -> bool,
}

fn malformed(error: &TokenError) -> bool {
    matches!(error, TokenError::Malformed { .. })
}

fn unsupported_algorithm(error: &TokenError) -> bool {
    matches!(error, TokenError::UnsupportedAlgorithm { .. })
}

fn fields_without(name: &str) -> String {
    GOOD_FIELDS
        .split(',')
        .filter(|field| !field.starts_with(&format!("\"{name}\"")))
        .collect::<Vec<_>>()
        .join(",")
}

fn fields_replacing(name: &str, value: &str) -> String {
    GOOD_FIELDS
        .split(',')
        .map(|field| {
            if field.starts_with(&format!("\"{name}\"")) {
                format!("\"{name}\":{value}")
            } else {
                field.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn signed_cases() -> Vec<SignedCase> {
    let good = || GOOD_FIELDS.to_owned();
    let mut cases = vec![
        SignedCase {
            name: "alg none",
            header: br#"{"alg":"none","typ":"JWT"}"#,
            fields: good(),
            expected: |e| matches!(e, TokenError::UnsupportedAlgorithm { alg } if alg == "none"),
        },
        SignedCase {
            name: "alg HS256",
            header: br#"{"alg":"HS256","typ":"JWT"}"#,
            fields: good(),
            expected: |e| matches!(e, TokenError::UnsupportedAlgorithm { alg } if alg == "HS256"),
        },
        SignedCase {
            name: "alg ES256",
            header: br#"{"alg":"ES256","typ":"JWT"}"#,
            fields: good(),
            expected: unsupported_algorithm,
        },
        SignedCase {
            name: "alg lowercase eddsa",
            header: br#"{"alg":"eddsa","typ":"JWT"}"#,
            fields: good(),
            expected: unsupported_algorithm,
        },
        SignedCase {
            name: "alg Ed25519",
            header: br#"{"alg":"Ed25519","typ":"JWT"}"#,
            fields: good(),
            expected: unsupported_algorithm,
        },
        SignedCase {
            name: "alg missing",
            header: br#"{"typ":"JWT"}"#,
            fields: good(),
            expected: malformed,
        },
        SignedCase {
            name: "alg not a string",
            header: br#"{"alg":1,"typ":"JWT"}"#,
            fields: good(),
            expected: malformed,
        },
        SignedCase {
            name: "alg repeated",
            header: br#"{"alg":"EdDSA","alg":"EdDSA"}"#,
            fields: good(),
            expected: malformed,
        },
        SignedCase {
            name: "alg repeated through an escape",
            header: br#"{"alg":"none","\u0061lg":"EdDSA"}"#,
            fields: good(),
            expected: malformed,
        },
        SignedCase {
            name: "crit present",
            header: br#"{"alg":"EdDSA","typ":"JWT","crit":["exp"]}"#,
            fields: good(),
            expected: malformed,
        },
        SignedCase {
            name: "crit empty",
            header: br#"{"alg":"EdDSA","crit":[]}"#,
            fields: good(),
            expected: malformed,
        },
        SignedCase {
            name: "typ other",
            header: br#"{"alg":"EdDSA","typ":"at+jwt"}"#,
            fields: good(),
            expected: malformed,
        },
        SignedCase {
            name: "header array",
            header: br#"["EdDSA","JWT"]"#,
            fields: good(),
            expected: malformed,
        },
        SignedCase {
            name: "header trailing data",
            header: br#"{"alg":"EdDSA"} {}"#,
            fields: good(),
            expected: malformed,
        },
        SignedCase {
            name: "header not JSON",
            header: b"alg=EdDSA",
            fields: good(),
            expected: malformed,
        },
        SignedCase {
            name: "sub with control character",
            header: HEADER,
            fields: fields_replacing("sub", r#""ali\nce""#),
            expected: |e| matches!(e, TokenError::InvalidUserId { .. }),
        },
        SignedCase {
            name: "sub empty",
            header: HEADER,
            fields: fields_replacing("sub", r#""""#),
            expected: |e| matches!(e, TokenError::InvalidUserId { .. }),
        },
        SignedCase {
            name: "aud other fleet",
            header: HEADER,
            fields: fields_replacing("aud", r#""fleet-us-1""#),
            expected: |e| {
                matches!(e, TokenError::WrongAudience { audience, expected }
                    if audience == "fleet-us-1" && expected == FLEET)
            },
        },
        SignedCase {
            name: "aud array",
            header: HEADER,
            fields: fields_replacing("aud", r#"["fleet-eu-1"]"#),
            expected: malformed,
        },
        SignedCase {
            name: "iat string",
            header: HEADER,
            fields: fields_replacing("iat", r#""1700000000""#),
            expected: malformed,
        },
        SignedCase {
            name: "iat float",
            header: HEADER,
            fields: fields_replacing("iat", "1700000000.0"),
            expected: malformed,
        },
        SignedCase {
            name: "iat negative",
            header: HEADER,
            fields: fields_replacing("iat", "-1"),
            expected: malformed,
        },
        SignedCase {
            name: "exp beyond u64",
            header: HEADER,
            fields: fields_replacing("exp", "18446744073709551616"),
            expected: malformed,
        },
        SignedCase {
            name: "iss number",
            header: HEADER,
            fields: fields_replacing("iss", "7"),
            expected: malformed,
        },
        SignedCase {
            name: "iss repeated",
            header: HEADER,
            fields: format!(r#"{GOOD_FIELDS},"iss":"acme""#),
            expected: malformed,
        },
        SignedCase {
            name: "exp repeated through an escape",
            header: HEADER,
            fields: format!(r#"{GOOD_FIELDS},"e\u0078p":1800000000"#),
            expected: malformed,
        },
        SignedCase {
            name: "nbf string",
            header: HEADER,
            fields: format!(r#"{GOOD_FIELDS},"nbf":"soon""#),
            expected: malformed,
        },
        SignedCase {
            name: "nbf in future",
            header: HEADER,
            fields: format!(r#"{GOOD_FIELDS},"nbf":1700000200"#),
            expected: |e| {
                matches!(
                    e,
                    TokenError::NotBefore {
                        not_before: 1_700_000_200,
                        now: NOW
                    }
                )
            },
        },
    ];

    let missing_claims = [
        ("iss", "iss missing"),
        ("sub", "sub missing"),
        ("aud", "aud missing"),
        ("iat", "iat missing"),
        ("exp", "exp missing"),
    ];
    for (claim, name) in missing_claims {
        cases.push(SignedCase {
            name,
            header: HEADER,
            fields: fields_without(claim),
            expected: malformed,
        });
    }
    cases
}

#[test]
fn signed_rejection_cases() {
    let key = TenantSigningKey::generate();
    let verifier = verifier_for(&key);
    for case in signed_cases() {
        let token = sign_raw(&key, case.header, &payload_with(&case.fields));
        let result = verifier.verify(&token, NOW);
        match result {
            Ok(_) => panic!("case {:?}: token was accepted", case.name),
            Err(error) => assert!(
                (case.expected)(&error),
                "case {:?}: unexpected error {error:?}",
                case.name
            ),
        }
    }
}

#[test]
fn claims_array_rejected() {
    let key = TenantSigningKey::generate();
    let payload = br#"["acme","alice@example.com","fleet-eu-1",1700000000,1700000300]"#;
    let token = sign_raw(&key, HEADER, payload);
    let error = verifier_for(&key).verify(&token, NOW).unwrap_err();
    assert!(matches!(error, TokenError::Malformed { .. }), "{error:?}");
}

#[test]
fn exp_not_after_iat_rejected() {
    // A lifetime of zero with iat in the future but within the leeway: neither Expired nor
    // NotYetValid applies, so only the exp > iat rule can reject it.
    let key = TenantSigningKey::generate();
    let fields = r#""iss":"acme","sub":"alice@example.com","aud":"fleet-eu-1","iat":1700000030,"exp":1700000030"#;
    let token = sign_raw(&key, HEADER, &payload_with(fields));
    let error = verifier_for(&key).verify(&token, NOW).unwrap_err();
    assert!(matches!(error, TokenError::Malformed { .. }), "{error:?}");
}

#[test]
fn expired_at_exp_rejected() {
    let key = TenantSigningKey::generate();
    let token = key.mint(&claims()).unwrap();
    let verifier = verifier_for(&key);

    let error = verifier.verify(&token, EXP).unwrap_err();
    assert!(error.is_expired());
    assert!(matches!(
        error,
        TokenError::Expired {
            expires_at: EXP,
            now: EXP
        }
    ));
    assert!(verifier.verify(&token, EXP - 1).is_ok());
    assert!(verifier.verify(&token, EXP + 100).unwrap_err().is_expired());
}

#[test]
fn expired_message_names_times() {
    let key = TenantSigningKey::generate();
    let token = key.mint(&claims()).unwrap();
    let message = verifier_for(&key)
        .verify(&token, EXP + 40)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "tenant token expired at 1700000300 (Unix seconds), it is now 1700000340: mint a new token"
    );
}

#[test]
fn issued_beyond_leeway_rejected() {
    let key = TenantSigningKey::generate();
    let verifier = verifier_for(&key);
    let token = key.mint(&claims()).unwrap();

    let at_leeway = IAT - CLOCK_LEEWAY_SECS;
    assert!(verifier.verify(&token, at_leeway).is_ok());

    let error = verifier.verify(&token, at_leeway - 1).unwrap_err();
    assert!(
        matches!(error, TokenError::NotYetValid { issued_at: IAT, now } if now == at_leeway - 1),
        "{error:?}"
    );
    assert!(!error.is_expired());
}

#[test]
fn lifetime_over_max_rejected() {
    let key = TenantSigningKey::generate();
    let verifier = verifier_for(&key);

    let mut at_max = claims();
    at_max.expires_at = IAT + MAX_LIFETIME;
    assert!(verifier.verify(&key.mint(&at_max).unwrap(), NOW).is_ok());

    let mut over_max = claims();
    over_max.expires_at = IAT + MAX_LIFETIME + 1;
    let error = verifier
        .verify(&key.mint(&over_max).unwrap(), NOW)
        .unwrap_err();
    assert!(
        matches!(error, TokenError::LifetimeTooLong { lifetime, max: MAX_LIFETIME }
            if lifetime == MAX_LIFETIME + 1),
        "{error:?}"
    );
}

#[test]
fn unknown_tenant_rejected() {
    let key = TenantSigningKey::generate();
    let mut other = claims();
    other.tenant = "globex".into();
    let token = key.mint(&other).unwrap();
    let error = verifier_for(&key).verify(&token, NOW).unwrap_err();
    assert!(
        matches!(&error, TokenError::UnknownTenant { tenant } if tenant == "globex"),
        "{error:?}"
    );
}

#[test]
fn other_key_under_trusted_tenant_rejected() {
    let trusted = TenantSigningKey::generate();
    let attacker = TenantSigningKey::generate();
    let token = attacker.mint(&claims()).unwrap();
    let error = verifier_for(&trusted).verify(&token, NOW).unwrap_err();
    assert!(matches!(error, TokenError::BadSignature), "{error:?}");
}

/// Replaces segment `index` of a token with `segment`.
fn with_segment(token: &str, index: usize, segment: &str) -> String {
    let mut segments: Vec<&str> = token.split('.').collect();
    segments[index] = segment;
    segments.join(".")
}

#[test]
fn tampered_payload_rejected() {
    let key = TenantSigningKey::generate();
    let token = key.mint(&claims()).unwrap();

    let mut changed = claims();
    changed.user = "mallory".into();
    let forged_payload = changed_payload_b64(&changed);
    let tampered = with_segment(&token, 1, &forged_payload);

    let error = verifier_for(&key).verify(&tampered, NOW).unwrap_err();
    assert!(matches!(error, TokenError::BadSignature), "{error:?}");
}

fn changed_payload_b64(claims: &TokenClaims) -> String {
    let json = serde_json::json!({
        "iss": claims.tenant,
        "sub": claims.user,
        "aud": claims.fleet,
        "iat": claims.issued_at,
        "exp": claims.expires_at,
    });
    b64(json.to_string().as_bytes())
}

#[test]
fn tampered_signature_rejected() {
    let key = TenantSigningKey::generate();
    let token = key.mint(&claims()).unwrap();
    let signature_b64 = token.rsplit_once('.').unwrap().1;
    let verifier = verifier_for(&key);

    for byte_index in [0, 31, 32, 63] {
        let mut signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();
        signature[byte_index] ^= 0x01;
        let tampered = with_segment(&token, 2, &b64(&signature));
        let error = verifier.verify(&tampered, NOW).unwrap_err();
        assert!(
            matches!(error, TokenError::BadSignature),
            "byte {byte_index}: {error:?}"
        );
    }
}

#[test]
fn non_canonical_signature_scalar_rejected() {
    // Adding the group order L to S gives a second encoding of the same scalar, which some
    // lenient Ed25519 verifiers accept. A canonical signature has S below L.
    const GROUP_ORDER_LE: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x10,
    ];
    let key = TenantSigningKey::generate();
    let verifier = verifier_for(&key);

    // Mint until S + L still fits in 256 bits, which holds for most signatures.
    for issued_at in IAT..IAT + 50 {
        let mut fresh = claims();
        fresh.issued_at = issued_at;
        let token = key.mint(&fresh).unwrap();
        let mut signature = URL_SAFE_NO_PAD
            .decode(token.rsplit_once('.').unwrap().1)
            .unwrap();

        let mut carry = 0u16;
        for (byte, order_byte) in signature[32..].iter_mut().zip(GROUP_ORDER_LE) {
            let sum = u16::from(*byte) + u16::from(order_byte) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        if carry != 0 {
            continue;
        }

        let tampered = with_segment(&token, 2, &b64(&signature));
        let error = verifier.verify(&tampered, NOW).unwrap_err();
        assert!(matches!(error, TokenError::BadSignature), "{error:?}");
        return;
    }
    panic!("no signature with S + L below 2^256 in 50 tries");
}

#[test]
fn encoding_rejection_cases() {
    let key = TenantSigningKey::generate();
    let verifier = verifier_for(&key);
    let token = key.mint(&claims()).unwrap();
    let (header_b64, rest) = token.split_once('.').unwrap();
    let (payload_b64, signature_b64) = rest.split_once('.').unwrap();

    let standard_alphabet = signature_b64.replace('-', "+").replace('_', "/");
    let cases: Vec<(&str, String)> = vec![
        ("two segments", format!("{header_b64}.{payload_b64}")),
        ("four segments", format!("{token}.{signature_b64}")),
        ("empty token", String::new()),
        ("empty signature", format!("{header_b64}.{payload_b64}.")),
        ("empty header", format!(".{payload_b64}.{signature_b64}")),
        ("padded signature", format!("{token}==")),
        (
            "padded header",
            format!("{header_b64}=.{payload_b64}.{signature_b64}"),
        ),
        (
            "space in payload",
            format!("{header_b64}.{payload_b64} .{signature_b64}"),
        ),
        ("trailing newline", format!("{token}\n")),
        (
            "short signature",
            format!("{header_b64}.{payload_b64}.{}", b64(&[0u8; 63])),
        ),
        (
            "long signature",
            format!("{header_b64}.{payload_b64}.{}", b64(&[0u8; 65])),
        ),
        (
            "non-canonical trailing bits",
            // 64 bytes encode to 86 characters, and the last one carries 2 data bits and 4
            // zero padding bits. Changing 'A' to 'B' sets a padding bit.
            format!("{header_b64}.{payload_b64}.{}B", &b64(&[0u8; 64])[..85]),
        ),
        (
            "impossible segment length",
            // A base64 length of 4n + 1 characters encodes no whole number of bytes.
            format!("{header_b64}.{payload_b64}.{signature_b64}AAA"),
        ),
    ];

    for (name, tampered) in cases {
        let error = verifier.verify(&tampered, NOW).unwrap_err();
        assert!(
            matches!(error, TokenError::Malformed { .. }),
            "case {name:?}: {error:?}"
        );
    }

    // The standard alphabet differs from base64url only in '+' and '/', so it is rejected
    // only when the signature contains one of them.
    if standard_alphabet != signature_b64 {
        let tampered = format!("{header_b64}.{payload_b64}.{standard_alphabet}");
        let error = verifier.verify(&tampered, NOW).unwrap_err();
        assert!(matches!(error, TokenError::Malformed { .. }), "{error:?}");
    }
}

#[test]
fn too_long_token_rejected() {
    let key = TenantSigningKey::generate();
    let verifier = verifier_for(&key);
    let token = "a".repeat(MAX_TOKEN_LEN + 1);
    let error = verifier.verify(&token, NOW).unwrap_err();
    assert!(
        matches!(error, TokenError::TooLong { len, max: MAX_TOKEN_LEN } if len == MAX_TOKEN_LEN + 1),
        "{error:?}"
    );
}

#[test]
fn errors_never_contain_token_or_signature() {
    let key = TenantSigningKey::generate();
    let verifier = verifier_for(&key);
    let token = key.mint(&claims()).unwrap();
    let (_, signature_b64) = token.rsplit_once('.').unwrap();

    let mut tampered_signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();
    tampered_signature[5] ^= 0x80;
    let tampered_b64 = b64(&tampered_signature);
    let failures = [
        verifier.verify(&token, EXP + 1).unwrap_err(),
        verifier
            .verify(&with_segment(&token, 2, &tampered_b64), NOW)
            .unwrap_err(),
        verifier.verify(&format!("{token}="), NOW).unwrap_err(),
        TokenVerifier::new("other", 60)
            .verify(&token, NOW)
            .unwrap_err(),
    ];
    for error in failures {
        let message = error.to_string();
        let debug = format!("{error:?}");
        for text in [&message, &debug] {
            assert!(!text.contains(&token), "{text}");
            assert!(!text.contains(signature_b64), "{text}");
            assert!(!text.contains(&tampered_b64), "{text}");
        }
    }
}

#[test]
fn cached_token_still_expires() {
    let key = TenantSigningKey::generate();
    let verifier = verifier_for(&key);
    let token = key.mint(&claims()).unwrap();

    assert!(verifier.verify(&token, NOW).is_ok());
    assert!(verifier.verify(&token, NOW + 1).is_ok());

    let error = verifier.verify(&token, EXP).unwrap_err();
    assert!(matches!(error, TokenError::Expired { .. }), "{error:?}");
}

#[test]
fn cached_token_does_not_cover_altered_signature() {
    let key = TenantSigningKey::generate();
    let verifier = verifier_for(&key);
    let token = key.mint(&claims()).unwrap();
    assert!(verifier.verify(&token, NOW).is_ok());

    // Same header and claims, signature of other bytes under the same key.
    let (signing_input, _) = token.rsplit_once('.').unwrap();
    let other = key.mint(&TokenClaims {
        expires_at: EXP - 1,
        ..claims()
    });
    let (_, other_signature) = other.as_ref().unwrap().rsplit_once('.').unwrap();
    let forged = format!("{signing_input}.{other_signature}");

    let error = verifier.verify(&forged, NOW).unwrap_err();
    assert!(matches!(error, TokenError::BadSignature), "{error:?}");
}

#[test]
fn verifier_without_cache_verifies() {
    let key = TenantSigningKey::generate();
    let mut verifier = TokenVerifier::with_signature_cache(FLEET, MAX_LIFETIME, 0);
    verifier.trust(TENANT, key.public_key()).unwrap();
    let token = key.mint(&claims()).unwrap();

    assert!(verifier.verify(&token, NOW).is_ok());
    assert!(verifier.verify(&token, NOW).is_ok());
}

#[test]
fn clones_with_other_key_reject() {
    let key = TenantSigningKey::generate();
    let other_key = TenantSigningKey::generate();
    let empty = TokenVerifier::new(FLEET, MAX_LIFETIME);

    let mut trusting_key = empty.clone();
    trusting_key.trust(TENANT, key.public_key()).unwrap();
    let mut trusting_other = empty.clone();
    trusting_other
        .trust(TENANT, other_key.public_key())
        .unwrap();

    let token = key.mint(&claims()).unwrap();
    assert!(trusting_key.verify(&token, NOW).is_ok());

    let error = trusting_other.verify(&token, NOW).unwrap_err();
    assert!(matches!(error, TokenError::BadSignature), "{error:?}");
}
