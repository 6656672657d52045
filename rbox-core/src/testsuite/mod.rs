//! One behaviour suite for every [`Backend`]: raw RADOS semantics and store behaviours.
//!
//! The in-memory backend runs it in plain `cargo test` (one test per case); the librados
//! backend runs the very same cases against a real cluster:
//!
//! ```ignore
//! rbox_core::testsuite::run_all(backend, "mail_pool", "index_pool").await;
//! ```
//!
//! Both pools must exist. Every case works in its own namespaces (`suite-<run>-<case>-…`)
//! and its own `rbox_cfg` object name, so runs never see each other's data and nothing
//! outside those names is touched; objects are left behind for inspection (delete the
//! pools afterwards).

mod backend_cases;
mod external_cases;
mod store_cases;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use crate::backend::{Backend, ObjectLocation};
use crate::format::cfg::RboxConfig;
use crate::format::guid::Guid128;
use crate::store::{Mailspace, Store, StoreConfig};

/// What a case gets: the backend, the two pools, and names unique to this run and case.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub backend: Arc<dyn Backend>,
    pub pool: String,
    pub index_pool: String,
    pub run: String,
    pub case: &'static str,
}

impl Ctx {
    /// A namespace private to this run and case.
    pub fn ns(&self, suffix: &str) -> String {
        format!("suite-{}-{}-{suffix}", self.run, self.case)
    }

    pub fn loc(&self, ns: &str, oid: &str) -> ObjectLocation {
        ObjectLocation::new(self.pool.clone(), ns, oid)
    }

    /// Store settings for this case: own config object, no grace period for fsck.
    pub fn config(&self) -> StoreConfig {
        let mut c = StoreConfig::new(self.pool.clone(), self.index_pool.clone());
        c.cfg_object = format!("rbox_cfg.suite.{}.{}", self.run, self.case);
        c.fsck_grace = Duration::ZERO;
        c
    }

    pub fn store(&self) -> Store {
        self.store_with(RboxConfig::default())
    }

    pub fn store_with(&self, cfg: RboxConfig) -> Store {
        Store::with_cfg(self.backend.clone(), self.config(), cfg)
    }

    pub fn space(&self, store: &Store, suffix: &str) -> Mailspace {
        store
            .namespace(&self.ns(suffix))
            .expect("suite namespaces are valid")
    }
}

pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One behaviour.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub name: &'static str,
    pub run: fn(Ctx) -> CaseFuture,
}

/// The outcome of [`run_all`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SuiteReport {
    pub run: String,
    pub passed: Vec<&'static str>,
}

fn run_id() -> String {
    // Nanosecond counter + seconds of a fresh GUID: unique per process start.
    Guid128::generate().to_hex()[..16].to_string()
}

fn ctx(
    backend: Arc<dyn Backend>,
    pool: &str,
    index_pool: &str,
    run: &str,
    case: &'static str,
) -> Ctx {
    Ctx {
        backend,
        pool: pool.to_string(),
        index_pool: index_pool.to_string(),
        run: run.to_string(),
        case,
    }
}

/// Run one case by name. Panics (with the case's own message) if it fails.
pub async fn run_case(backend: Arc<dyn Backend>, pool: &str, index_pool: &str, name: &str) {
    let case = cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no behaviour case named {name:?}"));
    (case.run)(ctx(backend, pool, index_pool, &run_id(), case.name)).await;
}

/// Run every case; panics at the end listing the cases that failed.
pub async fn run_all(backend: Arc<dyn Backend>, pool: &str, index_pool: &str) -> SuiteReport {
    let run = run_id();
    let mut report = SuiteReport {
        run: run.clone(),
        passed: Vec::new(),
    };
    let mut failed = Vec::new();
    for case in cases() {
        let c = ctx(backend.clone(), pool, index_pool, &run, case.name);
        match AssertUnwindSafe((case.run)(c)).catch_unwind().await {
            Ok(()) => report.passed.push(case.name),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                failed.push(format!("{}: {msg}", case.name));
            }
        }
    }
    if !failed.is_empty() {
        panic!(
            "behaviour suite (run {run}): {} of {} cases failed:\n  {}",
            failed.len(),
            failed.len() + report.passed.len(),
            failed.join("\n  ")
        );
    }
    report
}

macro_rules! suite {
    ($($group:ident :: $name:ident),* $(,)?) => {
        /// Every behaviour case, in run order.
        pub fn cases() -> Vec<Case> {
            vec![$(Case { name: stringify!($name), run: |c| Box::pin($group::$name(c)) }),*]
        }

        #[cfg(test)]
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::tests::on_memory(stringify!($name)).await;
                }
            )*
        }
    };
}

suite!(
    backend_cases::compound_op_is_atomic,
    backend_cases::cmp_guards_follow_the_osd,
    backend_cases::missing_object_semantics,
    backend_cases::omap_paging_with_prefix,
    backend_cases::namespaces_are_isolated,
    backend_cases::values_are_byte_exact,
    backend_cases::read_ranges_and_large_objects,
    backend_cases::offset_writes_append_truncate,
    backend_cases::mtime_is_stamped,
    backend_cases::unknown_pool_is_not_found,
    store_cases::save_writes_upstream_bytes,
    store_cases::configured_flags_and_keywords_are_stored,
    store_cases::chunked_write_and_size_refusal,
    store_cases::mailbox_lifecycle,
    store_cases::list_mails_is_paged_in_uid_order,
    store_cases::copy_move_expunge,
    store_cases::flags_and_keywords_update_index_and_object,
    store_cases::concurrent_saves_get_unique_uids,
    store_cases::user_mapping,
    store_cases::cfg_object_create_update,
    store_cases::zero_byte_object_reads_as_expunged,
    store_cases::fsck_finds_and_repairs,
    store_cases::fsck_rewrites_garbage_xattrs_from_index,
    store_cases::build_index_from_librmb_objects,
    store_cases::create_mailbox_refused_beside_unindexed_plugin_mail,
    store_cases::index_staleness_sees_other_writers,
    store_cases::fsck_objects_truth_follows_force_resync,
    store_cases::fsck_index_truth_rewrites_objects,
    store_cases::canary_round_trip,
    store_cases::recovery_index_is_appended,
    store_cases::scan_and_query,
    store_cases::set_attribute,
    external_cases::external_save_writes_upstream_bytes_and_mirrors,
    external_cases::external_flags_and_expunge,
    external_cases::external_save_refuses_oversize,
    external_cases::external_mirror_queue_applies_in_order,
    external_cases::external_copy_reads_source_in_rados,
    external_cases::external_reassigned_uid_follows_dovecot,
    store_cases::write_behind_indexes_after_flush,
    store_cases::every_xattr_key_is_stored_byte_exact,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;

    pub(super) async fn on_memory(name: &str) {
        let backend = Arc::new(MemoryBackend::with_pools(&["mail", "index"]));
        run_case(backend, "mail", "index", name).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn run_all_passes_on_memory_and_names_every_case() {
        let backend = Arc::new(MemoryBackend::with_pools(&["mail", "index"]));
        let report = run_all(backend, "mail", "index").await;
        assert_eq!(report.passed.len(), cases().len());
        assert!(report.passed.len() >= 27);
    }

    #[tokio::test]
    #[should_panic(expected = "no behaviour case named")]
    async fn unknown_case_name_panics() {
        on_memory("nope").await;
    }
}
