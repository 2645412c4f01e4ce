//! A witness front that forwards to a real witness and alters chosen responses, as a
//! compromised witness host or a network attacker would. It has no witness key, so it can
//! only replay, drop or alter what the real witness signed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use keyfleet_bundle::ValidationBundle;
use keyfleet_witness::api::witness_client::WitnessClient;
use keyfleet_witness::api::witness_server::{Witness, WitnessServer};
use keyfleet_witness::api::*;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// How the front alters the real witness's responses.
#[derive(Debug, Clone)]
pub(crate) enum Tamper {
    /// Replaces `from` with `to` in the artifact of entry `epoch`.
    EditArtifact {
        epoch: u64,
        from: String,
        to: String,
    },
    /// Replaces the counter-signature of entry `epoch`.
    ReplaceCountersignature { epoch: u64, signature: Vec<u8> },
    /// Serves entry `epoch + 1` in place of every entry from `epoch` on.
    DropEntry { epoch: u64 },
    /// Serves entry `older` in place of entry `epoch`.
    ReplayEntry { epoch: u64, older: u64 },
    /// Serves an older signed checkpoint as the newest, with entries proven against it.
    Rollback { checkpoint: String, size: u64 },
}

#[derive(Debug, Clone)]
struct TamperingWitness {
    upstream: WitnessClient<Channel>,
    tamper: Arc<Mutex<Option<Tamper>>>,
}

/// A running front; dropping it stops the server.
#[derive(Debug)]
pub(crate) struct TamperingFront {
    pub(crate) address: SocketAddr,
    tamper: Arc<Mutex<Option<Tamper>>>,
    _stop: oneshot::Sender<()>,
}

impl TamperingFront {
    /// Starts a front on 127.0.0.1 for the witness at `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let channel = Channel::from_shared(format!("http://{upstream}"))
            .unwrap()
            .connect_lazy();
        let tamper = Arc::new(Mutex::new(None));
        let service = TamperingWitness {
            upstream: WitnessClient::new(channel),
            tamper: Arc::clone(&tamper),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(WitnessServer::new(service))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            address,
            tamper,
            _stop: stop,
        }
    }

    /// Sets the alteration for the following calls.
    pub(crate) fn set(&self, tamper: Tamper) {
        *self.tamper.lock().unwrap() = Some(tamper);
    }
}

impl TamperingWitness {
    fn current(&self) -> Option<Tamper> {
        self.tamper.lock().unwrap().clone()
    }
}

fn edit_bundle(bytes: &[u8], edit: impl FnOnce(&mut ValidationBundle)) -> Vec<u8> {
    let mut bundle = ValidationBundle::from_json(bytes).unwrap();
    edit(&mut bundle);
    bundle.to_json()
}

#[tonic::async_trait]
impl Witness for TamperingWitness {
    async fn witness_artifact(
        &self,
        request: Request<WitnessArtifactRequest>,
    ) -> Result<Response<WitnessArtifactResponse>, Status> {
        self.upstream
            .clone()
            .witness_artifact(request.into_inner())
            .await
    }

    async fn add_countersignature(
        &self,
        request: Request<AddCountersignatureRequest>,
    ) -> Result<Response<AddCountersignatureResponse>, Status> {
        self.upstream
            .clone()
            .add_countersignature(request.into_inner())
            .await
    }

    async fn get_checkpoint(
        &self,
        request: Request<GetCheckpointRequest>,
    ) -> Result<Response<GetCheckpointResponse>, Status> {
        if let Some(Tamper::Rollback { checkpoint, .. }) = self.current() {
            return Ok(Response::new(GetCheckpointResponse { checkpoint }));
        }
        self.upstream
            .clone()
            .get_checkpoint(request.into_inner())
            .await
    }

    async fn get_entry(
        &self,
        request: Request<GetEntryRequest>,
    ) -> Result<Response<GetEntryResponse>, Status> {
        let mut request = request.into_inner();
        let asked = request.epoch;
        match self.current() {
            Some(Tamper::DropEntry { epoch }) if asked >= epoch => request.epoch += 1,
            Some(Tamper::ReplayEntry { epoch, older }) if asked == epoch => request.epoch = older,
            Some(Tamper::Rollback { size, .. }) => request.tree_size = size,
            _ => {}
        }
        let mut response = self.upstream.clone().get_entry(request).await?.into_inner();
        match self.current() {
            Some(Tamper::EditArtifact { epoch, from, to }) if asked == epoch => {
                response.bundle = edit_bundle(&response.bundle, |bundle| {
                    bundle.artifact = bundle.artifact.replace(&from, &to);
                });
            }
            Some(Tamper::ReplaceCountersignature { epoch, signature }) if asked == epoch => {
                response.bundle = edit_bundle(&response.bundle, |bundle| {
                    bundle.countersignature = BASE64.encode(&signature);
                });
            }
            _ => {}
        }
        Ok(Response::new(response))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<GetConsistencyProofResponse>, Status> {
        self.upstream
            .clone()
            .get_consistency_proof(request.into_inner())
            .await
    }

    async fn get_verifier_key(
        &self,
        request: Request<GetVerifierKeyRequest>,
    ) -> Result<Response<GetVerifierKeyResponse>, Status> {
        self.upstream
            .clone()
            .get_verifier_key(request.into_inner())
            .await
    }
}
