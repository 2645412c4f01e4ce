//! `keyfleetd recover-quorum --config PATH --voters ID,...`: makes the named survivors the only
//! voters of a stopped node, for a cluster that lost a majority of its voters for good.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::NodeConfig;

const USAGE: &str = "usage: keyfleetd recover-quorum --config PATH --voters ID[,ID...]\n\n\
    Run it only when a majority of the voters is lost for good, while this node is stopped, and\n\
    on one survivor only: the one with the highest last log term, then index. List every\n\
    survivor, this node included. It appends a membership entry that makes them the only\n\
    voters; start this node first, then the other survivors unchanged. The new leader commits\n\
    every entry in its log, including writes that never reached a majority before. Never start\n\
    a lost node again under its id.";

/// Runs the command on `args` (the arguments after `recover-quorum`) and returns the exit code:
/// 0 on success, 1 when the stores fail, 2 on a usage error.
pub fn main(args: &[String]) -> ExitCode {
    let (config_path, voters) = match parse(args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match NodeConfig::load(&config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("keyfleetd: {error}");
            return ExitCode::from(2);
        }
    };
    crate::init_logging(config.log_format, crate::NODE_LOG_FILTER);

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("keyfleetd: failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let recovered = runtime.block_on(keyfleet_raft::force_voters(
        &config.data_dir,
        config.node_id,
        &voters,
    ));
    match recovered {
        Ok(recovery) => {
            tracing::warn!(
                node_id = config.node_id,
                previous_voters = ?recovery.previous_voters,
                voters = ?recovery.voters,
                log_index = recovery.log_id.index,
                term = recovery.log_id.leader_id.term,
                "forced a new voter set after a lost quorum"
            );
            println!(
                "node {}: voters {:?} replaced by {:?} at log index {}; start the node now",
                config.node_id, recovery.previous_voters, recovery.voters, recovery.log_id.index
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("keyfleetd: recover-quorum failed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<(PathBuf, BTreeSet<u64>), String> {
    let mut config = None;
    let mut voters = None;
    let mut rest = args.iter();

    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| format!("keyfleetd: {flag} needs a value"))?;
        match flag.as_str() {
            "--config" => config = Some(PathBuf::from(value)),
            "--voters" => voters = Some(parse_voters(value)?),
            _ => return Err(format!("keyfleetd: unknown option {flag:?}")),
        }
    }

    let config = config.ok_or("keyfleetd: --config is missing")?;
    let voters = voters.ok_or("keyfleetd: --voters is missing")?;
    Ok((config, voters))
}

fn parse_voters(value: &str) -> Result<BTreeSet<u64>, String> {
    let mut voters = BTreeSet::new();
    for part in value.split(',') {
        let id: u64 = part.trim().parse().map_err(|_| {
            format!("keyfleetd: --voters {value:?} is invalid: write node ids such as 1,2")
        })?;
        if id == 0 {
            return Err("keyfleetd: node id 0 is reserved; ids start at 1".to_owned());
        }
        voters.insert(id);
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_parse() {
        assert_eq!(parse_voters("3").unwrap(), BTreeSet::from([3]));
        assert_eq!(parse_voters("2, 1").unwrap(), BTreeSet::from([1, 2]));
        for bad in ["", "0", "a", "1,,2"] {
            assert!(parse_voters(bad).is_err(), "{bad:?}");
        }
    }
}
