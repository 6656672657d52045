//! The C API of librados, from the `ceph` crate's raw FFI module, plus the few declarations
//! that crate gets wrong.

pub use ceph::rados::*;

unsafe extern "C" {
    /// `int rados_nobjects_list_next(rados_list_ctx_t, const char **entry, const char **key,
    /// const char **nspace)`: the `ceph` crate declares one indirection too many.
    #[link_name = "rados_nobjects_list_next"]
    pub fn nobjects_list_next(
        ctx: rados_list_ctx_t,
        entry: *mut *const libc::c_char,
        key: *mut *const libc::c_char,
        nspace: *mut *const libc::c_char,
    ) -> libc::c_int;
}

/// `LIBRADOS_ALL_NSPACES`: the namespace value that makes a listing cover all namespaces.
pub const ALL_NSPACES: &[u8] = b"\x01\0";
