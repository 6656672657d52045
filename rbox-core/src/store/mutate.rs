//! Copy, move, expunge, flags and keywords, single-attribute edits.

use super::Mailspace;
use super::body::{encode_metadata, unix_secs};
use super::save::SavedMail;
use crate::backend::{BackendError, WriteOp};
use crate::error::{Result, StoreError};
use crate::format::date::parse_date;
use crate::format::flags::{FlagsByte, MailFlags};
use crate::format::guid::{Guid128, MailGuid};
use crate::format::metadata::{MailMetadata, MetadataKey, encode_keywords, encode_text};
use crate::index::MailRecord;
use crate::index::format::validate_keyword;
use crate::index::mailboxes::now_secs;

/// How a flag update combines with the current flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// A change of system flags and keywords (IMAP STORE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagUpdate {
    pub op: FlagOp,
    pub flags: MailFlags,
    pub keywords: Vec<String>,
}

impl FlagUpdate {
    fn apply(&self, r: &mut MailRecord) -> bool {
        let before = (r.flags, r.keywords.clone());
        match self.op {
            FlagOp::Add => {
                r.flags = r.flags.union(self.flags);
                for k in &self.keywords {
                    if !r.keywords.contains(k) {
                        r.keywords.push(k.clone());
                    }
                }
            }
            FlagOp::Remove => {
                r.flags = r.flags.difference(self.flags);
                r.keywords.retain(|k| !self.keywords.contains(k));
            }
            FlagOp::Replace => {
                r.flags = self.flags;
                r.keywords = Vec::new();
                for k in &self.keywords {
                    if !r.keywords.contains(k) {
                        r.keywords.push(k.clone());
                    }
                }
            }
        }
        (r.flags, &r.keywords) != (before.0, &before.1)
    }
}

impl Mailspace {
    /// Copy a mail into a mailbox of this namespace: a new object (new id, full data copy)
    /// with `M` and `U` of the destination, other metadata kept (librmb copy semantics);
    /// flags and keywords come from the source's index record.
    pub async fn copy(&self, oid: &str, dest_mailbox: &str) -> Result<SavedMail> {
        self.copy_to(oid, self, dest_mailbox).await
    }

    /// Copy a mail into a mailbox of another namespace (another user), as librmb allows.
    pub async fn copy_to(
        &self,
        oid: &str,
        dest: &Mailspace,
        dest_mailbox: &str,
    ) -> Result<SavedMail> {
        let src = self.read(oid).await?;
        let src_record = match self.locate(oid).await {
            Ok(l) => Some(l.record),
            Err(StoreError::NotIndexed(_)) => None,
            Err(e) => return Err(e),
        };
        let dest_space = dest;
        let (dest, alloc) = dest_space.mailbox_and_uid(dest_mailbox, false).await?;
        let uid = alloc.first_uid;
        let cfg = dest_space.cfg().clone();
        let mut meta = src.info.metadata.clone();
        if cfg.is_mail_attribute(MetadataKey::MailboxGuid) {
            meta.mailbox_guid = Some(dest.guid);
        }
        if cfg.is_mail_attribute(MetadataKey::MailUid) {
            meta.uid = Some(uid);
        }
        if cfg.may_update(MetadataKey::OrigMailbox) {
            meta.orig_mailbox = Some(dest.record.name.clone());
        }
        let flags = src_record
            .as_ref()
            .map(|r| r.flags)
            .or_else(|| {
                src.info
                    .metadata
                    .flags
                    .and_then(FlagsByte::mask)
                    .map(MailFlags)
            })
            .unwrap_or_default();
        let keywords = match &src_record {
            Some(r) => r.keywords.clone(),
            None if !src.object_keywords.is_empty() => src.object_keywords.clone(),
            None => src.info.ima_keywords.clone(),
        };
        let guid = meta
            .guid
            .clone()
            .or_else(|| src_record.as_ref().map(|r| r.guid.clone()))
            .unwrap_or_else(|| MailGuid::Compact(Guid128::generate()));
        let received = meta.received.unwrap_or_else(|| unix_secs(src.info.mtime));
        let now = now_secs();
        let encoded = encode_metadata(&cfg, &meta, &keywords);
        let new_oid = dest_space
            .write_fresh_object(&src.data, |_| encoded.clone(), now, Guid128::generate())
            .await?;
        let physical = src.data.len() as u64;
        let virt = meta
            .virtual_size
            .unwrap_or_else(|| super::body::virtual_size(&src.data));
        let record = MailRecord {
            oid: new_oid,
            guid: guid.clone(),
            flags,
            keywords,
            modseq: alloc.modseq,
            physical_size: meta.physical_size.unwrap_or(physical),
            virtual_size: virt,
            received,
            saved: now,
        };
        dest_space
            .index_new_mail(&dest, alloc.header.shard_span, uid, record.clone())
            .await?;
        if dest_space.inner.config.recovery_index {
            dest_space.append_recovery_index(&new_oid.to_hex()).await;
        }
        Ok(SavedMail {
            oid: new_oid,
            uid,
            mailbox: dest.guid,
            uidvalidity: dest.record.uidvalidity,
            guid,
            modseq: alloc.modseq,
            physical_size: record.physical_size,
            virtual_size: record.virtual_size,
        })
    }

    /// Move = copy + expunge of the source (what Dovecot does for rbox).
    pub async fn move_mail(&self, oid: &str, dest_mailbox: &str) -> Result<SavedMail> {
        self.move_to(oid, self, dest_mailbox).await
    }

    /// Move into another namespace.
    pub async fn move_to(
        &self,
        oid: &str,
        dest: &Mailspace,
        dest_mailbox: &str,
    ) -> Result<SavedMail> {
        let saved = self.copy_to(oid, dest, dest_mailbox).await?;
        self.expunge(oid).await?;
        Ok(saved)
    }

    /// Expunge a mail: empty the body (readers now see "expunged"), remove the index
    /// record, remove the object. Each step is safe to crash after; fsck finishes the job.
    pub async fn expunge(&self, oid: &str) -> Result<()> {
        let located = match self.locate(oid).await {
            Ok(l) => Some(l),
            Err(StoreError::NotIndexed(_)) => None,
            Err(e) => return Err(e),
        };
        let loc = self.mail_loc(oid);
        match self
            .backend()
            .write_op(&loc, WriteOp::new().assert_exists().truncate(0))
            .await
        {
            Ok(()) => {}
            Err(BackendError::NotFound(_)) => {
                return Err(StoreError::MailNotFound(oid.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(l) = located {
            self.index
                .remove_record(&l.mailbox.guid, l.header.shard_span, l.uid, &l.raw)
                .await?;
        }
        match self.backend().remove(&loc).await {
            Ok(()) | Err(BackendError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Expunge by index entry (used when deleting mailboxes): same three steps.
    pub(crate) async fn expunge_record(
        &self,
        mailbox: &Guid128,
        span: u32,
        uid: u32,
        raw: &[u8],
        record: &MailRecord,
    ) -> Result<bool> {
        let loc = self.mail_loc(&record.oid.to_hex());
        match self
            .backend()
            .write_op(&loc, WriteOp::new().assert_exists().truncate(0))
            .await
        {
            Ok(()) | Err(BackendError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let removed = self.index.remove_record(mailbox, span, uid, raw).await?;
        match self.backend().remove(&loc).await {
            Ok(()) | Err(BackendError::NotFound(_)) => Ok(removed),
            Err(e) => Err(e.into()),
        }
    }

    /// Change flags and keywords (index first; the object's `F`/`K` too when `rbox_cfg`
    /// makes them stored, updateable and updates are on).
    pub async fn update_flags(&self, oid: &str, update: &FlagUpdate) -> Result<MailRecord> {
        for k in &update.keywords {
            validate_keyword(k).map_err(|e| StoreError::Invalid(e.to_string()))?;
        }
        if update.flags.bits() & !MailFlags::ALL != 0 {
            return Err(StoreError::Invalid("unknown flag bits".into()));
        }
        let l = self.locate(oid).await?;
        let rec = self
            .index
            .update_record(&l.mailbox.guid, &l.mailbox.record.name, l.uid, |r| {
                r.oid == l.oid && update.apply(r)
            })
            .await?
            .ok_or_else(|| StoreError::NotIndexed(oid.to_string()))?;
        let cfg = self.cfg();
        let mut op = WriteOp::new().assert_exists();
        let mut touched = false;
        if cfg.is_mail_attribute(MetadataKey::Flags) && cfg.may_update(MetadataKey::Flags) {
            let name = MetadataKey::Flags.xattr_name();
            op = if rec.flags.is_empty() {
                if l.info.metadata.flags.is_some() {
                    op.rm_xattr(name)
                } else {
                    op
                }
            } else {
                op.set_xattr(name, FlagsByte::from_mask(rec.flags.bits()).encode())
            };
            touched = true;
        }
        if cfg.is_mail_attribute(MetadataKey::Keywords) && cfg.may_update(MetadataKey::Keywords) {
            op = op.omap_clear().omap_set(encode_keywords(&rec.keywords));
            touched = true;
        }
        if touched {
            self.backend().write_op(&self.mail_loc(oid), op).await?;
        }
        Ok(rec)
    }

    /// Rewrite one metadata xattr (`rmb set`). Dates for `R`/`S` may be given as
    /// `YYYY-MM-DD HH:MM:SS` (UTC) or Unix seconds. `M` and `U` belong to the index and are
    /// refused (use move, or fsck to re-index); `G`, `R`, `Z`, `V` and `F` also update the
    /// index record.
    pub async fn set_attribute(
        &self,
        oid: &str,
        key: MetadataKey,
        value: &str,
    ) -> Result<MailMetadata> {
        if matches!(key, MetadataKey::MailboxGuid | MetadataKey::MailUid) {
            return Err(StoreError::Invalid(format!(
                "{key} is maintained by the index; move the mail instead"
            )));
        }
        if matches!(
            key,
            MetadataKey::Keywords | MetadataKey::OldV1Expunged | MetadataKey::Space
        ) {
            return Err(StoreError::Invalid(format!(
                "{key:?} is not an xattr rbox-core writes"
            )));
        }
        let value = if key.is_date() && !value.bytes().all(|b| b.is_ascii_digit()) {
            parse_date(value)
                .map_err(|e| StoreError::Invalid(e.to_string()))?
                .to_string()
        } else {
            value.to_string()
        };
        let bytes = match key {
            MetadataKey::Flags | MetadataKey::PvtFlags => {
                let mask: u8 = crate::format::metadata::parse_decimal(&value)
                    .map_err(|e| StoreError::Invalid(format!("{key}: {e}")))?;
                FlagsByte::from_mask(mask).encode()
            }
            _ => encode_text(&value),
        };
        let mut probe = MailMetadata::default();
        probe
            .set_from_xattr(key, &bytes)
            .map_err(|error| StoreError::Metadata {
                oid: oid.to_string(),
                error,
            })?;
        let located = match self.locate(oid).await {
            Ok(l) => Some(l),
            Err(StoreError::NotIndexed(_)) => None,
            Err(e) => return Err(e),
        };
        let op = WriteOp::new()
            .assert_exists()
            .set_xattr(key.xattr_name(), bytes);
        match self.backend().write_op(&self.mail_loc(oid), op).await {
            Ok(()) => {}
            Err(BackendError::NotFound(_)) => {
                return Err(StoreError::MailNotFound(oid.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(l) = located {
            self.index
                .update_record(&l.mailbox.guid, &l.mailbox.record.name, l.uid, |r| {
                    let before = r.clone();
                    match key {
                        MetadataKey::Guid => r.guid = probe.guid.clone().unwrap_or(r.guid.clone()),
                        MetadataKey::ReceivedTime => {
                            r.received = probe.received.unwrap_or(r.received)
                        }
                        MetadataKey::PhysicalSize => {
                            r.physical_size = probe.physical_size.unwrap_or(r.physical_size)
                        }
                        MetadataKey::VirtualSize => {
                            r.virtual_size = probe.virtual_size.unwrap_or(r.virtual_size)
                        }
                        MetadataKey::Flags => {
                            if let Some(m) = probe.flags.and_then(FlagsByte::mask) {
                                r.flags = MailFlags(m & MailFlags::ALL);
                            }
                        }
                        _ => {}
                    }
                    *r != before
                })
                .await?;
        }
        Ok(self.mail_info(oid).await?.metadata)
    }

    /// Delete one object (`rmb delete <oid>`): a mail is expunged properly; anything else
    /// in the namespace is removed as is.
    pub async fn delete_object(&self, oid: &str) -> Result<()> {
        if Guid128::parse_hex(oid).is_ok() {
            return self.expunge(oid).await;
        }
        match self.backend().remove(&self.mail_loc(oid)).await {
            Ok(()) => Ok(()),
            Err(BackendError::NotFound(_)) => Err(StoreError::MailNotFound(oid.to_string())),
            Err(e) => Err(e.into()),
        }
    }
}
