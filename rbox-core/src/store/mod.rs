//! The async storage API: librmb-compatible mail objects plus the omap index.
//!
//! [`Store`] is the entry point (pools, `rbox_cfg`, users); [`Mailspace`] is one RADOS
//! namespace of mail — a user's or the public one — with the mail and mailbox operations.
//!
//! Write ordering (see `docs/rbox-index-format.md` §5): a save allocates its UID in the
//! index, writes the body with every xattr (one op when it fits `osd_max_write_size`), then
//! inserts the index record. An expunge empties the body (zero bytes = "expunged" to
//! upstream readers), removes the index record, then removes the object. Every state a
//! crash can leave behind is recognised and repaired by [`Mailspace::fsck`].

mod batch;
mod body;
mod canary;
mod cfg_ops;
mod external;
pub mod fsck;
mod fsck_xattrs;
mod mailbox_ops;
mod mirror;
mod mutate;
mod read;
mod save;
mod stale;
mod users;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::{Backend, ObjectLocation, WriteLimits};
use crate::error::{Result, StoreError};
use crate::format::cfg::{DEFAULT_CFG_OBJECT, RboxConfig};
use crate::format::namespace::validate_namespace;
use crate::index::mails::Allocation;
use crate::index::{HeaderCache, Index, ListedMailbox, MailRecord};
use batch::Coalescer;

pub(crate) use body::unix_secs;
pub use canary::{CanaryReport, CanaryStep};
pub use cfg_ops::{create_cfg, read_cfg, update_cfg, write_cfg};
pub use external::{ExternalFlags, ExternalMail, ExternalMailbox, ExternalSaved, external_records};
pub use fsck::{FindingKind, FsckFinding, FsckOptions, FsckReport, FsckTotals, IndexBuildReport};
pub use mailbox_ops::{MailPage, MailboxStatus};
pub use mirror::{ExternalMirror, MirrorOp};
pub use mutate::{FlagOp, FlagUpdate};
pub use read::{Found, Mail, MailInfo, ScannedObject};
pub use save::{SaveRequest, SavedMail};
pub use stale::{STALE_SAMPLE_PER_MAILBOX, STALE_SLACK, Staleness};

/// Where and how a [`Store`] works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Pool of mail objects (`rbox_pool_name`).
    pub mail_pool: String,
    /// Pool of the omap index (replicated; upstream's `rbox_index_pool_name`, whose default
    /// namespace holds librmb's recovery-index objects — the omap index uses the users'
    /// namespaces, so the two never meet).
    pub index_pool: String,
    /// Name of the config object (`rbox_cfg_object_name`).
    pub cfg_object: String,
    /// Also append `oid,` to librmb's recovery-index object on save
    /// (`rbox_object_search_method=2` deployments).
    pub recovery_index: bool,
    /// Objects younger than this are never repaired by fsck (a save or expunge may still
    /// be running on them).
    pub fsck_grace: Duration,
    /// Parallel reads when scanning a namespace.
    pub scan_concurrency: usize,
    /// UIDs a process may allocate ahead of need and hand out to its next saves within
    /// [`UID_LEASE_TTL`] (0 = allocate exactly what is needed). Unused ones become gaps;
    /// across processes, UIDs may then be indexed slightly out of order.
    pub uid_prefetch: u32,
    /// Return from saves and copies once the body is written and insert the index record
    /// in the background (group-committed). Crash-safe like the synchronous path (body
    /// first); the record becomes visible a moment later. Call [`Store::flush`] before
    /// relying on the index. Off by default.
    pub index_write_behind: bool,
    /// Lower the cluster's write limits (never raise them): like upstream's
    /// `rbox_chunk_size`, and lets tests exercise chunked writes and the size refusal
    /// against a real cluster without 90 MiB mails.
    pub write_limits: Option<WriteLimits>,
}

impl StoreConfig {
    pub fn new(mail_pool: impl Into<String>, index_pool: impl Into<String>) -> Self {
        Self {
            mail_pool: mail_pool.into(),
            index_pool: index_pool.into(),
            cfg_object: DEFAULT_CFG_OBJECT.into(),
            recovery_index: false,
            fsck_grace: Duration::from_secs(3600),
            scan_concurrency: 16,
            uid_prefetch: 64,
            index_write_behind: false,
            write_limits: None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) config: StoreConfig,
    pub(crate) cfg: RboxConfig,
    pub(crate) cfg_present: bool,
    pub(crate) cache: Arc<HeaderCache>,
    /// Mailbox name → record, per namespace: saves skip two omap reads. A stale entry
    /// (renamed or deleted elsewhere) fails at UID allocation and is looked up again.
    pub(crate) mailboxes: Mutex<HashMap<(String, String), ListedMailbox>>,
    pub(crate) alloc_queue: Arc<Coalescer<u32, Allocation>>,
    /// UIDs allocated ahead, per mailbox queue key.
    leases: Mutex<HashMap<String, Lease>>,
    /// Deferred index inserts still running, and the ones that failed.
    pub(crate) pending: tokio::sync::watch::Sender<usize>,
    pub(crate) deferred_errors: Mutex<Vec<StoreError>>,
    pub(crate) insert_queue: Arc<Coalescer<(u32, MailRecord), ()>>,
}

impl Inner {
    fn new(
        backend: Arc<dyn Backend>,
        config: StoreConfig,
        cfg: RboxConfig,
        cfg_present: bool,
    ) -> Self {
        Self {
            backend,
            config,
            cfg,
            cfg_present,
            cache: Arc::new(HeaderCache::default()),
            mailboxes: Mutex::new(HashMap::new()),
            alloc_queue: Arc::new(Coalescer::default()),
            leases: Mutex::new(HashMap::new()),
            pending: tokio::sync::watch::Sender::new(0),
            deferred_errors: Mutex::new(Vec::new()),
            insert_queue: Arc::new(Coalescer::default()),
        }
    }
}

/// How long prefetched UIDs may be handed out after their allocation.
pub const UID_LEASE_TTL: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Lease {
    next: u32,
    end: u32,
    modseq: u64,
    header: crate::index::MailboxHeader,
    at: Instant,
}

impl Inner {
    /// One UID from the lease of a mailbox, if it has a fresh one left.
    pub(crate) fn take_lease(&self, key: &str) -> Option<Allocation> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let l = leases.get_mut(key)?;
        if l.at.elapsed() > UID_LEASE_TTL || l.next >= l.end {
            leases.remove(key);
            return None;
        }
        let a = Allocation {
            first_uid: l.next,
            count: 1,
            modseq: l.modseq,
            header: l.header,
        };
        l.next += 1;
        Some(a)
    }

    /// Keep the `extra` UIDs of an allocation (after the `needed` ones) for later saves.
    pub(crate) fn put_lease(&self, key: &str, a: Allocation, needed: u32, extra: u32) {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if extra == 0 {
            return;
        }
        leases.insert(
            key.to_string(),
            Lease {
                next: a.first_uid + needed,
                end: a.first_uid + needed + extra,
                modseq: a.modseq,
                header: a.header,
                at: Instant::now(),
            },
        );
    }

    /// Drop the leases of a namespace (its mailboxes changed).
    pub(crate) fn drop_leases(&self, prefix: &str) {
        self.leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| !k.starts_with(prefix));
    }
}

/// Entry point: a backend, two pools and the `rbox_cfg` read from the mail pool.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Open a store: reads `rbox_cfg` (defaults if the object does not exist — like the
    /// plugin, but without writing it; see [`Store::create_cfg`]).
    pub async fn open(backend: Arc<dyn Backend>, config: StoreConfig) -> Result<Store> {
        let found = read_cfg(backend.as_ref(), &config.mail_pool, &config.cfg_object).await?;
        let cfg_present = found.is_some();
        Ok(Store {
            inner: Arc::new(Inner::new(
                backend,
                config,
                found.unwrap_or_default(),
                cfg_present,
            )),
        })
    }

    /// Open with a given `rbox_cfg` instead of reading it (tests, dry runs).
    pub fn with_cfg(backend: Arc<dyn Backend>, config: StoreConfig, cfg: RboxConfig) -> Store {
        Store {
            inner: Arc::new(Inner::new(backend, config, cfg, true)),
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The `rbox_cfg` in effect.
    pub fn cfg(&self) -> &RboxConfig {
        &self.inner.cfg
    }

    /// Did the `rbox_cfg` object exist when the store was opened?
    pub fn cfg_present(&self) -> bool {
        self.inner.cfg_present
    }

    /// Wait until every deferred index insert (`index_write_behind`) is done. Returns the
    /// first failure since the last flush, if any (the bodies are kept; fsck indexes them).
    pub async fn flush(&self) -> Result<()> {
        let mut rx = self.inner.pending.subscribe();
        // The sender lives in `inner`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|n| *n == 0).await;
        let mut errors = self
            .inner
            .deferred_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match errors.drain(..).next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Names of all pools (`lspools`).
    pub async fn list_pools(&self) -> Result<Vec<String>> {
        Ok(self.inner.backend.list_pools().await?)
    }

    /// A namespace used as is (no user mapping).
    pub fn namespace(&self, ns: &str) -> Result<Mailspace> {
        validate_namespace(ns)?;
        Ok(Mailspace::new(self.inner.clone(), ns.to_string()))
    }

    /// The reserved namespace of the canary.
    pub fn canary_space(&self) -> Mailspace {
        Mailspace::new(
            self.inner.clone(),
            crate::format::namespace::CANARY_NAMESPACE.to_string(),
        )
    }
}

/// One RADOS namespace of mail (a user's, or the public one): objects in the mail pool,
/// index objects in the same namespace of the index pool.
#[derive(Clone, Debug)]
pub struct Mailspace {
    pub(crate) inner: Arc<Inner>,
    pub(crate) ns: String,
    pub(crate) index: Index,
}

impl Mailspace {
    fn new(inner: Arc<Inner>, ns: String) -> Self {
        let index = Index::new(
            inner.backend.clone(),
            inner.config.index_pool.clone(),
            ns.clone(),
            inner.cache.clone(),
        );
        Self { inner, ns, index }
    }

    /// The RADOS namespace.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// The index of this namespace (lower-level access).
    pub fn index(&self) -> &Index {
        &self.index
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        self.inner.backend.as_ref()
    }

    /// The backend's write limits, lowered by the store's override.
    pub(crate) fn write_limits(&self) -> WriteLimits {
        let b = self.inner.backend.write_limits();
        match self.inner.config.write_limits {
            Some(o) => WriteLimits {
                max_write_size: b.max_write_size.min(o.max_write_size),
                max_object_size: b.max_object_size.min(o.max_object_size),
            },
            None => b,
        }
    }

    pub(crate) fn cfg(&self) -> &RboxConfig {
        &self.inner.cfg
    }

    pub(crate) fn cached_mailbox(&self, name: &str) -> Option<ListedMailbox> {
        self.inner
            .mailboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(self.ns.clone(), name.to_string()))
            .cloned()
    }

    pub(crate) fn cache_mailbox(&self, mb: &ListedMailbox) {
        self.inner
            .mailboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((self.ns.clone(), mb.record.name.clone()), mb.clone());
    }

    /// Forget cached lookups (and UID leases) of a mailbox (by GUID) in this namespace.
    pub(crate) fn forget_mailbox(&self, guid: &crate::format::guid::Guid128) {
        self.inner.drop_leases(&format!(
            "{}/{}/{}",
            self.inner.config.index_pool, self.ns, guid
        ));
        self.inner
            .mailboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(ns, _), m| !(ns == &self.ns && &m.guid == guid));
    }

    pub(crate) fn mail_loc(&self, oid: &str) -> ObjectLocation {
        ObjectLocation::new(self.inner.config.mail_pool.clone(), self.ns.clone(), oid)
    }
}
