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
pub mod fsck;
mod mailbox_ops;
mod mutate;
mod read;
mod save;
mod users;

use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, ObjectLocation, WriteLimits};
use crate::error::Result;
use crate::format::cfg::{DEFAULT_CFG_OBJECT, RboxConfig};
use crate::format::namespace::validate_namespace;
use crate::index::mails::Allocation;
use crate::index::{HeaderCache, Index, MailRecord};
use batch::Coalescer;

pub use canary::{CanaryReport, CanaryStep};
pub use cfg_ops::{create_cfg, read_cfg, update_cfg, write_cfg};
pub use fsck::{FindingKind, FsckFinding, FsckOptions, FsckReport, IndexBuildReport};
pub use mailbox_ops::{MailPage, MailboxStatus};
pub use mutate::{FlagOp, FlagUpdate};
pub use read::{Found, Mail, MailInfo, ScannedObject};
pub use save::{SaveRequest, SavedMail};

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
    pub(crate) alloc_queue: Arc<Coalescer<u32, Allocation>>,
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
            alloc_queue: Arc::new(Coalescer::default()),
            insert_queue: Arc::new(Coalescer::default()),
        }
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

    pub(crate) fn mail_loc(&self, oid: &str) -> ObjectLocation {
        ObjectLocation::new(self.inner.config.mail_pool.clone(), self.ns.clone(), oid)
    }
}
