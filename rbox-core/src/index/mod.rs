//! The pure-RADOS omap index of one user namespace (format: [`format`] and
//! `docs/rbox-index-format.md`).
//!
//! Every change that can race goes through an omap compare in the same compound op as the
//! write (`omap_cmp(key == bytes we read)`), so two writers never both win: the loser gets
//! `Canceled`, re-reads and retries a bounded number of times.

pub mod format;
pub mod mailboxes;
pub mod mails;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::{Backend, BackendError, ObjectLocation};
use crate::error::{Result, StoreError};
use crate::format::guid::Guid128;

pub use format::{MailRecord, MailboxHeader, MailboxRecord, MailboxState};
pub use mailboxes::ListedMailbox;
pub use mails::{Allocation, RecordPage};

/// Compare-and-swap attempts before giving up with [`StoreError::Conflict`].
pub const MAX_CAS_ATTEMPTS: u32 = 64;

/// Omap entries per read (well below `osd_max_omap_entries_per_request`).
pub(crate) const PAGE: u64 = 1000;

/// Last header seen per mailbox, shared by every [`Index`] of a store: a save can then
/// compare-and-set against it without reading first. A stale entry only costs one
/// `Canceled` and a re-read.
#[derive(Debug, Default)]
pub struct HeaderCache {
    map: Mutex<HashMap<(String, String, Guid128), MailboxHeader>>,
}

impl HeaderCache {
    fn get(&self, pool: &str, ns: &str, g: &Guid128) -> Option<MailboxHeader> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(pool.to_string(), ns.to_string(), *g))
            .copied()
    }
    fn put(&self, pool: &str, ns: &str, g: &Guid128, h: MailboxHeader) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((pool.to_string(), ns.to_string(), *g), h);
    }
    fn forget(&self, pool: &str, ns: &str, g: &Guid128) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(&(
            pool.to_string(),
            ns.to_string(),
            *g,
        ));
    }
}

/// The index of one namespace in the index pool.
#[derive(Clone, Debug)]
pub struct Index {
    backend: Arc<dyn Backend>,
    pool: String,
    ns: String,
    cache: Arc<HeaderCache>,
}

impl Index {
    pub fn new(
        backend: Arc<dyn Backend>,
        pool: impl Into<String>,
        ns: impl Into<String>,
        cache: Arc<HeaderCache>,
    ) -> Self {
        Self {
            backend,
            pool: pool.into(),
            ns: ns.into(),
            cache,
        }
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    pub fn pool(&self) -> &str {
        &self.pool
    }

    pub(crate) fn loc(&self, oid: impl Into<String>) -> ObjectLocation {
        ObjectLocation::new(self.pool.clone(), self.ns.clone(), oid)
    }

    pub(crate) fn list_loc(&self) -> ObjectLocation {
        self.loc(format::LIST_OBJECT)
    }

    pub(crate) fn shard_loc(&self, mailbox: &Guid128, shard: u32) -> ObjectLocation {
        self.loc(format::shard_object(mailbox, shard))
    }
}

/// NotFound → None.
pub(crate) fn found<T>(r: std::result::Result<T, BackendError>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(BackendError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

static JITTER_SEQ: AtomicU64 = AtomicU64::new(0);

/// Sleep a random 0..2^attempt ms (capped at 64 ms) so racing writers spread out.
pub(crate) async fn backoff(attempt: u32) {
    let span = 1u64 << attempt.min(6);
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(JITTER_SEQ.fetch_add(1, Ordering::Relaxed));
    let ms = h.finish() % span;
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    } else {
        tokio::task::yield_now().await;
    }
}

pub(crate) fn conflict(what: impl Into<String>) -> StoreError {
    StoreError::Conflict {
        what: what.into(),
        attempts: MAX_CAS_ATTEMPTS,
    }
}
