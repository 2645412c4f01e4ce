//! The fleet's OPAQUE server setup, sealed and unsealed in SoftHSM2.

mod common;

use keyfleet_vault::{FleetSetup, VaultError};

use common::{FLEET, SEAL, fixture, label, load_vault, recover, register};

#[tokio::test]
async fn setup_survives_seal_and_unseal() {
    let fixture = fixture(&["node-1"]).await;
    let hsm = fixture.tokens[0].as_ref();
    let setup = FleetSetup::generate();

    let sealed = setup.seal(hsm, &label(SEAL), FLEET).await.unwrap();
    let unsealed = FleetSetup::unseal(hsm, &label(SEAL), FLEET, &sealed)
        .await
        .unwrap();

    assert_eq!(setup.server_public_key(), unsealed.server_public_key());
}

#[tokio::test]
async fn reloaded_vault_recovers() {
    let fixture = fixture(&["node-1"]).await;
    let (mut record, _) = register(&fixture.vault, "alice", b"correct horse", b"secret").await;

    let reloaded = load_vault(&fixture.tokens[0], &fixture.sealed_setup, &fixture.clock).await;
    let (_, outcome) = recover(&reloaded, "alice", b"correct horse", &mut record).await;

    assert_eq!(
        reloaded.setup().server_public_key(),
        fixture.vault.setup().server_public_key()
    );
    assert!(outcome.is_ok(), "{outcome:?}");
}

#[tokio::test]
async fn setup_of_another_fleet_is_rejected() {
    let fixture = fixture(&["node-1"]).await;
    let hsm = fixture.tokens[0].as_ref();

    let result = FleetSetup::unseal(hsm, &label(SEAL), "other-fleet", &fixture.sealed_setup).await;

    assert!(matches!(result, Err(VaultError::Hsm { .. })), "{result:?}");
}

#[test]
fn debug_output_is_redacted() {
    let setup = FleetSetup::generate();

    let printed = format!("{setup:?}");

    assert_eq!(printed, "FleetSetup([REDACTED])");
}
