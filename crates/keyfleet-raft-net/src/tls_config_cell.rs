use std::sync::{Arc, PoisonError, RwLock};

/// A TLS configuration that can be replaced while servers and clients run. Each new connection
/// uses the configuration current at its start; open connections keep theirs.
#[derive(Debug)]
pub struct TlsConfigCell<T> {
    current: RwLock<Arc<T>>,
}

impl<T> TlsConfigCell<T> {
    /// Creates the cell holding `config`.
    pub fn new(config: T) -> Self {
        Self {
            current: RwLock::new(Arc::new(config)),
        }
    }

    /// Returns the current configuration.
    pub fn get(&self) -> Arc<T> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the configuration for connections made from now on.
    pub fn set(&self, config: T) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
    }
}
