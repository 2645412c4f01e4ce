use ed25519_dalek::SigningKey;

use super::*;

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

#[test]
fn verifier_key_round_trips() {
    let verifier = NoteVerifier::new("witness.example", signing_key(7).verifying_key()).unwrap();
    let text = verifier.to_string();
    assert!(text.starts_with("witness.example+"));
    assert_eq!(NoteVerifier::parse(&text).unwrap(), verifier);
}

#[test]
fn verifier_rejects_wrong_key_id() {
    let verifier = NoteVerifier::new("w", signing_key(7).verifying_key()).unwrap();
    let text = verifier.to_string();
    let tampered = text.replacen("w+", "x+", 1);
    assert!(NoteVerifier::parse(&tampered).is_err());
}

#[test]
fn key_id_follows_c2sp_rule() {
    let key = signing_key(1).verifying_key();
    let verifier = NoteVerifier::new("log", key).unwrap();
    let mut input = b"log\n\x01".to_vec();
    input.extend_from_slice(key.as_bytes());
    let digest = Sha256::digest(&input);
    assert_eq!(verifier.key_id(), digest[..4]);
}

#[test]
fn checkpoint_signs_and_opens() {
    let key = signing_key(3);
    let verifier = NoteVerifier::new("witness", key.verifying_key()).unwrap();
    let checkpoint = Checkpoint {
        origin: "witness/keyfleet.fleet_keys.v1".into(),
        size: 5,
        root: [9; 32],
    };
    let note = checkpoint.sign("witness", &key).unwrap();
    assert!(note.starts_with("witness/keyfleet.fleet_keys.v1\n5\n"));
    assert!(note.contains("\n\n\u{2014} witness "));
    assert_eq!(Checkpoint::open(&note, &verifier).unwrap(), checkpoint);
}

#[test]
fn checkpoint_rejects_tampering_and_other_keys() {
    let key = signing_key(3);
    let verifier = NoteVerifier::new("witness", key.verifying_key()).unwrap();
    let checkpoint = Checkpoint {
        origin: "witness/ns".into(),
        size: 5,
        root: [9; 32],
    };
    let note = checkpoint.sign("witness", &key).unwrap();

    let tampered = note.replacen("\n5\n", "\n4\n", 1);
    assert_eq!(
        Checkpoint::open(&tampered, &verifier),
        Err(NoteError::BadSignature {
            name: "witness".into()
        })
    );

    let other = NoteVerifier::new("witness", signing_key(4).verifying_key()).unwrap();
    assert!(matches!(
        Checkpoint::open(&note, &other),
        Err(NoteError::UnknownKey { .. })
    ));
}
