//! A snapshot of a vault much larger than the memory bound is built, read in chunks as a sender
//! does, received into a file and installed, while the heap stays within the bound.
//!
//! The test counts heap bytes with its own global allocator, so it runs in its own test binary.

mod common;

use std::alloc::GlobalAlloc;
use std::alloc::Layout;
use std::alloc::System;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;

use common::apply;
use common::normal_entry;
use keyfleet_raft::Command;
use keyfleet_raft::MAX_SEALED_BLOB_LEN;
use keyfleet_raft::Request;
use keyfleet_raft::RequestId;
use keyfleet_raft::SealedBlob;
use keyfleet_raft::SnapshotDir;
use keyfleet_raft::UserId;
use keyfleet_raft::open_node_storage;
use openraft::RaftSnapshotBuilder;
use openraft::storage::RaftStateMachine;

/// Heap bytes allocated now, and the most allocated since the last reset.
struct CountingAllocator {
    current: AtomicUsize,
    peak: AtomicUsize,
}

impl CountingAllocator {
    fn reset_peak(&self) -> usize {
        let current = self.current.load(Ordering::SeqCst);
        self.peak.store(current, Ordering::SeqCst);
        current
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    fn add(&self, bytes: usize) {
        let current = self.current.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.peak.fetch_max(current, Ordering::SeqCst);
    }
}

// SAFETY: every call forwards to the system allocator with the caller's arguments, and only
// counts bytes on the side.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.add(layout.size());
        // SAFETY: the caller upholds `alloc`'s contract, which is forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.current.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: `ptr` came from `System.alloc` with this layout, as `alloc` forwards there.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.current.fetch_sub(layout.size(), Ordering::SeqCst);
        self.add(new_size);
        // SAFETY: the caller upholds `realloc`'s contract, which is forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator {
    current: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

/// Users in the vault. With two blobs near the maximum size each, the snapshot data is about
/// 155 MB, over three times the bound below.
const USERS: u64 = 1_200;

/// Bytes of each sealed blob.
const BLOB_LEN: usize = MAX_SEALED_BLOB_LEN - 1024;

/// Most heap bytes that building, reading, receiving and installing the snapshot may add to
/// what the process held before. It covers redb's page caches, capped at 32 MiB per file
/// whatever the vault's size, and a few MiB of buffers. This test measured 17.6 MB on a
/// 155 MB snapshot; holding the snapshot in memory once would exceed the bound three times.
const HEAP_BOUND: usize = 48 * 1024 * 1024;

/// Size of the chunks the test reads, as the gRPC sender does.
const CHUNK_BYTES: usize = 1024 * 1024;

fn register(index: u64) -> Request {
    let mut id = [0; 16];
    id[..8].copy_from_slice(&index.to_be_bytes());
    id[15] = 0xaa;

    Request {
        request_id: RequestId::from_bytes(id),
        command: Command::Register {
            expected_version: None,
            user: UserId::new(format!("t/user-{index:06}")).unwrap(),
            password_file: SealedBlob::new(vec![index as u8; BLOB_LEN]),
            sealed_secret: SealedBlob::new(vec![!(index as u8); BLOB_LEN]),
            max_guesses: 5,
            oprf_salt: [7; 16],
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_snapshot_round_trip_has_bounded_heap() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let (_leader_log, mut leader) = open_node_storage(leader_dir.path()).unwrap();
    let (_follower_log, mut follower) = open_node_storage(follower_dir.path()).unwrap();
    let indexes: Vec<u64> = (1..=USERS).collect();
    for batch in indexes.chunks(50) {
        let entries = batch
            .iter()
            .map(|index| normal_entry(1, *index, register(*index)))
            .collect();
        apply(&mut leader, entries).await.unwrap();
    }
    let before = ALLOCATOR.reset_peak();

    let built = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let receiver_dir = SnapshotDir::open(&follower_dir.path().join("receiver")).unwrap();
    let mut incoming = receiver_dir.create_incoming(built.snapshot.len()).unwrap();
    let mut offset = 0;
    while offset < built.snapshot.len() {
        let chunk = built.snapshot.read_chunk(offset, CHUNK_BYTES).unwrap();
        assert!(
            chunk.capacity() <= CHUNK_BYTES,
            "a chunk buffered more than requested"
        );
        incoming.write(&chunk).unwrap();
        offset += chunk.len() as u64;
    }
    let (received, records) = incoming.finish().unwrap();
    follower
        .install_snapshot(&built.meta, received)
        .await
        .unwrap();
    let added = ALLOCATOR.peak().saturating_sub(before);

    assert!(
        built.snapshot.len() > 3 * HEAP_BOUND as u64,
        "the snapshot of {} bytes is too small to test the bound",
        built.snapshot.len()
    );
    assert_eq!(
        records,
        USERS * 2,
        "one user record and one dedup entry per user"
    );
    assert!(
        added <= HEAP_BOUND,
        "the round trip of a {} byte snapshot added {added} heap bytes, over the bound of \
         {HEAP_BOUND}",
        built.snapshot.len()
    );

    let last = UserId::new(format!("t/user-{USERS:06}")).unwrap();
    let installed = follower.user(&last).await.unwrap().unwrap();
    assert_eq!(
        installed.password_file.as_bytes(),
        vec![USERS as u8; BLOB_LEN]
    );
    assert_eq!(
        follower.applied_state().await.unwrap(),
        leader.applied_state().await.unwrap()
    );
}
