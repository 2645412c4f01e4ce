use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::uri::Pkcs11Uri;
use crate::{Exportability, HsmError, KeyKind, KeyLabel, KeySpec};

/// Default number of PKCS#11 sessions a node keeps open, and so of HSM calls in flight.
pub const DEFAULT_MAX_SESSIONS: usize = 4;

/// The `[hsm]` section of a node's configuration, as written by an operator.
///
/// The token is chosen by label, never by slot number, because SoftHSM and several hardware
/// HSMs renumber slots when a token is initialized. The PIN comes from an environment variable
/// or a file, never from this section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// Path of the vendor's PKCS#11 module.
    pub module: Option<PathBuf>,
    /// `CKA_LABEL` of the token to use.
    pub token_label: Option<String>,
    /// An RFC 7512 `pkcs11:` URI, in place of or agreeing with `module` and `token_label`.
    pub uri: Option<String>,
    /// Name of the environment variable that contains the user PIN.
    pub pin_env: Option<String>,
    /// Path of a file whose first line is the user PIN.
    pub pin_file: Option<PathBuf>,
    /// Labels of the token keys.
    #[serde(default)]
    pub keys: KeyLabels,
    /// Maximum number of open PKCS#11 sessions.
    pub max_sessions: Option<usize>,
    /// Present only to reject it with a clear message.
    #[serde(default)]
    pin: Option<IgnoredAny>,
}

/// Labels of the keys a node uses in its token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyLabels {
    /// AES-256 key that seals stored records.
    pub seal: KeyLabel,
    /// HMAC-SHA512 secret from which per-user OPRF keys are derived.
    pub oprf_seed: KeyLabel,
    /// Ed25519 key that signs on behalf of the fleet.
    pub signing: KeyLabel,
    /// P-256 key pair that receives wrapped fleet keys from another token.
    pub transport: KeyLabel,
}

impl Default for KeyLabels {
    fn default() -> Self {
        let label = |text: &str| KeyLabel::new(text).expect("default labels are valid");
        Self {
            seal: label("keyfleet-seal"),
            oprf_seed: label("keyfleet-oprf-seed"),
            signing: label("keyfleet-signing"),
            transport: label("keyfleet-transport"),
        }
    }
}

impl KeyLabels {
    /// Returns the keys a vault node keeps in its token and the policy each must meet. The
    /// sealing key and the OPRF seed are fleet-wide, so they may leave the token, but only
    /// wrapped for another token.
    pub fn specs(&self) -> Vec<KeySpec> {
        vec![
            KeySpec::new(
                self.seal.clone(),
                KeyKind::SealAes256,
                Exportability::WrappedOnly,
            ),
            KeySpec::new(
                self.oprf_seed.clone(),
                KeyKind::HmacSha512,
                Exportability::WrappedOnly,
            ),
            KeySpec::new(
                self.signing.clone(),
                KeyKind::SigningEd25519,
                Exportability::Never,
            ),
            KeySpec::new(
                self.transport.clone(),
                KeyKind::TransportP256,
                Exportability::Never,
            ),
        ]
    }
}

/// Source of the user PIN. Displaying it names the source, never the PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    Env(String),
    File(PathBuf),
}

/// Token selection: the label, narrowed further by any of the other fields that are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSelector {
    pub label: String,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
}

/// A validated [`HsmConfig`].
#[derive(Debug, Clone)]
pub struct HsmSettings {
    pub module: PathBuf,
    pub token: TokenSelector,
    pub pin: PinSource,
    pub keys: KeyLabels,
    pub max_sessions: usize,
}

impl HsmConfig {
    /// Checks the section and merges the URI with the plain fields.
    pub fn resolve(&self) -> Result<HsmSettings, HsmError> {
        if self.pin.is_some() {
            return Err(invalid(
                "hsm.pin",
                "a PIN is not accepted in the configuration file; set hsm.pin_env to the name \
                 of an environment variable or hsm.pin_file to a file that holds it",
            ));
        }

        let uri = match &self.uri {
            Some(text) => Pkcs11Uri::parse(text)?,
            None => Pkcs11Uri::default(),
        };

        let module = merge("hsm.module", self.module.clone(), uri.module_path)?
            .ok_or_else(|| invalid("hsm.module", "set it to the PKCS#11 module's path"))?;
        let label = merge("hsm.token_label", self.token_label.clone(), uri.token)?
            .ok_or_else(|| invalid("hsm.token_label", "set it to the token's label"))?;
        let pin = self.pin_source(uri.pin_file)?;
        let max_sessions = self.max_sessions.unwrap_or(DEFAULT_MAX_SESSIONS);
        if max_sessions == 0 {
            return Err(invalid("hsm.max_sessions", "must be at least 1"));
        }

        Ok(HsmSettings {
            module,
            token: TokenSelector {
                label,
                manufacturer: uri.manufacturer,
                serial: uri.serial,
                model: uri.model,
            },
            pin,
            keys: self.keys.clone(),
            max_sessions,
        })
    }

    fn pin_source(&self, uri_file: Option<PathBuf>) -> Result<PinSource, HsmError> {
        let file = merge("hsm.pin_file", self.pin_file.clone(), uri_file)?;
        match (&self.pin_env, file) {
            (Some(_), Some(_)) => Err(invalid(
                "hsm.pin_env",
                "set either hsm.pin_env or a PIN file (hsm.pin_file or the URI's pin-source), \
                 not both",
            )),
            (Some(name), None) if name.is_empty() => {
                Err(invalid("hsm.pin_env", "the variable name is empty"))
            }
            (Some(name), None) => Ok(PinSource::Env(name.clone())),
            (None, Some(path)) => Ok(PinSource::File(path)),
            (None, None) => Err(invalid(
                "hsm.pin_env",
                "no PIN source: set hsm.pin_env or hsm.pin_file",
            )),
        }
    }
}

impl PinSource {
    /// Reads the PIN. A file's first line is the PIN; a trailing newline is dropped.
    pub fn read(&self) -> Result<SecretString, HsmError> {
        let unavailable = |reason: String| HsmError::PinUnavailable {
            pin_source: self.to_string(),
            reason,
        };

        let raw = match self {
            Self::Env(name) => std::env::var(name)
                .map_err(|_| unavailable("the variable is not set or not UTF-8".into()))?,
            Self::File(path) => {
                warn_if_readable_by_others(path);
                std::fs::read_to_string(path).map_err(|error| unavailable(error.to_string()))?
            }
        };

        let pin = raw.lines().next().unwrap_or("").to_owned();
        drop(zeroize::Zeroizing::new(raw));
        if pin.is_empty() {
            return Err(unavailable("the PIN is empty".into()));
        }
        Ok(SecretString::from(pin))
    }
}

impl fmt::Display for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;

    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "HSM PIN file is readable by group or others; restrict it with chmod 600"
            );
        }
    }
}

fn merge<T: PartialEq>(
    field: &'static str,
    plain: Option<T>,
    from_uri: Option<T>,
) -> Result<Option<T>, HsmError> {
    match (plain, from_uri) {
        (Some(a), Some(b)) if a != b => Err(invalid(
            field,
            "the value disagrees with hsm.uri; set it in one place",
        )),
        (plain, from_uri) => Ok(plain.or(from_uri)),
    }
}

fn invalid(field: &'static str, reason: &str) -> HsmError {
    HsmError::InvalidConfig {
        field,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn parse(text: &str) -> Result<HsmSettings, HsmError> {
        let config: HsmConfig = toml::from_str(text).map_err(|error| HsmError::InvalidConfig {
            field: "toml",
            reason: error.to_string(),
        })?;
        config.resolve()
    }

    #[test]
    fn resolve_plain_fields() {
        let settings = parse(
            r#"
            module = "/usr/lib/softhsm/libsofthsm2.so"
            token_label = "node-1"
            pin_env = "KEYFLEET_HSM_PIN"
            [keys]
            seal = "seal-v2"
            "#,
        )
        .unwrap();

        assert_eq!(settings.token.label, "node-1");
        assert_eq!(settings.pin, PinSource::Env("KEYFLEET_HSM_PIN".into()));
        assert_eq!(settings.keys.seal.as_str(), "seal-v2");
        assert_eq!(settings.keys.signing.as_str(), "keyfleet-signing");
        assert_eq!(settings.max_sessions, DEFAULT_MAX_SESSIONS);
    }

    #[test]
    fn example_configuration_resolves() {
        #[derive(Deserialize)]
        struct File {
            hsm: HsmConfig,
        }
        let text = include_str!("../../../deploy/hsm.example.toml");

        let file: File = toml::from_str(text).unwrap();
        let settings = file.hsm.resolve().unwrap();

        assert_eq!(settings.token.label, "keyfleet-node-1");
        assert_eq!(settings.keys, KeyLabels::default());
    }

    #[test]
    fn resolve_uri() {
        let settings = parse(
            r#"uri = "pkcs11:token=node-2?module-path=/opt/hsm.so&pin-source=file:/run/pin""#,
        )
        .unwrap();

        assert_eq!(settings.module, PathBuf::from("/opt/hsm.so"));
        assert_eq!(settings.token.label, "node-2");
        assert_eq!(settings.pin, PinSource::File("/run/pin".into()));
    }

    #[test]
    fn resolve_rejects_bad_sections() {
        let cases = [
            (
                "module = \"/m.so\"\ntoken_label = \"t\"\npin = \"1234\"",
                "not accepted in the configuration file",
            ),
            ("token_label = \"t\"\npin_env = \"P\"", "hsm.module"),
            ("module = \"/m.so\"\npin_env = \"P\"", "hsm.token_label"),
            ("module = \"/m.so\"\ntoken_label = \"t\"", "no PIN source"),
            (
                "module = \"/m.so\"\ntoken_label = \"t\"\npin_env = \"P\"\npin_file = \"/p\"",
                "not both",
            ),
            (
                "uri = \"pkcs11:token=a?module-path=/m.so\"\ntoken_label = \"b\"\npin_env = \"P\"",
                "disagrees with hsm.uri",
            ),
            (
                "module = \"/m.so\"\ntoken_label = \"t\"\npin_env = \"P\"\nmax_sessions = 0",
                "at least 1",
            ),
            ("module = \"/m.so\"\nslot = 3", "unknown field"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.to_string().contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn rejected_pin_is_not_echoed() {
        let error = parse("module = \"/m.so\"\ntoken_label = \"t\"\npin = \"s3cret\"")
            .unwrap_err()
            .to_string();

        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn pin_file_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "1234\n").unwrap();

        let pin = PinSource::File(path).read().unwrap();

        assert_eq!(pin.expose_secret(), "1234");
    }

    #[test]
    fn pin_sources_report_missing_pin() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();

        let cases = [
            (PinSource::File(dir.path().join("absent")), "No such file"),
            (PinSource::File(empty), "the PIN is empty"),
            (
                PinSource::Env("KEYFLEET_TEST_UNSET_PIN_VARIABLE".into()),
                "not set",
            ),
        ];
        for (source, expected) in cases {
            let error = source.read().unwrap_err().to_string();
            assert!(error.contains(expected), "{source}: {error}");
        }
    }
}
