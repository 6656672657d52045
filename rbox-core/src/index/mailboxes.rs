//! The mailbox list object (`rbox.index`): create, look up, list, rename, delete.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::format::{
    self, FORMAT_VERSION, KEY_FORMAT, KEY_UIDVALIDITY, MailboxRecord, MailboxState, PREFIX_MAILBOX,
    PREFIX_NAME,
};
use super::{Index, MAX_CAS_ATTEMPTS, PAGE, backoff, conflict, found};
use crate::backend::{BackendError, CmpOp, WriteOp};
use crate::error::{Result, StoreError};
use crate::format::guid::Guid128;

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A mailbox as the list object describes it, with the stored bytes of its record (the
/// compare value for later changes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedMailbox {
    pub guid: Guid128,
    pub record: MailboxRecord,
    pub raw: Vec<u8>,
}

impl Index {
    fn check_format(&self, vals: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        if let Some(v) = vals.get(KEY_FORMAT) {
            let n = format::decode_counter("format", v)
                .map_err(|e| StoreError::index_format(format::LIST_OBJECT, KEY_FORMAT, e))?;
            if n != u64::from(FORMAT_VERSION) {
                return Err(StoreError::index_format(
                    format::LIST_OBJECT,
                    KEY_FORMAT,
                    format::IndexFormatError::Invalid {
                        what: "index",
                        reason: format!(
                            "format version {n}; this rbox-core reads version {FORMAT_VERSION}"
                        ),
                    },
                ));
            }
        }
        Ok(())
    }

    /// Who owns the truth in this namespace (`truth` key; absent or no index: the index).
    pub async fn truth(&self) -> Result<format::Truth> {
        let keys = [format::KEY_TRUTH.to_string()];
        let vals = found(
            self.backend
                .omap_get_vals_by_keys(&self.list_loc(), &keys)
                .await,
        )?
        .unwrap_or_default();
        match vals.get(format::KEY_TRUTH) {
            None => Ok(format::Truth::Index),
            Some(v) => format::Truth::parse(v).ok_or_else(|| {
                StoreError::index_format(
                    format::LIST_OBJECT,
                    format::KEY_TRUTH,
                    format::IndexFormatError::Invalid {
                        what: "truth",
                        reason: "neither `objects` nor `index`".into(),
                    },
                )
            }),
        }
    }

    /// Store who owns the truth (creates the list object if needed).
    pub async fn set_truth(&self, truth: format::Truth) -> Result<()> {
        let op = WriteOp::new()
            .create(false)
            .omap_set([(format::KEY_TRUTH, truth.as_str().as_bytes().to_vec())]);
        self.backend.write_op(&self.list_loc(), op).await?;
        Ok(())
    }

    /// Does this namespace have an index at all?
    pub async fn exists(&self) -> Result<bool> {
        Ok(found(self.backend.stat(&self.list_loc()).await)?.is_some())
    }

    fn decode_mailbox(&self, key: &str, raw: &[u8]) -> Result<MailboxRecord> {
        MailboxRecord::decode(raw)
            .map_err(|e| StoreError::index_format(format::LIST_OBJECT, key, e))
    }

    /// The mailbox record stored under a GUID.
    pub async fn mailbox(&self, guid: &Guid128) -> Result<Option<ListedMailbox>> {
        let key = format::mailbox_key(guid);
        let vals = found(
            self.backend
                .omap_get_vals_by_keys(&self.list_loc(), std::slice::from_ref(&key))
                .await,
        )?
        .unwrap_or_default();
        match vals.get(&key) {
            None => Ok(None),
            Some(raw) => Ok(Some(ListedMailbox {
                guid: *guid,
                record: self.decode_mailbox(&key, raw)?,
                raw: raw.clone(),
            })),
        }
    }

    /// Look a mailbox up by name.
    pub async fn mailbox_by_name(&self, name: &str) -> Result<Option<ListedMailbox>> {
        let key = format::name_key(name);
        let vals = found(
            self.backend
                .omap_get_vals_by_keys(&self.list_loc(), std::slice::from_ref(&key))
                .await,
        )?
        .unwrap_or_default();
        let Some(raw) = vals.get(&key) else {
            return Ok(None);
        };
        let guid = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| Guid128::parse_hex(s).ok())
            .ok_or_else(|| {
                StoreError::index_format(
                    format::LIST_OBJECT,
                    &key,
                    format::IndexFormatError::Invalid {
                        what: "name entry",
                        reason: "value is not a 32-hex mailbox GUID".into(),
                    },
                )
            })?;
        match self.mailbox(&guid).await? {
            Some(m) if m.record.name == name => Ok(Some(m)),
            // A name entry whose record is gone or renamed: fsck reports it; for lookups the
            // name does not exist.
            _ => Ok(None),
        }
    }

    /// Every `(key, value)` under a prefix of the list object, paged.
    pub(crate) async fn list_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let loc = self.list_loc();
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let Some(page) = found(self.backend.omap_get_vals(&loc, &after, prefix, PAGE).await)?
            else {
                return Ok(out);
            };
            if let Some(last) = page.entries.keys().next_back() {
                after = last.clone();
            }
            let more = page.more && !page.entries.is_empty();
            out.extend(page.entries);
            if !more {
                return Ok(out);
            }
        }
    }

    /// All mailboxes (active and being deleted), ordered by name.
    pub async fn list_mailboxes(&self) -> Result<Vec<ListedMailbox>> {
        let mut out = Vec::new();
        for (key, raw) in self.list_prefix(PREFIX_MAILBOX).await? {
            let guid = format::parse_mailbox_key(&key).ok_or_else(|| {
                StoreError::index_format(
                    format::LIST_OBJECT,
                    &key,
                    format::IndexFormatError::Invalid {
                        what: "mailbox key",
                        reason: "not mb.<32 hex>".into(),
                    },
                )
            })?;
            let record = self.decode_mailbox(&key, &raw)?;
            out.push(ListedMailbox { guid, record, raw });
        }
        out.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        Ok(out)
    }

    /// Create a mailbox (with a given GUID when re-creating one from mail metadata).
    /// Its UIDVALIDITY is the current time, or one more than the last one issued in this
    /// namespace if that is not larger, so a re-created name never reuses one.
    pub async fn create_mailbox(&self, name: &str, guid: Option<Guid128>) -> Result<ListedMailbox> {
        self.create_mailbox_with(name, guid, None).await
    }

    /// [`Self::create_mailbox`], keeping a given UIDVALIDITY (fsck re-indexing a mailbox
    /// whose GUID another writer changed while its UIDs stayed valid).
    pub async fn create_mailbox_with(
        &self,
        name: &str,
        guid: Option<Guid128>,
        keep_uidvalidity: Option<u32>,
    ) -> Result<ListedMailbox> {
        format::validate_mailbox_name(name).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let loc = self.list_loc();
        let name_key = format::name_key(name);
        let guid = guid.unwrap_or_else(Guid128::generate);
        let mb_key = format::mailbox_key(&guid);
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let keys = [
                KEY_FORMAT.to_string(),
                KEY_UIDVALIDITY.to_string(),
                name_key.clone(),
                mb_key.clone(),
            ];
            let vals =
                found(self.backend.omap_get_vals_by_keys(&loc, &keys).await)?.unwrap_or_default();
            self.check_format(&vals)?;
            if vals.contains_key(&name_key) {
                return Err(StoreError::MailboxExists(name.to_string()));
            }
            if vals.contains_key(&mb_key) {
                return Err(StoreError::Invalid(format!(
                    "mailbox GUID {guid} is already used by another mailbox"
                )));
            }
            let old_uv_raw = vals.get(KEY_UIDVALIDITY).cloned().unwrap_or_default();
            let old_uv = if old_uv_raw.is_empty() {
                0
            } else {
                format::decode_counter("uidvalidity", &old_uv_raw).map_err(|e| {
                    StoreError::index_format(format::LIST_OBJECT, KEY_UIDVALIDITY, e)
                })?
            };
            let now = now_secs();
            let (uv, counter) = match keep_uidvalidity {
                Some(k) => (u64::from(k), old_uv.max(u64::from(k))),
                None => {
                    let uv = (now.max(0) as u64).max(old_uv + 1);
                    (uv, uv)
                }
            };
            let uv = u32::try_from(uv).map_err(|_| {
                StoreError::Invalid("UIDVALIDITY space of this namespace is exhausted".into())
            })?;
            let record = MailboxRecord {
                state: MailboxState::Active,
                uidvalidity: uv,
                created: now,
                name: name.to_string(),
            };
            let raw = record.encode();
            let op = WriteOp::new()
                .create(false)
                .omap_cmp(KEY_UIDVALIDITY, CmpOp::Eq, old_uv_raw)
                .omap_cmp(name_key.clone(), CmpOp::Eq, Vec::new())
                .omap_cmp(mb_key.clone(), CmpOp::Eq, Vec::new())
                .omap_set([
                    (
                        KEY_FORMAT.to_string(),
                        format::encode_counter(u64::from(FORMAT_VERSION)),
                    ),
                    (KEY_UIDVALIDITY.to_string(), format::encode_counter(counter)),
                    (mb_key.clone(), raw.clone()),
                    (name_key.clone(), guid.to_hex().into_bytes()),
                ]);
            match self.backend.write_op(&loc, op).await {
                Ok(()) => {
                    let listed = ListedMailbox { guid, record, raw };
                    self.ensure_head(&listed).await?;
                    return Ok(listed);
                }
                Err(BackendError::Canceled(_)) => backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(format!("mailbox list of {}", self.ns)))
    }

    /// Rename a mailbox: one compound op on the list object.
    pub async fn rename_mailbox(&self, old: &str, new: &str) -> Result<ListedMailbox> {
        format::validate_mailbox_name(new).map_err(|e| StoreError::Invalid(e.to_string()))?;
        if old == new {
            return self
                .mailbox_by_name(old)
                .await?
                .ok_or_else(|| StoreError::MailboxNotFound(old.to_string()));
        }
        let loc = self.list_loc();
        let new_key = format::name_key(new);
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let cur = self
                .mailbox_by_name(old)
                .await?
                .ok_or_else(|| StoreError::MailboxNotFound(old.to_string()))?;
            if cur.record.state == MailboxState::Deleting {
                return Err(StoreError::MailboxDeleting(old.to_string()));
            }
            if self.mailbox_by_name(new).await?.is_some() {
                return Err(StoreError::MailboxExists(new.to_string()));
            }
            let record = MailboxRecord {
                name: new.to_string(),
                ..cur.record.clone()
            };
            let raw = record.encode();
            let mb_key = format::mailbox_key(&cur.guid);
            let old_key = format::name_key(old);
            let op = WriteOp::new()
                .omap_cmp(old_key.clone(), CmpOp::Eq, cur.guid.to_hex().into_bytes())
                .omap_cmp(new_key.clone(), CmpOp::Eq, Vec::new())
                .omap_cmp(mb_key.clone(), CmpOp::Eq, cur.raw.clone())
                .omap_rm_keys([old_key])
                .omap_set([
                    (new_key.clone(), cur.guid.to_hex().into_bytes()),
                    (mb_key, raw.clone()),
                ]);
            match self.backend.write_op(&loc, op).await {
                Ok(()) => {
                    return Ok(ListedMailbox {
                        guid: cur.guid,
                        record,
                        raw,
                    });
                }
                Err(BackendError::Canceled(_)) => backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(format!("rename of mailbox {old:?}")))
    }

    /// Change a mailbox's state (compare-and-set on its record).
    pub async fn set_mailbox_state(
        &self,
        guid: &Guid128,
        state: MailboxState,
    ) -> Result<ListedMailbox> {
        let loc = self.list_loc();
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let cur = self
                .mailbox(guid)
                .await?
                .ok_or_else(|| StoreError::MailboxNotFound(guid.to_hex()))?;
            if cur.record.state == state {
                return Ok(cur);
            }
            let record = MailboxRecord {
                state,
                ..cur.record.clone()
            };
            let raw = record.encode();
            let key = format::mailbox_key(guid);
            let op = WriteOp::new()
                .omap_cmp(key.clone(), CmpOp::Eq, cur.raw.clone())
                .omap_set([(key, raw.clone())]);
            match self.backend.write_op(&loc, op).await {
                Ok(()) => {
                    return Ok(ListedMailbox {
                        guid: *guid,
                        record,
                        raw,
                    });
                }
                Err(BackendError::Canceled(_)) => backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(format!("state of mailbox {guid}")))
    }

    /// Remove a mailbox's record and (if it still points here) its name entry.
    pub async fn remove_mailbox_entry(&self, guid: &Guid128) -> Result<()> {
        let loc = self.list_loc();
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let Some(cur) = self.mailbox(guid).await? else {
                return Ok(());
            };
            let name_key = format::name_key(&cur.record.name);
            let vals = found(
                self.backend
                    .omap_get_vals_by_keys(&loc, std::slice::from_ref(&name_key))
                    .await,
            )?
            .unwrap_or_default();
            let mb_key = format::mailbox_key(guid);
            let mut op = WriteOp::new().omap_cmp(mb_key.clone(), CmpOp::Eq, cur.raw.clone());
            let mut rm = vec![mb_key];
            let hex = guid.to_hex().into_bytes();
            if vals.get(&name_key) == Some(&hex) {
                op = op.omap_cmp(name_key.clone(), CmpOp::Eq, hex);
                rm.push(name_key);
            }
            match self.backend.write_op(&loc, op.omap_rm_keys(rm)).await {
                Ok(()) => return Ok(()),
                Err(BackendError::Canceled(_)) => backoff(attempt).await,
                Err(BackendError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(format!("removal of mailbox {guid}")))
    }

    /// Raw name entries (`name.<name>` → value), for fsck.
    pub(crate) async fn list_names_raw(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.list_prefix(PREFIX_NAME).await
    }
}
