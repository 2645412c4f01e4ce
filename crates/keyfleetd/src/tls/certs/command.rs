use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use super::CertsError;

/// Default validity of the fleet CA certificate, in days.
pub(crate) const CA_DAYS: u32 = 3650;
/// Default validity of node and operator certificates, in days.
pub(crate) const LEAF_DAYS: u32 = 365;

/// One parsed `keyfleetd certs` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertsCommand {
    /// `certs init-ca`: creates the fleet CA key and certificate.
    InitCa { config: PathBuf, days: u32 },
    /// `certs issue-node`: issues the certificate of node `node_id`.
    IssueNode {
        config: PathBuf,
        node_id: u64,
        dns: Vec<String>,
        ips: Vec<IpAddr>,
        output: Output,
    },
    /// `certs issue-operator`: issues an operator client certificate.
    IssueOperator {
        config: PathBuf,
        name: String,
        output: Output,
    },
    /// `certs fingerprint`: prints the SHA-256 fingerprint of the fleet CA certificate.
    Fingerprint { config: PathBuf },
    /// `certs --help`.
    Help,
}

/// Output paths of an issued certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub days: u32,
    pub force: bool,
}

/// Flags with their values, in order of appearance.
struct Flags {
    subcommand: String,
    values: BTreeMap<String, Vec<String>>,
    force: bool,
}

impl CertsCommand {
    /// Parses the arguments that follow `keyfleetd certs`.
    pub fn parse(args: &[String]) -> Result<Self, CertsError> {
        let Some((subcommand, rest)) = args.split_first() else {
            return Err(CertsError::usage(
                "expected a subcommand: init-ca, issue-node, issue-operator or fingerprint",
            ));
        };
        if matches!(subcommand.as_str(), "--help" | "-h" | "help")
            || rest.iter().any(|arg| arg == "--help" || arg == "-h")
        {
            return Ok(Self::Help);
        }
        let allowed: &[&str] = match subcommand.as_str() {
            "init-ca" => &["--config", "--days"],
            "fingerprint" => &["--config"],
            "issue-node" => &[
                "--config",
                "--node-id",
                "--dns",
                "--ip",
                "--cert-out",
                "--key-out",
                "--days",
                "--force",
            ],
            "issue-operator" => &[
                "--config",
                "--name",
                "--cert-out",
                "--key-out",
                "--days",
                "--force",
            ],
            other => {
                return Err(CertsError::usage(format!(
                    "unknown subcommand {other:?}; use init-ca, issue-node, issue-operator or \
                     fingerprint"
                )));
            }
        };
        let mut flags = Flags::parse(subcommand, rest, allowed)?;
        let config = PathBuf::from(flags.single("--config")?);

        match subcommand.as_str() {
            "init-ca" => Ok(Self::InitCa {
                config,
                days: flags.days(CA_DAYS)?,
            }),
            "fingerprint" => Ok(Self::Fingerprint { config }),
            "issue-node" => {
                let node_id = flags.single("--node-id")?;
                let node_id = match node_id.parse::<u64>() {
                    Ok(id) if id > 0 => id,
                    _ => {
                        return Err(CertsError::usage(format!(
                            "--node-id {node_id:?} is not a node id; pass an integer of 1 or more"
                        )));
                    }
                };
                let ips = flags
                    .all("--ip")
                    .into_iter()
                    .map(|ip| {
                        ip.parse::<IpAddr>().map_err(|_| {
                            CertsError::usage(format!(
                                "--ip {ip:?} is not an IP address; pass one such as 10.0.0.5"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let dns = flags.all("--dns");
                Ok(Self::IssueNode {
                    config,
                    node_id,
                    dns,
                    ips,
                    output: flags.output()?,
                })
            }
            _ => Ok(Self::IssueOperator {
                config,
                name: flags.single("--name")?,
                output: flags.output()?,
            }),
        }
    }

    /// Returns the configuration file the command reads.
    pub fn config_path(&self) -> Option<&std::path::Path> {
        match self {
            Self::InitCa { config, .. }
            | Self::IssueNode { config, .. }
            | Self::IssueOperator { config, .. }
            | Self::Fingerprint { config } => Some(config),
            Self::Help => None,
        }
    }
}

impl Flags {
    fn parse(subcommand: &str, args: &[String], allowed: &[&str]) -> Result<Self, CertsError> {
        let mut flags = Self {
            subcommand: subcommand.to_owned(),
            values: BTreeMap::new(),
            force: false,
        };
        let mut args = args.iter();

        while let Some(flag) = args.next() {
            if !allowed.contains(&flag.as_str()) {
                return Err(CertsError::usage(format!(
                    "{flag:?} is not an option of `certs {subcommand}`; it takes {}",
                    allowed.join(", ")
                )));
            }
            if flag == "--force" {
                flags.force = true;
                continue;
            }
            let value = args.next().ok_or_else(|| {
                CertsError::usage(format!("{flag} needs a value, for example {flag} VALUE"))
            })?;
            flags
                .values
                .entry(flag.clone())
                .or_default()
                .push(value.clone());
        }
        Ok(flags)
    }

    /// Takes the one value of `flag`, which must be given exactly once.
    fn single(&mut self, flag: &str) -> Result<String, CertsError> {
        match self.values.remove(flag).as_deref() {
            Some([value]) => Ok(value.clone()),
            Some(_) => Err(CertsError::usage(format!("{flag} is given more than once"))),
            None => Err(CertsError::usage(format!(
                "`certs {}` needs {flag}",
                self.subcommand
            ))),
        }
    }

    fn all(&mut self, flag: &str) -> Vec<String> {
        self.values.remove(flag).unwrap_or_default()
    }

    fn days(&mut self, default: u32) -> Result<u32, CertsError> {
        if !self.values.contains_key("--days") {
            return Ok(default);
        }
        let text = self.single("--days")?;
        match text.parse::<u32>() {
            Ok(days) if (1..=36_500).contains(&days) => Ok(days),
            _ => Err(CertsError::usage(format!(
                "--days {text:?} is not a validity; pass a number of days from 1 to 36500"
            ))),
        }
    }

    fn output(&mut self) -> Result<Output, CertsError> {
        Ok(Output {
            cert: PathBuf::from(self.single("--cert-out")?),
            key: PathBuf::from(self.single("--key-out")?),
            days: self.days(LEAF_DAYS)?,
            force: self.force,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parse_issue_node() {
        let command = CertsCommand::parse(&args(
            "issue-node --config a.toml --node-id 3 --dns n3.example --ip 127.0.0.1 \
             --ip ::1 --cert-out n.pem --key-out n.key --force",
        ))
        .unwrap();

        let CertsCommand::IssueNode {
            node_id,
            dns,
            ips,
            output,
            ..
        } = command
        else {
            panic!("expected issue-node: {command:?}");
        };
        assert_eq!(node_id, 3);
        assert_eq!(dns, ["n3.example"]);
        assert_eq!(ips.len(), 2);
        assert!(output.force);
        assert_eq!(output.days, LEAF_DAYS);
    }

    #[test]
    fn parse_rejects_bad_lines() {
        let cases = [
            ("", "expected a subcommand"),
            ("revoke --config a", "unknown subcommand"),
            ("init-ca", "needs --config"),
            ("init-ca --config a --config b", "more than once"),
            ("init-ca --config a --days 0", "number of days"),
            ("issue-node --config a --node-id 0", "integer of 1 or more"),
            ("issue-node --config a --node-id x", "integer of 1 or more"),
            (
                "issue-node --config a --node-id 1 --ip nope --cert-out c --key-out k",
                "not an IP address",
            ),
            (
                "issue-node --config a --node-id 1 --key-out k",
                "needs --cert-out",
            ),
            (
                "issue-operator --config a --cert-out c --key-out k",
                "needs --name",
            ),
            ("fingerprint --config a --force", "not an option"),
        ];

        for (line, expected) in cases {
            let error = CertsCommand::parse(&args(line)).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{line}");
            assert!(error.to_string().contains(expected), "{line}: {error}");
        }
    }
}
