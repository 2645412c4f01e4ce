use clap::CommandFactory;
use clap::error::ErrorKind;

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("keyfleet").chain(args.iter().copied()))
}

fn parse_error(args: &[&str]) -> clap::Error {
    parse(args).expect_err("arguments are rejected")
}

const ENDPOINTS: [&str; 2] = ["--endpoints", "10.0.0.1:7201,10.0.0.2:7201"];

#[test]
fn command_definition_is_valid() {
    Cli::command().debug_assert();
}

#[test]
fn register_with_secret_file() {
    let cli = parse(&[
        "register",
        ENDPOINTS[0],
        ENDPOINTS[1],
        "--user",
        "alice",
        "--token-file",
        "token.jwt",
        "--secret-file",
        "secret.bin",
        "--max-guesses",
        "5",
        "--json",
    ])
    .unwrap();

    let Command::Register(args) = cli.command else {
        panic!("parsed {:?}", cli.command);
    };
    assert_eq!(
        args.vault.connection.endpoints,
        ["10.0.0.1:7201", "10.0.0.2:7201"]
    );
    assert_eq!(args.vault.user, "alice");
    assert_eq!(args.vault.token_file, Some(PathBuf::from("token.jwt")));
    assert_eq!(args.secret_file, Some(PathBuf::from("secret.bin")));
    assert_eq!(args.max_guesses, 5);
    assert_eq!(args.vault.connection.deadline_secs, 30);
    assert!(args.vault.connection.json);
    assert!(!args.generate_secret);
}

#[test]
fn register_defaults() {
    let cli = parse(&[
        "register",
        "--user",
        "alice",
        "--generate-secret",
        "--print-secret",
    ])
    .unwrap();

    let Command::Register(args) = cli.command else {
        panic!("parsed {:?}", cli.command);
    };
    let expected: Vec<String> = match std::env::var("KEYFLEET_ENDPOINTS") {
        Ok(value) => value.split(',').map(str::to_owned).collect(),
        Err(_) => DEFAULT_ENDPOINTS.split(',').map(str::to_owned).collect(),
    };
    assert_eq!(args.vault.connection.endpoints, expected);
    assert_eq!(args.max_guesses, 0);
    assert_eq!(args.password.password_file, None);
    assert!(args.print_secret);
}

#[test]
fn register_needs_a_secret_source() {
    let error = parse_error(&["register", "--user", "alice"]);

    assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
    assert_eq!(error.exit_code(), 2);
}

#[test]
fn secret_file_conflicts_with_generate() {
    let error = parse_error(&[
        "register",
        "--user",
        "alice",
        "--secret-file",
        "secret.bin",
        "--generate-secret",
    ]);

    assert_eq!(error.kind(), ErrorKind::ArgumentConflict);
}

#[test]
fn user_is_required() {
    let error = parse_error(&["state", "--token-file", "token.jwt"]);

    assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
}

#[test]
fn secrets_are_never_options() {
    for option in ["--password", "--token", "--secret"] {
        let error = parse_error(&["recover", "--user", "alice", option, "value"]);

        assert_eq!(error.kind(), ErrorKind::UnknownArgument, "{option}");
    }
}

#[test]
fn zero_deadline_is_rejected() {
    let error = parse_error(&["state", "--user", "alice", "--deadline-secs", "0"]);

    assert_eq!(error.kind(), ErrorKind::ValueValidation);
}

#[test]
fn recover_outputs() {
    let cli = parse(&[
        "recover",
        "--user",
        "alice",
        "--password-file",
        "password.txt",
        "--out",
        "secret.bin",
        "--print-hex",
        "--deadline-secs",
        "5",
    ])
    .unwrap();

    let Command::Recover(args) = cli.command else {
        panic!("parsed {:?}", cli.command);
    };
    assert_eq!(
        args.password.password_file,
        Some(PathBuf::from("password.txt"))
    );
    assert_eq!(args.out, Some(PathBuf::from("secret.bin")));
    assert!(args.print_hex);
    assert!(!args.force);
    assert_eq!(args.vault.connection.deadline_secs, 5);
}

#[test]
fn delete_and_state_take_vault_options() {
    for name in ["delete", "state"] {
        let cli = parse(&[name, "--user", "bob", "--json"]).unwrap();

        let args = match cli.command {
            Command::Delete(args) | Command::State(args) => args,
            other => panic!("{name}: parsed {other:?}"),
        };
        assert_eq!(args.user, "bob", "{name}");
        assert!(args.connection.json, "{name}");
    }
}

#[test]
fn token_mint_defaults_ttl() {
    let cli = parse(&[
        "token",
        "mint",
        "--key",
        "tenant.pem",
        "--tenant",
        "acme",
        "--user",
        "alice",
        "--fleet",
        "fleet-1",
    ])
    .unwrap();

    let Command::Token(TokenCommand::Mint(args)) = cli.command else {
        panic!("parsed {:?}", cli.command);
    };
    assert_eq!(args.ttl_secs, 300);
    assert_eq!(args.key, PathBuf::from("tenant.pem"));
    assert_eq!(args.tenant, "acme");
    assert_eq!(args.fleet, "fleet-1");
}

#[test]
fn token_keygen_needs_out() {
    let error = parse_error(&["token", "keygen"]);

    assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
}

#[test]
fn long_help_lists_exit_codes() {
    let help = Cli::command().render_long_help().to_string();

    for line in [
        "0  success",
        "2  usage error",
        "3  wrong password",
        "4  the record is locked",
        "5  the vault is unavailable",
        "6  the token is invalid",
        "7  an invalid argument",
    ] {
        assert!(help.contains(line), "missing {line:?} in:\n{help}");
    }
}

#[test]
fn endpoints_are_checked() {
    let accepted = [
        ("127.0.0.1:7201", "127.0.0.1:7201"),
        ("http://node-1:7201", "http://node-1:7201"),
        ("https://node-1:7201/", "https://node-1:7201"),
    ];
    for (value, expected) in accepted {
        assert_eq!(
            super::parse_endpoint(value).as_deref(),
            Ok(expected),
            "{value}"
        );
    }

    for value in [
        "127.0.0.1:99999",
        "127.0.0.1:abc",
        "127.0.0.1",
        "garbage",
        "ftp://127.0.0.1:7201",
        "",
        ":7201",
        "127.0.0.1:0",
    ] {
        assert!(
            super::parse_endpoint(value).is_err(),
            "{value:?} was accepted"
        );
    }
}

#[test]
fn members_join_token_defaults() {
    let cli = parse(&[
        "members",
        "join-token",
        "--admin-token-file",
        "admin-token",
        "--node-id",
        "4",
        "--transport-key",
        "04ab",
    ])
    .unwrap();

    let Command::Members(MembersCommand::JoinToken(args)) = cli.command else {
        panic!("parsed {:?}", cli.command);
    };
    assert_eq!(args.node_id, 4);
    assert_eq!(args.ttl_secs, 600);
    assert_eq!(args.out, None);
    assert_eq!(args.transport_key, "04ab");
}

#[test]
fn members_join_token_checks_ranges() {
    let base = [
        "members",
        "join-token",
        "--admin-token-file",
        "admin-token",
        "--transport-key",
        "04ab",
    ];

    for extra in [
        &["--node-id", "0"][..],
        &["--node-id", "4", "--ttl-secs", "0"][..],
        &["--node-id", "4", "--ttl-secs", "86401"][..],
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let error = parse_error(&args);
        assert_eq!(error.kind(), ErrorKind::ValueValidation, "{extra:?}");
    }
}
