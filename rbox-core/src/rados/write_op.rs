//! Translating a [`WriteOp`] into a librados compound write op.

use std::ffi::CString;

use super::ffi;
use super::{RadosResult, cstring};
use crate::backend::{WriteOp, WriteStep};

/// A C write op plus everything it points into. librados copies data, names and omap
/// entries when they are added, but `omap_cmp` keeps a pointer to its `prval` slot until
/// completion, so those slots live here, boxed.
pub(crate) struct CWriteOp {
    pub(crate) raw: ffi::rados_write_op_t,
    // Boxed on purpose: librados keeps these addresses, and a Vec may move its elements.
    #[allow(clippy::vec_box)]
    pub(crate) cmp_rvals: Vec<Box<libc::c_int>>,
    pub(crate) mtime: Option<libc::time_t>,
}

// SAFETY: the op handle is used by one thread at a time (built, submitted, then released).
unsafe impl Send for CWriteOp {}

impl Drop for CWriteOp {
    fn drop(&mut self) {
        // SAFETY: raw came from rados_create_write_op and is released once, here.
        unsafe { ffi::rados_release_write_op(self.raw) }
    }
}

fn bytes_ptr(b: &[u8]) -> *const libc::c_char {
    b.as_ptr().cast()
}

impl CWriteOp {
    pub(crate) fn build(op: &WriteOp) -> RadosResult<CWriteOp> {
        // Convert every string first so a bad name fails before anything is allocated in C.
        let mut c = CWriteOp {
            // SAFETY: plain allocation.
            raw: unsafe { ffi::rados_create_write_op() },
            cmp_rvals: Vec::new(),
            mtime: op.mtime.map(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as libc::time_t)
                    .unwrap_or(0)
            }),
        };
        for step in &op.steps {
            c.add(step)?;
        }
        Ok(c)
    }

    fn add(&mut self, step: &WriteStep) -> RadosResult<()> {
        let raw = self.raw;
        // SAFETY (all calls below): raw is a live write op; every pointer is valid for the
        // duration of the call, and librados copies what it needs except `prval`, which is
        // boxed in self.cmp_rvals and outlives the op.
        unsafe {
            match step {
                WriteStep::AssertExists => ffi::rados_write_op_assert_exists(raw),
                WriteStep::Create { exclusive } => {
                    ffi::rados_write_op_create(raw, i32::from(*exclusive), std::ptr::null())
                }
                WriteStep::CmpXattr { name, op, value } => {
                    let n = cstring(name)?;
                    ffi::rados_write_op_cmpxattr(
                        raw,
                        n.as_ptr(),
                        op.code(),
                        bytes_ptr(value),
                        value.len(),
                    )
                }
                WriteStep::OmapCmp { key, op, value } => {
                    let k = cstring(key)?;
                    let mut slot = Box::new(0 as libc::c_int);
                    ffi::rados_write_op_omap_cmp(
                        raw,
                        k.as_ptr(),
                        op.code(),
                        bytes_ptr(value),
                        value.len(),
                        &mut *slot,
                    );
                    self.cmp_rvals.push(slot);
                }
                WriteStep::WriteFull(data) => {
                    ffi::rados_write_op_write_full(raw, bytes_ptr(data), data.len())
                }
                WriteStep::Write { offset, data } => {
                    ffi::rados_write_op_write(raw, bytes_ptr(data), data.len(), *offset)
                }
                WriteStep::Append(data) => {
                    ffi::rados_write_op_append(raw, bytes_ptr(data), data.len())
                }
                WriteStep::Truncate(size) => ffi::rados_write_op_truncate(raw, *size),
                WriteStep::SetXattr { name, value } => {
                    let n = cstring(name)?;
                    ffi::rados_write_op_setxattr(raw, n.as_ptr(), bytes_ptr(value), value.len())
                }
                WriteStep::RmXattr(name) => {
                    let n = cstring(name)?;
                    ffi::rados_write_op_rmxattr(raw, n.as_ptr())
                }
                WriteStep::OmapSet(map) => {
                    if map.is_empty() {
                        return Ok(());
                    }
                    let keys: Vec<CString> =
                        map.keys().map(|k| cstring(k)).collect::<RadosResult<_>>()?;
                    let kptrs: Vec<*const libc::c_char> = keys.iter().map(|k| k.as_ptr()).collect();
                    let vptrs: Vec<*const libc::c_char> =
                        map.values().map(|v| bytes_ptr(v)).collect();
                    let lens: Vec<usize> = map.values().map(|v| v.len()).collect();
                    ffi::rados_write_op_omap_set(
                        raw,
                        kptrs.as_ptr(),
                        vptrs.as_ptr(),
                        lens.as_ptr(),
                        keys.len(),
                    )
                }
                WriteStep::OmapRmKeys(keys) => {
                    if keys.is_empty() {
                        return Ok(());
                    }
                    let keys: Vec<CString> = keys
                        .iter()
                        .map(|k| cstring(k))
                        .collect::<RadosResult<_>>()?;
                    let kptrs: Vec<*const libc::c_char> = keys.iter().map(|k| k.as_ptr()).collect();
                    ffi::rados_write_op_omap_rm_keys(raw, kptrs.as_ptr(), keys.len())
                }
                WriteStep::OmapClear => ffi::rados_write_op_omap_clear(raw),
                WriteStep::Remove => ffi::rados_write_op_remove(raw),
            }
        }
        Ok(())
    }
}
