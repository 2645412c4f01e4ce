//! RFC 7512 `pkcs11:` URIs, restricted to what keyfleet needs to find its token.
//!
//! Accepted path attributes: `token`, `manufacturer`, `serial`, `model`. Accepted query
//! attributes: `module-path` and `pin-source` (a `file:` URI or an absolute path). A PIN inside
//! the URI (`pin-value`) and slot selection by number (`slot-id`) are rejected, because a PIN
//! must not live in configuration and SoftHSM renumbers slots whenever a token is initialized.

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

use crate::HsmError;

/// The parts of a `pkcs11:` URI that keyfleet uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub module_path: Option<PathBuf>,
    pub pin_file: Option<PathBuf>,
}

impl Pkcs11Uri {
    pub fn parse(uri: &str) -> Result<Self, HsmError> {
        let rest = strip_scheme(uri)?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));

        let mut parsed = Self::default();
        for (name, value) in attributes(path, ';')? {
            parsed.set_path_attribute(name, value)?;
        }
        for (name, value) in attributes(query, '&')? {
            parsed.set_query_attribute(name, value)?;
        }
        Ok(parsed)
    }

    fn set_path_attribute(&mut self, name: &str, value: String) -> Result<(), HsmError> {
        let slot = match name {
            "token" => &mut self.token,
            "manufacturer" => &mut self.manufacturer,
            "serial" => &mut self.serial,
            "model" => &mut self.model,
            "slot-id" => {
                return Err(invalid(
                    "slot-id is not accepted: slot numbers change when a token is initialized, \
                     so select the token with token=LABEL",
                ));
            }
            "object" | "id" | "type" => {
                return Err(invalid(&format!(
                    "{name} is not accepted: name keys in the hsm.keys table instead"
                )));
            }
            other => {
                return Err(invalid(&format!(
                    "path attribute {other:?} is not supported; use token, manufacturer, serial \
                     or model"
                )));
            }
        };
        set_once(slot, name, value)
    }

    fn set_query_attribute(&mut self, name: &str, value: String) -> Result<(), HsmError> {
        match name {
            "module-path" => {
                let path = PathBuf::from(value);
                if !path.is_absolute() {
                    return Err(invalid("module-path must be an absolute path"));
                }
                set_once(&mut self.module_path, name, path)
            }
            "pin-source" => {
                let path = pin_source_path(&value)?;
                set_once(&mut self.pin_file, name, path)
            }
            "pin-value" => Err(invalid(
                "pin-value is not accepted: a PIN must not be written into configuration; use \
                 pin-source=file:/path or hsm.pin_env",
            )),
            "module-name" => Err(invalid(
                "module-name is not supported: give the module's full path with module-path",
            )),
            other => Err(invalid(&format!(
                "query attribute {other:?} is not supported; use module-path or pin-source"
            ))),
        }
    }
}

fn strip_scheme(uri: &str) -> Result<&str, HsmError> {
    const SCHEME: &str = "pkcs11:";

    match uri.get(..SCHEME.len()) {
        Some(scheme) if scheme.eq_ignore_ascii_case(SCHEME) => Ok(&uri[SCHEME.len()..]),
        _ => Err(invalid("the URI must start with \"pkcs11:\"")),
    }
}

/// Splits `part` into decoded `name=value` pairs.
///
/// Error messages name an attribute but never quote a value or an unparsed pair, because a
/// mistyped `pin-value` would otherwise put the PIN into a log line.
fn attributes(part: &str, separator: char) -> Result<Vec<(&str, String)>, HsmError> {
    if part.contains('#') {
        return Err(invalid(
            "a fragment (\"#\") is not allowed in a pkcs11: URI",
        ));
    }

    part.split(separator)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, raw) = pair
                .split_once('=')
                .ok_or_else(|| invalid("an attribute has no \"=\" between name and value"))?;
            if raw.contains(['=', ';', '&', '?']) {
                return Err(invalid(&format!(
                    "the value of {name} contains a raw \"=\", \";\", \"&\" or \"?\"; \
                     percent-encode it, or check the separators (\";\" before \"?\", \"&\" after)"
                )));
            }

            let value = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| invalid(&format!("the value of {name} is not UTF-8")))?;
            if value.is_empty() || value.contains('\0') {
                return Err(invalid(&format!(
                    "the value of {name} is empty or contains NUL"
                )));
            }
            Ok((name, value.into_owned()))
        })
        .collect()
}

fn pin_source_path(value: &str) -> Result<PathBuf, HsmError> {
    let path = value
        .strip_prefix("file://")
        .or_else(|| value.strip_prefix("file:"));
    let path = PathBuf::from(path.unwrap_or(value));
    if !path.is_absolute() {
        return Err(invalid(&format!(
            "pin-source {value:?} must be a file: URI or an absolute path"
        )));
    }
    Ok(path)
}

fn set_once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), HsmError> {
    if slot.is_some() {
        return Err(invalid(&format!("attribute {name} appears twice")));
    }
    *slot = Some(value);
    Ok(())
}

fn invalid(reason: &str) -> HsmError {
    HsmError::InvalidUri {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_full_uri() {
        let uri = "pkcs11:token=vault%20one;serial=42?module-path=/usr/lib/softhsm/\
                   libsofthsm2.so&pin-source=file:/run/secrets/pin";

        let parsed = Pkcs11Uri::parse(uri).unwrap();

        assert_eq!(parsed.token.as_deref(), Some("vault one"));
        assert_eq!(parsed.serial.as_deref(), Some("42"));
        assert_eq!(
            parsed.module_path,
            Some(PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert_eq!(parsed.pin_file, Some(PathBuf::from("/run/secrets/pin")));
    }

    #[test]
    fn parse_accepts_uppercase_scheme() {
        let parsed = Pkcs11Uri::parse("PKCS11:token=a").unwrap();

        assert_eq!(parsed.token.as_deref(), Some("a"));
    }

    #[test]
    fn parse_rejects_unsafe_or_unknown_attributes() {
        let cases = [
            ("pkcs11:token=a?pin-value=1234", "pin-value is not accepted"),
            ("pkcs11:slot-id=3", "slot-id is not accepted"),
            ("pkcs11:token=a;object=k", "hsm.keys"),
            ("pkcs11:colour=red", "not supported"),
            ("pkcs11:token=a;token=b", "appears twice"),
            ("pkcs11:token", "no \"=\""),
            ("pkcs11é", "must start with"),
            ("pkcs11:token=", "empty"),
            ("pkcs11:token=a%00b", "NUL"),
            ("pkcs11:token=a#frag", "fragment"),
            ("pkcs11:?module-path=lib.so", "absolute path"),
            ("pkcs11:token=a&pin-value=1", "raw"),
            ("pkcs11:?pin-source=relative/pin", "absolute path"),
            ("http://example.invalid", "must start with"),
        ];
        for (uri, expected) in cases {
            let error = Pkcs11Uri::parse(uri).unwrap_err();
            assert!(error.to_string().contains(expected), "{uri}: {error}");
        }
    }

    #[test]
    fn rejection_never_echoes_pin_value() {
        let uris = [
            "pkcs11:token=a?pin-value=s3cret",
            "pkcs11:token=a?module-path=/m.so;pin-value=s3cret",
            "pkcs11:token=a&pin-value=s3cret?module-path=/m.so",
            "pkcs11:token=a?pin-values3cret",
        ];

        for uri in uris {
            let error = Pkcs11Uri::parse(uri).unwrap_err();
            assert!(!error.to_string().contains("s3cret"), "{uri}: {error}");
        }
    }
}
