use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tonic::transport::Channel;
use tonic::transport::Endpoint;

use crate::client_error::ClientError;
use crate::client_tls::ClientTls;
use crate::endpoint::endpoint_uri;

/// The node API endpoints a client was built with, a lazily connected channel to each, and the endpoint
/// that was the leader at the last successful or hinted call.
#[derive(Debug)]
pub(crate) struct NodeChannels {
    endpoints: Vec<String>,
    rpc_timeout: Duration,
    tls: Option<ClientTls>,
    channels: Mutex<HashMap<String, Channel>>,
    leader: Mutex<Option<String>>,
    next_index: AtomicUsize,
}

impl NodeChannels {
    /// Checks every endpoint and keeps them in order. No connection is made yet. With `tls`,
    /// every channel dials `https://` with those settings.
    pub(crate) fn new(
        endpoints: Vec<String>,
        rpc_timeout: Duration,
        tls: Option<ClientTls>,
    ) -> Result<Self, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::NoEndpoints);
        }

        let endpoints: Vec<String> = endpoints.iter().map(|e| endpoint_uri(e)).collect();

        let nodes = Self {
            endpoints,
            rpc_timeout,
            tls,
            channels: Mutex::new(HashMap::new()),
            leader: Mutex::new(None),
            next_index: AtomicUsize::new(0),
        };

        for endpoint in &nodes.endpoints {
            nodes.channel(endpoint)?;
        }

        Ok(nodes)
    }

    /// Returns the first endpoint given, the one that calls pinned to a single node use.
    pub(crate) fn first(&self) -> &str {
        &self.endpoints[0]
    }

    /// Returns the leader's endpoint if one is known, or else the next endpoint in turn.
    pub(crate) fn target(&self) -> String {
        if let Some(leader) = self
            .leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return leader;
        }

        let index = self.next_index.fetch_add(1, Ordering::Relaxed) % self.endpoints.len();
        self.endpoints[index].clone()
    }

    /// Records `endpoint` as the leader.
    pub(crate) fn set_leader(&self, endpoint: &str) {
        *self.leader.lock().unwrap_or_else(PoisonError::into_inner) = Some(endpoint.to_owned());
    }

    /// Forgets the leader, so that the next call tries the endpoints in turn.
    pub(crate) fn clear_leader(&self) {
        *self.leader.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Returns the channel to `endpoint`, created on first use. `endpoint` may be one the
    /// client was not built with, such as a leader named in a hint.
    pub(crate) fn channel(&self, endpoint: &str) -> Result<Channel, ClientError> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);

        if let Some(channel) = channels.get(endpoint) {
            return Ok(channel.clone());
        }

        let invalid = |source| ClientError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            source,
        };
        let uri = match (&self.tls, endpoint.strip_prefix("http://")) {
            (Some(_), Some(authority)) => format!("https://{authority}"),
            _ => endpoint.to_owned(),
        };
        let mut builder = Endpoint::from_shared(uri)
            .map_err(invalid)?
            .connect_timeout(self.rpc_timeout)
            .timeout(self.rpc_timeout);
        if let Some(tls) = &self.tls {
            builder = builder.tls_config(tls.tonic_config()).map_err(|source| {
                ClientError::InvalidTls {
                    endpoint: endpoint.to_owned(),
                    source,
                }
            })?;
        }
        let channel = builder.connect_lazy();

        channels.insert(endpoint.to_owned(), channel.clone());
        Ok(channel)
    }
}
