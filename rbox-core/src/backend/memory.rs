//! In-memory backend with RADOS semantics, for fast unit tests and crash-ordering tests.
//!
//! What it reproduces (checked against the OSD's `PrimaryLogPG::do_osd_ops`, Ceph 16):
//! - pools must exist (created with [`MemoryBackend::create_pool`]); an unknown pool is
//!   `NotFound`, like `rados_ioctx_create`;
//! - a compound write op is applied to a copy of the object and committed only if every
//!   step succeeds, so a failed guard (`Canceled`) or any other error writes nothing;
//! - data, xattr and omap-set steps create a missing object; `Truncate` of a missing object
//!   is a no-op; `RmXattr`, `OmapRmKeys`, `OmapClear`, `Remove`, `OmapCmp`, `CmpXattr` and
//!   `AssertExists` on a missing object are `NotFound`; `Create { exclusive }` on an existing
//!   object is `Exists`;
//! - `OmapCmp` compares *stored* against given (`stored < given` for `Lt`), a missing key
//!   compares as the empty value, and only `Eq`, `Lt` and `Gt` are accepted (EINVAL
//!   otherwise); `CmpXattr` (string mode) compares *given* against stored
//!   (`given > stored` for `Gt`), a missing xattr compares as the empty value;
//! - one op larger than `max_write_size` fails with EMSGSIZE (the OSD's `OSD_WRITETOOBIG`),
//!   an object growing past `max_object_size` fails with EFBIG;
//! - mtime is kept in whole seconds (what `rados_stat` reports);
//! - listings come back in a stable but unsorted order, as RADOS lists in hash order.
//!
//! Fault injection makes crash-ordering testable: fail the N-th write, "crash" after N more
//! writes (every later op fails until [`MemoryBackend::clear_faults`]), or fail ops matching
//! a predicate.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::{
    Backend, BackendError, CmpOp, ListedObject, NamespaceFilter, ObjectLocation, ObjectStat,
    OmapPage, ReadResult, Result, WriteLimits, WriteOp, WriteStep,
};

/// Which backend call an injected fault or a log entry refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    Write,
    Read,
    Stat,
    GetXattrs,
    OmapGetVals,
    OmapGetValsByKeys,
    Remove,
    ListObjects,
    ListPools,
}

impl OpKind {
    /// Does this call change state?
    pub fn is_write(self) -> bool {
        matches!(self, OpKind::Write | OpKind::Remove)
    }
}

/// What a fault predicate sees about one call.
#[derive(Debug)]
pub struct OpInfo<'a> {
    pub kind: OpKind,
    /// `None` for pool-level calls (listing).
    pub loc: Option<&'a ObjectLocation>,
    /// The write op, for [`OpKind::Write`].
    pub op: Option<&'a WriteOp>,
}

type Predicate = Arc<dyn Fn(&OpInfo<'_>) -> bool + Send + Sync>;

enum Trigger {
    /// The n-th write (write op or remove) from now fails (1-based).
    NthWrite(u64),
    /// After n more successful writes, every call fails ("the process died").
    CrashAfterWrites(u64),
    /// Calls matching the predicate fail, `remaining` times (`None` = forever).
    Matching {
        pred: Predicate,
        remaining: Option<u64>,
    },
}

struct Fault {
    trigger: Trigger,
    error: BackendError,
    /// Writes seen since the fault was installed.
    writes_seen: u64,
    crashed: bool,
}

/// One entry of the op log (see [`MemoryBackend::record_ops`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedOp {
    pub kind: OpKind,
    pub loc: Option<ObjectLocation>,
    /// Whether the call succeeded.
    pub ok: bool,
}

#[derive(Clone, Debug)]
struct Object {
    data: Vec<u8>,
    xattrs: BTreeMap<String, Vec<u8>>,
    omap: BTreeMap<String, Vec<u8>>,
    mtime: SystemTime,
}

type ObjKey = (String, String); // (namespace, oid)

#[derive(Default)]
struct State {
    pools: BTreeMap<String, BTreeMap<ObjKey, Object>>,
}

/// The in-memory object store. Cheap to share behind an `Arc`.
pub struct MemoryBackend {
    state: Mutex<State>,
    limits: Mutex<WriteLimits>,
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Option<Vec<LoggedOp>>>,
    ops: AtomicU64,
    writes: AtomicU64,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pools: Vec<String> = lock(&self.state).pools.keys().cloned().collect();
        f.debug_struct("MemoryBackend")
            .field("pools", &pools)
            .field("limits", &*lock(&self.limits))
            .field("ops", &self.ops.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not poison the store for the other tests' assertions.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// FNV-1a: a stable, unsorted listing order (RADOS lists in placement-hash order).
fn list_hash(ns: &str, oid: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ns.bytes().chain([0u8]).chain(oid.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Bytes a write op puts on the wire (what `osd_max_write_size` limits).
fn payload_len(op: &WriteOp) -> u64 {
    op.steps
        .iter()
        .map(|s| match s {
            WriteStep::WriteFull(d) | WriteStep::Append(d) | WriteStep::Write { data: d, .. } => {
                d.len()
            }
            WriteStep::SetXattr { name, value } | WriteStep::CmpXattr { name, value, .. } => {
                name.len() + value.len()
            }
            WriteStep::OmapCmp { key, value, .. } => key.len() + value.len(),
            WriteStep::OmapSet(m) => m.iter().map(|(k, v)| k.len() + v.len()).sum(),
            WriteStep::OmapRmKeys(keys) => keys.iter().map(String::len).sum(),
            WriteStep::RmXattr(name) => name.len(),
            _ => 0,
        } as u64)
        .sum()
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            limits: Mutex::new(WriteLimits::default()),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(None),
            ops: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    /// A backend with these pools already created.
    pub fn with_pools(pools: &[&str]) -> Self {
        let b = Self::new();
        for p in pools {
            b.create_pool(p);
        }
        b
    }

    /// Create a pool; creating an existing pool is a no-op (like `osd pool create`).
    pub fn create_pool(&self, name: &str) {
        lock(&self.state).pools.entry(name.to_string()).or_default();
    }

    /// Delete a pool and everything in it. `NotFound` if it does not exist.
    pub fn remove_pool(&self, name: &str) -> Result<()> {
        lock(&self.state)
            .pools
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| BackendError::NotFound(format!("pool {name}")))
    }

    /// Change the write limits (to test chunked writes and the size refusal cheaply).
    pub fn set_write_limits(&self, limits: WriteLimits) {
        *lock(&self.limits) = limits;
    }

    /// Number of calls made so far (all kinds).
    pub fn op_count(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// Number of write ops and removes attempted so far.
    pub fn write_count(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Start (or stop) recording every call; [`Self::take_op_log`] returns them.
    pub fn record_ops(&self, on: bool) {
        *lock(&self.log) = on.then(Vec::new);
    }

    pub fn take_op_log(&self) -> Vec<LoggedOp> {
        lock(&self.log)
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The n-th write (write op or remove) from now fails with `error` (1-based).
    pub fn fail_nth_write(&self, n: u64, error: BackendError) {
        self.add_fault(Trigger::NthWrite(n), error);
    }

    /// Let `n` more writes succeed, then fail every call with a connection error until
    /// [`Self::clear_faults`]: the state a crashed client leaves behind.
    pub fn crash_after_writes(&self, n: u64) {
        self.add_fault(
            Trigger::CrashAfterWrites(n),
            BackendError::Connection("simulated crash".into()),
        );
    }

    /// Fail calls matching `pred` with `error`, `times` times (`None` = until cleared).
    pub fn fail_matching(
        &self,
        pred: impl Fn(&OpInfo<'_>) -> bool + Send + Sync + 'static,
        error: BackendError,
        times: Option<u64>,
    ) {
        self.add_fault(
            Trigger::Matching {
                pred: Arc::new(pred),
                remaining: times,
            },
            error,
        );
    }

    /// Remove every injected fault ("restart the process").
    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    fn add_fault(&self, trigger: Trigger, error: BackendError) {
        lock(&self.faults).push(Fault {
            trigger,
            error,
            writes_seen: 0,
            crashed: false,
        });
    }

    /// Count the call and decide whether an injected fault fails it.
    fn check_faults(&self, info: &OpInfo<'_>) -> Result<()> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        let is_write = info.kind.is_write();
        if is_write {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        let mut faults = lock(&self.faults);
        let mut failure = None;
        for f in faults.iter_mut() {
            if is_write {
                f.writes_seen += 1;
            }
            let fire = match &mut f.trigger {
                Trigger::NthWrite(n) => is_write && f.writes_seen == *n,
                Trigger::CrashAfterWrites(n) => {
                    if !f.crashed && is_write && f.writes_seen > *n {
                        f.crashed = true;
                    }
                    f.crashed
                }
                Trigger::Matching { pred, remaining } => {
                    if remaining != &Some(0) && pred(info) {
                        if let Some(r) = remaining {
                            *r -= 1;
                        }
                        true
                    } else {
                        false
                    }
                }
            };
            if fire && failure.is_none() {
                failure = Some(f.error.clone());
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn log(&self, kind: OpKind, loc: Option<&ObjectLocation>, ok: bool) {
        if let Some(log) = lock(&self.log).as_mut() {
            log.push(LoggedOp {
                kind,
                loc: loc.cloned(),
                ok,
            });
        }
    }

    /// Run one call: yield first so concurrent tasks interleave as they would on a cluster,
    /// then apply faults, then the operation, then log.
    async fn call<T>(
        &self,
        kind: OpKind,
        loc: Option<&ObjectLocation>,
        op: Option<&WriteOp>,
        f: impl FnOnce(&mut State) -> Result<T>,
    ) -> Result<T> {
        tokio::task::yield_now().await;
        let info = OpInfo { kind, loc, op };
        let result = self
            .check_faults(&info)
            .and_then(|()| f(&mut lock(&self.state)));
        self.log(kind, loc, result.is_ok());
        result
    }

    fn object<'s>(state: &'s State, loc: &ObjectLocation) -> Result<&'s Object> {
        let pool = state
            .pools
            .get(&loc.pool)
            .ok_or_else(|| BackendError::NotFound(format!("pool {}", loc.pool)))?;
        pool.get(&(loc.namespace.clone(), loc.oid.clone()))
            .ok_or_else(|| BackendError::NotFound(loc.to_string()))
    }

    fn apply(
        state: &mut State,
        limits: WriteLimits,
        loc: &ObjectLocation,
        op: &WriteOp,
    ) -> Result<()> {
        let pool = state
            .pools
            .get_mut(&loc.pool)
            .ok_or_else(|| BackendError::NotFound(format!("pool {}", loc.pool)))?;
        if op.steps.is_empty() {
            return Ok(());
        }
        let what = || loc.to_string();
        if payload_len(op) > limits.max_write_size {
            return Err(BackendError::from_errno(
                -libc::EMSGSIZE,
                format!("{}: op larger than osd_max_write_size", what()),
            ));
        }
        let key = (loc.namespace.clone(), loc.oid.clone());
        let existed = pool.contains_key(&key);
        let mut obj: Option<Object> = pool.get(&key).cloned();
        let mut modified = false;
        let not_found = || BackendError::NotFound(what());
        let too_big = |end: u64| {
            if end > limits.max_object_size {
                Err(BackendError::from_errno(
                    -libc::EFBIG,
                    format!("{}: object would exceed osd_max_object_size", what()),
                ))
            } else {
                Ok(())
            }
        };
        let new_object = || Object {
            data: Vec::new(),
            xattrs: BTreeMap::new(),
            omap: BTreeMap::new(),
            mtime: UNIX_EPOCH,
        };
        for step in &op.steps {
            match step {
                WriteStep::AssertExists => {
                    obj.as_ref().ok_or_else(not_found)?;
                }
                WriteStep::Create { exclusive } => {
                    if obj.is_some() && *exclusive {
                        return Err(BackendError::Exists(what()));
                    }
                    if obj.is_none() {
                        obj = Some(new_object());
                    }
                    modified = true;
                }
                WriteStep::CmpXattr {
                    name,
                    op: cmp,
                    value,
                } => {
                    let o = obj.as_ref().ok_or_else(not_found)?;
                    let stored = o.xattrs.get(name).map(Vec::as_slice).unwrap_or(&[]);
                    // String mode compares the given value (left) against the stored one.
                    if !cmp.holds(value, stored) {
                        return Err(BackendError::Canceled(format!("{}: xattr {name}", what())));
                    }
                }
                WriteStep::OmapCmp {
                    key,
                    op: cmp,
                    value,
                } => {
                    let o = obj.as_ref().ok_or_else(not_found)?;
                    if !matches!(cmp, CmpOp::Eq | CmpOp::Lt | CmpOp::Gt) {
                        return Err(BackendError::from_errno(
                            -libc::EINVAL,
                            format!("{}: omap_cmp supports only eq, lt, gt", what()),
                        ));
                    }
                    let stored = o.omap.get(key).map(Vec::as_slice).unwrap_or(&[]);
                    if !cmp.holds(stored, value) {
                        return Err(BackendError::Canceled(format!(
                            "{}: omap key {key}",
                            what()
                        )));
                    }
                }
                WriteStep::WriteFull(data) => {
                    too_big(data.len() as u64)?;
                    obj.get_or_insert_with(new_object).data = data.clone();
                    modified = true;
                }
                WriteStep::Write { offset, data } => {
                    too_big(offset + data.len() as u64)?;
                    let o = obj.get_or_insert_with(new_object);
                    write_at(&mut o.data, *offset as usize, data);
                    modified = true;
                }
                WriteStep::Append(data) => {
                    let o = obj.get_or_insert_with(new_object);
                    too_big((o.data.len() + data.len()) as u64)?;
                    o.data.extend_from_slice(data);
                    modified = true;
                }
                WriteStep::Truncate(size) => {
                    if let Some(o) = obj.as_mut() {
                        too_big(*size)?;
                        o.data.resize(*size as usize, 0);
                        modified = true;
                    }
                }
                WriteStep::SetXattr { name, value } => {
                    obj.get_or_insert_with(new_object)
                        .xattrs
                        .insert(name.clone(), value.clone());
                    modified = true;
                }
                WriteStep::RmXattr(name) => {
                    obj.as_mut().ok_or_else(not_found)?.xattrs.remove(name);
                    modified = true;
                }
                WriteStep::OmapSet(map) => {
                    let o = obj.get_or_insert_with(new_object);
                    for (k, v) in map {
                        o.omap.insert(k.clone(), v.clone());
                    }
                    modified = true;
                }
                WriteStep::OmapRmKeys(keys) => {
                    let o = obj.as_mut().ok_or_else(not_found)?;
                    for k in keys {
                        o.omap.remove(k);
                    }
                    modified = true;
                }
                WriteStep::OmapClear => {
                    obj.as_mut().ok_or_else(not_found)?.omap.clear();
                    modified = true;
                }
                WriteStep::Remove => {
                    obj.take().ok_or_else(not_found)?;
                    modified = true;
                }
            }
        }
        if !modified {
            return Ok(());
        }
        match obj {
            Some(mut o) => {
                o.mtime = whole_seconds(op.mtime.unwrap_or_else(SystemTime::now));
                pool.insert(key, o);
            }
            None if existed => {
                pool.remove(&key);
            }
            None => {}
        }
        Ok(())
    }
}

fn write_at(buf: &mut Vec<u8>, offset: usize, data: &[u8]) {
    let end = offset + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[offset..end].copy_from_slice(data);
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn write_op(&self, loc: &ObjectLocation, op: WriteOp) -> Result<()> {
        let limits = *lock(&self.limits);
        self.call(OpKind::Write, Some(loc), Some(&op), |s| {
            Self::apply(s, limits, loc, &op)
        })
        .await
    }

    async fn read(
        &self,
        loc: &ObjectLocation,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ReadResult> {
        self.call(OpKind::Read, Some(loc), None, |s| {
            let o = Self::object(s, loc)?;
            let size = o.data.len() as u64;
            let start = offset.min(size) as usize;
            let end = match len {
                Some(l) => offset.saturating_add(l).min(size) as usize,
                None => size as usize,
            };
            Ok(ReadResult {
                size,
                mtime: o.mtime,
                data: o.data[start..end.max(start)].to_vec(),
                xattrs: o.xattrs.clone(),
            })
        })
        .await
    }

    async fn stat(&self, loc: &ObjectLocation) -> Result<ObjectStat> {
        self.call(OpKind::Stat, Some(loc), None, |s| {
            let o = Self::object(s, loc)?;
            Ok(ObjectStat {
                size: o.data.len() as u64,
                mtime: o.mtime,
            })
        })
        .await
    }

    async fn get_xattrs(&self, loc: &ObjectLocation) -> Result<BTreeMap<String, Vec<u8>>> {
        self.call(OpKind::GetXattrs, Some(loc), None, |s| {
            Ok(Self::object(s, loc)?.xattrs.clone())
        })
        .await
    }

    async fn omap_get_vals(
        &self,
        loc: &ObjectLocation,
        start_after: &str,
        prefix: &str,
        max: u64,
    ) -> Result<OmapPage> {
        self.call(OpKind::OmapGetVals, Some(loc), None, |s| {
            let o = Self::object(s, loc)?;
            let mut entries = BTreeMap::new();
            let mut more = false;
            let range = o
                .omap
                .range::<str, _>((
                    std::ops::Bound::Excluded(start_after),
                    std::ops::Bound::Unbounded,
                ))
                .skip_while(|(k, _)| k.as_str() < prefix)
                .take_while(|(k, _)| k.starts_with(prefix));
            for (k, v) in range {
                if entries.len() as u64 >= max {
                    more = true;
                    break;
                }
                entries.insert(k.clone(), v.clone());
            }
            Ok(OmapPage { entries, more })
        })
        .await
    }

    async fn omap_get_vals_by_keys(
        &self,
        loc: &ObjectLocation,
        keys: &[String],
    ) -> Result<BTreeMap<String, Vec<u8>>> {
        self.call(OpKind::OmapGetValsByKeys, Some(loc), None, |s| {
            let o = Self::object(s, loc)?;
            Ok(keys
                .iter()
                .filter_map(|k| o.omap.get(k).map(|v| (k.clone(), v.clone())))
                .collect())
        })
        .await
    }

    async fn remove(&self, loc: &ObjectLocation) -> Result<()> {
        let limits = *lock(&self.limits);
        self.call(OpKind::Remove, Some(loc), None, |s| {
            Self::apply(s, limits, loc, &WriteOp::new().remove())
        })
        .await
    }

    async fn list_objects(
        &self,
        pool: &str,
        filter: &NamespaceFilter,
    ) -> Result<Vec<ListedObject>> {
        self.call(OpKind::ListObjects, None, None, |s| {
            let objects = s
                .pools
                .get(pool)
                .ok_or_else(|| BackendError::NotFound(format!("pool {pool}")))?;
            let mut out: Vec<ListedObject> = objects
                .keys()
                .filter(|(ns, _)| match filter {
                    NamespaceFilter::All => true,
                    NamespaceFilter::Only(want) => ns == want,
                })
                .map(|(ns, oid)| ListedObject {
                    namespace: ns.clone(),
                    oid: oid.clone(),
                })
                .collect();
            out.sort_by_key(|o| list_hash(&o.namespace, &o.oid));
            Ok(out)
        })
        .await
    }

    async fn list_pools(&self) -> Result<Vec<String>> {
        self.call(OpKind::ListPools, None, None, |s| {
            Ok(s.pools.keys().cloned().collect())
        })
        .await
    }

    fn write_limits(&self) -> WriteLimits {
        *lock(&self.limits)
    }
}

/// Per-namespace object counts, for test assertions.
impl MemoryBackend {
    pub fn object_count(&self, pool: &str, namespace: &str) -> usize {
        lock(&self.state)
            .pools
            .get(pool)
            .map(|p| p.keys().filter(|(ns, _)| ns == namespace).count())
            .unwrap_or(0)
    }

    /// Every namespace holding at least one object in `pool`, with its object count.
    pub fn namespaces(&self, pool: &str) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        if let Some(p) = lock(&self.state).pools.get(pool) {
            for (ns, _) in p.keys() {
                *out.entry(ns.clone()).or_insert(0) += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(oid: &str) -> ObjectLocation {
        ObjectLocation::new("p", "ns", oid)
    }

    #[tokio::test]
    async fn failed_guard_writes_nothing_and_missing_key_compares_empty() {
        let b = MemoryBackend::with_pools(&["p"]);
        b.write_op(&loc("o"), WriteOp::new().omap_set([("k", b"1".to_vec())]))
            .await
            .unwrap();
        // Missing key "x" compares as "", so Eq "" holds and the write happens.
        b.write_op(
            &loc("o"),
            WriteOp::new()
                .omap_cmp("x", CmpOp::Eq, Vec::new())
                .set_xattr("a", b"1".to_vec()),
        )
        .await
        .unwrap();
        let err = b
            .write_op(
                &loc("o"),
                WriteOp::new().set_xattr("b", b"1".to_vec()).omap_cmp(
                    "k",
                    CmpOp::Eq,
                    b"2".to_vec(),
                ),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, BackendError::Canceled(_)), "{err:?}");
        let x = b.get_xattrs(&loc("o")).await.unwrap();
        assert!(x.contains_key("a") && !x.contains_key("b"), "{x:?}");
    }

    #[tokio::test]
    async fn cmp_direction_matches_the_osd() {
        let b = MemoryBackend::with_pools(&["p"]);
        b.write_op(
            &loc("o"),
            WriteOp::new()
                .omap_set([("k", b"5".to_vec())])
                .set_xattr("x", b"5".to_vec()),
        )
        .await
        .unwrap();
        // omap: stored(5) < given(6) holds.
        b.write_op(
            &loc("o"),
            WriteOp::new().omap_cmp("k", CmpOp::Lt, b"6".to_vec()),
        )
        .await
        .unwrap();
        // xattr: given(6) > stored(5) holds.
        b.write_op(
            &loc("o"),
            WriteOp::new().cmp_xattr("x", CmpOp::Gt, b"6".to_vec()),
        )
        .await
        .unwrap();
        let e = b
            .write_op(
                &loc("o"),
                WriteOp::new().omap_cmp("k", CmpOp::Gte, b"5".to_vec()),
            )
            .await
            .unwrap_err();
        assert_eq!(e.errno(), -libc::EINVAL, "{e:?}");
    }

    #[tokio::test]
    async fn nth_write_fault_and_crash() {
        let b = MemoryBackend::with_pools(&["p"]);
        b.fail_nth_write(2, BackendError::Timeout("x".into()));
        b.write_op(&loc("a"), WriteOp::new().write_full(b"1".to_vec()))
            .await
            .unwrap();
        assert!(
            b.write_op(&loc("b"), WriteOp::new().write_full(b"1".to_vec()))
                .await
                .is_err()
        );
        b.write_op(&loc("c"), WriteOp::new().write_full(b"1".to_vec()))
            .await
            .unwrap();
        b.clear_faults();
        b.crash_after_writes(1);
        b.write_op(&loc("d"), WriteOp::new().write_full(b"1".to_vec()))
            .await
            .unwrap();
        assert!(b.remove(&loc("a")).await.is_err());
        assert!(
            b.stat(&loc("a")).await.is_err(),
            "reads fail after a crash too"
        );
        b.clear_faults();
        assert!(b.stat(&loc("a")).await.is_ok());
        assert!(b.stat(&loc("b")).await.is_err());
    }
}
