use std::collections::BTreeMap;
use std::convert::Infallible;

use crate::bundle_record::BundleRecord;
use crate::dedup_entry::DedupEntry;
use crate::fleet::FleetRecord;
use crate::image::VaultImage;
use crate::record::UserRecord;
use crate::request_id::RequestId;
use crate::response::Response;
use crate::user_id::UserId;
use crate::vault::VaultTables;

/// Vault tables in memory, for tests and for comparing vault states.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTables {
    users: BTreeMap<UserId, UserRecord>,
    fleet: Option<FleetRecord>,
    bundle: Option<BundleRecord>,
    dedup: BTreeMap<RequestId, DedupEntry>,
    dedup_by_index: BTreeMap<u64, RequestId>,
}

impl MemoryTables {
    /// Returns all user records, ordered by user id.
    pub fn users(&self) -> &BTreeMap<UserId, UserRecord> {
        &self.users
    }

    /// Returns the remembered requests, ordered by request id.
    pub fn dedup_entries(&self) -> &BTreeMap<RequestId, DedupEntry> {
        &self.dedup
    }

    /// Copies the tables into a snapshot image.
    pub fn to_image(&self) -> VaultImage {
        VaultImage {
            users: self
                .users
                .iter()
                .map(|(user, record)| (user.clone(), record.clone()))
                .collect(),
            fleet: self.fleet.clone(),
            bundle: self.bundle.clone(),
            dedup: self
                .dedup_by_index
                .values()
                .map(|request_id| self.dedup[request_id].clone())
                .collect(),
        }
    }

    /// Builds tables holding exactly the contents of `image`.
    pub fn from_image(image: VaultImage) -> Self {
        let mut tables = Self {
            fleet: image.fleet,
            bundle: image.bundle,
            ..Self::default()
        };

        tables.users.extend(image.users);

        for entry in image.dedup {
            tables
                .dedup_by_index
                .insert(entry.log_index, entry.request_id);
            tables.dedup.insert(entry.request_id, entry);
        }

        tables
    }
}

impl VaultTables for MemoryTables {
    type Error = Infallible;

    fn user(&self, user: &UserId) -> Result<Option<UserRecord>, Infallible> {
        Ok(self.users.get(user).cloned())
    }

    fn put_user(&mut self, user: &UserId, record: &UserRecord) -> Result<(), Infallible> {
        self.users.insert(user.clone(), record.clone());
        Ok(())
    }

    fn user_ids(&self) -> Result<Vec<UserId>, Infallible> {
        Ok(self.users.keys().cloned().collect())
    }

    fn fleet(&self) -> Result<Option<FleetRecord>, Infallible> {
        Ok(self.fleet.clone())
    }

    fn put_fleet(&mut self, fleet: &FleetRecord) -> Result<(), Infallible> {
        self.fleet = Some(fleet.clone());
        Ok(())
    }

    fn bundle(&self) -> Result<Option<BundleRecord>, Infallible> {
        Ok(self.bundle.clone())
    }

    fn put_bundle(&mut self, bundle: &BundleRecord) -> Result<(), Infallible> {
        self.bundle = Some(bundle.clone());
        Ok(())
    }

    fn dedup_response(&self, request_id: &RequestId) -> Result<Option<Response>, Infallible> {
        Ok(self
            .dedup
            .get(request_id)
            .map(|entry| entry.response.clone()))
    }

    fn insert_dedup_entry(&mut self, entry: &DedupEntry) -> Result<(), Infallible> {
        self.dedup_by_index
            .insert(entry.log_index, entry.request_id);
        self.dedup.insert(entry.request_id, entry.clone());
        Ok(())
    }

    fn dedup_len(&self) -> Result<u64, Infallible> {
        Ok(self.dedup.len() as u64)
    }

    fn remove_oldest_dedup_entry(&mut self) -> Result<Option<RequestId>, Infallible> {
        let Some((_, request_id)) = self.dedup_by_index.pop_first() else {
            return Ok(None);
        };

        self.dedup.remove(&request_id);
        Ok(Some(request_id))
    }
}
