//! TLS of the node's two ports, and the fleet certificate authority (`keyfleetd certs`).

pub mod certs;
mod node_tls;
mod settings;

pub use node_tls::{NodeTls, NodeTlsError};
pub use settings::{TlsMode, TlsSettings};
