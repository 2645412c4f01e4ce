use keyfleet_token::TenantSigningKey;

/// Fleet id of every test cluster.
pub const FLEET_ID: &str = "test-fleet";

/// Tenant id whose key every test cluster trusts.
pub const TENANT: &str = "app";

/// The `[vault]` settings of a test cluster.
#[derive(Debug, Clone, Copy)]
pub struct VaultOptions {
    pub default_max_guesses: u32,
    pub max_guesses_ceiling: u32,
    pub ticket_ttl_secs: u64,
}

impl Default for VaultOptions {
    fn default() -> Self {
        Self {
            default_max_guesses: 10,
            max_guesses_ceiling: 10,
            ticket_ttl_secs: 60,
        }
    }
}

impl VaultOptions {
    /// Returns the TOML `[vault]` table, trusting `tenant`'s public key as [`TENANT`].
    pub fn to_toml(self, tenant: &TenantSigningKey) -> String {
        format!(
            "[vault]\n\
             fleet_id = \"{FLEET_ID}\"\n\
             default_max_guesses = {}\n\
             max_guesses_ceiling = {}\n\
             ticket_ttl_secs = {}\n\
             [[vault.tenants]]\n\
             id = \"{TENANT}\"\n\
             public_key = \"{}\"\n",
            self.default_max_guesses,
            self.max_guesses_ceiling,
            self.ticket_ttl_secs,
            tenant.public_key().to_hex(),
        )
    }
}
