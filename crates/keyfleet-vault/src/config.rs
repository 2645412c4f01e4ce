use keyfleet_hsm::KeyLabel;

/// Default lifetime of a ticket in seconds.
pub const DEFAULT_TICKET_TTL_SECS: u64 = 60;

/// Configuration of the OPAQUE server core on one vault node.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// Id of the fleet. It is the OPAQUE server identity and the record id of the sealed server
    /// setup and of every ticket.
    pub fleet_id: String,
    /// Label of the token's AES-256 fleet sealing key.
    pub seal_key: KeyLabel,
    /// Label of the token's 64-byte HMAC-SHA512 secret from which OPRF keys are derived.
    pub oprf_seed_key: KeyLabel,
    /// Lifetime of registration and login tickets in seconds.
    pub ticket_ttl_secs: u64,
}

impl VaultConfig {
    /// Builds a configuration with the default ticket lifetime.
    pub fn new(fleet_id: impl Into<String>, seal_key: KeyLabel, oprf_seed_key: KeyLabel) -> Self {
        Self {
            fleet_id: fleet_id.into(),
            seal_key,
            oprf_seed_key,
            ticket_ttl_secs: DEFAULT_TICKET_TTL_SECS,
        }
    }
}
