//! The Dovecot mail storage module `rbox` (`lib20_storage_rbox_plugin.so`).
//!
//! Two layers: `c/` holds the Dovecot side (vtables, Dovecot macros, its index and
//! pools), compiled by `build.rs`; this crate holds everything Ceph, on rbox-core, behind
//! the C ABI declared in `c/rbox-ffi.h` and implemented in [`ffi`]. Dovecot loads the
//! module by name: the entry points below are the only symbols it looks up.

pub mod abi;
pub mod ffi;
mod runtime;
mod settings;
mod status;

use std::ffi::c_void;

unsafe extern "C" {
    fn rbox_c_plugin_init(module: *mut c_void);
    fn rbox_c_plugin_deinit();
}

/// A `const char *` Dovecot reads by symbol (`<module>_version`).
#[repr(transparent)]
#[derive(Debug)]
pub struct AbiVersion(*const u8);
// SAFETY: points at a 'static, immutable, NUL-terminated string.
unsafe impl Sync for AbiVersion {}

/// Dovecot refuses a module built for another ABI (`DOVECOT_ABI_VERSION` from the
/// headers this was compiled against, read by `build.rs`).
#[unsafe(no_mangle)]
pub static storage_rbox_plugin_version: AbiVersion =
    AbiVersion(concat!(env!("RBOX_DOVECOT_ABI_VERSION"), "\0").as_ptr());

/// Module init: registers the `rbox` mail storage class.
///
/// # Safety
/// Called by Dovecot's module loader with its module handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn storage_rbox_plugin_init(module: *mut c_void) {
    // SAFETY: the C layer only stores the pointer and registers static structs.
    unsafe { rbox_c_plugin_init(module) }
}

/// Module deinit: unregisters the storage class and waits (bounded) for queued omap
/// mirror writes. The Ceph connection stays until exit (librados' own threads must not be
/// torn down under a running ioloop).
///
/// # Safety
/// Called by Dovecot's module loader.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn storage_rbox_plugin_deinit() {
    // SAFETY: see init.
    unsafe { rbox_c_plugin_deinit() }
    let _ = std::panic::catch_unwind(runtime::flush_mirrors);
}
