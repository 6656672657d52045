//! The real backend: librados through [`crate::rados`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Backend, BackendError, ListedObject, NamespaceFilter, ObjectLocation, ObjectStat, OmapPage,
    ReadResult, Result, WriteLimits, WriteOp,
};
use crate::rados::{Cluster, Pool};

/// Bounded retries for calls that timed out: a monitor election or an OSD restart can stall
/// one op for a few seconds. Only reads and guarded/idempotent writes are retried by callers
/// that know they are; the backend itself retries reads only.
const READ_RETRIES: usize = 2;

#[derive(Debug)]
pub struct LibradosBackend {
    cluster: Cluster,
    pools: Mutex<HashMap<String, Pool>>,
    limits: WriteLimits,
}

impl LibradosBackend {
    /// Wrap a connected cluster. Write limits come from the client's view of the cluster
    /// configuration, as upstream librmb reads them.
    pub fn new(cluster: Cluster) -> Self {
        let defaults = WriteLimits::default();
        let mb = |s: String| s.trim().parse::<u64>().ok().map(|v| v * 1024 * 1024);
        let bytes = |s: String| s.trim().parse::<u64>().ok();
        let limits = WriteLimits {
            max_write_size: cluster
                .conf_get("osd_max_write_size")
                .ok()
                .and_then(mb)
                .unwrap_or(defaults.max_write_size),
            max_object_size: cluster
                .conf_get("osd_max_object_size")
                .ok()
                .and_then(bytes)
                .unwrap_or(defaults.max_object_size),
        };
        Self {
            cluster,
            pools: Mutex::new(HashMap::new()),
            limits,
        }
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    async fn pool(&self, name: &str) -> Result<Pool> {
        if let Some(p) = self
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Ok(p.clone());
        }
        let p = Pool::open(&self.cluster, name).await?;
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), p.clone());
        Ok(p)
    }

    async fn retry_reads<T, F, Fut>(&self, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match f().await {
                Err(BackendError::Timeout(_)) if attempt < READ_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }
}

#[async_trait]
impl Backend for LibradosBackend {
    async fn write_op(&self, loc: &ObjectLocation, op: WriteOp) -> Result<()> {
        self.pool(&loc.pool)
            .await?
            .operate(&loc.namespace, &loc.oid, &op)
            .await
    }

    async fn read(
        &self,
        loc: &ObjectLocation,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ReadResult> {
        let pool = self.pool(&loc.pool).await?;
        self.retry_reads(|| pool.read(&loc.namespace, &loc.oid, offset, len))
            .await
    }

    async fn stat(&self, loc: &ObjectLocation) -> Result<ObjectStat> {
        let pool = self.pool(&loc.pool).await?;
        self.retry_reads(|| pool.stat(&loc.namespace, &loc.oid))
            .await
    }

    async fn get_xattrs(&self, loc: &ObjectLocation) -> Result<BTreeMap<String, Vec<u8>>> {
        let pool = self.pool(&loc.pool).await?;
        self.retry_reads(|| pool.get_xattrs(&loc.namespace, &loc.oid))
            .await
    }

    async fn omap_get_vals(
        &self,
        loc: &ObjectLocation,
        start_after: &str,
        prefix: &str,
        max: u64,
    ) -> Result<OmapPage> {
        let pool = self.pool(&loc.pool).await?;
        self.retry_reads(|| pool.omap_get_vals(&loc.namespace, &loc.oid, start_after, prefix, max))
            .await
    }

    async fn omap_get_vals_by_keys(
        &self,
        loc: &ObjectLocation,
        keys: &[String],
    ) -> Result<BTreeMap<String, Vec<u8>>> {
        let pool = self.pool(&loc.pool).await?;
        self.retry_reads(|| pool.omap_get_vals_by_keys(&loc.namespace, &loc.oid, keys))
            .await
    }

    async fn remove(&self, loc: &ObjectLocation) -> Result<()> {
        self.pool(&loc.pool)
            .await?
            .remove(&loc.namespace, &loc.oid)
            .await
    }

    async fn list_objects(
        &self,
        pool: &str,
        filter: &NamespaceFilter,
    ) -> Result<Vec<ListedObject>> {
        let pool = self.pool(pool).await?;
        self.retry_reads(|| pool.list(filter)).await
    }

    async fn list_pools(&self) -> Result<Vec<String>> {
        self.cluster.list_pools().await
    }

    fn write_limits(&self) -> WriteLimits {
        self.limits
    }
}
