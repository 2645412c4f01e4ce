//! The joining node's side of the online join.

use std::time::Duration;

use anyhow::{Context, bail};
use keyfleet_api::node::{CompleteJoinRequest, JoinRequest, JoinResponse, Member};
use keyfleet_client::{ClientTls, FleetClient, RetryPolicy};
use keyfleet_hsm::Hsm;
use keyfleet_raft::{LOG_FILE_NAME, STATE_MACHINE_FILE_NAME};
use keyfleet_raft_net::TlsFiles;
use rcgen::KeyPair;
use zeroize::Zeroizing;

use super::proof::{self, CHALLENGE_LEN};
use super::tls_key::generate_tls_key;
use crate::keys::{FleetKeyFile, FleetToken, import_keys};
use crate::tls::TlsMode;
use crate::tls::certs::write_file;
use crate::{NodeConfig, NodeSignals, RunningNode, serve};

/// Name of the join package in messages.
const PACKAGE_NAME: &str = "the join package from the leader";

/// Joins the fleet at `fleet` with `token`, then serves the node until a shutdown signal.
pub(super) async fn join_and_serve(
    config: NodeConfig,
    fleet: Vec<String>,
    token: Zeroizing<String>,
) -> anyhow::Result<()> {
    let node_id = config.node_id;
    check_new_data_dir(&config)?;
    let mut signals = NodeSignals::install()?;
    let client = fleet_client(&config, fleet)?;
    tracing::info!(node_id, "joining the fleet");

    let completion = tokio::select! {
        prepared = prepare(&config, &client, &token) => prepared?,
        signal = signals.stop_requested() => {
            tracing::warn!(node_id, signal, "stopped before the join finished");
            bail!(
                "{signal} received before the join finished; if the token was sent, it is \
                 spent: create a new one and run `keyfleetd join` again"
            );
        }
    };
    let node = RunningNode::start(config).await?;

    let completed = tokio::select! {
        completed = client.complete_join(&completion) => completed.map_err(anyhow::Error::from),
        signal = signals.stop_requested() => Err(anyhow::anyhow!(
            "{signal} received before the leader confirmed the join; check `keyfleet members \
             list` for node {node_id}"
        )),
    };
    match completed {
        Ok(done) => tracing::info!(
            node_id,
            log_index = done.log_index,
            voters = ?done.voters,
            "joined the fleet as a voter"
        ),
        Err(error) => {
            tracing::error!(node_id, error = %format!("{error:#}"), "completing the join failed; stopping");
            node.shutdown().await?;
            return Err(error).context("completing the join failed");
        }
    }
    serve(signals, node).await
}

/// Rejects a data directory that already contains Raft stores. A joining node starts empty,
/// and the stores of an earlier member would bring that member's log and vote along.
fn check_new_data_dir(config: &NodeConfig) -> anyhow::Result<()> {
    for name in [LOG_FILE_NAME, STATE_MACHINE_FILE_NAME] {
        let path = config.data_dir.join(name);
        if path.exists() {
            bail!(
                "the data directory {} already contains {name}; a joining node needs an empty data \
                 directory: point data_dir at a new one, or start this node with `keyfleetd \
                 --config` if it is a member already",
                config.data_dir.display()
            );
        }
    }
    Ok(())
}

/// Builds the client of the fleet's node API. With TLS it trusts `tls.ca_cert` and presents
/// no certificate, because the node has none yet.
fn fleet_client(config: &NodeConfig, fleet: Vec<String>) -> anyhow::Result<FleetClient> {
    let catch_up = Duration::from_millis(config.raft.learner_catch_up_timeout_ms);
    let write = Duration::from_millis(config.raft.write_timeout_ms);
    // CompleteJoin waits for the learner to catch up and for two membership entries, so one
    // call may take the catch-up timeout plus two write timeouts.
    let policy = RetryPolicy {
        rpc_timeout: catch_up + 2 * write + Duration::from_secs(5),
        deadline: catch_up + 4 * write + Duration::from_secs(30),
        ..RetryPolicy::default()
    };

    let client = match tls_mode(config)? {
        TlsMode::Plaintext => FleetClient::new(fleet, policy)?,
        TlsMode::Tls { raft, .. } => {
            let tls = ClientTls::from_files(&raft.ca_cert, None)?;
            FleetClient::with_tls(fleet, policy, tls)?
        }
    };
    Ok(client)
}

fn tls_mode(config: &NodeConfig) -> anyhow::Result<TlsMode> {
    config
        .tls
        .mode()
        .map_err(|message| anyhow::anyhow!("invalid [tls] configuration: {message}"))
}

/// Sends `Join`, imports the fleet keys, writes the TLS files and makes the proofs. Returns
/// the `CompleteJoin` request. The HSM session closes before the node starts.
async fn prepare(
    config: &NodeConfig,
    client: &FleetClient,
    token: &str,
) -> anyhow::Result<CompleteJoinRequest> {
    let node_id = config.node_id;
    let hsm_token = FleetToken::open(config).await?;
    hsm_token
        .hsm()
        .provision(&hsm_token.transport_spec())
        .await
        .context("provisioning the transport key")?;
    let transport_key = hsm_token.transport_public_key().await?;
    let tls = match tls_mode(config)? {
        TlsMode::Plaintext => None,
        TlsMode::Tls { raft, .. } => Some((generate_tls_key()?, raft)),
    };

    let request = JoinRequest {
        join_token: token.to_owned(),
        member: Some(Member {
            id: node_id,
            raft_addr: config.raft_advertise(),
            api_addr: config.api_advertise(),
        }),
        transport_public_key: transport_key.as_sec1().to_vec(),
        tls_public_key: tls
            .as_ref()
            .map(|(key, _)| key.public_key_raw().to_vec())
            .unwrap_or_default(),
    };
    let package = client.join(&request).await.context("Join failed")?;
    check_fleet(config, &package)?;

    let keys = FleetKeyFile::from_json(&package.fleet_keys, PACKAGE_NAME)?;
    import_keys(&hsm_token, &keys, PACKAGE_NAME).await?;
    tracing::info!(
        node_id,
        "fleet keys unwrapped into the HSM and their check values match"
    );
    if let Some((key, files)) = &tls {
        write_tls_files(files, key, &package.certificate_pem)?;
    }

    let challenge: [u8; CHALLENGE_LEN] = package.challenge.as_slice().try_into().map_err(|_| {
        anyhow::anyhow!(
            "the leader sent a {}-byte challenge, expected {CHALLENGE_LEN}",
            package.challenge.len()
        )
    })?;
    let seal = hsm_token.seal_spec().label;
    let oprf_seed = hsm_token.oprf_seed_spec().label;
    let proof = proof::prove(hsm_token.hsm(), &seal, &oprf_seed, node_id, &challenge)
        .await
        .context("proving the fleet keys with the HSM")?;

    Ok(CompleteJoinRequest {
        join_token: token.to_owned(),
        node_id,
        seal_proof: proof.seal.as_bytes().to_vec(),
        oprf_seed_proof: proof.oprf_seed.to_vec(),
    })
}

fn check_fleet(config: &NodeConfig, package: &JoinResponse) -> anyhow::Result<()> {
    if package.fleet_id != config.vault.fleet_id {
        bail!(
            "the fleet at --fleet is {:?}, but this node's vault.fleet_id is {:?}; nothing was \
             imported. Join the fleet the configuration names, or correct vault.fleet_id",
            package.fleet_id,
            config.vault.fleet_id
        );
    }
    Ok(())
}

/// Writes the node's new TLS key (mode 0600) and the certificate the fleet issued for it,
/// replacing earlier files.
fn write_tls_files(files: &TlsFiles, key: &KeyPair, certificate_pem: &str) -> anyhow::Result<()> {
    if certificate_pem.is_empty() {
        bail!("the leader issued no certificate although this node is configured with TLS");
    }
    let key_pem = Zeroizing::new(key.serialize_pem());
    write_file(&files.key, key_pem.as_bytes(), 0o600, true)?;
    write_file(&files.cert, certificate_pem.as_bytes(), 0o644, true)?;
    tracing::info!(
        cert = %files.cert.display(),
        key = %files.key.display(),
        "wrote the node certificate from the fleet CA and its key"
    );
    Ok(())
}
