//! Raw backend semantics every implementation must share with RADOS.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use super::Ctx;
use crate::backend::{BackendError, CmpOp, NamespaceFilter, ObjectLocation, WriteOp};

fn kv(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect()
}

pub async fn compound_op_is_atomic(c: Ctx) {
    let b = &c.backend;
    let ns = c.ns("a");
    let o = c.loc(&ns, "obj");
    b.write_op(
        &o,
        WriteOp::new()
            .create(true)
            .write_full(b"body".to_vec())
            .set_xattr("G", b"g\0".to_vec())
            .omap_set(kv(&[("k1", b"v1")])),
    )
    .await
    .expect("one compound op creates body, xattr and omap");
    let r = b.read(&o, 0, None).await.unwrap();
    assert_eq!(r.data, b"body");
    assert_eq!(r.xattrs.get("G").map(Vec::as_slice), Some(&b"g\0"[..]));

    // Exclusive create of an existing object: Exists, and the other steps do not apply.
    let err = b
        .write_op(
            &o,
            WriteOp::new()
                .set_xattr("X", b"x".to_vec())
                .create(true)
                .write_full(b"other".to_vec()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Exists(_)), "{err:?}");
    // A guard failing after writes in the same op: nothing of it is applied.
    let err = b
        .write_op(
            &o,
            WriteOp::new()
                .write_full(b"changed".to_vec())
                .omap_set(kv(&[("k2", b"v2")]))
                .omap_cmp("k1", CmpOp::Eq, b"wrong".to_vec()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Canceled(_)), "{err:?}");
    let r = b.read(&o, 0, None).await.unwrap();
    assert_eq!(r.data, b"body");
    assert!(!r.xattrs.contains_key("X"));
    let page = b.omap_get_vals(&o, "", "", 10).await.unwrap();
    assert_eq!(page.entries, kv(&[("k1", b"v1")]));
    // An exclusive create of a new object with a guard in the same op works (the index
    // relies on it: create + omap_cmp of an absent key).
    let fresh = c.loc(&ns, "fresh");
    b.write_op(
        &fresh,
        WriteOp::new()
            .create(false)
            .omap_cmp("absent", CmpOp::Eq, Vec::new())
            .omap_set(kv(&[("absent", b"1")])),
    )
    .await
    .expect("create then omap_cmp on the new object");
}

pub async fn cmp_guards_follow_the_osd(c: Ctx) {
    let b = &c.backend;
    let o = c.loc(&c.ns("a"), "obj");
    b.write_op(
        &o,
        WriteOp::new()
            .omap_set(kv(&[("n", b"5")]))
            .set_xattr("x", b"5".to_vec()),
    )
    .await
    .unwrap();
    let ok = |op: WriteOp| {
        let b = b.clone();
        let o = o.clone();
        async move { b.write_op(&o, op).await }
    };
    // omap_cmp compares stored (left) with given: stored 5 < given 6.
    ok(WriteOp::new().omap_cmp("n", CmpOp::Lt, b"6".to_vec()))
        .await
        .unwrap();
    ok(WriteOp::new().omap_cmp("n", CmpOp::Gt, b"4".to_vec()))
        .await
        .unwrap();
    ok(WriteOp::new().omap_cmp("n", CmpOp::Eq, b"5".to_vec()))
        .await
        .unwrap();
    let e = ok(WriteOp::new().omap_cmp("n", CmpOp::Lt, b"5".to_vec()))
        .await
        .unwrap_err();
    assert!(matches!(e, BackendError::Canceled(_)), "{e:?}");
    // A missing key compares as the empty value.
    ok(WriteOp::new().omap_cmp("missing", CmpOp::Eq, Vec::new()))
        .await
        .unwrap();
    ok(WriteOp::new().omap_cmp("missing", CmpOp::Lt, b"a".to_vec()))
        .await
        .unwrap();
    // cmpxattr (string mode) compares given (left) with stored: given 6 > stored 5.
    ok(WriteOp::new().cmp_xattr("x", CmpOp::Gt, b"6".to_vec()))
        .await
        .unwrap();
    ok(WriteOp::new().cmp_xattr("x", CmpOp::Lte, b"5".to_vec()))
        .await
        .unwrap();
    let e = ok(WriteOp::new().cmp_xattr("x", CmpOp::Ne, b"5".to_vec()))
        .await
        .unwrap_err();
    assert!(matches!(e, BackendError::Canceled(_)), "{e:?}");
    // A missing xattr compares as the empty value.
    ok(WriteOp::new().cmp_xattr("nope", CmpOp::Eq, Vec::new()))
        .await
        .unwrap();
    // Guards on a missing object: ENOENT.
    let missing = c.loc(&c.ns("a"), "missing");
    let e = b
        .write_op(
            &missing,
            WriteOp::new().omap_cmp("n", CmpOp::Eq, Vec::new()),
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    let e = b
        .write_op(
            &missing,
            WriteOp::new().cmp_xattr("x", CmpOp::Eq, Vec::new()),
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(b.stat(&missing).await.unwrap_err().is_not_found());
}

pub async fn missing_object_semantics(c: Ctx) {
    let b = &c.backend;
    let ns = c.ns("a");
    let nf = |e: BackendError| assert!(e.is_not_found(), "{e:?}");
    let m = c.loc(&ns, "m");
    nf(b.stat(&m).await.unwrap_err());
    nf(b.read(&m, 0, None).await.unwrap_err());
    nf(b.get_xattrs(&m).await.unwrap_err());
    nf(b.omap_get_vals(&m, "", "", 10).await.unwrap_err());
    nf(b.omap_get_vals_by_keys(&m, &["a".into()])
        .await
        .unwrap_err());
    nf(b.remove(&m).await.unwrap_err());
    nf(b.write_op(
        &m,
        WriteOp::new().assert_exists().set_xattr("a", b"1".to_vec()),
    )
    .await
    .unwrap_err());
    nf(b.write_op(&m, WriteOp::new().rm_xattr("a"))
        .await
        .unwrap_err());
    nf(b.write_op(&m, WriteOp::new().omap_rm_keys(["a"]))
        .await
        .unwrap_err());
    nf(b.write_op(&m, WriteOp::new().omap_clear())
        .await
        .unwrap_err());
    nf(b.write_op(&m, WriteOp::new().remove()).await.unwrap_err());
    // Truncate of a missing object is a no-op: it does not create it.
    b.write_op(&m, WriteOp::new().truncate(0)).await.unwrap();
    nf(b.stat(&m).await.unwrap_err());
    // setxattr and omap_set create the object (size 0).
    let x = c.loc(&ns, "x");
    b.write_op(&x, WriteOp::new().set_xattr("a", b"1".to_vec()))
        .await
        .unwrap();
    assert_eq!(b.stat(&x).await.unwrap().size, 0);
    let y = c.loc(&ns, "y");
    b.write_op(&y, WriteOp::new().omap_set(kv(&[("k", b"v")])))
        .await
        .unwrap();
    assert_eq!(b.stat(&y).await.unwrap().size, 0);
    // Remove, then it is gone.
    b.remove(&x).await.unwrap();
    nf(b.stat(&x).await.unwrap_err());
}

pub async fn omap_paging_with_prefix(c: Ctx) {
    let b = &c.backend;
    let o = c.loc(&c.ns("a"), "obj");
    let mut all = BTreeMap::new();
    for i in 0..25 {
        all.insert(format!("a.{i:03}"), vec![i as u8]);
        all.insert(format!("b.{i:03}"), vec![i as u8, 0xff]);
    }
    b.write_op(&o, WriteOp::new().omap_set(all.clone()))
        .await
        .unwrap();
    // Page through prefix "a." ten at a time.
    let mut got = BTreeMap::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let p = b.omap_get_vals(&o, &after, "a.", 10).await.unwrap();
        pages += 1;
        assert!(p.entries.len() <= 10);
        assert!(p.entries.keys().all(|k| k.starts_with("a.")));
        after = p.entries.keys().next_back().cloned().unwrap_or_default();
        got.extend(p.entries);
        if !p.more {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(got.len(), 25);
    assert_eq!(got.get("a.007"), Some(&vec![7u8]));
    // start_after inside the range; prefix "b." after "a.xxx" keys.
    let p = b.omap_get_vals(&o, "a.020", "", 100).await.unwrap();
    assert_eq!(p.entries.len(), 4 + 25);
    assert!(!p.more);
    let p = b.omap_get_vals(&o, "", "b.", 100).await.unwrap();
    assert_eq!(p.entries.len(), 25);
    let p = b.omap_get_vals(&o, "", "c.", 100).await.unwrap();
    assert!(p.entries.is_empty() && !p.more);
    // Exactly one page worth: more must be false.
    let p = b.omap_get_vals(&o, "", "a.", 25).await.unwrap();
    assert_eq!(p.entries.len(), 25);
    assert!(!p.more);
    let by_keys = b
        .omap_get_vals_by_keys(&o, &["a.001".into(), "zzz".into(), "b.024".into()])
        .await
        .unwrap();
    assert_eq!(by_keys.len(), 2);
    assert_eq!(by_keys.get("b.024"), Some(&vec![24u8, 0xff]));
    // Removing keys and clearing.
    b.write_op(&o, WriteOp::new().omap_rm_keys(["a.000", "a.001"]))
        .await
        .unwrap();
    assert_eq!(
        b.omap_get_vals(&o, "", "a.", 100)
            .await
            .unwrap()
            .entries
            .len(),
        23
    );
    b.write_op(&o, WriteOp::new().omap_clear()).await.unwrap();
    assert!(
        b.omap_get_vals(&o, "", "", 100)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
}

pub async fn namespaces_are_isolated(c: Ctx) {
    let b = &c.backend;
    let (n1, n2) = (c.ns("one"), c.ns("two"));
    b.write_op(
        &c.loc(&n1, "same"),
        WriteOp::new().write_full(b"1".to_vec()),
    )
    .await
    .unwrap();
    b.write_op(
        &c.loc(&n2, "same"),
        WriteOp::new().write_full(b"22".to_vec()),
    )
    .await
    .unwrap();
    b.write_op(
        &c.loc(&n2, "other"),
        WriteOp::new().write_full(b"3".to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(
        b.read(&c.loc(&n1, "same"), 0, None).await.unwrap().data,
        b"1"
    );
    assert_eq!(
        b.read(&c.loc(&n2, "same"), 0, None).await.unwrap().data,
        b"22"
    );
    assert!(
        b.stat(&c.loc(&n1, "other"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(b.stat(&c.loc("", "same")).await.unwrap_err().is_not_found());
    let mut one: Vec<String> = b
        .list_objects(&c.pool, &NamespaceFilter::Only(n1.clone()))
        .await
        .unwrap()
        .into_iter()
        .map(|o| {
            assert_eq!(o.namespace, n1);
            o.oid
        })
        .collect();
    one.sort();
    assert_eq!(one, vec!["same"]);
    let two = b
        .list_objects(&c.pool, &NamespaceFilter::Only(n2.clone()))
        .await
        .unwrap();
    assert_eq!(two.len(), 2);
    let all = b
        .list_objects(&c.pool, &NamespaceFilter::All)
        .await
        .unwrap();
    for (ns, oid) in [(&n1, "same"), (&n2, "same"), (&n2, "other")] {
        assert!(
            all.iter().any(|o| &o.namespace == ns && o.oid == oid),
            "{ns}/{oid} missing from --all listing"
        );
    }
    assert!(b.list_pools().await.unwrap().contains(&c.pool));
}

pub async fn values_are_byte_exact(c: Ctx) {
    let b = &c.backend;
    let o = c.loc(&c.ns("a"), "obj");
    let bin: Vec<u8> = vec![0x00, 0xff, 0x01, 0x80, 0x00, 0x7f];
    let body: Vec<u8> = (0..=255u8).collect();
    b.write_op(
        &o,
        WriteOp::new()
            .write_full(body.clone())
            .set_xattr("B", bin.clone())
            .set_xattr("E", b"e".to_vec())
            .omap_set(kv(&[("k", &bin), ("empty", b"")])),
    )
    .await
    .unwrap();
    let r = b.read(&o, 0, None).await.unwrap();
    assert_eq!(r.data, body);
    assert_eq!(r.xattrs.get("B"), Some(&bin));
    assert_eq!(r.xattrs.get("E").map(Vec::as_slice), Some(&b"e"[..]));
    assert_eq!(b.get_xattrs(&o).await.unwrap(), r.xattrs);
    let m = b.omap_get_vals(&o, "", "", 10).await.unwrap().entries;
    assert_eq!(m.get("k"), Some(&bin));
    assert_eq!(m.get("empty"), Some(&Vec::new()));
    b.write_op(&o, WriteOp::new().rm_xattr("E")).await.unwrap();
    assert!(!b.get_xattrs(&o).await.unwrap().contains_key("E"));
}

pub async fn read_ranges_and_large_objects(c: Ctx) {
    let b = &c.backend;
    let o = c.loc(&c.ns("a"), "obj");
    b.write_op(&o, WriteOp::new().write_full(b"0123456789".to_vec()))
        .await
        .unwrap();
    assert_eq!(b.read(&o, 2, Some(3)).await.unwrap().data, b"234");
    assert_eq!(b.read(&o, 8, Some(10)).await.unwrap().data, b"89");
    assert_eq!(b.read(&o, 20, Some(5)).await.unwrap().data, b"");
    assert_eq!(b.read(&o, 4, None).await.unwrap().data, b"456789");
    let r = b.read(&o, 0, Some(0)).await.unwrap();
    assert_eq!((r.size, r.data.len()), (10, 0));
    // Larger than one read buffer of the librados backend.
    let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let l = c.loc(&c.ns("a"), "big");
    b.write_op(&l, WriteOp::new().write_full(big.clone()))
        .await
        .unwrap();
    let r = b.read(&l, 0, None).await.unwrap();
    assert_eq!(r.size, big.len() as u64);
    assert!(r.data == big, "large body differs");
}

pub async fn offset_writes_append_truncate(c: Ctx) {
    let b = &c.backend;
    let o = c.loc(&c.ns("a"), "obj");
    b.write_op(&o, WriteOp::new().write(4, b"xy".to_vec()))
        .await
        .unwrap();
    assert_eq!(b.read(&o, 0, None).await.unwrap().data, b"\0\0\0\0xy");
    b.write_op(
        &o,
        WriteOp::new()
            .append(b"z".to_vec())
            .write(0, b"ab".to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(b.read(&o, 0, None).await.unwrap().data, b"ab\0\0xyz");
    b.write_op(&o, WriteOp::new().truncate(3)).await.unwrap();
    assert_eq!(b.read(&o, 0, None).await.unwrap().data, b"ab\0");
    b.write_op(&o, WriteOp::new().write_full(b"q".to_vec()))
        .await
        .unwrap();
    assert_eq!(b.stat(&o).await.unwrap().size, 1);
    b.write_op(&o, WriteOp::new().truncate(0)).await.unwrap();
    assert_eq!(b.stat(&o).await.unwrap().size, 0);
}

pub async fn mtime_is_stamped(c: Ctx) {
    let b = &c.backend;
    let o = c.loc(&c.ns("a"), "obj");
    let t = UNIX_EPOCH + Duration::from_secs(1_704_110_403);
    b.write_op(&o, WriteOp::new().write_full(b"x".to_vec()).with_mtime(t))
        .await
        .unwrap();
    assert_eq!(b.stat(&o).await.unwrap().mtime, t);
    assert_eq!(b.read(&o, 0, None).await.unwrap().mtime, t);
}

pub async fn unknown_pool_is_not_found(c: Ctx) {
    let b = &c.backend;
    let pool = format!("no-such-pool-{}", c.run);
    let o = ObjectLocation::new(pool.clone(), "", "x");
    assert!(b.stat(&o).await.unwrap_err().is_not_found());
    assert!(
        b.write_op(&o, WriteOp::new().write_full(b"x".to_vec()))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        b.list_objects(&pool, &NamespaceFilter::All)
            .await
            .unwrap_err()
            .is_not_found()
    );
}
