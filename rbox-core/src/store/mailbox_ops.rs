//! Mailboxes: create, list, rename, delete; list the mails of one (index-based, paged).

use super::Mailspace;
use crate::error::{Result, StoreError};
use crate::format::guid::Guid128;
use crate::index::format::MailboxState;
use crate::index::mailboxes::ListedMailbox;
use crate::index::{MailRecord, MailboxHeader};

/// A mailbox with its header counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxStatus {
    pub guid: Guid128,
    pub name: String,
    pub state: MailboxState,
    pub uidvalidity: u32,
    pub created: i64,
    /// `None` while the head object is missing (created lazily on first use).
    pub header: Option<MailboxHeader>,
}

impl MailboxStatus {
    fn new(m: ListedMailbox, header: Option<MailboxHeader>) -> Self {
        Self {
            guid: m.guid,
            name: m.record.name,
            state: m.record.state,
            uidvalidity: m.record.uidvalidity,
            created: m.record.created,
            header,
        }
    }

    pub fn next_uid(&self) -> u32 {
        self.header.map(|h| h.next_uid).unwrap_or(1)
    }
}

/// One page of a mailbox listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailPage {
    pub mailbox: Guid128,
    pub mails: Vec<(u32, MailRecord)>,
    /// Pass as `after_uid` for the next page; `None` at the end.
    pub next_after: Option<u32>,
}

impl Mailspace {
    /// Create a mailbox.
    ///
    /// Refused ([`StoreError::UnindexedMail`]) in a namespace that has no omap index yet
    /// but holds mail the plugin wrote: the plugin's mailboxes have GUIDs (`M`) the index
    /// must adopt first (`build_index`), or the user would get a second INBOX.
    pub async fn create_mailbox(&self, name: &str) -> Result<MailboxStatus> {
        let m = self.create_mailbox_entry(name).await?;
        let h = self.index.header(&m.guid).await?;
        Ok(MailboxStatus::new(m, h))
    }

    /// Create a mailbox entry with a fresh GUID, after [`Self::refuse_unindexed_mail`].
    pub(crate) async fn create_mailbox_entry(&self, name: &str) -> Result<ListedMailbox> {
        self.refuse_unindexed_mail(name).await?;
        self.index.create_mailbox(name, None).await
    }

    /// Fail with [`StoreError::UnindexedMail`] when this namespace has no omap index but
    /// holds plugin mail. Costs one stat when the index exists (the usual case); otherwise
    /// a listing of the namespace and a stat of objects up to the first mail.
    pub(crate) async fn refuse_unindexed_mail(&self, mailbox: &str) -> Result<()> {
        if self.index.exists().await? {
            return Ok(());
        }
        match self.first_unindexed_mail().await? {
            Some(oid) => Err(StoreError::UnindexedMail {
                namespace: self.ns.clone(),
                mailbox: mailbox.to_string(),
                oid,
            }),
            None => Ok(()),
        }
    }

    /// The first mail object of this namespace (non-empty, with an `M` xattr), if any —
    /// without looking at the index.
    pub async fn first_unindexed_mail(&self) -> Result<Option<String>> {
        for oid in self.list_object_ids().await? {
            match self.mail_info(&oid).await {
                Ok(i) if i.size > 0 && i.metadata.mailbox_guid.is_some() => return Ok(Some(oid)),
                Ok(_) | Err(StoreError::MailNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// A mailbox by name.
    pub async fn mailbox(&self, name: &str) -> Result<MailboxStatus> {
        let m = self
            .index
            .mailbox_by_name(name)
            .await?
            .ok_or_else(|| StoreError::MailboxNotFound(name.to_string()))?;
        let h = self.index.header(&m.guid).await?;
        Ok(MailboxStatus::new(m, h))
    }

    /// All mailboxes, by name (including ones being deleted).
    pub async fn list_mailboxes(&self) -> Result<Vec<MailboxStatus>> {
        let mut out = Vec::new();
        for m in self.index.list_mailboxes().await? {
            let h = self.index.header(&m.guid).await?;
            out.push(MailboxStatus::new(m, h));
        }
        Ok(out)
    }

    pub async fn rename_mailbox(&self, old: &str, new: &str) -> Result<MailboxStatus> {
        let m = self.index.rename_mailbox(old, new).await?;
        self.forget_mailbox(&m.guid);
        let h = self.index.header(&m.guid).await?;
        Ok(MailboxStatus::new(m, h))
    }

    /// Mails of a mailbox in UID order, from the index (cost: this mailbox only).
    pub async fn list_mails(
        &self,
        mailbox: &str,
        after_uid: u32,
        limit: usize,
    ) -> Result<MailPage> {
        let m = self
            .index
            .mailbox_by_name(mailbox)
            .await?
            .ok_or_else(|| StoreError::MailboxNotFound(mailbox.to_string()))?;
        let page = self.index.list_records(&m.guid, after_uid, limit).await?;
        Ok(MailPage {
            mailbox: m.guid,
            mails: page.records,
            next_after: page.next_after,
        })
    }

    /// Number of mails and their total physical size.
    pub async fn mailbox_usage(&self, mailbox: &str) -> Result<(u64, u64)> {
        let (mut n, mut bytes, mut after) = (0u64, 0u64, 0u32);
        loop {
            let page = self.list_mails(mailbox, after, 1000).await?;
            n += page.mails.len() as u64;
            bytes += page.mails.iter().map(|(_, r)| r.physical_size).sum::<u64>();
            match page.next_after {
                Some(a) => after = a,
                None => return Ok((n, bytes)),
            }
        }
    }

    /// Delete a mailbox. Without `force` it must be empty. Marks it deleting first (no new
    /// UIDs, hidden from saves), expunges its mails, removes its objects, then its entry;
    /// a crash anywhere leaves a `deleting` mailbox that a re-run or fsck finishes.
    pub async fn delete_mailbox(&self, name: &str, force: bool) -> Result<u64> {
        let m = self
            .index
            .mailbox_by_name(name)
            .await?
            .ok_or_else(|| StoreError::MailboxNotFound(name.to_string()))?;
        if !force && m.record.state == MailboxState::Active {
            let page = self.index.list_records(&m.guid, 0, 1).await?;
            if !page.records.is_empty() {
                let (mails, _) = self.mailbox_usage(name).await?;
                return Err(StoreError::MailboxNotEmpty {
                    name: name.to_string(),
                    mails,
                });
            }
        }
        self.finish_mailbox_deletion(&m.guid).await
    }

    /// Remove every object of this namespace, mail and index (`rmb delete -`). Irreversible:
    /// callers must ask for confirmation. Returns the number of objects removed.
    pub async fn purge(&self) -> Result<u64> {
        self.inner
            .mailboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(ns, _), _| ns != &self.ns);
        self.inner
            .drop_leases(&format!("{}/{}/", self.inner.config.index_pool, self.ns));
        let mut n = 0;
        for pool in [&self.inner.config.mail_pool, &self.inner.config.index_pool] {
            let listed = match self
                .backend()
                .list_objects(
                    pool,
                    &crate::backend::NamespaceFilter::Only(self.ns.clone()),
                )
                .await
            {
                Ok(v) => v,
                Err(crate::backend::BackendError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            for o in listed {
                let loc = crate::backend::ObjectLocation::new(pool.clone(), self.ns.clone(), o.oid);
                match self.backend().remove(&loc).await {
                    Ok(()) => n += 1,
                    Err(crate::backend::BackendError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(n)
    }

    /// Steps of [`Self::delete_mailbox`] after the emptiness check (also used by fsck).
    pub(crate) async fn finish_mailbox_deletion(&self, guid: &Guid128) -> Result<u64> {
        self.forget_mailbox(guid);
        let m = self
            .index
            .set_mailbox_state(guid, MailboxState::Deleting)
            .await?;
        let mut expunged = 0;
        if self.index.header(guid).await?.is_some() {
            let h = self
                .index
                .update_header(guid, &m.record.name, |h| {
                    Ok((!h.deleting).then_some(MailboxHeader {
                        deleting: true,
                        ..*h
                    }))
                })
                .await?;
            loop {
                let page = self.index.list_records(guid, 0, 500).await?;
                if page.records.is_empty() {
                    break;
                }
                let mut progress = false;
                for (uid, rec) in page.records {
                    let raw = rec.encode();
                    if self
                        .expunge_record(guid, h.shard_span, uid, &raw, &rec)
                        .await?
                    {
                        expunged += 1;
                        progress = true;
                    }
                }
                if !progress {
                    return Err(crate::index::conflict(format!(
                        "records of mailbox {:?} being deleted",
                        m.record.name
                    )));
                }
            }
            self.index
                .remove_mailbox_objects(guid, h.last_shard())
                .await?;
        }
        self.index.remove_mailbox_entry(guid).await?;
        Ok(expunged)
    }
}
