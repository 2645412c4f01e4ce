use std::path::{Path, PathBuf};

use keyfleet_hsm::TransportPublicKey;

use super::{KeysError, hex, public_key};

/// One parsed `keyfleetd keys` command line.
#[derive(Debug, Clone)]
pub enum KeysCommand {
    /// `keys generate`: provisions the fleet sealing key and OPRF seed.
    Generate { config: PathBuf },
    /// `keys transport-key`: provisions the transport key and prints its public point.
    TransportKey { config: PathBuf },
    /// `keys export`: wraps the fleet keys for `recipient` into the file `out`.
    Export {
        config: PathBuf,
        recipient: TransportPublicKey,
        out: PathBuf,
        force: bool,
    },
    /// `keys import`: unwraps the fleet keys from the file `input` into this token.
    Import { config: PathBuf, input: PathBuf },
    /// `keys --help`.
    Help,
}

/// Options of one command line, before they are checked against the subcommand.
#[derive(Default)]
struct Options {
    config: Option<PathBuf>,
    recipient: Option<String>,
    out: Option<PathBuf>,
    input: Option<PathBuf>,
    force: bool,
}

impl KeysCommand {
    /// Parses the arguments that follow `keyfleetd keys`.
    pub fn parse(args: &[String]) -> Result<Self, KeysError> {
        let Some((subcommand, rest)) = args.split_first() else {
            return Err(KeysError::usage(
                "expected a subcommand: generate, transport-key, export or import",
            ));
        };
        if matches!(subcommand.as_str(), "--help" | "-h" | "help")
            || rest.iter().any(|arg| arg == "--help" || arg == "-h")
        {
            return Ok(Self::Help);
        }

        let allowed: &[&str] = match subcommand.as_str() {
            "generate" | "transport-key" => &["--config"],
            "export" => &["--config", "--recipient", "--out", "--force"],
            "import" => &["--config", "--in"],
            other => {
                return Err(KeysError::usage(format!(
                    "unknown subcommand {other:?}; use generate, transport-key, export or import"
                )));
            }
        };
        let mut options = Options::parse(subcommand, rest, allowed)?;

        let config = options.take_config(subcommand)?;
        match subcommand.as_str() {
            "generate" => Ok(Self::Generate { config }),
            "transport-key" => Ok(Self::TransportKey { config }),
            "export" => {
                let recipient = options
                    .recipient
                    .take()
                    .ok_or_else(|| missing("export", "--recipient HEX"))?;
                let out = options
                    .out
                    .take()
                    .ok_or_else(|| missing("export", "--out FILE"))?;
                Ok(Self::Export {
                    config,
                    recipient: parse_recipient(&recipient)?,
                    out,
                    force: options.force,
                })
            }
            _ => {
                let input = options
                    .input
                    .take()
                    .ok_or_else(|| missing("import", "--in FILE"))?;
                Ok(Self::Import { config, input })
            }
        }
    }

    /// Returns the configuration file the command reads.
    pub fn config_path(&self) -> Option<&Path> {
        match self {
            Self::Generate { config }
            | Self::TransportKey { config }
            | Self::Export { config, .. }
            | Self::Import { config, .. } => Some(config),
            Self::Help => None,
        }
    }
}

impl Options {
    fn parse(subcommand: &str, args: &[String], allowed: &[&str]) -> Result<Self, KeysError> {
        let mut options = Self::default();
        let mut args = args.iter();

        while let Some(flag) = args.next() {
            if !allowed.contains(&flag.as_str()) {
                return Err(KeysError::usage(format!(
                    "{flag:?} is not an option of `keys {subcommand}`; it takes {}",
                    allowed.join(", ")
                )));
            }
            if flag == "--force" {
                options.force = true;
                continue;
            }

            let value = args.next().ok_or_else(|| {
                KeysError::usage(format!("{flag} needs a value, for example {flag} VALUE"))
            })?;
            let slot_taken = match flag.as_str() {
                "--config" => options.config.replace(value.into()).is_some(),
                "--recipient" => options.recipient.replace(value.clone()).is_some(),
                "--out" => options.out.replace(value.into()).is_some(),
                _ => options.input.replace(value.into()).is_some(),
            };
            if slot_taken {
                return Err(KeysError::usage(format!("{flag} is given more than once")));
            }
        }
        Ok(options)
    }

    fn take_config(&mut self, subcommand: &str) -> Result<PathBuf, KeysError> {
        self.config
            .take()
            .ok_or_else(|| missing(subcommand, "--config PATH"))
    }
}

fn missing(subcommand: &str, option: &str) -> KeysError {
    KeysError::usage(format!("`keys {subcommand}` needs {option}"))
}

fn parse_recipient(text: &str) -> Result<TransportPublicKey, KeysError> {
    let invalid = |reason: String| {
        KeysError::usage(format!(
            "--recipient is not a transport public key: {reason}; pass the hexadecimal line \
             that `keyfleetd keys transport-key` printed on the recipient node"
        ))
    };

    let point = hex::decode(text.trim()).map_err(invalid)?;
    public_key::parse_sec1(&point).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    fn point_hex() -> String {
        format!("04{}", "ab".repeat(64))
    }

    #[test]
    fn parse_each_subcommand() {
        let generate = KeysCommand::parse(&args("generate --config a.toml")).unwrap();
        let export = KeysCommand::parse(&args(&format!(
            "export --out f.json --force --recipient {} --config a.toml",
            point_hex()
        )))
        .unwrap();
        let import = KeysCommand::parse(&args("import --config a.toml --in f.json")).unwrap();

        assert!(matches!(generate, KeysCommand::Generate { .. }));
        assert!(matches!(export, KeysCommand::Export { force: true, .. }));
        assert!(matches!(import, KeysCommand::Import { .. }));
        assert_eq!(import.config_path(), Some(Path::new("a.toml")));
    }

    #[test]
    fn parse_help() {
        assert!(matches!(
            KeysCommand::parse(&args("--help")).unwrap(),
            KeysCommand::Help
        ));
        assert!(matches!(
            KeysCommand::parse(&args("export -h")).unwrap(),
            KeysCommand::Help
        ));
    }

    #[test]
    fn parse_rejects_bad_lines() {
        let recipient = point_hex();
        let cases = [
            (String::new(), "expected a subcommand"),
            ("rotate --config a".into(), "unknown subcommand"),
            ("generate".into(), "needs --config PATH"),
            ("generate --config".into(), "needs a value"),
            ("generate --config a --config b".into(), "more than once"),
            ("generate --config a --force".into(), "not an option"),
            ("import --config a".into(), "needs --in FILE"),
            ("export --config a --out f".into(), "needs --recipient HEX"),
            (
                format!("export --config a --recipient {recipient}"),
                "needs --out FILE",
            ),
            (
                "export --config a --out f --recipient 04abc".into(),
                "odd number",
            ),
            (
                "export --config a --out f --recipient 0411".into(),
                "65-byte uncompressed P-256 point",
            ),
        ];

        for (line, expected) in cases {
            let error = KeysCommand::parse(&args(&line)).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{line}");
            assert!(error.to_string().contains(expected), "{line}: {error}");
        }
    }
}
