use std::path::PathBuf;

use zeroize::Zeroizing;

/// Largest join token file read, in bytes.
const MAX_TOKEN_FILE_LEN: u64 = 4096;

/// One parsed `keyfleetd join` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinCommand {
    pub config: PathBuf,
    /// Node API addresses of fleet members.
    pub fleet: Vec<String>,
    pub token_file: PathBuf,
}

impl JoinCommand {
    /// Parses the arguments after `keyfleetd join`. Returns `None` for `--help`.
    pub fn parse(args: &[String]) -> Result<Option<Self>, String> {
        if args.iter().any(|arg| arg == "--help" || arg == "-h") {
            return Ok(None);
        }
        let mut config = None;
        let mut fleet = None;
        let mut token_file = None;
        let mut args = args.iter();

        while let Some(flag) = args.next() {
            let slot = match flag.as_str() {
                "--config" => &mut config,
                "--fleet" => &mut fleet,
                "--token-file" => &mut token_file,
                other => {
                    return Err(format!(
                        "{other:?} is not an option of `join`; it takes --config, --fleet and \
                         --token-file"
                    ));
                }
            };
            let value = args
                .next()
                .ok_or_else(|| format!("{flag} needs a value, for example {flag} VALUE"))?;
            if slot.replace(value.clone()).is_some() {
                return Err(format!("{flag} is given more than once"));
            }
        }

        let missing = |flag: &str| format!("`join` needs {flag}");
        let fleet: Vec<String> = fleet
            .ok_or_else(|| missing("--fleet ADDR[,ADDR...]"))?
            .split(',')
            .map(str::trim)
            .filter(|address| !address.is_empty())
            .map(str::to_owned)
            .collect();
        if fleet.is_empty() {
            return Err("--fleet names no address; pass host:port of a fleet member".to_owned());
        }
        Ok(Some(Self {
            config: config.ok_or_else(|| missing("--config PATH"))?.into(),
            fleet,
            token_file: token_file
                .ok_or_else(|| missing("--token-file FILE"))?
                .into(),
        }))
    }

    /// Reads the join token from the first line of the token file.
    pub fn read_token(&self) -> Result<Zeroizing<String>, String> {
        use std::io::Read;

        let shown = self.token_file.display();
        let file = std::fs::File::open(&self.token_file)
            .map_err(|error| format!("reading the join token file {shown} failed: {error}"))?;
        let mut text = Zeroizing::new(String::new());
        file.take(MAX_TOKEN_FILE_LEN)
            .read_to_string(&mut text)
            .map_err(|error| format!("reading the join token file {shown} failed: {error}"))?;

        let token = text.lines().next().unwrap_or_default().trim();
        if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "the join token file {shown} has no token on its first line; write the token \
                 that `keyfleet members join-token` printed there"
            ));
        }
        Ok(Zeroizing::new(token.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parse_full_line() {
        let command = JoinCommand::parse(&args(
            "--config n4.toml --fleet 127.0.0.1:1,127.0.0.1:2 --token-file t",
        ))
        .unwrap()
        .unwrap();

        assert_eq!(command.config, PathBuf::from("n4.toml"));
        assert_eq!(command.fleet, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(command.token_file, PathBuf::from("t"));
    }

    #[test]
    fn parse_rejects_bad_lines() {
        let cases = [
            ("--config a --fleet x", "needs --token-file"),
            ("--config a --token-file t", "needs --fleet"),
            ("--fleet x --token-file t", "needs --config"),
            ("--config a --config b", "more than once"),
            ("--config", "needs a value"),
            ("--config a --fleet , --token-file t", "names no address"),
            ("--force", "not an option"),
        ];

        for (line, expected) in cases {
            let error = JoinCommand::parse(&args(line)).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
        assert_eq!(JoinCommand::parse(&args("--help")), Ok(None));
    }

    #[test]
    fn read_token_takes_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\nrest\n").unwrap();
        let mut command = JoinCommand::parse(&args("--config a --fleet x --token-file t"))
            .unwrap()
            .unwrap();
        command.token_file = path.clone();

        assert_eq!(command.read_token().unwrap().as_str(), "abc123");

        std::fs::write(&path, "\n").unwrap();
        assert!(command.read_token().unwrap_err().contains("no token"));
    }
}
