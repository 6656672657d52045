//! Issue 8, faults: three ways a namespace goes wrong on the real micro Ceph, each found by
//! `rbox fsck` (exit 3, the finding's kind in `--json`), fixed by `rbox fsck --repair`, clean
//! on a second run (exit 0) — and no mail lost: every mail that had a body before is still
//! listed by `rbox ls` and `rbox get` returns its exact bytes.
//!
//! (a) a save interrupted between body and index (the index becomes unreachable right after
//!     the body write — a real `Store::save` that stops there), plus a zero-byte leftover;
//! (b) an index entry whose object vanished (`rados rm`);
//! (c) garbage xattrs (`rados setxattr`: a non-numeric `R`, a bad flags byte, an `M` that is
//!     no GUID, a negative `Z`) on indexed mails: rewritten from the index record, byte-exact.
//!
//! Own pools (random suffix), deleted at the end; each scenario in its own namespace.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use rbox_core::backend::librados::LibradosBackend;
use rbox_core::backend::{
    Backend, BackendError, ListedObject, NamespaceFilter, ObjectLocation, ObjectStat, OmapPage,
    ReadResult, WriteLimits, WriteOp,
};
use rbox_core::format::flags::MailFlags;
use rbox_core::rados::Cluster;
use rbox_core::store::{SaveRequest, SavedMail, Store, StoreConfig};
use rbox_core::{Mailspace, StoreError};
use serde_json::Value;

use common::{Rbox, connect, create_pool, delete_pool, rados, tag};

/// A librados backend whose index pool becomes unreachable once `armed` and a mail-pool
/// write has succeeded: the state a client dying (or partitioned) between the body write
/// and the index insert leaves behind.
#[derive(Debug)]
struct StopAfterBody {
    inner: Arc<dyn Backend>,
    mail_pool: String,
    armed: AtomicBool,
    cut: AtomicBool,
}

impl StopAfterBody {
    fn check(&self, loc_pool: &str) -> Result<(), BackendError> {
        if self.cut.load(Ordering::SeqCst) && loc_pool != self.mail_pool {
            return Err(BackendError::Connection(
                "simulated: index pool unreachable after the body write".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for StopAfterBody {
    async fn write_op(&self, loc: &ObjectLocation, op: WriteOp) -> Result<(), BackendError> {
        self.check(&loc.pool)?;
        self.inner.write_op(loc, op).await?;
        if loc.pool == self.mail_pool && self.armed.load(Ordering::SeqCst) {
            self.cut.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
    async fn read(
        &self,
        loc: &ObjectLocation,
        offset: u64,
        len: Option<u64>,
    ) -> Result<ReadResult, BackendError> {
        self.check(&loc.pool)?;
        self.inner.read(loc, offset, len).await
    }
    async fn stat(&self, loc: &ObjectLocation) -> Result<ObjectStat, BackendError> {
        self.check(&loc.pool)?;
        self.inner.stat(loc).await
    }
    async fn get_xattrs(
        &self,
        loc: &ObjectLocation,
    ) -> Result<BTreeMap<String, Vec<u8>>, BackendError> {
        self.check(&loc.pool)?;
        self.inner.get_xattrs(loc).await
    }
    async fn omap_get_vals(
        &self,
        loc: &ObjectLocation,
        start_after: &str,
        prefix: &str,
        max: u64,
    ) -> Result<OmapPage, BackendError> {
        self.check(&loc.pool)?;
        self.inner
            .omap_get_vals(loc, start_after, prefix, max)
            .await
    }
    async fn omap_get_vals_by_keys(
        &self,
        loc: &ObjectLocation,
        keys: &[String],
    ) -> Result<BTreeMap<String, Vec<u8>>, BackendError> {
        self.check(&loc.pool)?;
        self.inner.omap_get_vals_by_keys(loc, keys).await
    }
    async fn remove(&self, loc: &ObjectLocation) -> Result<(), BackendError> {
        self.check(&loc.pool)?;
        self.inner.remove(loc).await
    }
    async fn list_objects(
        &self,
        pool: &str,
        filter: &NamespaceFilter,
    ) -> Result<Vec<ListedObject>, BackendError> {
        self.check(pool)?;
        self.inner.list_objects(pool, filter).await
    }
    async fn list_pools(&self) -> Result<Vec<String>, BackendError> {
        self.inner.list_pools().await
    }
    fn write_limits(&self) -> WriteLimits {
        self.inner.write_limits()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local environment (make test)"]
async fn fsck_finds_and_repairs_each_fault_without_losing_mail() {
    let cluster = connect().await;
    let tag = tag();
    let (mail, index) = (format!("faults-mail-{tag}"), format!("faults-index-{tag}"));
    create_pool(&cluster, &mail).await;
    create_pool(&cluster, &index).await;
    let result = tokio::spawn({
        let (cluster, mail, index) = (cluster.clone(), mail.clone(), index.clone());
        async move { scenarios(cluster, mail, index).await }
    })
    .await;
    delete_pool(&cluster, &mail).await;
    delete_pool(&cluster, &index).await;
    result.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
}

/// The mails of one namespace that have a body: oid → exact bytes.
type Ledger = BTreeMap<String, Vec<u8>>;

fn body(ns: &str, i: usize) -> Vec<u8> {
    format!("From: f@faults.example\r\nSubject: {ns} {i}\r\n\r\nbody {i} \x01\x7f end\r\n")
        .into_bytes()
}

async fn save(sp: &Mailspace, ledger: &mut Ledger, i: usize, flags: MailFlags) -> SavedMail {
    let data = body(sp.namespace(), i);
    let mut req = SaveRequest::new("INBOX", data.clone());
    req.create_mailbox = true;
    req.received = Some(1_704_110_403 + i as i64);
    req.flags = flags;
    let saved = sp.save(req).await.expect("save");
    ledger.insert(saved.oid.to_hex(), data);
    saved
}

/// `rbox fsck --grace 0 --json [extra…]`: exit code and report.
fn fsck(rbox: &Rbox, ns: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["-N", ns, "fsck", "--grace", "0", "--json"];
    args.extend_from_slice(extra);
    let out = rbox.run(&args);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fsck printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().expect("exit code"), report)
}

fn kinds(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Find → repair → clean, asserting the kinds found and that repair left nothing.
fn find_repair_clean(rbox: &Rbox, ns: &str, expect: &[&str], repair: &[&str]) -> Value {
    let (code, found) = fsck(rbox, ns, &[]);
    assert_eq!(code, 3, "{ns}: problems found, nothing repaired: {found}");
    let mut got = kinds(&found);
    got.sort();
    let mut want: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{ns}: {found:#}");
    assert_eq!(found["repaired"], 0, "check mode changes nothing");
    let (code, repaired) = fsck(rbox, ns, repair);
    assert_eq!(code, 0, "{ns}: repair left something: {repaired:#}");
    assert_eq!(repaired["repaired"], expect.len(), "{repaired:#}");
    assert_eq!(repaired["repair_errors"], serde_json::json!([]));
    let (code, after) = fsck(rbox, ns, &[]);
    assert_eq!(code, 0, "{ns}: second fsck not clean: {after:#}");
    assert_eq!(after["clean"], true);
    assert_eq!(after["findings"], serde_json::json!([]), "{after:#}");
    repaired
}

/// No mail lost: every ledger mail is listed by `rbox ls` and `rbox get` returns its bytes.
fn assert_nothing_lost(rbox: &Rbox, ns: &str, ledger: &Ledger) {
    let ls = rbox.json(&["-N", ns, "ls"]);
    let listed: Vec<&str> = ls["mails"]
        .as_array()
        .expect("mails")
        .iter()
        .filter_map(|m| m["oid"].as_str())
        .collect();
    assert_eq!(ls["count"], ledger.len(), "{ns}: {ls:#}");
    for (oid, data) in ledger {
        assert!(listed.contains(&oid.as_str()), "{ns}: {oid} not listed");
        let got = rbox.run(&["-N", ns, "get", oid]);
        assert_eq!(got.status.code(), Some(0), "{ns}: get {oid}");
        assert!(got.stdout == *data, "{ns}: {oid} body differs");
    }
}

async fn scenarios(cluster: Cluster, mail: String, index: String) {
    let rbox = Rbox {
        pool: mail.clone(),
        index_pool: index.clone(),
    };
    // Store flags in `F` too, so a garbage flags byte has a librmb value to go back to.
    assert_eq!(
        rbox.code(&["cfg", "create", "rbox_mail_attributes=MGPORZVBUIF"]),
        0
    );
    let librados: Arc<dyn Backend> = Arc::new(LibradosBackend::new(cluster));
    let store = Store::open(
        librados.clone(),
        StoreConfig::new(mail.clone(), index.clone()),
    )
    .await
    .expect("open store");

    // ---- (a) a save interrupted between body and index; a zero-byte leftover ----------
    let ns = "faults-a";
    let sp = store.namespace(ns).unwrap();
    let mut ledger = Ledger::new();
    for i in 0..3 {
        save(&sp, &mut ledger, i, MailFlags::empty()).await;
    }
    let cutting = Arc::new(StopAfterBody {
        inner: librados.clone(),
        mail_pool: mail.clone(),
        armed: AtomicBool::new(false),
        cut: AtomicBool::new(false),
    });
    let cut_store = Store::open(
        cutting.clone() as Arc<dyn Backend>,
        StoreConfig::new(mail.clone(), index.clone()),
    )
    .await
    .expect("open store");
    cutting.armed.store(true, Ordering::SeqCst);
    let data = body(ns, 3);
    let mut req = SaveRequest::new("INBOX", data.clone());
    req.received = Some(1_704_110_999);
    let err = cut_store
        .namespace(ns)
        .unwrap()
        .save(req)
        .await
        .expect_err("the index is gone after the body write");
    let StoreError::IndexWriteFailed {
        oid: interrupted, ..
    } = &err
    else {
        panic!("expected IndexWriteFailed, got {err:?}");
    };
    assert!(cutting.cut.load(Ordering::SeqCst));
    // The body is there with its metadata, the index does not know it.
    let info = sp.mail_info(interrupted).await.expect("body written");
    assert!(
        info.errors.is_empty() && info.metadata.uid.is_some(),
        "{info:?}"
    );
    assert!(matches!(
        sp.indexed(interrupted).await,
        Err(StoreError::NotIndexed(_))
    ));
    assert_eq!(rbox.json(&["-N", ns, "ls"])["count"], 3);
    ledger.insert(interrupted.clone(), data);
    // A zero-byte leftover (a save that died before its body landed).
    let leftover = "0123456789abcdef0123456789abcdef";
    librados
        .write_op(
            &ObjectLocation::new(mail.clone(), ns, leftover),
            WriteOp::new().create(true),
        )
        .await
        .unwrap();
    let uid = info.metadata.uid.expect("U written with the body");
    let repaired = find_repair_clean(
        &rbox,
        ns,
        &["UnindexedMail", "ZeroByteObject"],
        &["--repair", "--yes-i-really-mean-it"],
    );
    let actions = repaired.to_string();
    assert!(
        actions.contains("indexed as \\\"INBOX\\\" UID"),
        "{repaired:#}"
    );
    assert!(
        sp.mail_info(leftover).await.is_err(),
        "the zero-byte leftover is gone"
    );
    assert_eq!(sp.indexed(interrupted).await.expect("indexed").1, uid);
    assert_nothing_lost(&rbox, ns, &ledger);

    // ---- (b) an index entry whose object vanished ---------------------------------------
    let ns = "faults-b";
    let sp = store.namespace(ns).unwrap();
    let mut ledger = Ledger::new();
    let mut saved = Vec::new();
    for i in 0..4 {
        saved.push(save(&sp, &mut ledger, i, MailFlags::empty()).await);
    }
    let vanished = saved[1].oid.to_hex();
    rados(&mail, ns, &["rm", &vanished]);
    ledger.remove(&vanished);
    let repaired = find_repair_clean(&rbox, ns, &["DanglingEntry"], &["--repair"]);
    assert_eq!(repaired["findings"][0]["oid"], vanished.as_str());
    assert_eq!(repaired["findings"][0]["action"], "removed index entry");
    assert_nothing_lost(&rbox, ns, &ledger);

    // ---- (c) garbage xattrs on indexed mails --------------------------------------------
    let ns = "faults-c";
    let sp = store.namespace(ns).unwrap();
    let mut ledger = Ledger::new();
    let flagged = save(&sp, &mut ledger, 0, MailFlags::SEEN.union(MailFlags::DRAFT)).await;
    let sized = save(&sp, &mut ledger, 1, MailFlags::empty()).await;
    save(&sp, &mut ledger, 2, MailFlags::FLAGGED).await;
    let loc = |s: &SavedMail| ObjectLocation::new(mail.clone(), ns, s.oid.to_hex());
    let before_flagged = librados.get_xattrs(&loc(&flagged)).await.unwrap();
    let before_sized = librados.get_xattrs(&loc(&sized)).await.unwrap();
    assert_eq!(
        before_flagged["F"],
        vec![0x18, 0],
        "\\Seen \\Draft as one raw byte"
    );
    for (k, v) in [("R", "yesterday"), ("F", "xyz"), ("M", "not-a-guid")] {
        rados(&mail, ns, &["setxattr", &flagged.oid.to_hex(), k, v]);
    }
    rados(&mail, ns, &["setxattr", &sized.oid.to_hex(), "Z", "-5"]);
    let found = fsck(&rbox, ns, &[]).1;
    let details = found.to_string();
    for needle in [
        "R: not a decimal number",
        "F: bad flags byte",
        "M: not a GUID",
        "Z: ",
    ] {
        assert!(details.contains(needle), "{needle}: {found:#}");
    }
    let repaired = find_repair_clean(
        &rbox,
        ns,
        &["InvalidMetadata", "InvalidMetadata"],
        &["--repair"],
    );
    assert!(
        repaired
            .to_string()
            .contains("rewrote F M R from the index record"),
        "{repaired:#}"
    );
    // Back to the very bytes the save wrote.
    assert_eq!(
        librados.get_xattrs(&loc(&flagged)).await.unwrap(),
        before_flagged
    );
    assert_eq!(
        librados.get_xattrs(&loc(&sized)).await.unwrap(),
        before_sized
    );
    assert_nothing_lost(&rbox, ns, &ledger);
}
