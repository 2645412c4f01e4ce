//! Fixtures for tests against a real SoftHSM2 token, with opaque-ke's client as the client.
//! cargo-nextest runs each test in its own process, so each test builds its own lab.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keyfleet_hsm::{
    Exportability, Hsm, HsmConfig, KeyKind, KeyLabel, KeySpec, Pkcs11Hsm, SealedBlob,
};
use keyfleet_testkit::{SoftHsmLab, softhsm_module_path};
use keyfleet_vault::{
    Clock, FleetSetup, KE_CONTEXT, KsfParams, RecordState, StoredRecord, Suite, Vault, VaultConfig,
    VaultError, client_identifiers,
};
use opaque_ke::errors::ProtocolError;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientLoginFinishResult, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, RegistrationResponse,
};
use rand::rngs::OsRng;

pub const FLEET: &str = "fleet-test";
pub const SEAL: &str = "seal";
pub const OPRF_SEED: &str = "oprf-seed";
pub const TRANSPORT: &str = "transport";
/// Start of the test clock, in Unix seconds.
pub const START: u64 = 1_700_000_000;
/// Version of a record right after registration in these tests.
pub const REGISTERED_VERSION: u64 = 10;

/// Cheap Argon2id parameters for tests only. Protocol version 1 uses `PROTOCOL_V1_KSF`.
pub const TEST_KSF: KsfParams = KsfParams {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};

/// A clock that tests move by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix_secs(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn label(text: &str) -> KeyLabel {
    KeyLabel::new(text).unwrap()
}

/// One lab with tokens, the vault on the first token, and the sealed server setup.
pub struct Fixture {
    pub lab: SoftHsmLab,
    pub tokens: Vec<Arc<Pkcs11Hsm>>,
    pub vault: Vault,
    pub clock: Arc<ManualClock>,
    pub sealed_setup: SealedBlob,
}

/// Opens tokens `labels`, provisions a sealing key and an OPRF seed on each, seals a new
/// server setup on the first, and loads the vault there.
pub async fn fixture(labels: &[&str]) -> Fixture {
    let lab = SoftHsmLab::new();
    let created: Vec<_> = labels
        .iter()
        .map(|label| lab.create_token(label, "1234"))
        .collect();
    lab.activate();

    let mut tokens = Vec::new();
    for token in &created {
        let pin_file = lab.write_secret_file(&format!("{}.pin", token.label), &token.user_pin);
        let mut config = HsmConfig::default();
        config.module = Some(softhsm_module_path());
        config.token_label = Some(token.label.clone());
        config.pin_file = Some(pin_file);
        let hsm = Pkcs11Hsm::open(&config.resolve().unwrap()).await.unwrap();
        provision(&hsm, TRANSPORT, KeyKind::TransportP256).await;
        tokens.push(Arc::new(hsm));
    }
    provision(&tokens[0], SEAL, KeyKind::SealAes256).await;
    provision(&tokens[0], OPRF_SEED, KeyKind::HmacSha512).await;

    let sealed_setup = FleetSetup::generate()
        .seal(tokens[0].as_ref(), &label(SEAL), FLEET)
        .await
        .unwrap();
    let clock = Arc::new(ManualClock(AtomicU64::new(START)));
    let vault = load_vault(&tokens[0], &sealed_setup, &clock).await;

    Fixture {
        lab,
        tokens,
        vault,
        clock,
        sealed_setup,
    }
}

pub async fn provision(hsm: &Pkcs11Hsm, text: &str, kind: KeyKind) {
    let exportability = match kind {
        KeyKind::TransportP256 => Exportability::Never,
        _ => Exportability::WrappedOnly,
    };
    hsm.provision(&KeySpec::new(label(text), kind, exportability))
        .await
        .unwrap();
}

/// Copies the key `key` from `source` to `target`, wrapped for `target`'s transport key.
pub async fn transfer_key(source: &Pkcs11Hsm, target: &Pkcs11Hsm, key: &str, kind: KeyKind) {
    let recipient = target
        .transport_public_key(&label(TRANSPORT))
        .await
        .unwrap();
    let wrapped = source.wrap_key(&label(key), &recipient).await.unwrap();
    let spec = KeySpec::new(label(key), kind, Exportability::WrappedOnly);

    target
        .unwrap_key(&label(TRANSPORT), &wrapped, &spec)
        .await
        .unwrap();
}

pub async fn load_vault(
    hsm: &Arc<Pkcs11Hsm>,
    sealed_setup: &SealedBlob,
    clock: &Arc<ManualClock>,
) -> Vault {
    let config = VaultConfig::new(FLEET, label(SEAL), label(OPRF_SEED));
    let hsm: Arc<dyn Hsm> = hsm.clone();
    let clock: Arc<dyn Clock> = clock.clone();

    Vault::load(hsm, config, sealed_setup, clock).await.unwrap()
}

/// Registers `user` with `password` and `client_ciphertext`, and returns the stored record
/// and the client's export key.
pub async fn register(
    vault: &Vault,
    user: &str,
    password: &[u8],
    client_ciphertext: &[u8],
) -> (StoredRecord, Vec<u8>) {
    let ksf = TEST_KSF.argon2().unwrap();
    let client = ClientRegistration::<Suite>::start(&mut OsRng, password).unwrap();

    let start = vault
        .registration_start(user, &client.message.serialize(), None)
        .await
        .unwrap();
    let response = RegistrationResponse::<Suite>::deserialize(&start.response).unwrap();
    let parameters =
        ClientRegistrationFinishParameters::new(client_identifiers(user, FLEET), Some(&ksf));
    let finished = client
        .state
        .finish(&mut OsRng, password, response, parameters)
        .unwrap();

    let registered = vault
        .registration_finish(
            user,
            &start.ticket,
            &finished.message.serialize(),
            client_ciphertext,
        )
        .await
        .unwrap();
    let record = StoredRecord {
        password_file: registered.password_file,
        sealed_secret: registered.sealed_secret,
        oprf_salt: registered.oprf_salt,
        state: RecordState {
            version: REGISTERED_VERSION,
            guesses_used: 0,
        },
    };
    (record, finished.export_key.to_vec())
}

/// Counts one guess on `record`, as `ConsumeGuess` would.
pub fn count_guess(record: &mut StoredRecord) {
    record.state.version += 1;
    record.state.guesses_used += 1;
}

/// Starts a login on the client: returns the client state and the KE1 bytes.
pub fn login_start(password: &[u8]) -> (ClientLogin<Suite>, Vec<u8>) {
    let start = ClientLogin::<Suite>::start(&mut OsRng, password).unwrap();
    (start.state, start.message.serialize().to_vec())
}

/// Finishes a login on the client with the KE2 bytes.
pub fn login_finish(
    state: ClientLogin<Suite>,
    user: &str,
    password: &[u8],
    response: &[u8],
) -> Result<ClientLoginFinishResult<Suite>, ProtocolError> {
    let ksf = TEST_KSF.argon2().unwrap();
    let response = CredentialResponse::<Suite>::deserialize(response).unwrap();
    let parameters = ClientLoginFinishParameters::new(
        Some(KE_CONTEXT),
        client_identifiers(user, FLEET),
        Some(&ksf),
    );

    state.finish(&mut OsRng, password, response, parameters)
}

/// Runs a whole recovery with `password` and returns the client's login result and the
/// vault's outcome.
pub async fn recover(
    vault: &Vault,
    user: &str,
    password: &[u8],
    record: &mut StoredRecord,
) -> (
    ClientLoginFinishResult<Suite>,
    Result<keyfleet_vault::RecoveredSecret, VaultError>,
) {
    count_guess(record);
    let (state, ke1) = login_start(password);
    let start = vault
        .recovery_start(user, &ke1, Some(record))
        .await
        .unwrap();
    let client = login_finish(state, user, password, &start.response).unwrap();

    let outcome = vault
        .recovery_finish(
            user,
            &start.ticket,
            &client.message.serialize(),
            Some(record),
        )
        .await;
    (client, outcome)
}
