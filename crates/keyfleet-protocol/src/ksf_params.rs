use argon2::{Algorithm, Argon2, Params, Version};

use crate::ProtocolError;

/// Argon2id cost parameters for the KSF, which runs only on the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KsfParams {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes over the memory.
    pub iterations: u32,
    /// Number of lanes.
    pub parallelism: u32,
}

impl KsfParams {
    /// Builds the Argon2id instance that opaque-ke uses as the KSF with these parameters.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidKsfParams`] when Argon2 rejects the parameters, for example a memory
    /// cost below 8 KiB per lane.
    pub fn argon2(&self) -> Result<Argon2<'static>, ProtocolError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|error| ProtocolError::InvalidKsfParams {
                params: *self,
                reason: error.to_string(),
            })?;

        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Builds the KSF of the current protocol version, for a client to pass to opaque-ke's
/// `ClientRegistrationFinishParameters` and `ClientLoginFinishParameters`.
pub fn client_ksf() -> Argon2<'static> {
    crate::PROTOCOL_V1_KSF
        .argon2()
        .expect("the protocol version 1 parameters are valid Argon2 parameters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_params_are_valid() {
        let argon2 = crate::PROTOCOL_V1_KSF.argon2().unwrap();

        assert_eq!(argon2.params().m_cost(), 65_536);
        assert_eq!(argon2.params().t_cost(), 3);
        assert_eq!(argon2.params().p_cost(), 4);
    }

    #[test]
    fn too_little_memory_is_rejected() {
        let params = KsfParams {
            memory_kib: 1,
            iterations: 1,
            parallelism: 1,
        };

        let error = params.argon2().unwrap_err();

        assert!(
            matches!(error, ProtocolError::InvalidKsfParams { .. }),
            "{error}"
        );
    }
}
