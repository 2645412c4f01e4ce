//! The leader's side of the online join: join tokens, the join package, and the proof check.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keyfleet_api::node::{CreateJoinTokenResponse, JoinRequest, JoinResponse, Member};
use keyfleet_hsm::{Hsm, HsmError, KeyLabel, SealedBlob, TransportPublicKey};
use keyfleet_raft::{NodeAddresses, NodeId};
use openraft::async_runtime::WatchReceiver;
use rand::RngCore;
use rand::rngs::OsRng;
use tonic::Status;

use super::proof::{self, CHALLENGE_LEN, JoinProof, ProofFailure};
use super::tls_key::NodePublicKey;
use super::tokens::{DEFAULT_TOKEN_TTL, IssuedJoin, JoinTokens, MAX_TOKEN_TTL, TokenRejection};
use crate::keys::{parse_transport_key, wrap_fleet_keys};
use crate::log_limiter::LogLimiter;
use crate::member_addresses::check_addresses_unused;
use crate::replica::Replica;
use crate::tls::certs::{FleetCa, LEAF_DAYS, open_ca};

/// Interval between two log lines about rejected join tokens.
const REJECTED_TOKEN_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The fleet CA files a leader issues joining nodes' certificates with.
#[derive(Debug, Clone)]
pub(crate) struct CaFiles {
    pub(crate) ca_cert: PathBuf,
    /// `tls.ca_key_sealed`; without it the node cannot issue certificates.
    pub(crate) ca_key_sealed: Option<PathBuf>,
}

/// The leader's join approval: its HSM, the fleet key labels, the fleet CA and the open
/// join tokens.
#[derive(Debug)]
pub(crate) struct JoinIssuer {
    hsm: Arc<dyn Hsm>,
    seal: KeyLabel,
    oprf_seed: KeyLabel,
    fleet_id: String,
    /// `None` on a node without TLS: joins then issue no certificate.
    ca: Option<CaFiles>,
    tokens: JoinTokens,
    rejections: LogLimiter,
}

impl JoinIssuer {
    pub(crate) fn new(
        hsm: Arc<dyn Hsm>,
        seal: KeyLabel,
        oprf_seed: KeyLabel,
        fleet_id: String,
        ca: Option<CaFiles>,
    ) -> Self {
        Self {
            hsm,
            seal,
            oprf_seed,
            fleet_id,
            ca,
            tokens: JoinTokens::default(),
            rejections: LogLimiter::new(REJECTED_TOKEN_LOG_INTERVAL),
        }
    }

    /// Creates a join token on the leader for `node_id` and the transport key `transport_key`
    /// (a SEC1 point) of its HSM.
    pub(crate) async fn create_token(
        &self,
        replica: &Replica,
        node_id: NodeId,
        ttl_secs: u64,
        transport_key: &[u8],
    ) -> Result<CreateJoinTokenResponse, Status> {
        replica.linearize().await?;
        check_new_node(replica, node_id)?;
        let transport_key = parse_transport_key(transport_key).map_err(|reason| {
            Status::invalid_argument(format!(
                "transport_public_key is invalid: {reason}; pass the key that `keyfleetd keys \
                 transport-key` prints on the new node"
            ))
        })?;
        let ttl = match ttl_secs {
            0 => DEFAULT_TOKEN_TTL,
            secs if secs <= MAX_TOKEN_TTL.as_secs() => Duration::from_secs(secs),
            secs => {
                return Err(Status::invalid_argument(format!(
                    "ttl_secs {secs} is longer than the maximum of {} seconds; pass a shorter \
                     lifetime",
                    MAX_TOKEN_TTL.as_secs()
                )));
            }
        };

        let (token, expires_at_unix_secs) =
            self.tokens
                .create(node_id, ttl, leader_term(replica), transport_key);
        tracing::info!(
            node_id = replica.node_id,
            joining_node = node_id,
            ttl_secs = ttl.as_secs(),
            "join token created"
        );
        Ok(CreateJoinTokenResponse {
            join_token: token.expose().to_owned(),
            expires_at_unix_secs,
            leader_id: replica.node_id,
        })
    }

    /// Consumes the join token of `request` and returns the join package.
    pub(crate) async fn join(
        &self,
        replica: &Replica,
        request: JoinRequest,
    ) -> Result<JoinResponse, Status> {
        replica.linearize().await?;
        let member = request
            .member
            .ok_or_else(|| Status::invalid_argument("member is missing"))?;
        let node_id = member.id;
        let transport_key =
            parse_transport_key(&request.transport_public_key).map_err(|reason| {
                Status::invalid_argument(format!("transport_public_key is invalid: {reason}"))
            })?;
        self.tokens
            .reserve(
                node_id,
                &request.join_token,
                leader_term(replica),
                &transport_key,
            )
            .map_err(|rejection| self.rejected(replica.node_id, rejection))?;

        // NOTE: the token binds the transport key the operator approved, but nothing here
        // attests that the key lives in an HSM; the operator vouches for that.
        let package = self
            .build_package(
                replica,
                member,
                &request.transport_public_key,
                &request.tls_public_key,
            )
            .await;
        match package {
            Ok((response, issued)) => {
                self.tokens.issue(node_id, issued);
                tracing::info!(
                    node_id = replica.node_id,
                    joining_node = node_id,
                    certificate = !response.certificate_pem.is_empty(),
                    "join package issued; waiting for the node to prove its fleet keys"
                );
                Ok(response)
            }
            Err(status) => {
                self.tokens.discard(node_id);
                tracing::warn!(
                    node_id = replica.node_id,
                    joining_node = node_id,
                    reason = status.message(),
                    "join rejected; its token is spent"
                );
                Err(status)
            }
        }
    }

    async fn build_package(
        &self,
        replica: &Replica,
        member: Member,
        transport_key: &[u8],
        tls_key: &[u8],
    ) -> Result<(JoinResponse, IssuedJoin), Status> {
        let node_id = member.id;
        check_new_node(replica, node_id)?;
        let addresses = member_addresses(member)?;
        check_addresses_unused(replica, node_id, &addresses).await?;
        let transport_key = parse_transport_key(transport_key).map_err(|reason| {
            Status::invalid_argument(format!("transport_public_key is invalid: {reason}"))
        })?;

        // NOTE: the certificate is issued before the node proves its fleet keys, because the
        // node needs it to start and be reached as a learner. A token holder thus
        // gets a certificate for this node id even when the proof later fails.
        let certificate_pem = self.issue_certificate(node_id, &addresses, tls_key).await?;
        let keys = wrap_fleet_keys(
            self.hsm.as_ref(),
            &self.seal,
            &self.oprf_seed,
            &transport_key,
        )
        .await
        .map_err(|error| hsm_status("wrapping the fleet keys", &error))?;

        let mut challenge = [0u8; CHALLENGE_LEN];
        OsRng.fill_bytes(&mut challenge);
        let response = JoinResponse {
            fleet_keys: keys.to_json(),
            certificate_pem,
            challenge: challenge.to_vec(),
            fleet_id: self.fleet_id.clone(),
        };
        let issued = IssuedJoin {
            addresses,
            transport_key,
            challenge,
        };
        Ok((response, issued))
    }

    /// Issues node `node_id`'s certificate for `tls_key`, naming the hosts of its addresses.
    async fn issue_certificate(
        &self,
        node_id: NodeId,
        addresses: &NodeAddresses,
        tls_key: &[u8],
    ) -> Result<String, Status> {
        let Some(ca) = &self.ca else {
            if tls_key.is_empty() {
                return Ok(String::new());
            }
            return Err(Status::failed_precondition(
                "this fleet runs without TLS, so it issues no certificate; configure the \
                 joining node with tls.insecure_plaintext = true, or give the fleet TLS first",
            ));
        };
        let public_key = NodePublicKey::from_sec1(tls_key).map_err(|reason| {
            Status::invalid_argument(format!("tls_public_key is invalid: {reason}"))
        })?;
        let Some(ca_key_sealed) = &ca.ca_key_sealed else {
            return Err(Status::failed_precondition(
                "the leader has no tls.ca_key_sealed, so it cannot issue the joining node's \
                 certificate; set tls.ca_key_sealed on the voters to the file `keyfleetd certs \
                 init-ca` wrote, restart them, and create a new join token",
            ));
        };

        let authority: FleetCa = open_ca(
            self.hsm.as_ref(),
            &self.seal,
            &self.fleet_id,
            &ca.ca_cert,
            ca_key_sealed,
        )
        .await
        .map_err(|error| {
            Status::failed_precondition(format!("opening the fleet CA failed: {error}"))
        })?;
        let (dns, ips) = address_names(addresses);
        authority
            .issue_node_for_key(node_id, &dns, &ips, LEAF_DAYS, &public_key)
            .map_err(|error| {
                Status::invalid_argument(format!("issuing the certificate failed: {error}"))
            })
    }

    /// Checks the proof of node `node_id` against the package it was issued. Returns the
    /// node's addresses. The token is spent whatever the outcome.
    pub(crate) async fn check_proof(
        &self,
        replica: &Replica,
        node_id: NodeId,
        presented_token: &str,
        seal_proof: Vec<u8>,
        oprf_seed_proof: &[u8],
    ) -> Result<NodeAddresses, Status> {
        replica.linearize().await?;
        let issued = self
            .tokens
            .take_issued(node_id, presented_token, leader_term(replica))
            .map_err(|rejection| self.rejected(replica.node_id, rejection))?;

        let proof = parse_proof(seal_proof, oprf_seed_proof)?;
        let checked = proof::verify(
            self.hsm.as_ref(),
            &self.seal,
            &self.oprf_seed,
            node_id,
            &issued.challenge,
            &proof,
        )
        .await
        .map_err(|error| hsm_status("checking the join proof", &error))?;
        if let Err(failure) = checked {
            return Err(self.proof_failed(
                replica.node_id,
                node_id,
                &issued.transport_key,
                failure,
            ));
        }
        check_new_node(replica, node_id)?;
        Ok(issued.addresses)
    }

    fn proof_failed(
        &self,
        this_node: NodeId,
        node_id: NodeId,
        transport_key: &TransportPublicKey,
        failure: ProofFailure,
    ) -> Status {
        let fingerprint = crate::keys::fingerprint(transport_key);
        tracing::warn!(
            node_id = this_node,
            joining_node = node_id,
            transport_key = fingerprint,
            %failure,
            "join rejected: the node does not hold the fleet keys; membership unchanged"
        );
        Status::permission_denied(format!(
            "node {node_id} does not hold the fleet keys: {failure}. Its HSM did not unwrap \
             the keys wrapped for the transport key {fingerprint}. Nothing changed in the \
             membership and the join token is spent; check the node's hsm configuration and \
             create a new join token"
        ))
    }

    fn rejected(&self, this_node: NodeId, rejection: TokenRejection) -> Status {
        if let Some(suppressed) = self.rejections.allow() {
            tracing::warn!(node_id = this_node, suppressed, reason = %rejection, "join token rejected");
        }
        Status::permission_denied(format!(
            "{rejection}. Create a new token on the leader with `keyfleet members join-token`"
        ))
    }
}

/// Returns this node's current Raft term. Called right after `linearize` confirmed that this
/// node leads, it is the term of that leadership, unless the node lost it in between.
fn leader_term(replica: &Replica) -> u64 {
    replica.raft.metrics().borrow_watched().current_term
}

/// Rejects `node_id` when it is 0 or already a voter or learner.
fn check_new_node(replica: &Replica, node_id: NodeId) -> Result<(), Status> {
    if node_id == 0 {
        return Err(Status::invalid_argument(
            "node id 0 is reserved; ids start at 1",
        ));
    }
    // NOTE: only the current membership is checked, because no store keeps the ids of removed
    // members, so a token for a removed node's id is accepted.
    let metrics = replica.raft.metrics().borrow_watched().clone();
    let membership = metrics.membership_config.membership();
    let members: BTreeSet<NodeId> = membership.nodes().map(|(id, _)| *id).collect();
    if members.contains(&node_id) {
        return Err(Status::already_exists(format!(
            "node {node_id} is a member already; a joining node needs an id never used in \
             this cluster"
        )));
    }
    Ok(())
}

fn member_addresses(member: Member) -> Result<NodeAddresses, Status> {
    if member.raft_addr.is_empty() || member.api_addr.is_empty() {
        return Err(Status::invalid_argument(format!(
            "node {} needs both raft_addr and api_addr",
            member.id
        )));
    }
    Ok(NodeAddresses::new(member.raft_addr, member.api_addr))
}

/// Returns the DNS names and IP addresses of the hosts in `addresses`, without duplicates.
fn address_names(addresses: &NodeAddresses) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for address in [&addresses.raft, &addresses.api] {
        let host = host_of(address);
        match host.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !dns.iter().any(|name: &String| name == host) => dns.push(host.to_owned()),
            Err(_) => {}
        }
    }
    (dns, ips)
}

/// Returns the host of `host:port` or `[v6]:port`.
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn parse_proof(seal_proof: Vec<u8>, oprf_seed_proof: &[u8]) -> Result<JoinProof, Status> {
    let seal = SealedBlob::from_bytes(seal_proof).map_err(|error| {
        Status::invalid_argument(format!("seal_proof is not a sealed blob: {error}"))
    })?;
    let oprf_seed = oprf_seed_proof.try_into().map_err(|_| {
        Status::invalid_argument(format!(
            "oprf_seed_proof is {} bytes long, expected 64",
            oprf_seed_proof.len()
        ))
    })?;
    Ok(JoinProof { seal, oprf_seed })
}

fn hsm_status(what: &str, error: &HsmError) -> Status {
    tracing::error!(%error, "{what} failed");
    match error {
        HsmError::KeyNotFound { .. } => Status::failed_precondition(format!(
            "{what} failed: {error}; this node's token lacks a fleet key"
        )),
        _ => Status::internal(format!("{what} failed: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_names_split_hosts() {
        let ip_only = NodeAddresses::new("127.0.0.1:7104", "127.0.0.1:7204");
        let mixed = NodeAddresses::new("node-4.example:7104", "[::1]:7204");

        assert_eq!(
            address_names(&ip_only),
            (vec![], vec!["127.0.0.1".parse().unwrap()])
        );
        assert_eq!(
            address_names(&mixed),
            (
                vec!["node-4.example".to_owned()],
                vec!["::1".parse().unwrap()]
            )
        );
    }
}
