//! The vault tables in the state machine's redb file.

use std::io::Write;

use redb::ReadTransaction;
use redb::ReadableTable;
use redb::ReadableTableMetadata;
use redb::Table;
use redb::TableDefinition;
use redb::WriteTransaction;

use crate::bundle_record::BundleRecord;
use crate::dedup_entry::DedupEntry;
use crate::error::StoreError;
use crate::error::decode;
use crate::error::encode;
use crate::fleet::FleetRecord;
use crate::image::VaultImage;
use crate::record::UserRecord;
use crate::redb_io::NamedValues;
use crate::redb_io::copy_table;
use crate::redb_io::get_value;
use crate::redb_io::put_value;
use crate::request_id::RequestId;
use crate::response::Response;
use crate::snapshot_encoder::SnapshotEncoder;
use crate::snapshot_format::SnapshotItem;
use crate::user_id::UserId;
use crate::vault::VaultTables;

/// User records by user id.
const USERS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("vault_users");

/// The fleet setup, under [`FLEET_KEY`].
const FLEET: NamedValues = TableDefinition::new("vault_fleet");

/// The current validation bundle, under [`BUNDLE_KEY`].
const BUNDLE: NamedValues = TableDefinition::new("vault_bundle");

/// Remembered requests by request id.
const DEDUP: TableDefinition<'static, [u8; 16], &'static [u8]> =
    TableDefinition::new("vault_dedup");

/// Remembered request ids by the log index that applied them, for eviction of the oldest.
const DEDUP_BY_INDEX: TableDefinition<'static, u64, [u8; 16]> =
    TableDefinition::new("vault_dedup_by_index");

const FLEET_KEY: &str = "fleet";

const BUNDLE_KEY: &str = "bundle";

/// The vault tables, opened inside one write transaction.
pub(crate) struct RedbTables<'txn> {
    users: Table<'txn, &'static str, &'static [u8]>,
    fleet: Table<'txn, &'static str, &'static [u8]>,
    bundle: Table<'txn, &'static str, &'static [u8]>,
    dedup: Table<'txn, [u8; 16], &'static [u8]>,
    dedup_by_index: Table<'txn, u64, [u8; 16]>,
}

impl<'txn> RedbTables<'txn> {
    /// Opens the vault tables in `txn`, creating any that do not exist.
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            users: txn.open_table(USERS)?,
            fleet: txn.open_table(FLEET)?,
            bundle: txn.open_table(BUNDLE)?,
            dedup: txn.open_table(DEDUP)?,
            dedup_by_index: txn.open_table(DEDUP_BY_INDEX)?,
        })
    }

    /// Inserts one record of snapshot data into the tables.
    pub(crate) fn insert_item(&mut self, item: &SnapshotItem) -> Result<(), StoreError> {
        match item {
            SnapshotItem::Fleet(fleet) => self.put_fleet(fleet),
            SnapshotItem::Bundle(bundle) => self.put_bundle(bundle),
            SnapshotItem::User(user, record) => self.put_user(user, record),
            SnapshotItem::Dedup(entry) => self.insert_dedup_entry(entry),
        }
    }
}

impl VaultTables for RedbTables<'_> {
    type Error = StoreError;

    fn user(&self, user: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let Some(guard) = self.users.get(user.as_str())? else {
            return Ok(None);
        };

        decode(guard.value(), "user record").map(Some)
    }

    fn put_user(&mut self, user: &UserId, record: &UserRecord) -> Result<(), StoreError> {
        let bytes = encode(record, "user record")?;

        self.users.insert(user.as_str(), bytes.as_slice())?;

        Ok(())
    }

    fn user_ids(&self) -> Result<Vec<UserId>, StoreError> {
        let mut ids = Vec::new();
        for row in self.users.iter()? {
            let (user, _) = row?;
            ids.push(UserId::new(user.value()).map_err(StoreError::InvalidStoredUserId)?);
        }
        Ok(ids)
    }

    fn fleet(&self) -> Result<Option<FleetRecord>, StoreError> {
        get_value(&self.fleet, FLEET_KEY, "fleet record")
    }

    fn put_fleet(&mut self, fleet: &FleetRecord) -> Result<(), StoreError> {
        put_value(&mut self.fleet, FLEET_KEY, fleet, "fleet record")
    }

    fn bundle(&self) -> Result<Option<BundleRecord>, StoreError> {
        get_value(&self.bundle, BUNDLE_KEY, "validation bundle")
    }

    fn put_bundle(&mut self, bundle: &BundleRecord) -> Result<(), StoreError> {
        put_value(&mut self.bundle, BUNDLE_KEY, bundle, "validation bundle")
    }

    fn dedup_response(&self, request_id: &RequestId) -> Result<Option<Response>, StoreError> {
        let Some(guard) = self.dedup.get(request_id.as_bytes())? else {
            return Ok(None);
        };

        let entry: DedupEntry = decode(guard.value(), "dedup entry")?;
        Ok(Some(entry.response))
    }

    fn insert_dedup_entry(&mut self, entry: &DedupEntry) -> Result<(), StoreError> {
        let bytes = encode(entry, "dedup entry")?;
        let id = entry.request_id.as_bytes();

        self.dedup.insert(id, bytes.as_slice())?;
        self.dedup_by_index.insert(entry.log_index, id)?;

        Ok(())
    }

    fn dedup_len(&self) -> Result<u64, StoreError> {
        Ok(self.dedup.len()?)
    }

    fn remove_oldest_dedup_entry(&mut self) -> Result<Option<RequestId>, StoreError> {
        let Some((_, id)) = self.dedup_by_index.pop_first()? else {
            return Ok(None);
        };

        let id = id.value();
        self.dedup.remove(&id)?;

        Ok(Some(RequestId::from_bytes(id)))
    }
}

/// Reads the record of `user`.
pub(crate) fn read_user(
    txn: &ReadTransaction,
    user: &UserId,
) -> Result<Option<UserRecord>, StoreError> {
    let users = txn.open_table(USERS)?;

    let Some(guard) = users.get(user.as_str())? else {
        return Ok(None);
    };

    decode(guard.value(), "user record").map(Some)
}

/// Reads the fleet setup.
pub(crate) fn read_fleet(txn: &ReadTransaction) -> Result<Option<FleetRecord>, StoreError> {
    let fleet = txn.open_table(FLEET)?;

    get_value(&fleet, FLEET_KEY, "fleet record")
}

/// Reads the current validation bundle.
pub(crate) fn read_bundle(txn: &ReadTransaction) -> Result<Option<BundleRecord>, StoreError> {
    let bundle = txn.open_table(BUNDLE)?;

    get_value(&bundle, BUNDLE_KEY, "validation bundle")
}

/// Reads every vault table in `txn` into an image.
pub(crate) fn read_image(txn: &ReadTransaction) -> Result<VaultImage, StoreError> {
    let mut image = VaultImage::default();

    let users = txn.open_table(USERS)?;
    for row in users.range(..)? {
        let (user, record) = row?;
        let user = UserId::new(user.value()).map_err(StoreError::InvalidStoredUserId)?;
        image
            .users
            .push((user, decode(record.value(), "user record")?));
    }

    image.fleet = read_fleet(txn)?;
    image.bundle = read_bundle(txn)?;

    let dedup = txn.open_table(DEDUP)?;
    let dedup_by_index = txn.open_table(DEDUP_BY_INDEX)?;
    for row in dedup_by_index.range(..)? {
        let (log_index, id) = row?;
        let Some(entry) = dedup.get(id.value())? else {
            return Err(StoreError::MissingDedupEntry {
                log_index: log_index.value(),
            });
        };
        image.dedup.push(decode(entry.value(), "dedup entry")?);
    }

    Ok(image)
}

/// Writes every vault table in `txn` to `encoder`, one record at a time, in the order of the
/// snapshot layout.
pub(crate) fn encode_vault_tables<W: Write>(
    txn: &ReadTransaction,
    encoder: &mut SnapshotEncoder<W>,
) -> Result<(), StoreError> {
    if let Some(fleet) = read_fleet(txn)? {
        encoder.write_fleet(&fleet)?;
    }
    if let Some(bundle) = read_bundle(txn)? {
        encoder.write_bundle(&bundle)?;
    }

    let users = txn.open_table(USERS)?;
    for row in users.range(..)? {
        let (user, record) = row?;
        let user = UserId::new(user.value()).map_err(StoreError::InvalidStoredUserId)?;
        let record: UserRecord = decode(record.value(), "user record")?;
        encoder.write_user(&user, &record)?;
    }

    let dedup = txn.open_table(DEDUP)?;
    let dedup_by_index = txn.open_table(DEDUP_BY_INDEX)?;
    for row in dedup_by_index.range(..)? {
        let (log_index, id) = row?;
        let Some(entry) = dedup.get(id.value())? else {
            return Err(StoreError::MissingDedupEntry {
                log_index: log_index.value(),
            });
        };
        let entry: DedupEntry = decode(entry.value(), "dedup entry")?;
        encoder.write_dedup(&entry)?;
    }

    Ok(())
}

/// Copies every vault table from `from` to `to`, for a rewrite of the state machine file.
pub(crate) fn copy_vault_tables(
    from: &ReadTransaction,
    to: &WriteTransaction,
) -> Result<(), StoreError> {
    copy_table(from, to, USERS)?;
    copy_table(from, to, FLEET)?;
    copy_table(from, to, BUNDLE)?;
    copy_table(from, to, DEDUP)?;
    copy_table(from, to, DEDUP_BY_INDEX)
}
