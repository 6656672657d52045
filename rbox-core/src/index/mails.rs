//! Mailbox head and shard objects: header, UID allocation, mail records.

use std::collections::BTreeMap;

use super::format::{
    self, KEY_HEADER, MailRecord, MailboxHeader, PREFIX_MAIL, mail_key, parse_mail_key, shard_of,
};
use super::mailboxes::ListedMailbox;
use super::{Index, MAX_CAS_ATTEMPTS, PAGE, backoff, conflict, found};
use crate::backend::{BackendError, CmpOp, WriteOp};
use crate::error::{Result, StoreError};
use crate::format::guid::Guid128;

/// One page of mail records in UID order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordPage {
    pub records: Vec<(u32, MailRecord)>,
    /// Pass as `after_uid` to get the next page; `None` when this was the last.
    pub next_after: Option<u32>,
}

/// UIDs handed out by one allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub first_uid: u32,
    pub count: u32,
    /// Modseq the new mails carry.
    pub modseq: u64,
    pub header: MailboxHeader,
}

impl Index {
    fn header_error(&self, mailbox: &Guid128, e: format::IndexFormatError) -> StoreError {
        StoreError::index_format(format::shard_object(mailbox, 0), KEY_HEADER, e)
    }

    fn record_error(
        &self,
        mailbox: &Guid128,
        shard: u32,
        key: &str,
        e: format::IndexFormatError,
    ) -> StoreError {
        StoreError::index_format(format::shard_object(mailbox, shard), key, e)
    }

    /// The stored header, read fresh. `None` when the head object or its header is missing.
    pub async fn header(&self, mailbox: &Guid128) -> Result<Option<MailboxHeader>> {
        let loc = self.shard_loc(mailbox, 0);
        let vals = found(
            self.backend
                .omap_get_vals_by_keys(&loc, &[KEY_HEADER.to_string()])
                .await,
        )?;
        let Some(raw) = vals.as_ref().and_then(|v| v.get(KEY_HEADER)) else {
            self.cache.forget(&self.pool, &self.ns, mailbox);
            return Ok(None);
        };
        let h = MailboxHeader::decode(raw).map_err(|e| self.header_error(mailbox, e))?;
        self.cache.put(&self.pool, &self.ns, mailbox, h);
        Ok(Some(h))
    }

    async fn header_cached(&self, mailbox: &Guid128) -> Result<Option<MailboxHeader>> {
        match self.cache.get(&self.pool, &self.ns, mailbox) {
            Some(h) => Ok(Some(h)),
            None => self.header(mailbox).await,
        }
    }

    /// Create the head object of a listed mailbox if it is missing (a crash between the
    /// list entry and the head leaves exactly that), and return its header.
    pub async fn ensure_head(&self, mailbox: &ListedMailbox) -> Result<MailboxHeader> {
        let loc = self.shard_loc(&mailbox.guid, 0);
        for attempt in 0..MAX_CAS_ATTEMPTS {
            if let Some(h) = self.header(&mailbox.guid).await? {
                return Ok(h);
            }
            let h = MailboxHeader::new(mailbox.record.uidvalidity);
            // create(false) + compare on the header key: works whether or not some other
            // key (a record) created the object first.
            let op = WriteOp::new()
                .create(false)
                .omap_cmp(KEY_HEADER, CmpOp::Eq, Vec::new())
                .omap_set([(KEY_HEADER.to_string(), h.encode())]);
            match self.backend.write_op(&loc, op).await {
                Ok(()) => {
                    self.cache.put(&self.pool, &self.ns, &mailbox.guid, h);
                    return Ok(h);
                }
                Err(BackendError::Canceled(_)) => backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(format!("head of mailbox {}", mailbox.guid)))
    }

    /// Change the header with compare-and-set; `f` returns `None` to leave it unchanged.
    pub(crate) async fn update_header(
        &self,
        mailbox: &Guid128,
        name: &str,
        mut f: impl FnMut(&MailboxHeader) -> Result<Option<MailboxHeader>>,
    ) -> Result<MailboxHeader> {
        let loc = self.shard_loc(mailbox, 0);
        let mut cached = true;
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let cur = if cached {
                self.header_cached(mailbox).await?
            } else {
                self.header(mailbox).await?
            };
            let cur = cur.ok_or_else(|| StoreError::MailboxNotFound(name.to_string()))?;
            let Some(next) = f(&cur)? else {
                return Ok(cur);
            };
            let op = WriteOp::new()
                .omap_cmp(KEY_HEADER, CmpOp::Eq, cur.encode())
                .omap_set([(KEY_HEADER.to_string(), next.encode())]);
            match self.backend.write_op(&loc, op).await {
                Ok(()) => {
                    self.cache.put(&self.pool, &self.ns, mailbox, next);
                    return Ok(next);
                }
                Err(BackendError::Canceled(_)) => {
                    cached = false;
                    backoff(attempt).await;
                }
                Err(BackendError::NotFound(_)) => {
                    self.cache.forget(&self.pool, &self.ns, mailbox);
                    return Err(StoreError::MailboxNotFound(name.to_string()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(format!("header of mailbox {name:?}")))
    }

    /// The header as last seen by this process, without a round trip.
    pub(crate) fn cached_header(&self, mailbox: &Guid128) -> Option<MailboxHeader> {
        self.cache.get(&self.pool, &self.ns, mailbox)
    }

    /// Add records whose UIDs another index handed out, advancing `next_uid` past them and
    /// giving them one new modseq. When the cached header is current and every record
    /// falls in the head shard, that is one op (header compare-and-set, absent-key
    /// compares, and the sets together); otherwise, or on a race, the two steps.
    pub(crate) async fn insert_advancing(
        &self,
        mailbox: &Guid128,
        name: &str,
        records: &[(u32, MailRecord)],
    ) -> Result<()> {
        let last = records.iter().map(|(uid, _)| *uid).max().unwrap_or(0);
        let advance = |h: &MailboxHeader| MailboxHeader {
            next_uid: h.next_uid.max(last.saturating_add(1)),
            highest_modseq: h.highest_modseq + 1,
            ..*h
        };
        let with_modseq = |modseq: u64| -> Vec<(u32, MailRecord)> {
            records
                .iter()
                .map(|(uid, r)| {
                    (
                        *uid,
                        MailRecord {
                            modseq,
                            ..r.clone()
                        },
                    )
                })
                .collect()
        };
        if let Some(cur) = self.cached_header(mailbox)
            && records
                .iter()
                .all(|(uid, _)| shard_of(*uid, cur.shard_span) == 0)
        {
            let next = advance(&cur);
            let batch = with_modseq(next.highest_modseq);
            let mut op =
                WriteOp::new()
                    .assert_exists()
                    .omap_cmp(KEY_HEADER, CmpOp::Eq, cur.encode());
            for (uid, r) in &batch {
                r.validate()
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                op = op.omap_cmp(mail_key(*uid), CmpOp::Eq, Vec::new());
            }
            let sets = batch.iter().map(|(u, r)| (mail_key(*u), r.encode()));
            op = op.omap_set(sets.chain([(KEY_HEADER.to_string(), next.encode())]));
            match self.backend.write_op(&self.shard_loc(mailbox, 0), op).await {
                Ok(()) => {
                    self.cache.put(&self.pool, &self.ns, mailbox, next);
                    return Ok(());
                }
                // Someone else moved the header, or fsck indexed one of these already.
                Err(BackendError::Canceled(_)) => {}
                Err(BackendError::NotFound(_)) => {
                    self.cache.forget(&self.pool, &self.ns, mailbox);
                    return Err(StoreError::MailboxNotFound(name.to_string()));
                }
                Err(e) => return Err(e.into()),
            }
            self.cache.forget(&self.pool, &self.ns, mailbox);
        }
        let header = self
            .update_header(mailbox, name, |h| Ok(Some(advance(h))))
            .await?;
        self.insert(
            mailbox,
            header.shard_span,
            &with_modseq(header.highest_modseq),
        )
        .await
    }

    /// Hand out `count` consecutive UIDs and one new modseq.
    pub async fn allocate(&self, mailbox: &Guid128, name: &str, count: u32) -> Result<Allocation> {
        if count == 0 {
            return Err(StoreError::Invalid("cannot allocate 0 UIDs".into()));
        }
        let mut first = 0;
        let h = self
            .update_header(mailbox, name, |h| {
                if h.deleting {
                    return Err(StoreError::MailboxDeleting(name.to_string()));
                }
                // The last UID handed out must stay ≤ u32::MAX - 1 so next_uid fits.
                let next = h
                    .next_uid
                    .checked_add(count)
                    .ok_or_else(|| StoreError::UidSpaceExhausted(name.to_string()))?;
                first = h.next_uid;
                Ok(Some(MailboxHeader {
                    next_uid: next,
                    highest_modseq: h.highest_modseq + 1,
                    ..*h
                }))
            })
            .await?;
        Ok(Allocation {
            first_uid: first,
            count,
            modseq: h.highest_modseq,
            header: h,
        })
    }

    /// Add mail records. Each key must be absent (or already hold a record for the same
    /// object: fsck may have indexed a body before its save finished).
    pub async fn insert(
        &self,
        mailbox: &Guid128,
        span: u32,
        records: &[(u32, MailRecord)],
    ) -> Result<()> {
        let mut by_shard: BTreeMap<u32, Vec<&(u32, MailRecord)>> = BTreeMap::new();
        for r in records {
            r.1.validate()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            by_shard.entry(shard_of(r.0, span)).or_default().push(r);
        }
        for (shard, mut batch) in by_shard {
            let loc = self.shard_loc(mailbox, shard);
            for attempt in 0..=MAX_CAS_ATTEMPTS {
                if batch.is_empty() {
                    break;
                }
                if attempt == MAX_CAS_ATTEMPTS {
                    return Err(conflict(format!("records of mailbox {mailbox}")));
                }
                // Shard 0 is the head: it exists once a UID was handed out, and must not be
                // re-created if the mailbox was deleted meanwhile. Later shards start empty.
                let mut op = if shard == 0 {
                    WriteOp::new().assert_exists()
                } else {
                    WriteOp::new().create(false)
                };
                for (uid, _) in &batch {
                    op = op.omap_cmp(mail_key(*uid), CmpOp::Eq, Vec::new());
                }
                op = op.omap_set(batch.iter().map(|(u, r)| (mail_key(*u), r.encode())));
                match self.backend.write_op(&loc, op).await {
                    Ok(()) => break,
                    Err(BackendError::Canceled(_)) => {
                        let keys: Vec<String> = batch.iter().map(|(u, _)| mail_key(*u)).collect();
                        let existing = self.backend.omap_get_vals_by_keys(&loc, &keys).await?;
                        let mut keep = Vec::new();
                        for r in batch {
                            let key = mail_key(r.0);
                            match existing.get(&key) {
                                None => keep.push(r),
                                Some(raw) => match MailRecord::decode(raw) {
                                    Ok(other) if other.oid == r.1.oid => {}
                                    _ => {
                                        return Err(StoreError::Invalid(format!(
                                            "UID {} of mailbox {mailbox} is already indexed for another mail",
                                            r.0
                                        )));
                                    }
                                },
                            }
                        }
                        batch = keep;
                    }
                    Err(BackendError::NotFound(_)) => {
                        return Err(StoreError::MailboxNotFound(mailbox.to_hex()));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// A record and its stored bytes.
    pub async fn get_record(
        &self,
        mailbox: &Guid128,
        span: u32,
        uid: u32,
    ) -> Result<Option<(Vec<u8>, MailRecord)>> {
        let shard = shard_of(uid, span);
        let key = mail_key(uid);
        let vals = found(
            self.backend
                .omap_get_vals_by_keys(&self.shard_loc(mailbox, shard), std::slice::from_ref(&key))
                .await,
        )?;
        let Some(raw) = vals.and_then(|mut v| v.remove(&key)) else {
            return Ok(None);
        };
        let rec =
            MailRecord::decode(&raw).map_err(|e| self.record_error(mailbox, shard, &key, e))?;
        Ok(Some((raw, rec)))
    }

    /// Change a record (flags, keywords) with a fresh modseq. `f` returns false to leave it
    /// unchanged. `None` when there is no such record.
    pub async fn update_record(
        &self,
        mailbox: &Guid128,
        name: &str,
        uid: u32,
        mut f: impl FnMut(&mut MailRecord) -> bool,
    ) -> Result<Option<MailRecord>> {
        let head = self.shard_loc(mailbox, 0);
        let mut cached = true;
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let h = if cached {
                self.header_cached(mailbox).await?
            } else {
                self.header(mailbox).await?
            }
            .ok_or_else(|| StoreError::MailboxNotFound(name.to_string()))?;
            let Some((raw, rec)) = self.get_record(mailbox, h.shard_span, uid).await? else {
                return Ok(None);
            };
            let mut new = rec.clone();
            if !f(&mut new) {
                return Ok(Some(rec));
            }
            new.validate()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            let hnew = MailboxHeader {
                highest_modseq: h.highest_modseq + 1,
                ..h
            };
            new.modseq = hnew.highest_modseq;
            let key = mail_key(uid);
            let shard = shard_of(uid, h.shard_span);
            let result = if shard == 0 {
                // Header and record in one object: one atomic op.
                let op = WriteOp::new()
                    .omap_cmp(KEY_HEADER, CmpOp::Eq, h.encode())
                    .omap_cmp(key.clone(), CmpOp::Eq, raw)
                    .omap_set([(KEY_HEADER.to_string(), hnew.encode()), (key, new.encode())]);
                self.backend.write_op(&head, op).await
            } else {
                // Take the modseq first; if the record then changed under us the modseq is
                // simply skipped (gaps are allowed).
                let op = WriteOp::new()
                    .omap_cmp(KEY_HEADER, CmpOp::Eq, h.encode())
                    .omap_set([(KEY_HEADER.to_string(), hnew.encode())]);
                match self.backend.write_op(&head, op).await {
                    Ok(()) => {
                        self.cache.put(&self.pool, &self.ns, mailbox, hnew);
                        let op = WriteOp::new()
                            .omap_cmp(key.clone(), CmpOp::Eq, raw)
                            .omap_set([(key, new.encode())]);
                        self.backend
                            .write_op(&self.shard_loc(mailbox, shard), op)
                            .await
                    }
                    Err(e) => Err(e),
                }
            };
            match result {
                Ok(()) => {
                    self.cache.put(&self.pool, &self.ns, mailbox, hnew);
                    return Ok(Some(new));
                }
                Err(BackendError::Canceled(_)) => {
                    cached = false;
                    backoff(attempt).await;
                }
                Err(BackendError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(format!("record {uid} of mailbox {name:?}")))
    }

    /// Remove a record if it still holds `expected` bytes. False if it changed or is gone.
    pub async fn remove_record(
        &self,
        mailbox: &Guid128,
        span: u32,
        uid: u32,
        expected: &[u8],
    ) -> Result<bool> {
        let key = mail_key(uid);
        let op = WriteOp::new()
            .omap_cmp(key.clone(), CmpOp::Eq, expected.to_vec())
            .omap_rm_keys([key]);
        match self
            .backend
            .write_op(&self.shard_loc(mailbox, shard_of(uid, span)), op)
            .await
        {
            Ok(()) => Ok(true),
            Err(BackendError::Canceled(_) | BackendError::NotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Mail records after `after_uid` in UID order, at most `limit`.
    pub async fn list_records(
        &self,
        mailbox: &Guid128,
        after_uid: u32,
        limit: usize,
    ) -> Result<RecordPage> {
        let Some(h) = self.header(mailbox).await? else {
            return Ok(RecordPage::default());
        };
        let limit = limit.max(1);
        let last_shard = h.last_shard();
        let mut shard = shard_of(after_uid.saturating_add(1), h.shard_span);
        let mut start_after = if after_uid == 0 {
            String::new()
        } else {
            mail_key(after_uid)
        };
        let mut out: Vec<(u32, MailRecord)> = Vec::new();
        while shard <= last_shard {
            let want = (limit - out.len()) as u64;
            let loc = self.shard_loc(mailbox, shard);
            let Some(page) = found(
                self.backend
                    .omap_get_vals(&loc, &start_after, PREFIX_MAIL, want.min(PAGE))
                    .await,
            )?
            else {
                shard += 1;
                start_after.clear();
                continue;
            };
            for (key, raw) in &page.entries {
                let uid = parse_mail_key(key).ok_or_else(|| {
                    self.record_error(
                        mailbox,
                        shard,
                        key,
                        format::IndexFormatError::Invalid {
                            what: "mail key",
                            reason: "not u.<10 digits>".into(),
                        },
                    )
                })?;
                let rec = MailRecord::decode(raw)
                    .map_err(|e| self.record_error(mailbox, shard, key, e))?;
                out.push((uid, rec));
            }
            if out.len() >= limit {
                let last = out.last().map(|(u, _)| *u);
                let more = page.more || shard < last_shard;
                return Ok(RecordPage {
                    records: out,
                    next_after: if more { last } else { None },
                });
            }
            if page.more {
                start_after = page.entries.keys().next_back().cloned().unwrap_or_default();
                continue;
            }
            shard += 1;
            start_after.clear();
        }
        Ok(RecordPage {
            records: out,
            next_after: None,
        })
    }

    /// Every omap entry of one shard object, undecoded (for fsck). `None` if it is missing.
    pub(crate) async fn shard_entries_raw(
        &self,
        mailbox: &Guid128,
        shard: u32,
    ) -> Result<Option<Vec<(String, Vec<u8>)>>> {
        let loc = self.shard_loc(mailbox, shard);
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let Some(page) = found(self.backend.omap_get_vals(&loc, &after, "", PAGE).await)?
            else {
                return Ok(if out.is_empty() { None } else { Some(out) });
            };
            if let Some(last) = page.entries.keys().next_back() {
                after = last.clone();
            }
            let more = page.more && !page.entries.is_empty();
            out.extend(page.entries);
            if !more {
                return Ok(Some(out));
            }
        }
    }

    /// Remove a mailbox's shard and head objects (missing ones are fine).
    pub(crate) async fn remove_mailbox_objects(
        &self,
        mailbox: &Guid128,
        last_shard: u32,
    ) -> Result<()> {
        for shard in (0..=last_shard).rev() {
            match self.backend.remove(&self.shard_loc(mailbox, shard)).await {
                Ok(()) | Err(BackendError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.cache.forget(&self.pool, &self.ns, mailbox);
        Ok(())
    }
}
