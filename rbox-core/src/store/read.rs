//! Reading mails and scanning a namespace the librmb way.

use std::time::SystemTime;

use futures::StreamExt;

use super::Mailspace;
use super::body::{decode_metadata, read_object_keywords, unix_secs};
use crate::backend::{BackendError, NamespaceFilter};
use crate::error::{Result, StoreError};
use crate::format::guid::Guid128;
use crate::format::metadata::{MailMetadata, MetadataError, MetadataKey};
use crate::format::query::{Query, QueryTarget, SortKey};
use crate::index::mailboxes::ListedMailbox;
use crate::index::{MailRecord, MailboxHeader};

/// A mail object's metadata without its body (one round trip: stat + xattrs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailInfo {
    pub oid: String,
    /// Object size; 0 means "being written or expunged".
    pub size: u64,
    pub mtime: SystemTime,
    pub metadata: MailMetadata,
    /// Values that did not decode (the good ones are in `metadata`).
    pub errors: Vec<MetadataError>,
    /// Keywords packed in an `ima` xattr, if any.
    pub ima_keywords: Vec<String>,
}

impl MailInfo {
    /// What the query language evaluates.
    pub fn target(&self) -> QueryTarget<'_> {
        QueryTarget {
            metadata: &self.metadata,
            save_time: Some(unix_secs(self.mtime)),
        }
    }

    /// Zero-byte objects are mails being written or expunged (upstream's reading).
    pub fn is_zero_byte(&self) -> bool {
        self.size == 0
    }
}

/// A whole mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub info: MailInfo,
    pub data: Vec<u8>,
    /// Keywords stored with the object (omap `K`), when `rbox_cfg` enables them.
    pub object_keywords: Vec<String>,
}

/// An object of a namespace found by a scan, with its metadata (or why it has none).
pub type ScannedObject = std::result::Result<MailInfo, (String, StoreError)>;

/// What [`Mailspace::find`] returns: matching mails in sort order, and the objects whose
/// metadata could not be read at all.
#[derive(Clone, Debug)]
pub struct Found {
    pub mails: Vec<MailInfo>,
    pub errors: Vec<(String, StoreError)>,
}

/// Where a mail sits in the index.
#[derive(Clone, Debug)]
pub(crate) struct Located {
    pub oid: Guid128,
    pub info: MailInfo,
    pub mailbox: ListedMailbox,
    pub header: MailboxHeader,
    pub uid: u32,
    pub raw: Vec<u8>,
    pub record: MailRecord,
}

impl Mailspace {
    /// Stat + xattrs of one object.
    pub async fn mail_info(&self, oid: &str) -> Result<MailInfo> {
        let r = match self.backend().read(&self.mail_loc(oid), 0, Some(0)).await {
            Ok(r) => r,
            Err(BackendError::NotFound(_)) => {
                return Err(StoreError::MailNotFound(oid.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        let (metadata, errors, ima_keywords) = decode_metadata(self.cfg(), &r.xattrs);
        Ok(MailInfo {
            oid: oid.to_string(),
            size: r.size,
            mtime: r.mtime,
            metadata,
            errors,
            ima_keywords,
        })
    }

    /// Read a mail: body and metadata in one round trip (two for bodies over 256 KiB on
    /// librados). A zero-byte object is reported as [`StoreError::ZeroByte`].
    pub async fn read(&self, oid: &str) -> Result<Mail> {
        let loc = self.mail_loc(oid);
        let r = match self.backend().read(&loc, 0, None).await {
            Ok(r) => r,
            Err(BackendError::NotFound(_)) => {
                return Err(StoreError::MailNotFound(oid.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        if r.size == 0 {
            return Err(StoreError::ZeroByte(oid.to_string()));
        }
        let (metadata, errors, ima_keywords) = decode_metadata(self.cfg(), &r.xattrs);
        let object_keywords = if self.cfg().is_mail_attribute(MetadataKey::Keywords) {
            read_object_keywords(self.backend(), &loc)
                .await?
                .map_err(|error| StoreError::Metadata {
                    oid: oid.to_string(),
                    error,
                })?
        } else {
            Vec::new()
        };
        Ok(Mail {
            info: MailInfo {
                oid: oid.to_string(),
                size: r.size,
                mtime: r.mtime,
                metadata,
                errors,
                ima_keywords,
            },
            data: r.data,
            object_keywords,
        })
    }

    /// The keywords a mail object carries itself, as `build_index` adopts them: a packed
    /// `ima` attribute, else (when `rbox_cfg` has `K`) the object's omap, where the plugin
    /// keeps them. Values that do not decode, and invalid keywords, are left out.
    pub async fn stored_keywords(&self, info: &MailInfo) -> Result<Vec<String>> {
        let keywords = if !info.ima_keywords.is_empty() {
            info.ima_keywords.clone()
        } else if self.cfg().is_mail_attribute(MetadataKey::Keywords) {
            read_object_keywords(self.backend(), &self.mail_loc(&info.oid))
                .await?
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(keywords
            .into_iter()
            .filter(|k| crate::index::format::validate_keyword(k).is_ok())
            .collect())
    }

    /// Every object id in this namespace of the mail pool (a RADOS listing: cost grows with
    /// the pool, not the user — prefer the index).
    pub async fn list_object_ids(&self) -> Result<Vec<String>> {
        let listed = self
            .backend()
            .list_objects(
                &self.inner.config.mail_pool,
                &NamespaceFilter::Only(self.ns.clone()),
            )
            .await?;
        Ok(listed.into_iter().map(|o| o.oid).collect())
    }

    /// librmb-style scan: list the namespace, then stat + xattrs of every object (bounded
    /// concurrency). Objects that vanish in between are skipped.
    pub async fn scan(&self) -> Result<Vec<ScannedObject>> {
        let ids = self.list_object_ids().await?;
        let concurrency = self.inner.config.scan_concurrency.max(1);
        let results: Vec<Option<ScannedObject>> = futures::stream::iter(ids)
            .map(|oid| async move {
                match self.mail_info(&oid).await {
                    Ok(i) => Some(Ok(i)),
                    Err(StoreError::MailNotFound(_)) => None,
                    Err(e) => Some(Err((oid, e))),
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        Ok(results.into_iter().flatten().collect())
    }

    /// `rmb ls <query> <sort>`: scan the namespace, keep the mails matching `query`, sort
    /// them (ties by object id, so output is stable).
    pub async fn find(&self, query: &Query, sort: SortKey) -> Result<Found> {
        let mut mails = Vec::new();
        let mut errors = Vec::new();
        for r in self.scan().await? {
            match r {
                Ok(i) if query.matches(i.target()) => mails.push(i),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        mails.sort_by(|a, b| {
            sort.value(a.target())
                .cmp(&sort.value(b.target()))
                .then_with(|| a.oid.cmp(&b.oid))
        });
        Ok(Found { mails, errors })
    }

    /// Find a mail's index entry through its `M` and `U` xattrs.
    pub(crate) async fn locate(&self, oid: &str) -> Result<Located> {
        let info = self.mail_info(oid).await?;
        let not_indexed = || StoreError::NotIndexed(oid.to_string());
        let guid = Guid128::parse_hex(oid).map_err(|_| not_indexed())?;
        let (Some(mb), Some(uid)) = (info.metadata.mailbox_guid, info.metadata.uid) else {
            return Err(not_indexed());
        };
        let mailbox = self.index.mailbox(&mb).await?.ok_or_else(not_indexed)?;
        let header = self.index.header(&mb).await?.ok_or_else(not_indexed)?;
        let (raw, record) = self
            .index
            .get_record(&mb, header.shard_span, uid)
            .await?
            .ok_or_else(not_indexed)?;
        if record.oid != guid {
            return Err(not_indexed());
        }
        Ok(Located {
            oid: guid,
            info,
            mailbox,
            header,
            uid,
            raw,
            record,
        })
    }

    /// The index record of a mail (its UID, flags, keywords, modseq).
    pub async fn indexed(&self, oid: &str) -> Result<(ListedMailbox, u32, MailRecord)> {
        let l = self.locate(oid).await?;
        Ok((l.mailbox, l.uid, l.record))
    }
}
