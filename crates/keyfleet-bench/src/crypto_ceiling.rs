//! The crypto ceiling: the OPAQUE server work of one recovery on one core, with no network,
//! no consensus and no HSM.

use std::time::{Duration, Instant};

use keyfleet_protocol::{KE_CONTEXT, KsfParams, Suite, client_identifiers, client_ksf};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, ServerLogin, ServerLoginParameters, ServerRegistration,
    ServerSetup,
};
use rand::rngs::OsRng;
use serde::Serialize;

use crate::BenchError;
use crate::latency::{OpRecorder, OpSummary};

const RECORD_ID: &str = "bench/ceiling";
const FLEET_ID: &str = "bench-fleet";
const PASSWORD: &[u8] = b"correct horse battery staple";

/// Result of the crypto ceiling measurement.
#[derive(Debug, Clone, Serialize)]
pub struct CeilingSummary {
    /// Recoveries per second that one core completes: one over the mean server time.
    pub recoveries_per_sec_per_core: f64,
    /// Server time of one recovery, both steps, in percentiles. Its `per_sec` counts wall
    /// time, which includes the untimed client steps.
    pub server_recovery: OpSummary,
    /// Time of one client Argon2id run at protocol version 1's parameters (64 MiB, t = 3,
    /// p = 4), in milliseconds, the median of the runs.
    pub client_ksf_v1_ms: f64,
}

/// Runs recoveries of one registered user in this thread for about `budget`, timing only the
/// server steps: `ServerLogin::start`, serializing its state as the vault's ticket does, and
/// `ServerLogin::finish`. The client steps run between them, untimed, with `client_ksf`.
///
/// opaque-ke derives the OPRF key in software from the server setup here, where the vault
/// derives it in the HSM. The rest of the server work uses the same suite, context and
/// identifiers as the vault.
pub(crate) fn measure_ceiling(
    budget: Duration,
    client_ksf_params: KsfParams,
    ksf_v1_runs: u32,
) -> Result<CeilingSummary, BenchError> {
    let ksf = client_ksf_params
        .argon2()
        .map_err(|error| protocol_error("build the client KSF", error))?;
    let setup = ServerSetup::<Suite>::new(&mut OsRng);
    let password_file = register(&setup, &ksf)?;

    let mut recorder = OpRecorder::new("server_recovery");
    let mut server_time = Duration::ZERO;
    let started = Instant::now();

    while started.elapsed() < budget {
        let spent = one_recovery(&setup, &password_file, &ksf)?;
        server_time += spent;
        recorder.record(spent);
    }

    let elapsed = started.elapsed();
    let per_core = recorder.ok() as f64 / server_time.as_secs_f64().max(f64::MIN_POSITIVE);

    Ok(CeilingSummary {
        recoveries_per_sec_per_core: per_core,
        server_recovery: recorder.summary(elapsed),
        client_ksf_v1_ms: median_ksf_v1_ms(ksf_v1_runs)?,
    })
}

fn register(
    setup: &ServerSetup<Suite>,
    ksf: &argon2_type::Argon2,
) -> Result<ServerRegistration<Suite>, BenchError> {
    let start = ClientRegistration::<Suite>::start(&mut OsRng, PASSWORD)
        .map_err(|error| protocol_error("start the registration", error))?;
    let response = ServerRegistration::<Suite>::start(setup, start.message, RECORD_ID.as_bytes())
        .map_err(|error| protocol_error("answer the registration", error))?;
    let parameters =
        ClientRegistrationFinishParameters::new(client_identifiers(RECORD_ID, FLEET_ID), Some(ksf));
    let finish = start
        .state
        .finish(&mut OsRng, PASSWORD, response.message, parameters)
        .map_err(|error| protocol_error("finish the registration", error))?;

    Ok(ServerRegistration::finish(finish.message))
}

/// Runs one recovery and returns the time its server steps took.
fn one_recovery(
    setup: &ServerSetup<Suite>,
    password_file: &ServerRegistration<Suite>,
    ksf: &argon2_type::Argon2,
) -> Result<Duration, BenchError> {
    let client = ClientLogin::<Suite>::start(&mut OsRng, PASSWORD)
        .map_err(|error| protocol_error("start the login", error))?;

    let server_start = Instant::now();
    let started = ServerLogin::start(
        &mut OsRng,
        setup,
        Some(password_file.clone()),
        client.message,
        RECORD_ID.as_bytes(),
        server_parameters(),
    )
    .map_err(|error| protocol_error("build the KE2", error))?;
    let server_state = started.state.serialize();
    let mut spent = server_start.elapsed();

    let parameters = ClientLoginFinishParameters::new(
        Some(KE_CONTEXT),
        client_identifiers(RECORD_ID, FLEET_ID),
        Some(ksf),
    );
    let finished = client
        .state
        .finish(&mut OsRng, PASSWORD, started.message, parameters)
        .map_err(|error| protocol_error("finish the login", error))?;

    let server_finish = Instant::now();
    let state = ServerLogin::<Suite>::deserialize(&server_state)
        .map_err(|error| protocol_error("decode the server state", error))?;
    state
        .finish(finished.message, server_parameters())
        .map_err(|error| protocol_error("verify the KE3", error))?;
    spent += server_finish.elapsed();

    Ok(spent)
}

fn server_parameters() -> ServerLoginParameters<'static, 'static> {
    ServerLoginParameters {
        context: Some(KE_CONTEXT),
        identifiers: client_identifiers(RECORD_ID, FLEET_ID),
    }
}

/// Times `runs` Argon2id runs at protocol version 1's parameters and returns the median.
fn median_ksf_v1_ms(runs: u32) -> Result<f64, BenchError> {
    let ksf = client_ksf();
    let mut output = [0u8; 64];
    let mut times = Vec::new();

    for _ in 0..runs.max(1) {
        let started = Instant::now();
        ksf.hash_password_into(PASSWORD, b"keyfleet bench salt", &mut output)
            .map_err(|error| protocol_error("run Argon2id", error))?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn protocol_error(step: &'static str, error: impl std::fmt::Debug) -> BenchError {
    BenchError::Protocol {
        step,
        reason: format!("{error:?}"),
    }
}

/// The Argon2 type that keyfleet-protocol builds, named without a direct dependency.
mod argon2_type {
    pub(crate) type Argon2 = <keyfleet_protocol::Suite as opaque_ke::CipherSuite>::Ksf;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BenchConfig;

    #[test]
    fn ceiling_counts_recoveries() {
        let summary =
            measure_ceiling(Duration::from_millis(200), BenchConfig::CHEAP_CLIENT_KSF, 1).unwrap();

        assert!(summary.server_recovery.ok > 0);
        assert_eq!(summary.server_recovery.errors, 0);
        assert!(summary.recoveries_per_sec_per_core > 0.0);
        assert!(summary.client_ksf_v1_ms > 0.0);
    }
}
