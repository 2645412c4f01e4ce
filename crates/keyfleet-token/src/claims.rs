//! The claims of a tenant token and their strict JSON decoding.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::TokenError;
use crate::ids::{check_fleet_id, check_tenant_id, check_user_id};

/// The claims of a tenant token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// The tenant id, claim "iss".
    pub tenant: String,
    /// The user id within the tenant, claim "sub".
    pub user: String,
    /// The fleet id, claim "aud" (a single string).
    pub fleet: String,
    /// Claim "iat", in Unix seconds.
    pub issued_at: u64,
    /// Claim "exp", in Unix seconds.
    pub expires_at: u64,
}

/// The JSON form of [`TokenClaims`], in the field order that [`TokenClaims::to_json`] writes.
#[derive(Serialize)]
struct ClaimsJson<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// Claims decoded from a token: the five required ones, and "nbf" if present.
#[derive(Debug)]
pub(crate) struct DecodedClaims {
    pub(crate) claims: TokenClaims,
    pub(crate) not_before: Option<u64>,
}

impl TokenClaims {
    /// Checks the tenant, user and fleet ids.
    pub(crate) fn check_ids(&self) -> Result<(), TokenError> {
        check_tenant_id(&self.tenant)?;
        check_user_id(&self.user)?;
        check_fleet_id(&self.fleet)
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        let json = ClaimsJson {
            iss: &self.tenant,
            sub: &self.user,
            aud: &self.fleet,
            iat: self.issued_at,
            exp: self.expires_at,
        };
        serde_json::to_vec(&json).expect("serializing strings and integers to JSON cannot fail")
    }
}

/// Decodes a claims set: a JSON object with string "iss", "sub" and "aud" and non-negative
/// integer "iat" and "exp". Rejects a repeated member name, including one spelled with
/// escapes. Other claims are ignored, except "nbf", which must be an integer if present.
pub(crate) fn decode_claims(json: &[u8]) -> Result<DecodedClaims, TokenError> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let decoded = deserializer
        .deserialize_map(ClaimsVisitor)
        .and_then(|decoded| deserializer.end().map(|()| decoded))
        .map_err(|error| TokenError::malformed(format!("invalid claims: {error}")))?;
    Ok(decoded)
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = DecodedClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of JWT claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DecodedClaims, A::Error> {
        let mut seen = HashSet::new();
        let mut iss = None;
        let mut sub = None;
        let mut aud = None;
        let mut iat = None;
        let mut exp = None;
        let mut nbf = None;

        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                return Err(de::Error::custom(format!(
                    "claim {} appears more than once",
                    crate::error::shown(&name)
                )));
            }
            match name.as_str() {
                "iss" => iss = Some(next_string(&mut map, "iss")?),
                "sub" => sub = Some(next_string(&mut map, "sub")?),
                "aud" => aud = Some(next_string(&mut map, "aud")?),
                "iat" => iat = Some(next_seconds(&mut map, "iat")?),
                "exp" => exp = Some(next_seconds(&mut map, "exp")?),
                "nbf" => nbf = Some(next_seconds(&mut map, "nbf")?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }

        let claims = TokenClaims {
            tenant: iss.ok_or_else(|| missing("iss"))?,
            user: sub.ok_or_else(|| missing("sub"))?,
            fleet: aud.ok_or_else(|| missing("aud"))?,
            issued_at: iat.ok_or_else(|| missing("iat"))?,
            expires_at: exp.ok_or_else(|| missing("exp"))?,
        };
        Ok(DecodedClaims {
            claims,
            not_before: nbf,
        })
    }
}

fn next_string<'de, A: MapAccess<'de>>(map: &mut A, name: &str) -> Result<String, A::Error> {
    map.next_value::<String>()
        .map_err(|_| de::Error::custom(format!("claim \"{name}\" must be a JSON string")))
}

fn next_seconds<'de, A: MapAccess<'de>>(map: &mut A, name: &str) -> Result<u64, A::Error> {
    map.next_value::<u64>().map_err(|_| {
        de::Error::custom(format!(
            "claim \"{name}\" must be a non-negative integer of Unix seconds below 2^64"
        ))
    })
}

fn missing<E: de::Error>(name: &str) -> E {
    E::custom(format!("claim \"{name}\" is missing"))
}
