use super::*;

fn leaves(count: usize) -> Vec<Hash> {
    (0..count).map(|i| leaf_hash(&[i as u8])).collect()
}

#[test]
fn root_matches_hand_computed_tree() {
    let l = leaves(3);
    let expected = node_hash(&node_hash(&l[0], &l[1]), &l[2]);
    assert_eq!(root_hash(&l), expected);

    let l = leaves(5);
    let left = node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3]));
    assert_eq!(root_hash(&l), node_hash(&left, &l[4]));
}

#[test]
fn empty_root_is_sha256_of_nothing() {
    let expected =
        hex::decode("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap();
    assert_eq!(root_hash(&[]).to_vec(), expected);
}

#[test]
fn inclusion_proof_matches_hand_computed_path() {
    let l = leaves(7);
    let proof = inclusion_proof(4, &l).unwrap();
    let expected = vec![
        l[5],
        l[6],
        node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3])),
    ];
    assert_eq!(proof, expected);
}

#[test]
fn inclusion_proofs_verify_for_every_leaf() {
    for size in 1..=20 {
        let l = leaves(size);
        let root = root_hash(&l);
        for index in 0..size {
            let proof = inclusion_proof(index, &l).unwrap();
            let result = verify_inclusion(&l[index], index as u64, size as u64, &proof, &root);
            assert!(result.is_ok(), "size {size} index {index}");
        }
    }
}

#[test]
fn inclusion_rejects_wrong_leaf_and_index() {
    let l = leaves(9);
    let root = root_hash(&l);
    let proof = inclusion_proof(3, &l).unwrap();
    assert!(verify_inclusion(&l[4], 3, 9, &proof, &root).is_err());
    assert!(verify_inclusion(&l[3], 2, 9, &proof, &root).is_err());
    assert!(verify_inclusion(&l[3], 3, 8, &proof, &root).is_err());
    assert!(verify_inclusion(&l[3], 9, 9, &proof, &root).is_err());
    let mut short = proof.clone();
    short.pop();
    assert!(verify_inclusion(&l[3], 3, 9, &short, &root).is_err());
}

#[test]
fn consistency_proof_matches_hand_computed_path() {
    // RFC 9162 section 2.1.5's example: the proof from 3 to 7 leaves is [c, d, g, l].
    let l = leaves(7);
    let proof = consistency_proof(3, &l).unwrap();
    let c = l[2];
    let d = l[3];
    let g = node_hash(&l[0], &l[1]);
    let l_node = root_hash(&l[4..7]);
    assert_eq!(proof, vec![c, d, g, l_node]);
}

#[test]
fn consistency_proofs_verify_for_every_pair() {
    for new_size in 1..=20 {
        let l = leaves(new_size);
        let new_root = root_hash(&l);
        for old_size in 1..=new_size {
            let old_root = root_hash(&l[..old_size]);
            let proof = consistency_proof(old_size, &l).unwrap();
            let result = verify_consistency(
                old_size as u64,
                new_size as u64,
                &old_root,
                &new_root,
                &proof,
            );
            assert!(result.is_ok(), "old {old_size} new {new_size}");
        }
    }
}

#[test]
fn consistency_rejects_rewritten_history() {
    let l = leaves(8);
    let mut forked = l.clone();
    forked[2] = leaf_hash(b"other");
    let proof = consistency_proof(4, &forked).unwrap();
    let old_root = root_hash(&l[..4]);
    let result = verify_consistency(4, 8, &old_root, &root_hash(&forked), &proof);
    assert!(result.is_err());

    let proof = consistency_proof(5, &l).unwrap();
    let result = verify_consistency(5, 8, &root_hash(&l[..5]), &root_hash(&forked), &proof);
    assert!(result.is_err());
}

#[test]
fn consistency_rejects_dropped_leaf() {
    let l = leaves(6);
    let mut dropped = l.clone();
    dropped.remove(1);
    let proof = consistency_proof(3, &dropped).unwrap();
    let result = verify_consistency(3, 5, &root_hash(&l[..3]), &root_hash(&dropped), &proof);
    assert!(result.is_err());
}
