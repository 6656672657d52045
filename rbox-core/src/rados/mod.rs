//! A small safe wrapper over librados' C API.
//!
//! The `ceph` crate's safe layer has memory bugs (non-NUL-terminated buffers read as C
//! strings, double shutdown, io contexts not bound to their cluster, lossy xattrs), so we use
//! only its raw FFI declarations and keep every `unsafe` block here, next to the reason it
//! is sound. What the rest of the workspace gets:
//! - [`Cluster`]: `Send + Sync`, cheap to clone, connect with a deadline, `mon_command`.
//! - [`Pool`]: an io context that holds its cluster alive, with async compound write/read
//!   ops (aio completions bridged to tokio), byte-exact xattrs and omap, listing.

mod aio;
mod cluster;
pub mod ffi;
mod mon;
mod pool;
mod read_op;
mod write_op;

use std::ffi::CString;

pub use crate::backend::BackendError as RadosError;
pub use cluster::{Cluster, ConnectOptions, Secret, wait_for_shutdowns};
pub use mon::MonReply;
pub use pool::Pool;

pub type RadosResult<T> = Result<T, RadosError>;

/// A C string for librados, or a clear error when the Rust string holds a NUL byte.
pub(crate) fn cstring(s: &str) -> RadosResult<CString> {
    CString::new(s).map_err(|_| RadosError::Other {
        errno: -libc::EINVAL,
        context: format!("name contains a NUL byte: {:?}", s.replace('\0', "\\0")),
    })
}
