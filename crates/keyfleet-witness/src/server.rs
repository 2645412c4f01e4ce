//! Serving the witness on a TCP listener.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::api::witness_server::WitnessServer;
use crate::error::WitnessError;
use crate::operator_keys::OperatorKeys;
use crate::service::WitnessService;
use crate::witness_key::WitnessKey;
use crate::witness_log::WitnessLog;

/// File name of the log database in the data directory.
pub const LOG_FILE: &str = "witness-log.redb";
/// File name of the key in the data directory.
pub const KEY_FILE: &str = "witness.key";

/// Opens the key and log in `data_dir`, creating both on first use.
pub fn open_data_dir(data_dir: &Path, name: &str) -> Result<Arc<WitnessLog>, WitnessError> {
    std::fs::create_dir_all(data_dir).map_err(|error| {
        WitnessError::Storage(format!("cannot create {}: {error}", data_dir.display()))
    })?;
    let key = WitnessKey::load_or_generate(name, &data_dir.join(KEY_FILE))?;
    Ok(Arc::new(WitnessLog::open(&data_dir.join(LOG_FILE), key)?))
}

/// Serves the witness API on `listener` until `shutdown` completes. Only submissions signed by
/// `operator_keys` are logged.
pub async fn serve(
    log: Arc<WitnessLog>,
    operator_keys: OperatorKeys,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let local: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(
        address = ?local,
        verifier_key = %log.key().verifier(),
        pinned_namespaces = operator_keys.namespace_count(),
        "witness serving"
    );
    if operator_keys.namespace_count() == 0 {
        tracing::warn!("no operator key is pinned, so the witness rejects every submission");
    }
    let service = WitnessService::new(log, Arc::new(operator_keys));
    tonic::transport::Server::builder()
        .add_service(WitnessServer::new(service))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}
