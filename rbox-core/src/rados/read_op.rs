//! Compound read ops: stat + read + xattrs, and omap reads.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};

use super::ffi;

/// A read op with its output slots. Every pointer handed to librados points into boxed
/// fields of this struct, which the aio layer keeps alive until completion.
pub(crate) struct CReadOp {
    pub(crate) raw: ffi::rados_read_op_t,
    pub(crate) out: Box<ReadSlots>,
    /// Keys for `omap_get_vals_by_keys` / start-after strings, kept alive until completion.
    _strings: Vec<CString>,
}

#[derive(Default)]
pub(crate) struct ReadSlots {
    pub(crate) size: u64,
    pub(crate) mtime: libc::time_t,
    pub(crate) stat_rval: libc::c_int,
    pub(crate) buf: Vec<u8>,
    pub(crate) bytes_read: usize,
    pub(crate) read_rval: libc::c_int,
    pub(crate) xattr_iter: Option<ffi::rados_xattrs_iter_t>,
    pub(crate) xattr_rval: libc::c_int,
    pub(crate) omap_iter: Option<ffi::rados_omap_iter_t>,
    pub(crate) omap_rval: libc::c_int,
}

// SAFETY: the op and its iterators are used by one thread at a time.
unsafe impl Send for CReadOp {}

impl Drop for CReadOp {
    fn drop(&mut self) {
        // SAFETY: librados allocates both iterators when the op is *built* (not when it
        // completes), so whenever they are set they must be freed, exactly once, here.
        unsafe {
            if let Some(it) = self.out.xattr_iter.take() {
                ffi::rados_getxattrs_end(it);
            }
            if let Some(it) = self.out.omap_iter.take() {
                ffi::rados_omap_get_end(it);
            }
            ffi::rados_release_read_op(self.raw);
        }
    }
}

impl CReadOp {
    pub(crate) fn new() -> Self {
        // SAFETY: plain allocation.
        CReadOp {
            raw: unsafe { ffi::rados_create_read_op() },
            out: Box::default(),
            _strings: Vec::new(),
        }
    }

    pub(crate) fn stat(&mut self) {
        let o = &mut *self.out;
        // SAFETY: output slots live in the box until the op is released.
        unsafe { ffi::rados_read_op_stat(self.raw, &mut o.size, &mut o.mtime, &mut o.stat_rval) }
    }

    pub(crate) fn read(&mut self, offset: u64, len: usize) {
        let o = &mut *self.out;
        o.buf = vec![0u8; len];
        // SAFETY: buf has len writable bytes and is not resized before completion.
        unsafe {
            ffi::rados_read_op_read(
                self.raw,
                offset,
                len,
                o.buf.as_mut_ptr().cast(),
                &mut o.bytes_read,
                &mut o.read_rval,
            )
        }
    }

    pub(crate) fn getxattrs(&mut self) {
        let o = &mut *self.out;
        let mut it: ffi::rados_xattrs_iter_t = std::ptr::null_mut();
        // SAFETY: it is set synchronously; rval slot is boxed.
        unsafe { ffi::rados_read_op_getxattrs(self.raw, &mut it, &mut o.xattr_rval) };
        if !it.is_null() {
            o.xattr_iter = Some(it);
        }
    }

    pub(crate) fn omap_get_vals(&mut self, start_after: CString, prefix: CString, max: u64) {
        let o = &mut *self.out;
        let mut it: ffi::rados_omap_iter_t = std::ptr::null_mut();
        // SAFETY: strings are kept in self._strings until release; rval slot is boxed.
        unsafe {
            ffi::rados_read_op_omap_get_vals(
                self.raw,
                start_after.as_ptr(),
                prefix.as_ptr(),
                max,
                &mut it,
                &mut o.omap_rval,
            )
        };
        self._strings.push(start_after);
        self._strings.push(prefix);
        if !it.is_null() {
            o.omap_iter = Some(it);
        }
    }

    pub(crate) fn omap_get_vals_by_keys(&mut self, keys: Vec<CString>) {
        let o = &mut *self.out;
        let ptrs: Vec<*const libc::c_char> = keys.iter().map(|k| k.as_ptr()).collect();
        let mut it: ffi::rados_omap_iter_t = std::ptr::null_mut();
        // SAFETY: librados copies the key set while building the op; rval slot is boxed.
        unsafe {
            ffi::rados_read_op_omap_get_vals_by_keys(
                self.raw,
                ptrs.as_ptr(),
                ptrs.len(),
                &mut it,
                &mut o.omap_rval,
            )
        };
        self._strings.extend(keys);
        if !it.is_null() {
            o.omap_iter = Some(it);
        }
    }

    /// Drain the xattr iterator (after completion).
    pub(crate) fn take_xattrs(&mut self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let Some(it) = self.out.xattr_iter else {
            return out;
        };
        loop {
            let mut name: *const libc::c_char = std::ptr::null();
            let mut val: *const libc::c_char = std::ptr::null();
            let mut len: usize = 0;
            // SAFETY: it is live until Drop; librados returns pointers valid until the next call.
            let rc = unsafe { ffi::rados_getxattrs_next(it, &mut name, &mut val, &mut len) };
            if rc < 0 || name.is_null() {
                break;
            }
            // SAFETY: name is NUL-terminated; val points at len bytes (or is null when len == 0).
            let (k, v) = unsafe {
                let k = CStr::from_ptr(name).to_string_lossy().into_owned();
                let v = if len == 0 || val.is_null() {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(val.cast::<u8>(), len).to_vec()
                };
                (k, v)
            };
            out.insert(k, v);
        }
        out
    }

    /// Drain the omap iterator (after completion).
    pub(crate) fn take_omap(&mut self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let Some(it) = self.out.omap_iter else {
            return out;
        };
        loop {
            let mut key: *mut libc::c_char = std::ptr::null_mut();
            let mut val: *mut libc::c_char = std::ptr::null_mut();
            let mut len: usize = 0;
            // SAFETY: as for xattrs.
            let rc = unsafe { ffi::rados_omap_get_next(it, &mut key, &mut val, &mut len) };
            if rc < 0 || key.is_null() {
                break;
            }
            // SAFETY: key is NUL-terminated; val points at len bytes.
            let (k, v) = unsafe {
                let k = CStr::from_ptr(key).to_string_lossy().into_owned();
                let v = if len == 0 || val.is_null() {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(val.cast::<u8>(), len).to_vec()
                };
                (k, v)
            };
            out.insert(k, v);
        }
        out
    }
}
