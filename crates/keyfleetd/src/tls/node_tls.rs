//! The running node's TLS configurations, and their reload.

use std::sync::Arc;

use keyfleet_raft_net::{
    TlsConfigCell, TlsError, TlsFiles, TlsMaterial, api_server_config, certificate_names,
    node_name, raft_client_config, raft_server_config,
};
use rustls::{ClientConfig, ServerConfig};

/// The three rustls configurations of a node with TLS: the Raft server, the Raft client and the
/// API server. Each sits in a [`TlsConfigCell`], so [`NodeTls::reload`] reaches every new
/// connection without a restart.
#[derive(Debug)]
pub struct NodeTls {
    node_id: u64,
    raft_files: TlsFiles,
    api_files: TlsFiles,
    raft_server: Arc<TlsConfigCell<ServerConfig>>,
    raft_client: Arc<TlsConfigCell<ClientConfig>>,
    api_server: Arc<TlsConfigCell<ServerConfig>>,
}

/// The configurations built from one reading of the files.
struct Configs {
    raft_server: ServerConfig,
    raft_client: ClientConfig,
    api_server: ServerConfig,
}

/// Failure to load the node's TLS files.
#[derive(Debug, thiserror::Error)]
pub enum NodeTlsError {
    #[error(transparent)]
    Files(#[from] TlsError),

    #[error(
        "the certificate in {path} does not name {expected}, so peers would reject node \
         {node_id}; issue one with `keyfleetd certs issue-node --node-id {node_id}`"
    )]
    WrongNode {
        path: std::path::PathBuf,
        expected: String,
        node_id: u64,
    },

    #[error(
        "the certificate in {path} does not verify against tls.ca_cert ({reason}), so peers \
         would reject it; issue it from this fleet's CA with `keyfleetd certs issue-node`"
    )]
    NotTrusted {
        path: std::path::PathBuf,
        reason: String,
    },
}

impl NodeTls {
    /// Reads the files and builds the configurations of node `node_id`.
    pub fn load(
        node_id: u64,
        raft_files: TlsFiles,
        api_files: TlsFiles,
    ) -> Result<Self, NodeTlsError> {
        let configs = build(node_id, &raft_files, &api_files)?;

        Ok(Self {
            node_id,
            raft_files,
            api_files,
            raft_server: Arc::new(TlsConfigCell::new(configs.raft_server)),
            raft_client: Arc::new(TlsConfigCell::new(configs.raft_client)),
            api_server: Arc::new(TlsConfigCell::new(configs.api_server)),
        })
    }

    /// Reads the files again and replaces all three configurations. On any error it keeps the
    /// current ones and returns the error.
    pub fn reload(&self) -> Result<(), NodeTlsError> {
        let configs = build(self.node_id, &self.raft_files, &self.api_files)?;

        self.raft_server.set(configs.raft_server);
        self.raft_client.set(configs.raft_client);
        self.api_server.set(configs.api_server);
        Ok(())
    }

    pub fn raft_server(&self) -> Arc<TlsConfigCell<ServerConfig>> {
        self.raft_server.clone()
    }

    pub fn raft_client(&self) -> Arc<TlsConfigCell<ClientConfig>> {
        self.raft_client.clone()
    }

    pub fn api_server(&self) -> Arc<TlsConfigCell<ServerConfig>> {
        self.api_server.clone()
    }
}

fn build(
    node_id: u64,
    raft_files: &TlsFiles,
    api_files: &TlsFiles,
) -> Result<Configs, NodeTlsError> {
    let raft = raft_files.load()?;
    check_names_node(&raft, node_id)?;
    check_chains_to_ca(&raft)?;
    let api = if api_files == raft_files {
        None
    } else {
        Some(api_files.load()?)
    };

    Ok(Configs {
        raft_server: raft_server_config(&raft)?,
        raft_client: raft_client_config(&raft)?,
        api_server: api_server_config(api.as_ref().unwrap_or(&raft))?,
    })
}

/// Rejects a Raft certificate that does not name this node, which every peer would refuse.
/// Checks that the node certificate chains to the configured CA, as its peers will check it, so
/// that a certificate of another CA fails at start or reload instead of in every handshake.
fn check_chains_to_ca(material: &TlsMaterial) -> Result<(), NodeTlsError> {
    let not_trusted = |reason: String| NodeTlsError::NotTrusted {
        path: material.cert_path.clone(),
        reason,
    };
    let Some((leaf, intermediates)) = material.chain.split_first() else {
        return Err(not_trusted("the file contains no certificate".to_owned()));
    };
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        material.roots.clone(),
        keyfleet_raft_net::crypto_provider(),
    )
    .build()
    .map_err(|error| not_trusted(error.to_string()))?;

    verifier
        .verify_client_cert(leaf, intermediates, rustls::pki_types::UnixTime::now())
        .map(|_| ())
        .map_err(|error| not_trusted(error.to_string()))
}

fn check_names_node(material: &TlsMaterial, node_id: u64) -> Result<(), NodeTlsError> {
    let expected = node_name(node_id);
    let named = material
        .chain
        .first()
        .is_some_and(|leaf| certificate_names(leaf, &expected));

    if named {
        Ok(())
    } else {
        Err(NodeTlsError::WrongNode {
            path: material.cert_path.clone(),
            expected,
            node_id,
        })
    }
}
