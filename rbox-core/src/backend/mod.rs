//! The object-store contract rbox-core is written against.
//!
//! Two implementations exist: [`memory::MemoryBackend`] (fast unit tests) and
//! [`librados::LibradosBackend`] (the real cluster, through [`crate::rados`]). One behaviour
//! suite runs against both so the in-memory one cannot drift from what RADOS does.
//!
//! The shape follows librados closely on purpose: a [`WriteOp`] is an ordered list of steps
//! applied atomically to one object (a RADOS compound write op), so "save = body + xattrs in
//! one round trip" and "omap compare-and-set" mean the same thing on both backends.

pub mod error;
pub mod librados;
pub mod memory;
mod ops;

use std::collections::BTreeMap;
use std::time::SystemTime;

use async_trait::async_trait;

pub use error::{BackendError, Result};
pub use ops::{CmpOp, ReadResult, WriteOp, WriteStep};

/// Where an object lives: pool, RADOS namespace (`""` is the default namespace) and object id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectLocation {
    pub pool: String,
    pub namespace: String,
    pub oid: String,
}

impl ObjectLocation {
    pub fn new(
        pool: impl Into<String>,
        namespace: impl Into<String>,
        oid: impl Into<String>,
    ) -> Self {
        Self {
            pool: pool.into(),
            namespace: namespace.into(),
            oid: oid.into(),
        }
    }
}

impl std::fmt::Display for ObjectLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.pool, self.namespace, self.oid)
    }
}

/// Size and modification time of an object (`rados stat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectStat {
    pub size: u64,
    pub mtime: SystemTime,
}

/// One entry of a namespace listing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListedObject {
    pub namespace: String,
    pub oid: String,
}

/// Which namespaces a listing covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceFilter {
    /// Exactly one namespace (`""` = the default one).
    Only(String),
    /// Every namespace of the pool (`rados --all ls`).
    All,
}

/// Limits the cluster enforces on object writes (`osd_max_write_size` is in bytes here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteLimits {
    /// Largest single write op the OSD accepts (Ceph default 90 MiB).
    pub max_write_size: u64,
    /// Largest object the OSD accepts (Ceph default 128 MiB).
    pub max_object_size: u64,
}

impl Default for WriteLimits {
    fn default() -> Self {
        Self {
            max_write_size: 90 * 1024 * 1024,
            max_object_size: 128 * 1024 * 1024,
        }
    }
}

/// A page of omap values, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OmapPage {
    pub entries: BTreeMap<String, Vec<u8>>,
    /// True when more keys (matching the prefix) follow the last one returned.
    pub more: bool,
}

/// The object store as rbox-core needs it. Every method has its own timeout in the real
/// backend; errors carry the errno class (`NotFound`, `Exists`, `Canceled` for a failed
/// compare, …) so callers can treat "already exists" / "not found" as the intent demands.
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Apply all steps of `op` to one object atomically (one RADOS round trip).
    async fn write_op(&self, loc: &ObjectLocation, op: WriteOp) -> Result<()>;

    /// Stat, read `len` bytes at `offset` (`None` = whole object) and fetch all xattrs in one
    /// compound read op. `NotFound` if the object does not exist.
    async fn read(&self, loc: &ObjectLocation, offset: u64, len: Option<u64>)
    -> Result<ReadResult>;

    /// Size and mtime.
    async fn stat(&self, loc: &ObjectLocation) -> Result<ObjectStat>;

    /// All xattrs, byte-exact.
    async fn get_xattrs(&self, loc: &ObjectLocation) -> Result<BTreeMap<String, Vec<u8>>>;

    /// Up to `max` omap entries with keys `> start_after` that start with `prefix`.
    async fn omap_get_vals(
        &self,
        loc: &ObjectLocation,
        start_after: &str,
        prefix: &str,
        max: u64,
    ) -> Result<OmapPage>;

    /// The values of exactly these keys (missing keys are absent from the map).
    async fn omap_get_vals_by_keys(
        &self,
        loc: &ObjectLocation,
        keys: &[String],
    ) -> Result<BTreeMap<String, Vec<u8>>>;

    /// Remove the object. `NotFound` if it does not exist.
    async fn remove(&self, loc: &ObjectLocation) -> Result<()>;

    /// List objects of a pool, in no particular order (RADOS lists in hash order).
    async fn list_objects(&self, pool: &str, filter: &NamespaceFilter)
    -> Result<Vec<ListedObject>>;

    /// Names of all pools.
    async fn list_pools(&self) -> Result<Vec<String>>;

    /// Write limits of the cluster, read from its configuration.
    fn write_limits(&self) -> WriteLimits;
}
