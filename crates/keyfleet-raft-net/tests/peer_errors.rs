//! Errors that a peer client returns when it cannot reach its peer.

use std::net::Ipv4Addr;
use std::net::SocketAddr;
use std::time::Duration;

use keyfleet_raft::TypeConfig;
use keyfleet_raft::Vote;
use keyfleet_raft_net::PeerClient;
use openraft::errors::RPCError;
use openraft::network::RPCOption;
use openraft::network::v2::RaftNetworkV2;
use openraft::raft::VoteRequest;

fn vote_request() -> VoteRequest<TypeConfig> {
    VoteRequest::new(Vote::new(1, 1), None)
}

/// Returns a 127.0.0.1 address with no listener, by binding an ephemeral port and closing it.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind an ephemeral port");

    listener.local_addr().expect("read the bound address")
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let addr = closed_port().await;
    let mut client = PeerClient::new(1, 2, &addr.to_string());

    let result = client
        .vote(vote_request(), RPCOption::new(Duration::from_secs(5)))
        .await;

    assert!(
        matches!(result, Err(RPCError::Unreachable(_))),
        "expected Unreachable, got {result:?}"
    );
}

#[tokio::test]
async fn invalid_address_is_unreachable() {
    let mut client = PeerClient::new(1, 2, "not a host:port");

    let result = client
        .vote(vote_request(), RPCOption::new(Duration::from_secs(5)))
        .await;

    assert!(
        matches!(result, Err(RPCError::Unreachable(_))),
        "expected Unreachable, got {result:?}"
    );
}

#[tokio::test]
async fn silent_peer_times_out() {
    // A listener that accepts TCP connections but never responds to the HTTP/2 handshake.
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind an ephemeral port");
    let addr = listener.local_addr().expect("read the bound address");
    let accept_task = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });

    let mut client = PeerClient::new(1, 2, &addr.to_string());
    let result = client
        .vote(vote_request(), RPCOption::new(Duration::from_millis(400)))
        .await;

    accept_task.abort();
    assert!(
        matches!(result, Err(RPCError::Timeout(_))),
        "expected Timeout, got {result:?}"
    );
}
