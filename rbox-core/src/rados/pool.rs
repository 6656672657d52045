//! An io context on one pool, safe to share between tasks.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::aio::submit;
use super::cluster::{Cluster, ClusterHandle};
use super::ffi;
use super::read_op::CReadOp;
use super::write_op::CWriteOp;
use super::{RadosError, RadosResult, cstring};

/// `LIBRADOS_OPERATION_FULL_TRY` (librados.h).
const FULL_TRY: libc::c_int = 64;
use crate::backend::{ListedObject, NamespaceFilter, ObjectStat, OmapPage, ReadResult, WriteOp};

/// The `rados_ioctx_t`, freed once. Holds the cluster handle so it cannot outlive it.
struct IoCtxHandle {
    raw: ffi::rados_ioctx_t,
    _cluster: Arc<ClusterHandle>,
}

// SAFETY: io contexts are thread-safe in librados except for their mutable namespace/locator
// state, which we only touch while holding `Pool::ctx`'s mutex.
unsafe impl Send for IoCtxHandle {}

impl Drop for IoCtxHandle {
    fn drop(&mut self) {
        // SAFETY: raw came from rados_ioctx_create and is destroyed once, before the cluster.
        unsafe { ffi::rados_ioctx_destroy(self.raw) }
    }
}

/// A pool. Each call names its namespace: librados keeps the namespace as state of the io
/// context, so setting it and submitting happen under one lock; the op copies its object
/// locator at submission, so the lock is not held while the op is in flight.
#[derive(Clone)]
pub struct Pool {
    name: Arc<str>,
    cluster: Cluster,
    ctx: Arc<Mutex<IoCtxHandle>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Bytes read by the first op of a whole-object read; larger objects take a second read.
const FIRST_READ: usize = 256 * 1024;

fn to_system_time(t: libc::time_t) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.max(0) as u64)
}

impl Pool {
    /// Open a pool. `NotFound` if it does not exist (after refreshing the OSD map once, so a
    /// pool just created by a mon command is found).
    pub async fn open(cluster: &Cluster, name: &str) -> RadosResult<Pool> {
        match Self::create_ctx(cluster, name) {
            Err(RadosError::NotFound(_)) => {
                cluster.wait_for_latest_osdmap().await?;
                Self::create_ctx(cluster, name)
            }
            other => other,
        }
    }

    fn create_ctx(cluster: &Cluster, name: &str) -> RadosResult<Pool> {
        let c = cstring(name)?;
        let mut raw: ffi::rados_ioctx_t = std::ptr::null_mut();
        // SAFETY: cluster handle is live; out-pointer valid.
        let rc = unsafe { ffi::rados_ioctx_create(cluster.handle.raw, c.as_ptr(), &mut raw) };
        if rc < 0 {
            return Err(RadosError::from_errno(rc, format!("pool {name}")));
        }
        Ok(Pool {
            name: name.into(),
            cluster: cluster.clone(),
            ctx: Arc::new(Mutex::new(IoCtxHandle {
                raw,
                _cluster: cluster.handle.clone(),
            })),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn timeout(&self) -> Duration {
        self.cluster.op_timeout()
    }

    /// Run `f` with the io context switched to `ns`.
    fn with_ns<T>(&self, ns: &str, f: impl FnOnce(ffi::rados_ioctx_t) -> T) -> RadosResult<T> {
        let ns = cstring(ns)?;
        let guard = self.ctx.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: guard gives exclusive use of the namespace state; ns is NUL-terminated.
        unsafe { ffi::rados_ioctx_set_namespace(guard.raw, ns.as_ptr()) };
        Ok(f(guard.raw))
    }

    fn what(&self, verb: &str, ns: &str, oid: &str) -> String {
        format!("{verb} {}/{ns}/{oid}", self.name)
    }

    /// Apply a compound write op atomically. Sent with FULL_TRY: on a full pool (quota or
    /// full OSDs) a write fails at once with EDQUOT/ENOSPC instead of librados pausing it
    /// until the op timeout, and a remove still goes through (it frees space).
    pub async fn operate(&self, ns: &str, oid: &str, op: &WriteOp) -> RadosResult<()> {
        let what = self.what("write", ns, oid);
        let coid = cstring(oid)?;
        let cop = CWriteOp::build(op)?;
        let (rv, _cop) = submit(&what, self.timeout(), cop, |c, cop| {
            // SAFETY: cop points at the live bundle; nothing touches it after submission.
            let (raw, mtime) = unsafe {
                let mtime: *mut libc::time_t = match (*cop).mtime.as_mut() {
                    Some(t) => t,
                    None => std::ptr::null_mut(),
                };
                ((*cop).raw, mtime)
            };
            self.with_ns(ns, |io| {
                // SAFETY: op, io, completion and oid are live; mtime is read during the call.
                unsafe {
                    ffi::rados_aio_write_op_operate(raw, io, c, coid.as_ptr(), mtime, FULL_TRY)
                }
            })
            .unwrap_or(-libc::EINVAL)
        })
        .await?;
        if rv < 0 {
            return Err(RadosError::from_errno(rv, what));
        }
        Ok(())
    }

    async fn run_read(&self, what: &str, ns: &str, oid: &str, op: CReadOp) -> RadosResult<CReadOp> {
        let coid = cstring(oid)?;
        let (rv, op) = submit(what, self.timeout(), op, |c, op| {
            // SAFETY: op points at the live bundle; only its handle is read, before submission.
            let raw = unsafe { (*op).raw };
            self.with_ns(ns, |io| {
                // SAFETY: op, io, completion and oid are live.
                unsafe { ffi::rados_aio_read_op_operate(raw, io, c, coid.as_ptr(), 0) }
            })
            .unwrap_or(-libc::EINVAL)
        })
        .await?;
        if rv < 0 {
            return Err(RadosError::from_errno(rv, what.to_string()));
        }
        Ok(op)
    }

    /// Stat + read + all xattrs in one round trip (two if the object is larger than the
    /// first read and no explicit length was asked for).
    pub async fn read(
        &self,
        ns: &str,
        oid: &str,
        offset: u64,
        len: Option<u64>,
    ) -> RadosResult<ReadResult> {
        let what = self.what("read", ns, oid);
        let mut op = CReadOp::new();
        op.stat();
        let first = len.map(|l| l as usize).unwrap_or(FIRST_READ);
        op.read(offset, first);
        op.getxattrs();
        let mut op = self.run_read(&what, ns, oid, op).await?;
        let xattrs = op.take_xattrs();
        let (size, mtime) = (op.out.size, to_system_time(op.out.mtime));
        let mut data = std::mem::take(&mut op.out.buf);
        data.truncate(op.out.bytes_read);
        if len.is_none() && offset + (data.len() as u64) < size {
            let rest = (size - offset - data.len() as u64) as usize;
            let mut op2 = CReadOp::new();
            op2.read(offset + data.len() as u64, rest);
            let op2 = self.run_read(&what, ns, oid, op2).await?;
            let n = op2.out.bytes_read;
            data.extend_from_slice(&op2.out.buf[..n]);
        }
        Ok(ReadResult {
            size,
            mtime,
            data,
            xattrs,
        })
    }

    pub async fn stat(&self, ns: &str, oid: &str) -> RadosResult<ObjectStat> {
        let mut op = CReadOp::new();
        op.stat();
        let op = self
            .run_read(&self.what("stat", ns, oid), ns, oid, op)
            .await?;
        Ok(ObjectStat {
            size: op.out.size,
            mtime: to_system_time(op.out.mtime),
        })
    }

    pub async fn get_xattrs(&self, ns: &str, oid: &str) -> RadosResult<BTreeMap<String, Vec<u8>>> {
        let mut op = CReadOp::new();
        op.getxattrs();
        let mut op = self
            .run_read(&self.what("getxattrs", ns, oid), ns, oid, op)
            .await?;
        Ok(op.take_xattrs())
    }

    /// Up to `max` omap entries after `start_after` with `prefix`; asks for one more to know
    /// whether the page is the last (librados 16's C API has no "more" flag).
    pub async fn omap_get_vals(
        &self,
        ns: &str,
        oid: &str,
        start_after: &str,
        prefix: &str,
        max: u64,
    ) -> RadosResult<OmapPage> {
        let mut op = CReadOp::new();
        op.omap_get_vals(
            cstring(start_after)?,
            cstring(prefix)?,
            max.saturating_add(1),
        );
        let mut op = self
            .run_read(&self.what("omap_get_vals", ns, oid), ns, oid, op)
            .await?;
        let mut entries = op.take_omap();
        let more = entries.len() as u64 > max;
        while entries.len() as u64 > max {
            entries.pop_last();
        }
        Ok(OmapPage { entries, more })
    }

    pub async fn omap_get_vals_by_keys(
        &self,
        ns: &str,
        oid: &str,
        keys: &[String],
    ) -> RadosResult<BTreeMap<String, Vec<u8>>> {
        let ckeys = keys
            .iter()
            .map(|k| cstring(k))
            .collect::<RadosResult<Vec<_>>>()?;
        let mut op = CReadOp::new();
        op.omap_get_vals_by_keys(ckeys);
        let mut op = self
            .run_read(&self.what("omap_get_vals_by_keys", ns, oid), ns, oid, op)
            .await?;
        Ok(op.take_omap())
    }

    pub async fn remove(&self, ns: &str, oid: &str) -> RadosResult<()> {
        self.operate(ns, oid, &WriteOp::new().remove()).await
    }

    /// List objects (blocking librados iteration, on the blocking pool, with its own io
    /// context so it never holds the shared one).
    pub async fn list(&self, filter: &NamespaceFilter) -> RadosResult<Vec<ListedObject>> {
        let own = Self::create_ctx(&self.cluster, &self.name)?;
        let filter = filter.clone();
        let what = format!("list {}", self.name);
        self.cluster
            .blocking(&what.clone(), move || {
                let guard = own.ctx.lock().unwrap_or_else(|p| p.into_inner());
                let io = guard.raw;
                let ns: CString = match &filter {
                    NamespaceFilter::Only(ns) => cstring(ns)?,
                    NamespaceFilter::All => CString::from_vec_with_nul(ffi::ALL_NSPACES.to_vec())
                        .map_err(|_| RadosError::Other {
                        errno: -libc::EINVAL,
                        context: "nspace".into(),
                    })?,
                };
                // SAFETY: io is exclusively ours; ns NUL-terminated.
                unsafe { ffi::rados_ioctx_set_namespace(io, ns.as_ptr()) };
                let mut ctx: ffi::rados_list_ctx_t = std::ptr::null_mut();
                // SAFETY: io live, out-pointer valid.
                let rc = unsafe { ffi::rados_nobjects_list_open(io, &mut ctx) };
                if rc < 0 {
                    return Err(RadosError::from_errno(rc, what));
                }
                let mut out = Vec::new();
                let result = loop {
                    let mut entry: *const libc::c_char = std::ptr::null();
                    let mut nspace: *const libc::c_char = std::ptr::null();
                    // SAFETY: ctx live; returned strings valid until the next call.
                    let rc = unsafe {
                        ffi::nobjects_list_next(ctx, &mut entry, std::ptr::null_mut(), &mut nspace)
                    };
                    if rc == -libc::ENOENT {
                        break Ok(());
                    }
                    if rc < 0 {
                        break Err(RadosError::from_errno(rc, what.clone()));
                    }
                    // SAFETY: both NUL-terminated (nspace may be null for the default ns).
                    let (oid, ns) = unsafe {
                        (
                            std::ffi::CStr::from_ptr(entry)
                                .to_string_lossy()
                                .into_owned(),
                            if nspace.is_null() {
                                String::new()
                            } else {
                                std::ffi::CStr::from_ptr(nspace)
                                    .to_string_lossy()
                                    .into_owned()
                            },
                        )
                    };
                    out.push(ListedObject { namespace: ns, oid });
                };
                // SAFETY: ctx opened above, closed once.
                unsafe { ffi::rados_nobjects_list_close(ctx) };
                result.map(|_| out)
            })
            .await
    }
}
