//! The latest readiness and HSM probe results, shared from the health monitor with `Status`.

/// Readiness and HSM health as the health monitor last found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeHealth {
    /// Whether readiness is SERVING.
    pub(crate) ready: bool,
    /// Reason the node is not ready, empty while it is ready.
    pub(crate) readiness_reason: String,
    /// Error of the last HSM probe, `None` when it succeeded.
    pub(crate) hsm_error: Option<String>,
}

impl Default for NodeHealth {
    fn default() -> Self {
        Self {
            ready: false,
            readiness_reason: "the health monitor has not run yet".to_owned(),
            hsm_error: Some("the HSM was not probed yet".to_owned()),
        }
    }
}

/// Sender side of the shared health results.
pub(crate) type HealthSender = tokio::sync::watch::Sender<NodeHealth>;

/// Receiver side of the shared health results.
pub(crate) type HealthReceiver = tokio::sync::watch::Receiver<NodeHealth>;
