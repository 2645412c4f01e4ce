//! Merkle tree hashing and proofs as RFC 9162 (Certificate Transparency 2.0), section 2.1,
//! defines them: SHA-256, leaves hashed with a 0x00 prefix and interior nodes with 0x01.

use sha2::{Digest, Sha256};

use crate::error::ProofError;

/// A SHA-256 hash of a tree node.
pub type Hash = [u8; 32];

/// Returns the hash of a leaf: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// Returns the hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Returns the root hash of the tree over `leaves` (leaf hashes); the empty tree's root is
/// SHA-256 of the empty string.
pub fn root_hash(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split_point(n);
            node_hash(&root_hash(&leaves[..k]), &root_hash(&leaves[k..]))
        }
    }
}

/// Builds the inclusion proof of leaf `index` in the tree over `leaves`.
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    if index >= leaves.len() {
        return Err(ProofError::IndexOutOfRange {
            index: index as u64,
            size: leaves.len() as u64,
        });
    }
    let mut path = Vec::new();
    collect_inclusion_path(index, leaves, &mut path);
    Ok(path)
}

fn collect_inclusion_path(index: usize, leaves: &[Hash], path: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    if index < k {
        collect_inclusion_path(index, &leaves[..k], path);
        path.push(root_hash(&leaves[k..]));
    } else {
        collect_inclusion_path(index - k, &leaves[k..], path);
        path.push(root_hash(&leaves[..k]));
    }
}

/// Builds the consistency proof between the first `old_size` leaves and all of `leaves`.
pub fn consistency_proof(old_size: usize, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    if old_size == 0 || old_size > leaves.len() {
        return Err(ProofError::IndexOutOfRange {
            index: old_size as u64,
            size: leaves.len() as u64,
        });
    }
    let mut path = Vec::new();
    if old_size < leaves.len() {
        collect_subproof(old_size, leaves, true, &mut path);
    }
    Ok(path)
}

fn collect_subproof(
    old_size: usize,
    leaves: &[Hash],
    is_whole_old_tree: bool,
    path: &mut Vec<Hash>,
) {
    let n = leaves.len();
    if old_size == n {
        if !is_whole_old_tree {
            path.push(root_hash(leaves));
        }
        return;
    }
    let k = split_point(n);
    if old_size <= k {
        collect_subproof(old_size, &leaves[..k], is_whole_old_tree, path);
        path.push(root_hash(&leaves[k..]));
    } else {
        collect_subproof(old_size - k, &leaves[k..], false, path);
        path.push(root_hash(&leaves[..k]));
    }
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut fnode = index;
    let mut snode = size - 1;
    let mut hash = *leaf;
    for sibling in path {
        if snode == 0 {
            return Err(ProofError::InclusionMismatch);
        }
        if fnode & 1 == 1 || fnode == snode {
            hash = node_hash(sibling, &hash);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 || hash != *root {
        return Err(ProofError::InclusionMismatch);
    }
    Ok(())
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the tree of
/// `old_size` leaves with root `old_root`.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    path: &[Hash],
) -> Result<(), ProofError> {
    if old_size == 0 || old_size > new_size {
        return Err(ProofError::IndexOutOfRange {
            index: old_size,
            size: new_size,
        });
    }
    if old_size == new_size {
        if path.is_empty() && old_root == new_root {
            return Ok(());
        }
        return Err(ProofError::ConsistencyMismatch);
    }
    if path.is_empty() {
        return Err(ProofError::ConsistencyMismatch);
    }

    let mut nodes: Vec<Hash> = Vec::with_capacity(path.len() + 1);
    if old_size.is_power_of_two() {
        nodes.push(*old_root);
    }
    nodes.extend_from_slice(path);

    let mut fnode = old_size - 1;
    let mut snode = new_size - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut old_hash = nodes[0];
    let mut new_hash = nodes[0];
    for node in &nodes[1..] {
        if snode == 0 {
            return Err(ProofError::ConsistencyMismatch);
        }
        if fnode & 1 == 1 || fnode == snode {
            old_hash = node_hash(node, &old_hash);
            new_hash = node_hash(node, &new_hash);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            new_hash = node_hash(&new_hash, node);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 || old_hash != *old_root || new_hash != *new_root {
        return Err(ProofError::ConsistencyMismatch);
    }
    Ok(())
}

/// Returns the largest power of two smaller than `n`, for `n >= 2`.
fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
