//! rbox-core: the storage core of rbox-operator.
//!
//! - [`rados`]: a small safe wrapper over librados' C API (through the `ceph` crate's raw FFI).
//! - [`backend`]: the object-store contract, with librados and in-memory implementations.
//! - [`format`]: librmb's on-RADOS format, byte for byte (GUIDs, xattrs, `rbox_cfg`, …).

pub mod backend;
pub mod format;
pub mod rados;
