//! rbox-core: the storage core of rbox-operator.
//!
//! - [`rados`]: a small safe wrapper over librados' C API (through the `ceph` crate's raw FFI).
//! - [`backend`]: the object-store contract, with librados and in-memory implementations.
//! - [`format`]: librmb's on-RADOS format, byte for byte (GUIDs, xattrs, `rbox_cfg`, …).
//! - [`index`]: the pure-RADOS omap index (mailbox list, UID → mail record).
//! - [`store`]: the async API — save, read, copy, move, expunge, flags, mailboxes, users,
//!   `rbox_cfg`, fsck/repair, index building, canary.
//! - `cli` (feature `cli`, default): the `rbox` tool.
//! - `testsuite` (feature `testsuite`): one behaviour suite for every backend.

pub mod backend;
#[cfg(feature = "cli")]
pub mod cli;
pub mod error;
pub mod format;
pub mod index;
pub mod rados;
pub mod store;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

pub use error::{Result, StoreError};
pub use store::{Mailspace, Store, StoreConfig};
