//! Mails whose UIDs another index hands out: Dovecot's own index, in the plugin's
//! index-on-disk mode. Dovecot owns UIDs, flags and the mailbox list there; rbox-core
//! writes the bodies (each with every xattr, `U` included, in one op) and mirrors each
//! change into the omap index so `rbox ls`, `rbox fsck` and the canary see the same mail.
//!
//! Mirroring is best effort by design: the body write decides whether a save succeeded
//! (Dovecot's index then holds the UID), and an omap record that failed to land is what
//! `rbox fsck --repair` re-creates from the object's `M`/`U` xattrs.

use futures::StreamExt;

use super::Mailspace;
use super::body::{encode_metadata, virtual_size};
use super::save::new_mail_metadata;
use crate::backend::BackendError;
use crate::error::{Result, StoreError};
use crate::format::flags::MailFlags;
use crate::format::guid::{Guid128, MailGuid};
use crate::index::MailRecord;
use crate::index::format::validate_keyword;
use crate::index::mailboxes::{ListedMailbox, now_secs};

/// The mailbox a change belongs to, as the external index names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalMailbox {
    pub guid: Guid128,
    pub name: String,
}

/// One mail of a committed save transaction. The body is borrowed: the caller keeps it
/// alive until the call returns.
#[derive(Clone, Debug)]
pub struct ExternalMail<'a> {
    pub uid: u32,
    /// Preferred object id (Dovecot generates it right before the mail GUID).
    pub oid: Guid128,
    pub guid: MailGuid,
    /// The mail's data; empty for a copy.
    pub body: &'a [u8],
    /// A copy (COPY/MOVE within the namespace): the object whose data is copied, read
    /// and written in RADOS at commit; `body` is then ignored.
    pub source: Option<Guid128>,
    pub received: i64,
    pub saved: i64,
    pub flags: MailFlags,
    pub keywords: Vec<String>,
    pub pop3_uidl: Option<String>,
    pub pop3_order: Option<u32>,
}

/// Final flags and keywords of one mail after a change in the external index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalFlags {
    pub uid: u32,
    pub flags: MailFlags,
    pub keywords: Vec<String>,
}

/// What a save did: the object ids used (in input order) and, if mirroring into the omap
/// index failed, why (the mails are durable either way).
#[derive(Debug)]
pub struct ExternalSaved {
    pub oids: Vec<Guid128>,
    pub index_error: Option<StoreError>,
}

/// One object [`Mailspace::write_external`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExternalWritten {
    pub oid: Guid128,
    pub physical_size: u64,
    pub virtual_size: u64,
}

impl Mailspace {
    /// Write the bodies of a commit concurrently, then mirror them into the omap index in
    /// one batch. Fails (and removes what it wrote) if any body could not be written.
    pub async fn save_external(
        &self,
        mailbox: &ExternalMailbox,
        mails: &[ExternalMail<'_>],
    ) -> Result<ExternalSaved> {
        let written = self.write_external(mailbox, mails).await?;
        let records = external_records(mails, &written);
        let index_error = self.index_external_saves(mailbox, &records).await.err();
        let oids = written.iter().map(|w| w.oid).collect();
        Ok(ExternalSaved { oids, index_error })
    }

    /// The durable half of a save: every body with all its xattrs, written concurrently
    /// (a copy's data read from its source object first). Fails (and removes what it
    /// wrote) if any object could not be written; returns what was written, in input
    /// order. The omap records are [`Self::index_external_saves`]' job (the plugin queues
    /// them behind the commit: see [`super::ExternalMirror`]).
    pub async fn write_external(
        &self,
        mailbox: &ExternalMailbox,
        mails: &[ExternalMail<'_>],
    ) -> Result<Vec<ExternalWritten>> {
        for m in mails {
            check_mail(m)?;
            if m.source.is_none() {
                super::body::plan_write(&self.write_limits(), m.body.len() as u64, 0)?;
            }
        }
        let listed = self.listed_for(mailbox);
        let concurrency = self.inner.config.scan_concurrency.max(1);
        // Futures built first (not in a stream closure): keeps the returned future Send.
        let writes: Vec<_> = mails
            .iter()
            .map(|m| self.write_one_external(&listed, m))
            .collect();
        let results: Vec<Result<ExternalWritten>> = futures::stream::iter(writes)
            .buffered(concurrency)
            .collect()
            .await;
        if let Some(pos) = results.iter().position(|r| r.is_err()) {
            // Nothing of a failed commit may stay behind: Dovecot rolls its index back.
            for w in results.iter().filter_map(|r| r.as_ref().ok()) {
                let _ = self.backend().remove(&self.mail_loc(&w.oid.to_hex())).await;
            }
            let mut results = results;
            return Err(results.swap_remove(pos).unwrap_err());
        }
        let written: Vec<ExternalWritten> = results.into_iter().flatten().collect();
        if self.inner.config.recovery_index {
            for w in &written {
                self.append_recovery_index(&w.oid.to_hex()).await;
            }
        }
        Ok(written)
    }

    async fn write_one_external(
        &self,
        listed: &ListedMailbox,
        m: &ExternalMail<'_>,
    ) -> Result<ExternalWritten> {
        let copied;
        let body: &[u8] = match &m.source {
            Some(src) => {
                copied = self.read_body(src).await?;
                &copied
            }
            None => m.body,
        };
        let cfg = self.cfg();
        let virt = virtual_size(body);
        let mut meta = new_mail_metadata(
            cfg,
            listed,
            m.uid,
            &m.guid,
            m.received,
            body.len() as u64,
            virt,
            m.flags,
            None,
        );
        if cfg.is_mail_attribute(crate::format::metadata::MetadataKey::Pop3Uidl) {
            meta.pop3_uidl = m.pop3_uidl.clone();
        }
        if cfg.is_mail_attribute(crate::format::metadata::MetadataKey::Pop3Order) {
            meta.pop3_order = m.pop3_order.filter(|&o| o != 0);
        }
        let encoded = encode_metadata(cfg, &meta, &m.keywords);
        let oid = self
            .write_fresh_object(body, |_| encoded.clone(), m.saved, m.oid)
            .await?;
        Ok(ExternalWritten {
            oid,
            physical_size: body.len() as u64,
            virtual_size: virt,
        })
    }

    /// Mirror saved mails into the omap index: one header update and one insert for the
    /// whole batch (the records' modseq is the batch's). A failure is logged and returned;
    /// the mails are durable either way and `rbox fsck --repair` indexes them.
    pub async fn index_external_saves(
        &self,
        mailbox: &ExternalMailbox,
        records: &[(u32, MailRecord)],
    ) -> Result<()> {
        let r = self.mirror_saves(mailbox, records).await;
        if let Err(e) = &r {
            tracing::warn!(namespace = %self.ns, mailbox = %mailbox.name, error = %e,
                "omap index not updated for saved mails; rbox fsck --repair indexes them");
        }
        r
    }

    /// Read a mail's data (no metadata decoding: the external index has it).
    pub async fn read_body(&self, oid: &Guid128) -> Result<Vec<u8>> {
        let hex = oid.to_hex();
        match self.backend().read(&self.mail_loc(&hex), 0, None).await {
            Ok(r) if r.size == 0 => Err(StoreError::ZeroByte(hex)),
            Ok(r) => Ok(r.data),
            Err(BackendError::NotFound(_)) => Err(StoreError::MailNotFound(hex)),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove expunged mails: objects first (a missing one is fine), then their records.
    pub async fn expunge_external(
        &self,
        mailbox: &ExternalMailbox,
        mails: &[(u32, Guid128)],
    ) -> Result<()> {
        self.remove_external_objects(mails).await?;
        let _ = self.unindex_external(mailbox, mails).await;
        Ok(())
    }

    /// The durable half of an expunge: the objects (a missing one is fine).
    pub async fn remove_external_objects(&self, mails: &[(u32, Guid128)]) -> Result<()> {
        let concurrency = self.inner.config.scan_concurrency.max(1);
        let removes: Vec<_> = mails
            .iter()
            .map(|(_, oid)| {
                let loc = self.mail_loc(&oid.to_hex());
                async move {
                    match self.backend().remove(&loc).await {
                        Ok(()) | Err(BackendError::NotFound(_)) => Ok(()),
                        Err(e) => Err(StoreError::from(e)),
                    }
                }
            })
            .collect();
        let results: Vec<Result<()>> = futures::stream::iter(removes)
            .buffered(concurrency)
            .collect()
            .await;
        results.into_iter().collect::<Result<()>>()
    }

    /// Drop the omap records of expunged mails (a record that names another object is
    /// left alone). A failure is logged and returned; fsck drops such records later.
    pub async fn unindex_external(
        &self,
        mailbox: &ExternalMailbox,
        mails: &[(u32, Guid128)],
    ) -> Result<()> {
        let r = self.unindex(mailbox, mails).await;
        if let Err(e) = &r {
            tracing::warn!(namespace = %self.ns, mailbox = %mailbox.name, error = %e,
                "omap records of expunged mails not removed; rbox fsck --repair drops them");
        }
        r
    }

    /// Mirror final flags and keywords into the omap records (records missing from the omap
    /// index are skipped: fsck indexes those mails with their objects' metadata).
    pub async fn set_flags_external(
        &self,
        mailbox: &ExternalMailbox,
        changes: &[ExternalFlags],
    ) -> Result<()> {
        for c in changes {
            for k in &c.keywords {
                validate_keyword(k).map_err(|e| StoreError::Invalid(e.to_string()))?;
            }
        }
        if self.index.header(&mailbox.guid).await?.is_none() {
            return Ok(());
        }
        for c in changes {
            self.index
                .update_record(&mailbox.guid, &mailbox.name, c.uid, |r| {
                    if r.flags == c.flags && r.keywords == c.keywords {
                        return false;
                    }
                    r.flags = c.flags;
                    r.keywords = c.keywords.clone();
                    true
                })
                .await?;
        }
        Ok(())
    }

    /// Make the omap index know the mailbox under the external index's GUID and name.
    pub async fn ensure_external_mailbox(
        &self,
        mailbox: &ExternalMailbox,
    ) -> Result<ListedMailbox> {
        if let Some(mb) = self.index.mailbox(&mailbox.guid).await? {
            if mb.record.name != mailbox.name {
                return self
                    .index
                    .rename_mailbox(&mb.record.name, &mailbox.name)
                    .await;
            }
            self.index.ensure_head(&mb).await?;
            return Ok(mb);
        }
        match self
            .index
            .create_mailbox(&mailbox.name, Some(mailbox.guid))
            .await
        {
            Ok(mb) => Ok(mb),
            Err(StoreError::MailboxExists(_)) => {
                // The name belongs to an older incarnation the external index no longer
                // has: drop that name entry (its mails stay for fsck) and retry once.
                if let Some(old) = self.index.mailbox_by_name(&mailbox.name).await? {
                    self.index.remove_mailbox_entry(&old.guid).await?;
                    self.forget_mailbox(&old.guid);
                }
                self.index
                    .create_mailbox(&mailbox.name, Some(mailbox.guid))
                    .await
            }
            Err(e) => Err(e),
        }
    }

    /// Forget a mailbox the external index deleted (its mails were expunged before).
    pub async fn delete_external_mailbox(&self, mailbox: &ExternalMailbox) -> Result<()> {
        if self.index.mailbox(&mailbox.guid).await?.is_some() {
            self.index.remove_mailbox_entry(&mailbox.guid).await?;
        }
        self.forget_mailbox(&mailbox.guid);
        Ok(())
    }

    /// Every mail object of a mailbox, by scanning the namespace (force-resync): `M` is its
    /// GUID, or `B` is its name and `M` names no mailbox the omap index knows (objects of
    /// another writer). Zero-byte objects (expunge in progress) are left out.
    pub async fn list_external(&self, mailbox: &ExternalMailbox) -> Result<Vec<super::MailInfo>> {
        let known: std::collections::BTreeSet<Guid128> = self
            .index
            .list_mailboxes()
            .await?
            .into_iter()
            .map(|m| m.guid)
            .collect();
        let mut out = Vec::new();
        for r in self.scan().await? {
            let Ok(info) = r else { continue };
            if info.size == 0 {
                continue;
            }
            let md = &info.metadata;
            let mine = md.mailbox_guid == Some(mailbox.guid)
                || (md.orig_mailbox.as_deref() == Some(mailbox.name.as_str())
                    && md
                        .mailbox_guid
                        .is_none_or(|g| !known.contains(&g) || g == mailbox.guid));
            if mine {
                out.push(info);
            }
        }
        out.sort_by(|a, b| (a.metadata.uid, &a.oid).cmp(&(b.metadata.uid, &b.oid)));
        Ok(out)
    }

    /// Take an object into a mailbox under a UID (force-resync): rewrite its `M` and `U`
    /// in one op, then move its omap record to match (the record under its old `M`/`U`
    /// goes, one under the new comes, without flags: Dovecot's index adopts it so), so
    /// that `rbox fsck` agrees with Dovecot afterwards instead of writing the old `M`/`U`
    /// back from a stale record.
    pub async fn adopt_external(
        &self,
        mailbox: &ExternalMailbox,
        oid: &Guid128,
        uid: u32,
    ) -> Result<()> {
        let info = match self.mail_info(&oid.to_hex()).await {
            Ok(i) => i,
            Err(StoreError::MailNotFound(_)) => {
                return Err(StoreError::MailNotFound(oid.to_hex()));
            }
            Err(e) => return Err(e),
        };
        let nul = |s: String| {
            let mut v = s.into_bytes();
            v.push(0);
            v
        };
        let op = crate::backend::WriteOp::new()
            .assert_exists()
            .set_xattr("M", nul(mailbox.guid.to_hex()))
            .set_xattr("U", nul(uid.to_string()));
        match self
            .backend()
            .write_op(&self.mail_loc(&oid.to_hex()), op)
            .await
        {
            Ok(()) => {}
            Err(BackendError::NotFound(_)) => return Err(StoreError::MailNotFound(oid.to_hex())),
            Err(e) => return Err(e.into()),
        }
        let md = &info.metadata;
        if let (Some(old_box), Some(old_uid)) = (md.mailbox_guid, md.uid)
            && (old_box, old_uid) != (mailbox.guid, uid)
        {
            let old = ExternalMailbox {
                guid: old_box,
                name: md.orig_mailbox.clone().unwrap_or_default(),
            };
            let _ = self.unindex_external(&old, &[(old_uid, *oid)]).await;
        }
        let saved = super::unix_secs(info.mtime);
        let record = MailRecord {
            oid: *oid,
            guid: md
                .guid
                .clone()
                .unwrap_or_else(|| MailGuid::Compact(Guid128::generate())),
            flags: MailFlags::default(),
            keywords: Vec::new(),
            modseq: 0,
            physical_size: md.physical_size.unwrap_or(info.size),
            virtual_size: md.virtual_size.unwrap_or(info.size),
            received: md.received.unwrap_or(saved),
            saved,
        };
        // Best effort like every mirror write: the adoption itself stands.
        let _ = self.index_external_saves(mailbox, &[(uid, record)]).await;
        Ok(())
    }

    /// The listing used for the metadata of new objects (`M` = GUID, `B` = name).
    fn listed_for(&self, mailbox: &ExternalMailbox) -> ListedMailbox {
        ListedMailbox {
            guid: mailbox.guid,
            record: crate::index::format::MailboxRecord {
                state: crate::index::format::MailboxState::Active,
                uidvalidity: 0,
                created: now_secs(),
                name: mailbox.name.clone(),
            },
            raw: Vec::new(),
        }
    }

    async fn mirror_saves(
        &self,
        mailbox: &ExternalMailbox,
        records: &[(u32, MailRecord)],
    ) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        // A mailbox whose header this process knows exists (renames and deletions come
        // as their own ops): no lookup, and the insert is one op.
        let known = self.index.cached_header(&mailbox.guid).is_some();
        if !known {
            self.ensure_external_mailbox(mailbox).await?;
        }
        let r = match self
            .index
            .insert_advancing(&mailbox.guid, &mailbox.name, records)
            .await
        {
            Err(StoreError::MailboxNotFound(_)) if known => {
                // Deleted behind this process's back: re-create it like the first time.
                self.ensure_external_mailbox(mailbox).await?;
                self.index
                    .insert_advancing(&mailbox.guid, &mailbox.name, records)
                    .await
            }
            r => r,
        };
        let Err(e) = r else {
            return Ok(());
        };
        if self.drop_reassigned_records(mailbox, records).await? == 0 {
            return Err(e);
        }
        self.index
            .insert_advancing(&mailbox.guid, &mailbox.name, records)
            .await
    }

    /// Dovecot hands out a UID again only if the save that had it never reached its index
    /// (the process died between the body write and the index commit). Dovecot's UID wins:
    /// the stale record goes, its object is left for `rbox fsck` (a duplicate UID there,
    /// which --repair moves to a fresh UID: the mail is not lost). Returns how many went.
    async fn drop_reassigned_records(
        &self,
        mailbox: &ExternalMailbox,
        records: &[(u32, MailRecord)],
    ) -> Result<usize> {
        let Some(header) = self.index.header(&mailbox.guid).await? else {
            return Ok(0);
        };
        let mut stale = 0;
        for (uid, rec) in records {
            if let Some((raw, old)) = self
                .index
                .get_record(&mailbox.guid, header.shard_span, *uid)
                .await?
                && old.oid != rec.oid
                && self
                    .index
                    .remove_record(&mailbox.guid, header.shard_span, *uid, &raw)
                    .await?
            {
                tracing::warn!(namespace = %self.ns, mailbox = %mailbox.name, uid,
                    stale_oid = %old.oid.to_hex(), oid = %rec.oid.to_hex(),
                    "UID reassigned by Dovecot (an earlier save died before its index commit); \
                     the earlier object is left for rbox fsck --repair");
                stale += 1;
            }
        }
        Ok(stale)
    }

    async fn unindex(&self, mailbox: &ExternalMailbox, mails: &[(u32, Guid128)]) -> Result<()> {
        let Some(h) = self.index.header(&mailbox.guid).await? else {
            return Ok(());
        };
        for (uid, oid) in mails {
            if let Some((raw, rec)) = self
                .index
                .get_record(&mailbox.guid, h.shard_span, *uid)
                .await?
                && rec.oid == *oid
            {
                self.index
                    .remove_record(&mailbox.guid, h.shard_span, *uid, &raw)
                    .await?;
            }
        }
        Ok(())
    }
}

/// The omap records of written mails (modseq 0: the mirror gives the batch's).
pub fn external_records(
    mails: &[ExternalMail<'_>],
    written: &[ExternalWritten],
) -> Vec<(u32, MailRecord)> {
    mails
        .iter()
        .zip(written)
        .map(|(m, w)| {
            (
                m.uid,
                MailRecord {
                    oid: w.oid,
                    guid: m.guid.clone(),
                    flags: m.flags,
                    keywords: m.keywords.clone(),
                    modseq: 0,
                    physical_size: w.physical_size,
                    virtual_size: w.virtual_size,
                    received: m.received,
                    saved: m.saved,
                },
            )
        })
        .collect()
}

fn check_mail(m: &ExternalMail<'_>) -> Result<()> {
    if m.uid == 0 {
        return Err(StoreError::Invalid("UID 0".into()));
    }
    if m.received < 0 || m.saved < 0 {
        return Err(StoreError::Invalid("dates must not be before 1970".into()));
    }
    if m.flags.bits() & !MailFlags::ALL != 0 {
        return Err(StoreError::Invalid("unknown flag bits".into()));
    }
    for k in &m.keywords {
        validate_keyword(k).map_err(|e| StoreError::Invalid(e.to_string()))?;
    }
    if m.pop3_uidl.as_deref().is_some_and(|s| s.contains('\0')) {
        return Err(StoreError::Invalid("POP3 UIDL must not contain NUL".into()));
    }
    if let MailGuid::Text(t) = &m.guid
        && (t.is_empty() || t.contains('\0'))
    {
        return Err(StoreError::Invalid(
            "mail GUID must be non-empty without NUL".into(),
        ));
    }
    Ok(())
}
