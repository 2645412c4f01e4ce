//! The redb state machine reaches the same vault state as the in-memory tables for the same
//! log, whatever the batch boundaries, including dedup eviction.

mod common;

use common::apply;
use common::normal_entry;
use common::ops::op_strategy;
use common::ops::request_with_id;
use common::ops::to_command;
use keyfleet_raft::MemoryTables;
use keyfleet_raft::StateMachineStore;
use keyfleet_raft::vault::apply_request;
use proptest::prelude::*;

/// Dedup capacity small enough that generated runs evict.
const SMALL_DEDUP_CAPACITY: u64 = 4;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn redb_state_matches_memory_state(
        ops in prop::collection::vec((0u16..10, op_strategy()), 1..60),
        batch_size in 1usize..8,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state-machine.redb");
        let mut state_machine =
            StateMachineStore::open_with_dedup_capacity(&path, SMALL_DEDUP_CAPACITY).unwrap();
        let mut model = MemoryTables::default();
        let mut entries = Vec::new();

        for (position, (id, op)) in ops.iter().enumerate() {
            let index = position as u64 + 1;
            let request = request_with_id(*id, to_command(op, &model));
            let Ok(_) = apply_request(&mut model, index, &request, SMALL_DEDUP_CAPACITY);
            entries.push(normal_entry(1, index, request));
        }

        let redb_image = runtime.block_on(async {
            for batch in entries.chunks(batch_size) {
                apply(&mut state_machine, batch.to_vec()).await.unwrap();
            }
            state_machine.vault_image().await.unwrap()
        });

        prop_assert_eq!(redb_image, model.to_image());
    }
}
