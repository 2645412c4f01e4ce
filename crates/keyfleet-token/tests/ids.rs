//! Tenant and user id rules, record ids, and the checks that `mint` applies to its claims.

use keyfleet_token::{
    MAX_TENANT_ID_LEN, MAX_USER_ID_LEN, TenantSigningKey, TokenClaims, TokenError, check_tenant_id,
    check_user_id, record_id,
};

#[test]
fn tenant_id_accepts_valid() {
    let longest = "a".repeat(MAX_TENANT_ID_LEN);
    for tenant in ["a", "0", "acme", "acme-corp_2", "9-_", longest.as_str()] {
        assert!(check_tenant_id(tenant).is_ok(), "{tenant:?}");
    }
}

#[test]
fn tenant_id_rejects_invalid() {
    let too_long = "a".repeat(MAX_TENANT_ID_LEN + 1);
    let cases = [
        "",
        too_long.as_str(),
        "-acme",
        "_acme",
        "Acme",
        "ac me",
        "acme/eu",
        "acme.eu",
        "acmé",
        "acme\n",
    ];
    for tenant in cases {
        let result = check_tenant_id(tenant);
        assert!(
            matches!(result, Err(TokenError::InvalidTenantId { .. })),
            "{tenant:?}: {result:?}"
        );
    }
}

#[test]
fn user_id_accepts_valid() {
    let longest_ascii = "u".repeat(MAX_USER_ID_LEN);
    // 95 two-byte characters and one byte: 191 bytes.
    let longest_multibyte = format!("{}x", "é".repeat(95));
    let cases = [
        "a",
        "alice@example.com",
        "user/with/slashes",
        "Ünïcødé 名前",
        longest_ascii.as_str(),
        longest_multibyte.as_str(),
    ];
    for user in cases {
        assert!(check_user_id(user).is_ok(), "{user:?}");
    }
}

#[test]
fn user_id_rejects_invalid() {
    let too_long = "u".repeat(MAX_USER_ID_LEN + 1);
    // 96 two-byte characters: 192 bytes in 96 characters.
    let too_long_multibyte = "é".repeat(96);
    let cases = [
        "",
        too_long.as_str(),
        too_long_multibyte.as_str(),
        "ali\nce",
        "alice\t",
        "\0",
        "del\u{7f}",
        "c1\u{85}",
    ];
    for user in cases {
        let result = check_user_id(user);
        assert!(
            matches!(result, Err(TokenError::InvalidUserId { .. })),
            "{user:?}: {result:?}"
        );
    }
}

#[test]
fn id_errors_name_value() {
    let message = check_tenant_id("Acme").unwrap_err().to_string();
    assert!(message.contains("\"Acme\""), "{message}");

    let message = check_user_id("ali\nce").unwrap_err().to_string();
    assert!(message.contains("\"ali\\nce\""), "{message}");
}

#[test]
fn record_id_joins_with_slash() {
    assert_eq!(
        record_id("acme", "alice@example.com"),
        "acme/alice@example.com"
    );

    let longest = record_id(&"t".repeat(MAX_TENANT_ID_LEN), &"u".repeat(MAX_USER_ID_LEN));
    assert_eq!(longest.len(), 256);
}

fn claims() -> TokenClaims {
    TokenClaims {
        tenant: "acme".into(),
        user: "alice@example.com".into(),
        fleet: "fleet-eu-1".into(),
        issued_at: 1_700_000_000,
        expires_at: 1_700_000_300,
    }
}

#[test]
fn mint_rejects_invalid_claims() {
    let key = TenantSigningKey::generate();

    let mut bad_tenant = claims();
    bad_tenant.tenant = "Acme".into();
    assert!(matches!(
        key.mint(&bad_tenant),
        Err(TokenError::InvalidTenantId { .. })
    ));

    let mut bad_user = claims();
    bad_user.user = String::new();
    assert!(matches!(
        key.mint(&bad_user),
        Err(TokenError::InvalidUserId { .. })
    ));

    let mut empty_fleet = claims();
    empty_fleet.fleet = String::new();
    assert!(matches!(
        key.mint(&empty_fleet),
        Err(TokenError::InvalidFleetId { .. })
    ));

    let mut zero_lifetime = claims();
    zero_lifetime.expires_at = zero_lifetime.issued_at;
    assert!(matches!(
        key.mint(&zero_lifetime),
        Err(TokenError::Malformed { .. })
    ));

    let mut huge_fleet = claims();
    huge_fleet.fleet = "f".repeat(4096);
    assert!(matches!(
        key.mint(&huge_fleet),
        Err(TokenError::TooLong { .. })
    ));
}
