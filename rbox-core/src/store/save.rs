//! Saving a mail: UID from the index, body + every xattr in one op, then the index record.

use super::Mailspace;
use super::body::{encode_metadata, to_system_time, virtual_size, write_new_object};
use crate::backend::{BackendError, ObjectLocation, WriteOp};
use crate::error::{Result, StoreError};
use crate::format::flags::{FlagsByte, MailFlags};
use crate::format::guid::{Guid128, MailGuid};
use crate::format::metadata::{MailMetadata, MetadataKey, RBOX_VERSION};
use crate::format::recovery_index;
use crate::index::MailRecord;
use crate::index::format::{MailboxState, validate_keyword};
use crate::index::mailboxes::{ListedMailbox, now_secs};
use crate::index::mails::Allocation;

/// Object ids tried before giving up on an (astronomically unlikely) id collision.
const OID_ATTEMPTS: u32 = 4;

/// A mail to save.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveRequest {
    /// Mailbox name.
    pub mailbox: String,
    /// The message, stored exactly as given.
    pub body: Vec<u8>,
    /// Received date (`R`, IMAP INTERNALDATE), Unix seconds; default now.
    pub received: Option<i64>,
    /// Save date (object mtime), Unix seconds; default now.
    pub save_date: Option<i64>,
    pub flags: MailFlags,
    pub keywords: Vec<String>,
    /// Mail GUID (`G`); default a fresh GUID (the one generated after the object id, as
    /// Dovecot does).
    pub guid: Option<MailGuid>,
    pub pop3_uidl: Option<String>,
    pub pop3_order: Option<u32>,
    pub from_envelope: Option<String>,
    /// Create the mailbox if it does not exist.
    pub create_mailbox: bool,
}

impl SaveRequest {
    pub fn new(mailbox: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            mailbox: mailbox.into(),
            body: body.into(),
            received: None,
            save_date: None,
            flags: MailFlags::empty(),
            keywords: Vec::new(),
            guid: None,
            pop3_uidl: None,
            pop3_order: None,
            from_envelope: None,
            create_mailbox: false,
        }
    }
}

/// What a save produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedMail {
    pub oid: Guid128,
    pub uid: u32,
    pub mailbox: Guid128,
    pub uidvalidity: u32,
    pub guid: MailGuid,
    pub modseq: u64,
    pub physical_size: u64,
    pub virtual_size: u64,
}

fn check_text(what: &str, v: &Option<String>) -> Result<()> {
    if v.as_deref().is_some_and(|s| s.contains('\0')) {
        return Err(StoreError::Invalid(format!("{what} must not contain NUL")));
    }
    Ok(())
}

/// The metadata librmb writes for a new mail, restricted to `rbox_mail_attributes`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn new_mail_metadata(
    cfg: &crate::format::cfg::RboxConfig,
    mailbox: &ListedMailbox,
    uid: u32,
    guid: &MailGuid,
    received: i64,
    physical: u64,
    virt: u64,
    flags: MailFlags,
    req: Option<&SaveRequest>,
) -> MailMetadata {
    let on = |k| cfg.is_mail_attribute(k);
    let mut m = MailMetadata::default();
    if on(MetadataKey::Version) {
        m.version = Some(RBOX_VERSION.to_string());
    }
    if on(MetadataKey::MailboxGuid) {
        m.mailbox_guid = Some(mailbox.guid);
    }
    if on(MetadataKey::Guid) {
        m.guid = Some(guid.clone());
    }
    if on(MetadataKey::ReceivedTime) {
        m.received = Some(received);
    }
    if on(MetadataKey::PhysicalSize) {
        m.physical_size = Some(physical);
    }
    if on(MetadataKey::VirtualSize) {
        m.virtual_size = Some(virt);
    }
    if on(MetadataKey::OrigMailbox) {
        m.orig_mailbox = Some(mailbox.record.name.clone());
    }
    if on(MetadataKey::MailUid) {
        m.uid = Some(uid);
    }
    // Like librmb: F only when some flag is set.
    if on(MetadataKey::Flags) && !flags.is_empty() {
        m.flags = Some(FlagsByte::from_mask(flags.bits()));
    }
    if let Some(req) = req {
        if on(MetadataKey::Pop3Uidl) {
            m.pop3_uidl = req.pop3_uidl.clone();
        }
        // Like librmb: O only when non-zero.
        if on(MetadataKey::Pop3Order) {
            m.pop3_order = req.pop3_order.filter(|&o| o != 0);
        }
        if on(MetadataKey::FromEnvelope) {
            m.from_envelope = req.from_envelope.clone();
        }
    }
    m
}

impl Mailspace {
    /// The mailbox a write goes to (created on demand when asked), uncached.
    async fn lookup_writable(&self, name: &str, create: bool) -> Result<ListedMailbox> {
        let mb = match self.index.mailbox_by_name(name).await? {
            Some(mb) => mb,
            None if create => match self.create_mailbox_entry(name).await {
                Ok(mb) => mb,
                Err(StoreError::MailboxExists(_)) => self
                    .index
                    .mailbox_by_name(name)
                    .await?
                    .ok_or_else(|| StoreError::MailboxNotFound(name.to_string()))?,
                Err(e) => return Err(e),
            },
            None => return Err(StoreError::MailboxNotFound(name.to_string())),
        };
        if mb.record.state == MailboxState::Deleting {
            return Err(StoreError::MailboxDeleting(name.to_string()));
        }
        self.cache_mailbox(&mb);
        Ok(mb)
    }

    /// Resolve a mailbox for writing and allocate one UID in it. A cached mailbox that
    /// turns out deleted (or being deleted) is looked up once more.
    pub(crate) async fn mailbox_and_uid(
        &self,
        name: &str,
        create: bool,
    ) -> Result<(ListedMailbox, Allocation)> {
        if let Some(mb) = self.cached_mailbox(name) {
            match self.allocate_uid(&mb).await {
                Ok(a) => return Ok((mb, a)),
                Err(StoreError::MailboxNotFound(_) | StoreError::MailboxDeleting(_)) => {
                    self.forget_mailbox(&mb.guid);
                }
                Err(e) => return Err(e),
            }
        }
        let mb = self.lookup_writable(name, create).await?;
        let a = self
            .allocate_uid(&mb)
            .await
            .inspect_err(|_| self.forget_mailbox(&mb.guid))?;
        Ok((mb, a))
    }

    fn queue_key(&self, mailbox: &Guid128) -> String {
        format!("{}/{}/{}", self.inner.config.index_pool, self.ns, mailbox)
    }

    /// A UID for one new mail: from this process's lease when it has one, else through the
    /// mailbox's group-commit queue, which also leases up to `uid_prefetch` extra UIDs for
    /// the next saves (so a busy mailbox rarely waits for an allocation).
    pub(crate) async fn allocate_uid(&self, mailbox: &ListedMailbox) -> Result<Allocation> {
        let key = self.queue_key(&mailbox.guid);
        if let Some(a) = self.inner.take_lease(&key) {
            return Ok(a);
        }
        let index = self.index.clone();
        let guid = mailbox.guid;
        let listed = mailbox.clone();
        let inner = self.inner.clone();
        let lease_key = key.clone();
        self.inner
            .alloc_queue
            .clone()
            .submit(key, 1u32, move |counts: Vec<u32>| {
                let index = index.clone();
                let listed = listed.clone();
                let inner = inner.clone();
                let lease_key = lease_key.clone();
                async move {
                    let needed: u32 = counts.iter().sum();
                    let extra = needed.saturating_mul(4).min(inner.config.uid_prefetch);
                    let name = &listed.record.name;
                    let a = match index.allocate(&guid, name, needed + extra).await {
                        // Listed but headless (a crash after the list entry): heal it, but
                        // only while the list still has it active.
                        Err(StoreError::MailboxNotFound(_)) => match index.mailbox(&guid).await? {
                            Some(m) if m.record.state == MailboxState::Active => {
                                index.ensure_head(&m).await?;
                                index.allocate(&guid, name, needed + extra).await?
                            }
                            _ => return Err(StoreError::MailboxNotFound(name.clone())),
                        },
                        other => other?,
                    };
                    inner.put_lease(&lease_key, a, needed, extra);
                    let mut next = a.first_uid;
                    Ok(counts
                        .into_iter()
                        .map(|c| {
                            let one = Allocation {
                                first_uid: next,
                                count: c,
                                ..a
                            };
                            next += c;
                            one
                        })
                        .collect())
                }
            })
            .await
    }

    /// Insert one record through the mailbox's group-commit queue.
    pub(crate) async fn insert_record(
        &self,
        mailbox: &Guid128,
        span: u32,
        uid: u32,
        record: MailRecord,
    ) -> Result<()> {
        let index = self.index.clone();
        let guid = *mailbox;
        self.inner
            .insert_queue
            .clone()
            .submit(
                self.queue_key(mailbox),
                (uid, record),
                move |items: Vec<(u32, MailRecord)>| {
                    let index = index.clone();
                    async move {
                        let n = items.len();
                        index.insert(&guid, span, &items).await?;
                        Ok(vec![(); n])
                    }
                },
            )
            .await
    }

    /// Write a new object under a fresh id, retrying on the (theoretical) id collision.
    /// Returns the object id used.
    pub(crate) async fn write_fresh_object(
        &self,
        body: &[u8],
        meta_for: impl Fn(&Guid128) -> super::body::EncodedMetadata,
        mtime: i64,
        first_oid: Guid128,
    ) -> Result<Guid128> {
        let mut oid = first_oid;
        for _ in 0..OID_ATTEMPTS {
            let meta = meta_for(&oid);
            match write_new_object(
                self.backend(),
                &self.write_limits(),
                &self.mail_loc(&oid.to_hex()),
                body,
                &meta,
                to_system_time(mtime),
            )
            .await
            {
                Ok(()) => return Ok(oid),
                Err(StoreError::Backend(BackendError::Exists(_))) => oid = Guid128::generate(),
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Invalid(
            "could not find a free object id".into(),
        ))
    }

    /// Save a mail: allocate its UID, write the body with all metadata, index it.
    pub async fn save(&self, req: SaveRequest) -> Result<SavedMail> {
        for k in &req.keywords {
            validate_keyword(k).map_err(|e| StoreError::Invalid(e.to_string()))?;
        }
        check_text("POP3 UIDL", &req.pop3_uidl)?;
        check_text("envelope sender", &req.from_envelope)?;
        if req.flags.bits() & !MailFlags::ALL != 0 {
            return Err(StoreError::Invalid("unknown flag bits".into()));
        }
        if let Some(MailGuid::Text(t)) = &req.guid
            && (t.is_empty() || t.contains('\0'))
        {
            return Err(StoreError::Invalid(
                "mail GUID must be non-empty without NUL".into(),
            ));
        }
        // Refuse oversize mails before touching anything (no UID burned, no object).
        super::body::plan_write(&self.write_limits(), req.body.len() as u64, 0)?;

        let (mailbox, alloc) = self
            .mailbox_and_uid(&req.mailbox, req.create_mailbox)
            .await?;
        let uid = alloc.first_uid;
        let now = now_secs();
        let received = req.received.unwrap_or(now);
        let saved = req.save_date.unwrap_or(now);
        if received < 0 || saved < 0 {
            return Err(StoreError::Invalid("dates must not be before 1970".into()));
        }
        let physical = req.body.len() as u64;
        let virt = virtual_size(&req.body);
        // Dovecot order: the object id first, the mail GUID from the next call.
        let first_oid = Guid128::generate();
        let guid = req
            .guid
            .clone()
            .unwrap_or_else(|| MailGuid::Compact(Guid128::generate()));
        let cfg = self.cfg().clone();
        let meta = new_mail_metadata(
            &cfg,
            &mailbox,
            uid,
            &guid,
            received,
            physical,
            virt,
            req.flags,
            Some(&req),
        );
        meta.check_encodable()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let encoded = encode_metadata(&cfg, &meta, &req.keywords);
        let oid = self
            .write_fresh_object(&req.body, |_| encoded.clone(), saved, first_oid)
            .await?;

        let record = MailRecord {
            oid,
            guid: guid.clone(),
            flags: req.flags,
            keywords: req.keywords.clone(),
            modseq: alloc.modseq,
            physical_size: physical,
            virtual_size: virt,
            received,
            saved,
        };
        self.index_new_mail(&mailbox, alloc.header.shard_span, uid, record)
            .await?;
        if self.inner.config.recovery_index {
            self.append_recovery_index(&oid.to_hex()).await;
        }
        Ok(SavedMail {
            oid,
            uid,
            mailbox: mailbox.guid,
            uidvalidity: mailbox.record.uidvalidity,
            guid,
            modseq: alloc.modseq,
            physical_size: physical,
            virtual_size: virt,
        })
    }

    /// Index a freshly written body: now, or — with `index_write_behind` — in the
    /// background, so the save returns after its body op ([`super::Store::flush`] waits for
    /// those inserts and reports failures; fsck indexes any body whose insert was lost).
    pub(crate) async fn index_new_mail(
        &self,
        mailbox: &ListedMailbox,
        span: u32,
        uid: u32,
        record: MailRecord,
    ) -> Result<()> {
        if !self.inner.config.index_write_behind {
            return self.finish_index(mailbox, span, uid, record).await;
        }
        self.inner.pending.send_modify(|n| *n += 1);
        let me = self.clone();
        let guid = mailbox.guid;
        tokio::spawn(async move {
            let oid = record.oid.to_hex();
            if let Err(e) = me.insert_record(&guid, span, uid, record).await {
                tracing::error!(namespace = %me.ns, %oid, uid, error = %e,
                    "deferred index insert failed; fsck --repair will index the mail");
                me.inner
                    .deferred_errors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(StoreError::IndexWriteFailed {
                        oid,
                        error: e.backend().cloned().unwrap_or_else(|| BackendError::Other {
                            errno: -libc::EIO,
                            context: e.to_string(),
                        }),
                    });
            }
            me.inner.pending.send_modify(|n| *n -= 1);
        });
        Ok(())
    }

    /// Insert the record of a freshly written body. If that fails, check whether it landed
    /// anyway; if it surely did not, remove the body so the caller can retry the save
    /// without leaving a duplicate behind.
    pub(crate) async fn finish_index(
        &self,
        mailbox: &ListedMailbox,
        span: u32,
        uid: u32,
        record: MailRecord,
    ) -> Result<()> {
        let oid = record.oid;
        let err = match self.insert_record(&mailbox.guid, span, uid, record).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        match self.index.get_record(&mailbox.guid, span, uid).await {
            Ok(Some((_, r))) if r.oid == oid => Ok(()),
            Ok(_) => {
                let _ = self.backend().remove(&self.mail_loc(&oid.to_hex())).await;
                Err(err)
            }
            Err(_) => Err(match err {
                StoreError::Backend(b) => StoreError::IndexWriteFailed {
                    oid: oid.to_hex(),
                    error: b,
                },
                other => other,
            }),
        }
    }

    /// Append `oid,` to librmb's recovery-index object. Best effort, as upstream: a failure
    /// only weakens that recovery path, it does not fail the save.
    pub(crate) async fn append_recovery_index(&self, oid: &str) {
        let loc = ObjectLocation::new(self.inner.config.index_pool.clone(), "", self.ns.clone());
        let op = WriteOp::new().append(recovery_index::encode_entry(oid));
        if let Err(e) = self.backend().write_op(&loc, op).await {
            tracing::warn!(namespace = %self.ns, oid, error = %e, "recovery index append failed");
        }
    }
}
