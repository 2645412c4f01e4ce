//! A vault API front for attack tests. It forwards every call to one real keyfleetd node, and
//! on request replaces the validation bundle the node serves and the bundle epoch it names.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use keyfleet_api::vault::vault_client::VaultClient;
use keyfleet_api::vault::vault_server::{Vault, VaultServer};
use keyfleet_api::vault::*;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// What the front serves in place of the node's bundle.
#[derive(Debug, Clone)]
pub struct ServedBundle {
    /// Epoch in `GetBundle` and in the session start responses.
    pub epoch: u64,
    /// Bundle JSON in `GetBundle`.
    pub bundle: Vec<u8>,
}

/// The running front.
#[derive(Debug, Clone)]
pub struct BundleFront {
    pub address: SocketAddr,
    served: Arc<Mutex<Option<ServedBundle>>>,
}

impl BundleFront {
    /// Serves on a free port of 127.0.0.1, forwarding to `upstream`.
    pub async fn start(upstream: Channel) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let served = Arc::new(Mutex::new(None));
        let service = Forwarder {
            upstream: VaultClient::new(upstream),
            served: served.clone(),
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(VaultServer::new(service))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        Self { address, served }
    }

    /// Serves `bundle` from now on; `None` forwards the node's own again.
    pub fn serve(&self, bundle: Option<ServedBundle>) {
        *self.served.lock().unwrap_or_else(PoisonError::into_inner) = bundle;
    }
}

struct Forwarder {
    upstream: VaultClient<Channel>,
    served: Arc<Mutex<Option<ServedBundle>>>,
}

impl Forwarder {
    fn served(&self) -> Option<ServedBundle> {
        self.served
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Rebuilds `request` for the upstream call, keeping its metadata, such as the token.
fn forward<T>(request: Request<T>) -> Request<T> {
    let (metadata, _, message) = request.into_parts();
    Request::from_parts(metadata, Default::default(), message)
}

#[tonic::async_trait]
impl Vault for Forwarder {
    async fn registration_start(
        &self,
        request: Request<RegistrationStartRequest>,
    ) -> Result<Response<RegistrationStartResponse>, Status> {
        let mut reply = self
            .upstream
            .clone()
            .registration_start(forward(request))
            .await?;
        if let Some(served) = self.served() {
            reply.get_mut().bundle_epoch = served.epoch;
        }
        Ok(reply)
    }

    async fn registration_finish(
        &self,
        request: Request<RegistrationFinishRequest>,
    ) -> Result<Response<RegistrationFinishResponse>, Status> {
        self.upstream
            .clone()
            .registration_finish(forward(request))
            .await
    }

    async fn recovery_start(
        &self,
        request: Request<RecoveryStartRequest>,
    ) -> Result<Response<RecoveryStartResponse>, Status> {
        let mut reply = self
            .upstream
            .clone()
            .recovery_start(forward(request))
            .await?;
        if let Some(served) = self.served() {
            reply.get_mut().bundle_epoch = served.epoch;
        }
        Ok(reply)
    }

    async fn recovery_finish(
        &self,
        request: Request<RecoveryFinishRequest>,
    ) -> Result<Response<RecoveryFinishResponse>, Status> {
        self.upstream
            .clone()
            .recovery_finish(forward(request))
            .await
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        self.upstream.clone().delete(forward(request)).await
    }

    async fn get_state(
        &self,
        request: Request<GetStateRequest>,
    ) -> Result<Response<GetStateResponse>, Status> {
        self.upstream.clone().get_state(forward(request)).await
    }

    async fn get_bundle(
        &self,
        request: Request<GetBundleRequest>,
    ) -> Result<Response<GetBundleResponse>, Status> {
        match self.served() {
            Some(served) => Ok(Response::new(GetBundleResponse {
                epoch: served.epoch,
                bundle: served.bundle,
            })),
            None => self.upstream.clone().get_bundle(forward(request)).await,
        }
    }
}
