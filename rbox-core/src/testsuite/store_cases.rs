//! Store behaviours, the same on every backend.

use std::time::{Duration, UNIX_EPOCH};

use super::Ctx;
use crate::backend::{BackendError, NamespaceFilter, ObjectLocation, WriteLimits, WriteOp};
use crate::error::StoreError;
use crate::format::cfg::RboxConfig;
use crate::format::flags::MailFlags;
use crate::format::guid::{Guid128, MailGuid};
use crate::format::metadata::{MailMetadata, MetadataKey};
use crate::format::query::{Query, SortKey};
use crate::store::{FindingKind, FlagOp, FlagUpdate, FsckOptions, Mailspace, SaveRequest, Store};

/// The observed alice UID 3 message (rbox-observed §2.2): 256 bytes, 9 LFs.
pub const OBSERVED_BODY: &[u8] = b"From: sender3 <sender3@peer.test>\nTo: alice\nSubject: rbox ground truth 3 (imap append)\nMessage-ID: <peer-msg-3@peer.test>\nDate: Mon, 01 Jan 2024 12:00:03 +0000\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\nMessage three, appended via IMAP.\n";
const OBSERVED_R: i64 = 1_704_110_403;

fn body(i: usize) -> Vec<u8> {
    format!("Subject: mail {i}\n\nbody {i}\n").into_bytes()
}

async fn save(sp: &Mailspace, mailbox: &str, data: Vec<u8>) -> crate::store::SavedMail {
    let mut r = SaveRequest::new(mailbox, data);
    r.create_mailbox = true;
    sp.save(r).await.expect("save")
}

/// Write an object the way the upstream plugin does (xattrs + body, no index entry).
async fn upstream_object(c: &Ctx, ns: &str, oid: &str, m: &MailMetadata, data: &[u8]) {
    let mut op = WriteOp::new().create(true).write_full(data.to_vec());
    for (k, v) in m.encode() {
        op = op.set_xattr(k, v);
    }
    c.backend
        .write_op(&c.loc(ns, oid), op)
        .await
        .expect("upstream-style object");
}

fn upstream_meta(mailbox: Guid128, uid: Option<u32>, b: &str, size: usize) -> MailMetadata {
    MailMetadata {
        mailbox_guid: Some(mailbox),
        guid: Some(MailGuid::Compact(Guid128::generate())),
        received: Some(OBSERVED_R),
        physical_size: Some(size as u64),
        virtual_size: Some(size as u64),
        orig_mailbox: Some(b.to_string()),
        uid,
        version: Some("0.1".into()),
        ..Default::default()
    }
}

fn text(v: &str) -> Vec<u8> {
    let mut b = v.as_bytes().to_vec();
    b.push(0);
    b
}

pub async fn save_writes_upstream_bytes(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    sp.create_mailbox("INBOX").await.unwrap();
    let mut req = SaveRequest::new("INBOX", OBSERVED_BODY);
    req.received = Some(OBSERVED_R);
    req.save_date = Some(OBSERVED_R + 1);
    let saved = sp.save(req).await.unwrap();
    let oid = saved.oid.to_hex();
    assert_eq!(oid.len(), 32);
    assert!(
        oid.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let r = c
        .backend
        .read(&c.loc(sp.namespace(), &oid), 0, None)
        .await
        .unwrap();
    assert_eq!(
        r.data, OBSERVED_BODY,
        "object data is the message, nothing added"
    );
    let names: Vec<&str> = r.xattrs.keys().map(String::as_str).collect();
    assert_eq!(names, ["B", "G", "I", "M", "R", "U", "V", "Z"]);
    let x = |k: &str| r.xattrs.get(k).cloned().unwrap();
    assert_eq!(x("B"), b"INBOX\0");
    assert_eq!(x("I"), b"0.1\0");
    assert_eq!(x("R"), b"1704110403\0");
    assert_eq!(x("U"), b"1\0");
    assert_eq!(x("V"), b"265\0");
    assert_eq!(x("Z"), b"256\0");
    assert_eq!(x("M"), text(&saved.mailbox.to_hex()));
    assert_eq!(x("G"), text(&saved.guid.to_string()));
    assert_eq!(
        r.mtime,
        UNIX_EPOCH + Duration::from_secs((OBSERVED_R + 1) as u64)
    );
    let omap = c
        .backend
        .omap_get_vals(&c.loc(sp.namespace(), &oid), "", "", 10)
        .await
        .unwrap();
    assert!(
        omap.entries.is_empty(),
        "no omap on mail objects by default"
    );
    let (mb, uid, rec) = sp.indexed(&oid).await.unwrap();
    assert_eq!((mb.guid, uid), (saved.mailbox, 1));
    assert_eq!((rec.physical_size, rec.virtual_size), (256, 265));
    assert_eq!((rec.received, rec.saved), (OBSERVED_R, OBSERVED_R + 1));
    let mail = sp.read(&oid).await.unwrap();
    assert_eq!(mail.data, OBSERVED_BODY);
    assert!(mail.info.errors.is_empty());
    assert_eq!(mail.info.metadata.uid, Some(1));
}

pub async fn configured_flags_and_keywords_are_stored(c: Ctx) {
    let cfg = RboxConfig::default()
        .apply_updates(&["rbox_mail_attributes=MGPORZVBUIFK"])
        .unwrap();
    let store = c.store_with(cfg);
    let sp = c.space(&store, "u");
    let mut req = SaveRequest::new("INBOX", body(1));
    req.create_mailbox = true;
    req.flags = MailFlags::ANSWERED;
    req.keywords = vec!["$Label1".into(), "Junk".into()];
    req.pop3_uidl = Some("uidl-1".into());
    req.pop3_order = Some(0);
    let saved = sp.save(req).await.unwrap();
    let loc = c.loc(sp.namespace(), &saved.oid.to_hex());
    let x = c.backend.get_xattrs(&loc).await.unwrap();
    // upstream mail_save_to_inbox_with_flags: \Answered → 0x01.
    assert_eq!(x.get("F"), Some(&vec![0x01, 0x00]));
    assert_eq!(x.get("P"), Some(&text("uidl-1")));
    assert!(!x.contains_key("O"), "O is written only when non-zero");
    let omap = c
        .backend
        .omap_get_vals(&loc, "", "", 10)
        .await
        .unwrap()
        .entries;
    assert_eq!(omap.get("0"), Some(&text("$Label1")));
    assert_eq!(omap.get("1"), Some(&text("Junk")));
    let mail = sp.read(&saved.oid.to_hex()).await.unwrap();
    assert_eq!(mail.object_keywords, vec!["$Label1", "Junk"]);
    // \Answered|\Seen = 0x09 is a whitespace byte: librmb stores the empty string.
    let mut req = SaveRequest::new("INBOX", body(2));
    req.flags = MailFlags::ANSWERED.union(MailFlags::SEEN);
    req.pop3_order = Some(7);
    let saved = sp.save(req).await.unwrap();
    let x = c
        .backend
        .get_xattrs(&c.loc(sp.namespace(), &saved.oid.to_hex()))
        .await
        .unwrap();
    assert_eq!(x.get("F"), Some(&vec![0x00]));
    assert_eq!(x.get("O"), Some(&text("7")));
    let (_, _, rec) = sp.indexed(&saved.oid.to_hex()).await.unwrap();
    assert_eq!(
        rec.flags,
        MailFlags(0x09),
        "the index keeps the flags the xattr loses"
    );
}

pub async fn chunked_write_and_size_refusal(c: Ctx) {
    let mut config = c.config();
    config.write_limits = Some(WriteLimits {
        max_write_size: 4096,
        max_object_size: 50_000,
    });
    let store = Store::with_cfg(c.backend.clone(), config, RboxConfig::default());
    let sp = c.space(&store, "u");
    let big: Vec<u8> = (0..20_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let saved = save(&sp, "INBOX", big.clone()).await;
    let mail = sp.read(&saved.oid.to_hex()).await.unwrap();
    assert!(mail.data == big, "chunked body reads back whole");
    assert_eq!(mail.info.size, 20_000);
    assert_eq!(mail.info.metadata.physical_size, Some(20_000));
    // Exactly max_object_size is fine; one byte more is refused before anything is written.
    let edge = vec![b'x'; 50_000];
    save(&sp, "INBOX", edge).await;
    let next_before = sp.mailbox("INBOX").await.unwrap().next_uid();
    let err = sp
        .save(SaveRequest::new("INBOX", vec![b'y'; 50_001]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooLarge {
                size: 50_001,
                max: 50_000
            }
        ),
        "{err:?}"
    );
    assert_eq!(sp.list_object_ids().await.unwrap().len(), 2);
    assert_eq!(
        sp.mailbox("INBOX").await.unwrap().next_uid(),
        next_before,
        "no UID taken"
    );
}

pub async fn mailbox_lifecycle(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let inbox = sp.create_mailbox("INBOX").await.unwrap();
    assert_eq!(inbox.next_uid(), 1);
    assert!(inbox.uidvalidity > 0);
    assert!(matches!(
        sp.create_mailbox("INBOX").await.unwrap_err(),
        StoreError::MailboxExists(_)
    ));
    assert!(matches!(
        sp.create_mailbox("").await.unwrap_err(),
        StoreError::Invalid(_)
    ));
    let archive = sp.create_mailbox("Archive").await.unwrap();
    assert_ne!(archive.guid, inbox.guid);
    let names: Vec<String> = sp
        .list_mailboxes()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["Archive", "INBOX"]);
    let renamed = sp.rename_mailbox("Archive", "Old/2024").await.unwrap();
    assert_eq!(renamed.guid, archive.guid);
    assert!(matches!(
        sp.mailbox("Archive").await.unwrap_err(),
        StoreError::MailboxNotFound(_)
    ));
    assert_eq!(sp.mailbox("Old/2024").await.unwrap().guid, archive.guid);
    assert!(matches!(
        sp.rename_mailbox("INBOX", "Old/2024").await.unwrap_err(),
        StoreError::MailboxExists(_)
    ));
    assert!(matches!(
        sp.rename_mailbox("nope", "x").await.unwrap_err(),
        StoreError::MailboxNotFound(_)
    ));
    assert!(matches!(
        sp.save(SaveRequest::new("missing", body(0)))
            .await
            .unwrap_err(),
        StoreError::MailboxNotFound(_)
    ));
    let saved = save(&sp, "Old/2024", body(1)).await;
    assert!(matches!(
        sp.delete_mailbox("Old/2024", false).await.unwrap_err(),
        StoreError::MailboxNotEmpty { mails: 1, .. }
    ));
    assert_eq!(sp.delete_mailbox("Old/2024", true).await.unwrap(), 1);
    assert!(matches!(
        sp.read(&saved.oid.to_hex()).await.unwrap_err(),
        StoreError::MailNotFound(_)
    ));
    let names: Vec<String> = sp
        .list_mailboxes()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["INBOX"]);
    // The index objects of the deleted mailbox are gone.
    let left = c
        .backend
        .list_objects(
            &c.index_pool,
            &NamespaceFilter::Only(sp.namespace().to_string()),
        )
        .await
        .unwrap();
    assert!(
        left.iter().all(|o| !o.oid.contains(&archive.guid.to_hex())),
        "{left:?}"
    );
    // Re-creating a name never reuses its UIDVALIDITY.
    let again = sp.create_mailbox("Old/2024").await.unwrap();
    assert!(again.uidvalidity > archive.uidvalidity);
    assert!(sp.delete_mailbox("Old/2024", false).await.is_ok());
}

pub async fn list_mails_is_paged_in_uid_order(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let mut oids = Vec::new();
    for i in 0..25 {
        oids.push(save(&sp, "INBOX", body(i)).await.oid);
    }
    let mut seen = Vec::new();
    let mut after = 0;
    let mut pages = 0;
    loop {
        let page = sp.list_mails("INBOX", after, 10).await.unwrap();
        pages += 1;
        assert!(page.mails.len() <= 10);
        seen.extend(page.mails.iter().map(|(u, r)| (*u, r.oid)));
        match page.next_after {
            Some(a) => after = a,
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let uids: Vec<u32> = seen.iter().map(|(u, _)| *u).collect();
    assert_eq!(uids, (1..=25).collect::<Vec<_>>());
    let listed: Vec<Guid128> = seen.iter().map(|(_, o)| *o).collect();
    assert_eq!(listed, oids, "UID order is save order");
    let (n, bytes) = sp.mailbox_usage("INBOX").await.unwrap();
    assert_eq!(n, 25);
    assert_eq!(bytes, (0..25).map(|i| body(i).len() as u64).sum::<u64>());
    assert!(
        sp.list_mails("INBOX", 25, 10)
            .await
            .unwrap()
            .mails
            .is_empty()
    );
}

pub async fn copy_move_expunge(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    sp.create_mailbox("Archive").await.unwrap();
    let mut req = SaveRequest::new("INBOX", OBSERVED_BODY);
    req.create_mailbox = true;
    req.received = Some(OBSERVED_R);
    req.flags = MailFlags::SEEN;
    req.keywords = vec!["$Label1".into()];
    let src = sp.save(req).await.unwrap();
    let src_oid = src.oid.to_hex();
    let copy = sp.copy(&src_oid, "Archive").await.unwrap();
    assert_ne!(copy.oid, src.oid, "a copy is a new object");
    assert_eq!(copy.uid, 1);
    let a = sp.read(&src_oid).await.unwrap().info.metadata;
    let b = sp.read(&copy.oid.to_hex()).await.unwrap().info.metadata;
    assert_eq!(b.guid, a.guid, "G kept");
    assert_eq!(b.received, a.received, "R kept");
    assert_eq!(
        (b.physical_size, b.virtual_size),
        (a.physical_size, a.virtual_size)
    );
    assert_eq!(
        b.orig_mailbox.as_deref(),
        Some("INBOX"),
        "B stays the original mailbox"
    );
    assert_eq!(b.mailbox_guid, Some(copy.mailbox));
    assert_ne!(b.mailbox_guid, a.mailbox_guid);
    assert_eq!(b.uid, Some(1));
    let (_, _, rec) = sp.indexed(&copy.oid.to_hex()).await.unwrap();
    assert_eq!(rec.flags, MailFlags::SEEN);
    assert_eq!(rec.keywords, vec!["$Label1"]);
    assert_eq!(
        sp.read(&copy.oid.to_hex()).await.unwrap().data,
        OBSERVED_BODY
    );
    // Move: new object in Archive, source object and entry gone.
    let moved = sp.move_mail(&src_oid, "Archive").await.unwrap();
    assert_eq!(moved.uid, 2);
    assert!(matches!(
        sp.read(&src_oid).await.unwrap_err(),
        StoreError::MailNotFound(_)
    ));
    assert!(
        sp.list_mails("INBOX", 0, 10)
            .await
            .unwrap()
            .mails
            .is_empty()
    );
    let archive: Vec<Guid128> = sp
        .list_mails("Archive", 0, 10)
        .await
        .unwrap()
        .mails
        .into_iter()
        .map(|(_, r)| r.oid)
        .collect();
    assert_eq!(archive, vec![copy.oid, moved.oid]);
    // Expunge.
    sp.expunge(&copy.oid.to_hex()).await.unwrap();
    assert!(matches!(
        sp.read(&copy.oid.to_hex()).await.unwrap_err(),
        StoreError::MailNotFound(_)
    ));
    let archive = sp.list_mails("Archive", 0, 10).await.unwrap().mails;
    assert_eq!(archive.len(), 1);
    assert!(matches!(
        sp.expunge(&copy.oid.to_hex()).await.unwrap_err(),
        StoreError::MailNotFound(_)
    ));
    assert!(matches!(
        sp.copy(&copy.oid.to_hex(), "Archive").await.unwrap_err(),
        StoreError::MailNotFound(_)
    ));
    assert_eq!(sp.list_object_ids().await.unwrap().len(), 1);
    // Across namespaces (another user), as librmb's copy allows.
    let other = c.space(&store, "other");
    let their_inbox = other.create_mailbox("INBOX").await.unwrap();
    let x = sp
        .copy_to(&moved.oid.to_hex(), &other, "INBOX")
        .await
        .unwrap();
    assert_eq!((x.mailbox, x.uid), (their_inbox.guid, 1));
    assert_eq!(
        other.read(&x.oid.to_hex()).await.unwrap().data,
        OBSERVED_BODY
    );
    assert!(matches!(
        sp.read(&x.oid.to_hex()).await.unwrap_err(),
        StoreError::MailNotFound(_)
    ));
}

pub async fn flags_and_keywords_update_index_and_object(c: Ctx) {
    let cfg = RboxConfig::default()
        .apply_updates(&[
            "rbox_mail_attributes=MGPORZVBUIFK",
            "rbox_updateable_attributes=BFK",
            "rbox_update_attributes=true",
        ])
        .unwrap();
    let store = c.store_with(cfg);
    let sp = c.space(&store, "u");
    let saved = save(&sp, "INBOX", body(1)).await;
    let oid = saved.oid.to_hex();
    let loc = c.loc(sp.namespace(), &oid);
    let add = FlagUpdate {
        op: FlagOp::Add,
        flags: MailFlags::SEEN,
        keywords: vec!["a".into()],
    };
    let r = sp.update_flags(&oid, &add).await.unwrap();
    assert_eq!(
        (r.flags, r.keywords.clone()),
        (MailFlags::SEEN, vec!["a".to_string()])
    );
    assert!(r.modseq > saved.modseq);
    assert_eq!(
        c.backend.get_xattrs(&loc).await.unwrap().get("F"),
        Some(&vec![0x08, 0])
    );
    let omap = c
        .backend
        .omap_get_vals(&loc, "", "", 10)
        .await
        .unwrap()
        .entries;
    assert_eq!(omap.get("0"), Some(&text("a")));
    // Same change again: nothing to do, modseq unchanged.
    let again = sp.update_flags(&oid, &add).await.unwrap();
    assert_eq!(again.modseq, r.modseq);
    let r2 = sp
        .update_flags(
            &oid,
            &FlagUpdate {
                op: FlagOp::Remove,
                flags: MailFlags::SEEN,
                keywords: vec!["a".into()],
            },
        )
        .await
        .unwrap();
    assert!(r2.flags.is_empty() && r2.keywords.is_empty());
    assert!(r2.modseq > r.modseq);
    assert!(!c.backend.get_xattrs(&loc).await.unwrap().contains_key("F"));
    let r3 = sp
        .update_flags(
            &oid,
            &FlagUpdate {
                op: FlagOp::Replace,
                flags: MailFlags::FLAGGED,
                keywords: vec!["b".into(), "c".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(r3.flags, MailFlags::FLAGGED);
    assert_eq!(
        c.backend.get_xattrs(&loc).await.unwrap().get("F"),
        Some(&vec![0x02, 0])
    );
    let omap = c
        .backend
        .omap_get_vals(&loc, "", "", 10)
        .await
        .unwrap()
        .entries;
    assert_eq!(omap.len(), 2);
    assert_eq!(omap.get("1"), Some(&text("c")));
    assert!(
        sp.update_flags(
            &oid,
            &FlagUpdate {
                op: FlagOp::Add,
                flags: MailFlags::empty(),
                keywords: vec!["bad keyword".into()],
            }
        )
        .await
        .is_err()
    );
    // With the default rbox_cfg only the index changes.
    let plain = c.store();
    let sp2 = c.space(&plain, "plain");
    let s2 = save(&sp2, "INBOX", body(2)).await;
    let r = sp2.update_flags(&s2.oid.to_hex(), &add).await.unwrap();
    assert_eq!(r.flags, MailFlags::SEEN);
    let x = c
        .backend
        .get_xattrs(&c.loc(sp2.namespace(), &s2.oid.to_hex()))
        .await
        .unwrap();
    assert!(!x.contains_key("F"));
}

pub async fn concurrent_saves_get_unique_uids(c: Ctx) {
    // Two stores = two processes with separate caches, racing on one mailbox.
    let a = c.store();
    let b = c.store();
    let sa = c.space(&a, "u");
    let sb = c.space(&b, "u");
    sa.create_mailbox("INBOX").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let sp = if i % 2 == 0 { sa.clone() } else { sb.clone() };
        tasks.push(tokio::spawn(async move {
            sp.save(SaveRequest::new("INBOX", body(i))).await
        }));
    }
    let mut uids = Vec::new();
    let mut oids = Vec::new();
    for t in tasks {
        let s = t.await.unwrap().expect("concurrent save");
        uids.push(s.uid);
        oids.push(s.oid);
    }
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), 40, "every save got its own UID");
    let listed = sa.list_mails("INBOX", 0, 100).await.unwrap().mails;
    assert_eq!(listed.len(), 40);
    for o in &oids {
        assert!(listed.iter().any(|(_, r)| &r.oid == o));
    }
    let st = sa.mailbox("INBOX").await.unwrap();
    assert!(st.next_uid() > *uids.last().unwrap());
}

pub async fn user_mapping(c: Ctx) {
    let users_ns = c.ns("users");
    let cfg = RboxConfig::default()
        .apply_updates(&["user_mapping=true", &format!("user_ns={users_ns}")])
        .unwrap();
    let store = c.store_with(cfg);
    let alice = format!("alice-{}", c.run);
    // The error names the user as given (`alice-…`), not the object key (`alice-…_u`).
    match store.user(&alice).await.unwrap_err() {
        StoreError::UserMappingMissing(u) => assert_eq!(u, alice),
        other => panic!("expected UserMappingMissing, got {other:?}"),
    }
    let sp = store.user_or_create(&alice).await.unwrap();
    let ns = sp.namespace().to_string();
    assert!(
        Guid128::parse_hex(&ns).is_ok(),
        "mapped namespace is a 32-hex GUID: {ns}"
    );
    let obj = ObjectLocation::new(c.pool.clone(), users_ns.clone(), format!("{alice}_u"));
    assert_eq!(
        c.backend.read(&obj, 0, None).await.unwrap().data,
        ns.as_bytes()
    );
    assert_eq!(store.user(&alice).await.unwrap().namespace(), ns);
    assert_eq!(store.user_or_create(&alice).await.unwrap().namespace(), ns);
    assert!(matches!(
        store.create_user_mapping(&alice, None).await.unwrap_err(),
        StoreError::UserMappingExists { .. }
    ));
    let bob = format!("bob-{}", c.run);
    assert_eq!(store.rename_user(&alice, &bob).await.unwrap(), ns);
    assert_eq!(
        store.lookup_user_mapping(&bob).await.unwrap().as_deref(),
        Some(ns.as_str())
    );
    assert_eq!(store.lookup_user_mapping(&alice).await.unwrap(), None);
    assert!(matches!(
        store.rename_user(&alice, &bob).await.unwrap_err(),
        StoreError::UserMappingMissing(_)
    ));
    assert!(matches!(
        store.user("").await.unwrap_err(),
        StoreError::Namespace(_)
    ));
    assert!(matches!(
        store.user("a\nb").await.unwrap_err(),
        StoreError::Namespace(_)
    ));
    // Without mapping the key is the namespace.
    let plain = c.store();
    assert_eq!(plain.user("alice").await.unwrap().namespace(), "alice_u");
    assert!(matches!(
        plain.lookup_user_mapping("alice").await.unwrap_err(),
        StoreError::UserMappingDisabled
    ));
    assert_eq!(plain.public(false).await.unwrap().namespace(), "public");
}

pub async fn cfg_object_create_update(c: Ctx) {
    let store = Store::open(c.backend.clone(), c.config()).await.unwrap();
    assert!(!store.cfg_present());
    assert_eq!(store.cfg(), &RboxConfig::default());
    store.create_cfg(None).await.unwrap();
    let loc = ObjectLocation::new(c.pool.clone(), "", c.config().cfg_object);
    let r = c.backend.read(&loc, 0, None).await.unwrap();
    assert_eq!(r.data.len(), 282);
    assert_eq!(r.data, RboxConfig::default().to_json());
    assert!(r.xattrs.is_empty(), "rbox_cfg has no xattrs");
    assert!(matches!(
        store.create_cfg(None).await.unwrap_err(),
        StoreError::Backend(BackendError::Exists(_))
    ));
    let next = store.update_cfg(&["user_mapping=true"]).await.unwrap();
    assert!(next.user_mapping);
    let err = store.update_cfg(&["bogus=1"]).await.unwrap_err();
    assert!(matches!(err, StoreError::Cfg(_)), "{err:?}");
    let err = store
        .update_cfg(&["rbox_update_attributes=maybe"])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Cfg(_)), "{err:?}");
    let reopened = Store::open(c.backend.clone(), c.config()).await.unwrap();
    assert!(reopened.cfg_present());
    assert!(reopened.cfg().user_mapping);
    assert_eq!(reopened.read_cfg().await.unwrap().unwrap(), next);
    // A malformed object is a clear error, not a panic or silent defaults.
    c.backend
        .write_op(
            &loc,
            WriteOp::new().write_full(b"{\"user_mapping\": ".to_vec()),
        )
        .await
        .unwrap();
    assert!(matches!(
        Store::open(c.backend.clone(), c.config())
            .await
            .unwrap_err(),
        StoreError::Cfg(_)
    ));
    // … which write_cfg replaces.
    store.write_cfg(&RboxConfig::default()).await.unwrap();
    let fixed = Store::open(c.backend.clone(), c.config()).await.unwrap();
    assert_eq!(fixed.cfg(), &RboxConfig::default());
}

pub async fn zero_byte_object_reads_as_expunged(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let oid = Guid128::generate().to_hex();
    let m = upstream_meta(Guid128::generate(), Some(1), "INBOX", 0);
    upstream_object(&c, sp.namespace(), &oid, &m, b"").await;
    assert!(matches!(
        sp.read(&oid).await.unwrap_err(),
        StoreError::ZeroByte(_)
    ));
    let info = sp.mail_info(&oid).await.unwrap();
    assert!(info.is_zero_byte());
    assert_eq!(info.metadata.uid, Some(1));
}

pub async fn fsck_finds_and_repairs(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let kept = save(&sp, "INBOX", body(1)).await;
    let dangling = save(&sp, "INBOX", body(2)).await;
    let half_expunged = save(&sp, "INBOX", body(3)).await;
    let clean = sp.fsck(FsckOptions::check()).await.unwrap();
    assert!(clean.findings.is_empty(), "{:?}", clean.findings);
    let ns = sp.namespace().to_string();
    let inbox = kept.mailbox;
    // (a) body without index entry, keeping a free UID.
    let unindexed = Guid128::generate().to_hex();
    upstream_object(
        &c,
        &ns,
        &unindexed,
        &upstream_meta(inbox, Some(10), "INBOX", 5),
        b"hello",
    )
    .await;
    // (b) index entry whose object is gone.
    c.backend
        .remove(&c.loc(&ns, &dangling.oid.to_hex()))
        .await
        .unwrap();
    // (c) expunge interrupted after emptying the body.
    c.backend
        .write_op(
            &c.loc(&ns, &half_expunged.oid.to_hex()),
            WriteOp::new().truncate(0),
        )
        .await
        .unwrap();
    // (d) zero-byte leftover of an interrupted save.
    let leftover = Guid128::generate().to_hex();
    upstream_object(
        &c,
        &ns,
        &leftover,
        &upstream_meta(inbox, None, "INBOX", 0),
        b"",
    )
    .await;
    // (e) invalid metadata: never deleted.
    let invalid = Guid128::generate().to_hex();
    let mut bad = upstream_meta(inbox, Some(3), "INBOX", 4);
    bad.mailbox_guid = None;
    upstream_object(&c, &ns, &invalid, &bad, b"junk").await;
    // (f) two bodies claiming the same UID, and one without U.
    let dup1 = Guid128::generate().to_hex();
    let dup2 = Guid128::generate().to_hex();
    upstream_object(
        &c,
        &ns,
        &dup1,
        &upstream_meta(inbox, Some(20), "INBOX", 1),
        b"1",
    )
    .await;
    upstream_object(
        &c,
        &ns,
        &dup2,
        &upstream_meta(inbox, Some(20), "INBOX", 1),
        b"2",
    )
    .await;
    let no_uid = Guid128::generate().to_hex();
    upstream_object(
        &c,
        &ns,
        &no_uid,
        &upstream_meta(inbox, None, "INBOX", 1),
        b"3",
    )
    .await;
    // (g) a mail of a mailbox the index does not know.
    let lost_box = Guid128::generate();
    let lost = Guid128::generate().to_hex();
    upstream_object(
        &c,
        &ns,
        &lost,
        &upstream_meta(lost_box, Some(4), "Lost", 1),
        b"4",
    )
    .await;

    let report = sp.fsck(FsckOptions::check()).await.unwrap();
    for (kind, n) in [
        (FindingKind::UnindexedMail, 4),
        (FindingKind::DanglingEntry, 1),
        (FindingKind::ExpungedEntry, 1),
        (FindingKind::ZeroByteObject, 1),
        (FindingKind::InvalidMetadata, 1),
        (FindingKind::DuplicateUid, 1),
    ] {
        assert_eq!(report.count(kind), n, "{kind:?}: {:#?}", report.findings);
    }
    assert!(!report.is_clean());
    assert_eq!(report.repaired(), 0, "check mode changes nothing");
    assert!(sp.indexed(&unindexed).await.is_err());

    let repaired = sp.fsck(FsckOptions::repair()).await.unwrap();
    assert!(
        repaired.repair_errors.is_empty(),
        "{:?}",
        repaired.repair_errors
    );
    let left: Vec<FindingKind> = repaired.unrepaired().map(|f| f.kind).collect();
    assert_eq!(
        left,
        vec![FindingKind::InvalidMetadata],
        "{:#?}",
        repaired.findings
    );
    // Indexed at their own UIDs where free.
    assert_eq!(sp.indexed(&unindexed).await.unwrap().1, 10);
    let u1 = sp.indexed(&dup1).await.unwrap().1;
    let u2 = sp.indexed(&dup2).await.unwrap().1;
    assert!(u1 == 20 || u2 == 20);
    assert_ne!(u1, u2);
    let nu = sp.indexed(&no_uid).await.unwrap().1;
    assert_eq!(
        sp.mail_info(&no_uid).await.unwrap().metadata.uid,
        Some(nu),
        "U rewritten"
    );
    let (lost_mb, lost_uid, _) = sp.indexed(&lost).await.unwrap();
    assert_eq!(
        (lost_mb.guid, lost_mb.record.name.as_str(), lost_uid),
        (lost_box, "Lost", 4)
    );
    // Removed: the dangling entry, the half-expunged mail, the zero-byte leftover.
    assert!(matches!(
        sp.mail_info(&half_expunged.oid.to_hex()).await.unwrap_err(),
        StoreError::MailNotFound(_)
    ));
    assert!(matches!(
        sp.mail_info(&leftover).await.unwrap_err(),
        StoreError::MailNotFound(_)
    ));
    // Kept: the invalid object, untouched.
    assert_eq!(sp.read(&invalid).await.unwrap().data, b"junk");
    let uids: Vec<u32> = sp
        .list_mails("INBOX", 0, 100)
        .await
        .unwrap()
        .mails
        .iter()
        .map(|(u, _)| *u)
        .collect();
    assert!(uids.contains(&kept.uid) && !uids.contains(&dangling.uid));
    assert!(sp.mailbox("INBOX").await.unwrap().next_uid() > 20);
    // A second pass finds only what is left alone on purpose.
    let after = sp.fsck(FsckOptions::check()).await.unwrap();
    let kinds: Vec<FindingKind> = after.problems().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        vec![FindingKind::InvalidMetadata],
        "{:#?}",
        after.findings
    );
}

/// Garbage xattrs on indexed mails: fsck rewrites what the index record holds (librmb
/// bytes), leaves what it cannot rebuild alone and reports it, and never touches a body.
pub async fn fsck_rewrites_garbage_xattrs_from_index(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let ns = sp.namespace().to_string();
    let mut req = SaveRequest::new("INBOX", body(1));
    req.create_mailbox = true;
    req.received = Some(OBSERVED_R);
    req.flags = MailFlags::SEEN;
    let a = sp.save(req).await.unwrap();
    let b = save(&sp, "INBOX", body(2)).await;
    let cc = save(&sp, "INBOX", body(3)).await;
    let set = |oid: Guid128, pairs: Vec<(&'static str, Vec<u8>)>| {
        let loc = c.loc(&ns, &oid.to_hex());
        let backend = c.backend.clone();
        async move {
            let mut op = WriteOp::new().assert_exists();
            for (k, v) in pairs {
                op = op.set_xattr(k, v);
            }
            backend.write_op(&loc, op).await.expect("plant garbage");
        }
    };
    // a: a non-numeric R, a flags value that is not one byte + NUL, an M that is no GUID.
    set(
        a.oid,
        vec![
            ("R", text("yesterday")),
            ("F", b"xyz".to_vec()),
            ("M", text("not-a-guid")),
        ],
    )
    .await;
    // b: an empty G and a negative size.
    set(b.oid, vec![("G", text("")), ("Z", text("-5"))]).await;
    // c: a POP3 UIDL that is not UTF-8 (nothing rebuilds it) next to a bad R.
    set(cc.oid, vec![("P", vec![0xff, 0xfe, 0]), ("R", text("1e9"))]).await;

    let report = sp.fsck(FsckOptions::check()).await.unwrap();
    assert_eq!(
        report.count(FindingKind::InvalidMetadata),
        4,
        "{:#?}",
        report.findings
    );
    assert_eq!(report.problems().count(), 4, "{:#?}", report.findings);
    assert_eq!(report.repaired(), 0);

    let repaired = sp.fsck(FsckOptions::repair()).await.unwrap();
    assert!(
        repaired.repair_errors.is_empty(),
        "{:?}",
        repaired.repair_errors
    );
    let actions: Vec<&str> = repaired
        .findings
        .iter()
        .filter_map(|f| f.action.as_deref())
        .collect();
    assert_eq!(actions.len(), 3, "{:#?}", repaired.findings);
    assert!(
        actions.contains(&"rewrote F M R from the index record"),
        "{actions:?}"
    );
    let left: Vec<&str> = repaired.unrepaired().map(|f| f.detail.as_str()).collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].starts_with("P: ") && left[0].contains("left alone"),
        "{left:?}"
    );

    let xattrs = |oid: Guid128| {
        let loc = c.loc(&ns, &oid.to_hex());
        let backend = c.backend.clone();
        async move { backend.get_xattrs(&loc).await.unwrap() }
    };
    let xa = xattrs(a.oid).await;
    assert_eq!(xa["R"], text(&OBSERVED_R.to_string()));
    assert_eq!(xa["F"], vec![0x08, 0], "\\Seen as librmb's raw flags byte");
    assert_eq!(xa["M"], text(&a.mailbox.to_hex()));
    assert_eq!(xa["U"], text(&a.uid.to_string()));
    let xb = xattrs(b.oid).await;
    assert_eq!(xb["G"], text(&b.guid.to_string()));
    assert_eq!(xb["Z"], text(&b.physical_size.to_string()));
    let xc = xattrs(cc.oid).await;
    assert_eq!(xc["P"], vec![0xff, 0xfe, 0], "left alone");
    assert_ne!(xc["R"], text("1e9"));
    // Every body is intact and every mail still indexed where it was.
    for (m, i) in [(&a, 1), (&b, 2), (&cc, 3)] {
        assert_eq!(sp.read(&m.oid.to_hex()).await.unwrap().data, body(i));
        assert_eq!(sp.indexed(&m.oid.to_hex()).await.unwrap().1, m.uid);
    }
    let after = sp.fsck(FsckOptions::check()).await.unwrap();
    let kinds: Vec<FindingKind> = after.problems().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        vec![FindingKind::InvalidMetadata],
        "{:#?}",
        after.findings
    );
    assert_eq!(
        after.findings[0].oid.as_deref(),
        Some(cc.oid.to_hex().as_str())
    );
}

pub async fn build_index_from_librmb_objects(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let ns = sp.namespace().to_string();
    let (m1, m2) = (Guid128::generate(), Guid128::generate());
    let mut objs = Vec::new();
    for (mb, uid) in [
        (m1, Some(1)),
        (m1, Some(2)),
        (m1, None),
        (m2, Some(1)),
        (m2, Some(1)),
    ] {
        let oid = Guid128::generate().to_hex();
        upstream_object(
            &c,
            &ns,
            &oid,
            &upstream_meta(mb, uid, "INBOX", OBSERVED_BODY.len()),
            OBSERVED_BODY,
        )
        .await;
        objs.push(oid);
    }
    let foreign = "not-a-mail";
    c.backend
        .write_op(
            &c.loc(&ns, foreign),
            WriteOp::new().write_full(b"x".to_vec()),
        )
        .await
        .unwrap();
    let r = sp.build_index().await.unwrap();
    assert_eq!(r.objects_scanned, 6);
    assert_eq!(
        r.mails_indexed + r.fsck.count(FindingKind::DuplicateUid) as u64,
        5
    );
    assert_eq!(r.mailboxes_created, 2);
    assert_eq!(r.uids_assigned, 2, "one missing U, one duplicate U");
    assert_eq!(r.skipped, 1);
    assert_eq!(
        sp.index().truth().await.unwrap(),
        crate::index::format::Truth::Objects,
        "librmb wrote it: the objects own the truth"
    );
    // Counted before the repair the index had nothing; the summary counts again after.
    assert_eq!(r.fsck.records_checked, 0);
    assert_eq!(
        r.fsck.after_repair,
        Some(crate::store::FsckTotals {
            objects: 6,
            records: 5,
            mailboxes: 2
        })
    );
    let boxes = sp.list_mailboxes().await.unwrap();
    assert_eq!(boxes.len(), 2);
    let by_guid = |g: Guid128| boxes.iter().find(|b| b.guid == g).unwrap().name.clone();
    assert_eq!(by_guid(m1), "INBOX", "named after B");
    assert_ne!(
        by_guid(m2),
        "INBOX",
        "second INBOX-named box gets a distinct name"
    );
    let inbox = sp.list_mails("INBOX", 0, 100).await.unwrap().mails;
    assert_eq!(
        inbox.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    for o in &objs {
        sp.indexed(o).await.expect("every mail indexed");
    }
    assert!(matches!(
        sp.build_index().await.unwrap_err(),
        StoreError::IndexExists(_)
    ));
    let again = sp.fsck(FsckOptions::check()).await.unwrap();
    assert_eq!(
        again.problems().map(|f| f.kind).collect::<Vec<_>>(),
        vec![FindingKind::InvalidMetadata]
    );
    assert_eq!(again.after_repair, None, "a check changes nothing");
    assert_eq!(again.records_checked, 5);
    // The foreign object is untouched.
    assert_eq!(
        c.backend
            .read(&c.loc(&ns, foreign), 0, None)
            .await
            .unwrap()
            .data,
        b"x"
    );
}

pub async fn canary_round_trip(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "canary");
    let mut last_uid = 0;
    for _ in 1..=2u32 {
        let r = sp.run_canary().await.unwrap();
        let names: Vec<&str> = r.steps.iter().map(|s| s.name).collect();
        assert_eq!(names, ["save", "read", "verify_index", "expunge"]);
        assert!(r.uid > last_uid, "UIDs keep counting across runs");
        last_uid = r.uid;
        assert!(r.total >= r.step("save").unwrap());
        assert!(matches!(
            sp.mail_info(&r.oid).await.unwrap_err(),
            StoreError::MailNotFound(_)
        ));
    }
    assert!(sp.list_object_ids().await.unwrap().is_empty());
    assert!(
        sp.list_mails("INBOX", 0, 10)
            .await
            .unwrap()
            .mails
            .is_empty()
    );
}

pub async fn recovery_index_is_appended(c: Ctx) {
    let mut config = c.config();
    config.recovery_index = true;
    let store = Store::with_cfg(c.backend.clone(), config, RboxConfig::default());
    let sp = c.space(&store, "u");
    let a = save(&sp, "INBOX", body(1)).await;
    let b = save(&sp, "INBOX", body(2)).await;
    sp.expunge(&a.oid.to_hex()).await.unwrap();
    let obj = ObjectLocation::new(c.index_pool.clone(), "", sp.namespace());
    let data = c.backend.read(&obj, 0, None).await.unwrap().data;
    assert_eq!(
        data,
        format!("{},{},", a.oid, b.oid).into_bytes(),
        "not pruned on expunge"
    );
    let set = crate::format::recovery_index::decode(&data).unwrap();
    assert_eq!(set.len(), 2);
}

pub async fn scan_and_query(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let mut req = SaveRequest::new("INBOX", OBSERVED_BODY);
    req.create_mailbox = true;
    req.received = Some(OBSERVED_R);
    let a = sp.save(req).await.unwrap();
    let mut req = SaveRequest::new("Drafts", body(1));
    req.create_mailbox = true;
    req.received = Some(1_000_000_000);
    sp.save(req).await.unwrap();
    c.backend
        .write_op(
            &c.loc(sp.namespace(), "foreign"),
            WriteOp::new().write_full(b"x".to_vec()),
        )
        .await
        .unwrap();
    let scanned = sp.scan().await.unwrap();
    assert_eq!(scanned.len(), 3);
    let infos: Vec<_> = scanned.into_iter().map(|r| r.unwrap()).collect();
    let pick = |q: &str| -> Vec<String> {
        let q = Query::parse(q).unwrap();
        let mut v: Vec<String> = infos
            .iter()
            .filter(|i| q.matches(i.target()))
            .map(|i| i.oid.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(pick(&format!("M={};U=1", a.mailbox)), vec![a.oid.to_hex()]);
    assert_eq!(pick("R>2020-01-01 00:00:00;B=INBOX"), vec![a.oid.to_hex()]);
    assert_eq!(pick("Z>100").len(), 1);
    assert_eq!(pick("-").len(), 3);
    assert_eq!(pick("B=Drafts").len(), 1);
    let foreign = infos.iter().find(|i| i.oid == "foreign").unwrap();
    assert!(!foreign.metadata.missing_for_index().is_empty());
    // find = scan + query + sort.
    let found = sp
        .find(&Query::parse("-").unwrap(), SortKey::RecvDate)
        .await
        .unwrap();
    assert!(found.errors.is_empty());
    let order: Vec<Option<i64>> = found.mails.iter().map(|m| m.metadata.received).collect();
    assert_eq!(order, vec![None, Some(1_000_000_000), Some(OBSERVED_R)]);
    // purge = rmb delete -: every object of the namespace, mail and index.
    assert!(sp.purge().await.unwrap() >= 3);
    assert!(sp.list_object_ids().await.unwrap().is_empty());
    assert!(sp.list_mailboxes().await.unwrap().is_empty());
}

pub async fn set_attribute(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let s = save(&sp, "INBOX", body(1)).await;
    let oid = s.oid.to_hex();
    let m = sp
        .set_attribute(&oid, MetadataKey::ReceivedTime, "2017-10-10 12:12:12")
        .await
        .unwrap();
    assert_eq!(m.received, Some(1_507_637_532));
    let x = c
        .backend
        .get_xattrs(&c.loc(sp.namespace(), &oid))
        .await
        .unwrap();
    assert_eq!(x.get("R"), Some(&text("1507637532")));
    assert_eq!(sp.indexed(&oid).await.unwrap().2.received, 1_507_637_532);
    sp.set_attribute(&oid, MetadataKey::OrigMailbox, "Drafts")
        .await
        .unwrap();
    assert_eq!(
        sp.mail_info(&oid)
            .await
            .unwrap()
            .metadata
            .orig_mailbox
            .as_deref(),
        Some("Drafts")
    );
    for (k, v) in [
        (MetadataKey::MailUid, "5"),
        (MetadataKey::MailboxGuid, "x"),
        (MetadataKey::PhysicalSize, "big"),
        (MetadataKey::ReceivedTime, "yesterday"),
    ] {
        assert!(sp.set_attribute(&oid, k, v).await.is_err(), "{k:?}={v}");
    }
    let missing = Guid128::generate().to_hex();
    assert!(matches!(
        sp.set_attribute(&missing, MetadataKey::OrigMailbox, "x")
            .await
            .unwrap_err(),
        StoreError::MailNotFound(_)
    ));
    // delete_object on a non-mail object name removes it as is.
    c.backend
        .write_op(
            &c.loc(sp.namespace(), "junk"),
            WriteOp::new().write_full(b"j".to_vec()),
        )
        .await
        .unwrap();
    sp.delete_object("junk").await.unwrap();
    sp.delete_object(&oid).await.unwrap();
    assert!(sp.list_object_ids().await.unwrap().is_empty());
}

pub async fn write_behind_indexes_after_flush(c: Ctx) {
    let mut config = c.config();
    config.index_write_behind = true;
    let store = Store::with_cfg(c.backend.clone(), config, RboxConfig::default());
    let sp = c.space(&store, "u");
    sp.create_mailbox("INBOX").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let sp = sp.clone();
        tasks.push(tokio::spawn(async move {
            sp.save(SaveRequest::new("INBOX", body(i))).await
        }));
    }
    let mut oids = Vec::new();
    for t in tasks {
        oids.push(t.await.unwrap().unwrap().oid);
    }
    store.flush().await.unwrap();
    let listed = sp.list_mails("INBOX", 0, 100).await.unwrap().mails;
    assert_eq!(listed.len(), 20);
    for o in &oids {
        assert!(listed.iter().any(|(_, r)| &r.oid == o));
    }
    assert!(sp.fsck(FsckOptions::check()).await.unwrap().is_clean());
}

/// Every metadata xattr key, written through the store, is stored byte for byte as librmb
/// writes it (value + NUL; flags as one mask byte + NUL): `M G I R Z V B U` by save, `A P O F`
/// by save with a config that enables them, the rest by `set_attribute`.
pub async fn every_xattr_key_is_stored_byte_exact(c: Ctx) {
    let cfg = RboxConfig::default()
        .apply_updates(&["rbox_mail_attributes=MGPORZVBUIFAC"])
        .unwrap();
    let store = c.store_with(cfg);
    let sp = c.space(&store, "u");
    let mut req = SaveRequest::new("INBOX", OBSERVED_BODY);
    req.create_mailbox = true;
    req.received = Some(OBSERVED_R);
    req.flags = MailFlags::FLAGGED;
    req.pop3_uidl = Some("uidl-7".into());
    req.pop3_order = Some(3);
    req.from_envelope = Some("bounce@example.org".into());
    let saved = sp.save(req).await.unwrap();
    let oid = saved.oid.to_hex();
    for (k, v) in [
        (MetadataKey::ExtRef, "ref-1"),
        (MetadataKey::SaveTime, "2017-10-10 12:12:12"),
        (MetadataKey::PvtFlags, "8"),
        (MetadataKey::Version, "0.1"),
    ] {
        sp.set_attribute(&oid, k, v).await.unwrap();
    }
    let x = c
        .backend
        .get_xattrs(&c.loc(sp.namespace(), &oid))
        .await
        .unwrap();
    let want: Vec<(&str, Vec<u8>)> = vec![
        ("A", text("bounce@example.org")),
        ("B", text("INBOX")),
        ("C", vec![0x08, 0x00]),
        ("F", vec![0x02, 0x00]),
        ("G", text(&saved.guid.to_string())),
        ("I", text("0.1")),
        ("M", text(&saved.mailbox.to_hex())),
        ("O", text("3")),
        ("P", text("uidl-7")),
        ("R", text("1704110403")),
        ("S", text("1507637532")),
        ("U", text(&saved.uid.to_string())),
        ("V", text("265")),
        ("X", text("ref-1")),
        ("Z", text("256")),
    ];
    let got: Vec<(&str, Vec<u8>)> = x.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    assert_eq!(got, want);
    // And they decode back to what was written.
    let m = sp.mail_info(&oid).await.unwrap();
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    assert_eq!(m.metadata.save_time, Some(1_507_637_532));
    assert_eq!(m.metadata.ext_ref.as_deref(), Some("ref-1"));
}

/// Issue 19 item 2: a namespace with the plugin's mail but no omap index refuses to create
/// a mailbox (it would be a second INBOX with a new GUID) until `build_index` adopted them.
pub async fn create_mailbox_refused_beside_unindexed_plugin_mail(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let ns = sp.namespace().to_string();
    let inbox = Guid128::generate();
    let mut objs = Vec::new();
    for uid in 1..=3 {
        let oid = Guid128::generate().to_hex();
        upstream_object(
            &c,
            &ns,
            &oid,
            &upstream_meta(inbox, Some(uid), "INBOX", OBSERVED_BODY.len()),
            OBSERVED_BODY,
        )
        .await;
        objs.push(oid);
    }
    let mut req = SaveRequest::new("INBOX", body(1));
    req.create_mailbox = true;
    let e = sp.save(req.clone()).await.unwrap_err();
    match &e {
        StoreError::UnindexedMail {
            namespace,
            mailbox,
            oid,
        } => {
            assert_eq!(namespace, &ns);
            assert_eq!(mailbox, "INBOX");
            assert!(objs.contains(oid), "names one of the plugin's objects");
        }
        other => panic!("expected UnindexedMail, got {other:?}"),
    }
    assert!(e.to_string().contains("run `rbox index` first"), "{e}");
    assert!(matches!(
        sp.create_mailbox("Archive").await.unwrap_err(),
        StoreError::UnindexedMail { .. }
    ));
    assert!(!sp.index().exists().await.unwrap(), "no index was created");
    assert_eq!(
        sp.list_object_ids().await.unwrap().len(),
        3,
        "nothing written"
    );

    // Objects that are not mail (no M, or zero bytes) do not count.
    let other = c.space(&store, "foreign");
    for (oid, data) in [("foreign", b"x".to_vec()), ("leftover", Vec::new())] {
        c.backend
            .write_op(
                &c.loc(other.namespace(), oid),
                WriteOp::new().write_full(data),
            )
            .await
            .unwrap();
    }
    assert_eq!(other.first_unindexed_mail().await.unwrap(), None);
    other.save(req.clone()).await.expect("no plugin mail there");

    // Once indexed, the plugin's INBOX (its GUID) gets the new mail.
    sp.build_index().await.unwrap();
    let saved = sp.save(req).await.unwrap();
    assert_eq!(saved.mailbox, inbox);
    assert_eq!(saved.uid, 4);
    assert_eq!(sp.list_mailboxes().await.unwrap().len(), 1);
}

/// Issue 19 item 5: the index is found older than the mail it lists after another writer
/// (upstream's `doveadm force-resync`: `M` and `U` rewritten; an expunge: object removed).
pub async fn index_staleness_sees_other_writers(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let mut saved = Vec::new();
    for i in 0..3 {
        saved.push(save(&sp, "INBOX", body(i)).await);
    }
    let listed: Vec<_> = saved
        .iter()
        .map(|s| (s.mailbox, s.uid, s.oid.to_hex()))
        .collect();
    let fresh = sp.index_staleness(&listed).await.unwrap();
    assert!(!fresh.is_stale(), "{fresh:?}");
    assert_eq!(fresh.checked, 3);

    // force-resync: new M (Dovecot's own INBOX GUID) and a renumbered U, written later
    // than the index (an hour, so OSD clock differences cannot matter).
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);
    let resynced = &saved[0].oid.to_hex();
    c.backend
        .write_op(
            &c.loc(sp.namespace(), resynced),
            WriteOp::new()
                .set_xattr("M", text(&Guid128::generate().to_hex()))
                .set_xattr("U", text("6"))
                .with_mtime(later),
        )
        .await
        .unwrap();
    // An expunge by the plugin: the object is gone, the index still lists it.
    let expunged = saved[1].oid.to_hex();
    c.backend
        .remove(&c.loc(sp.namespace(), &expunged))
        .await
        .unwrap();
    let stale = sp.index_staleness(&listed).await.unwrap();
    assert!(stale.is_stale());
    assert_eq!(stale.checked, 3);
    assert_eq!(stale.changed, vec![resynced.clone()]);
    assert_eq!(stale.missing, vec![expunged]);
    assert!(stale.newest_object > stale.indexed_at);
}

/// What upstream's `doveadm force-resync` does to mail another writer saved
/// (rbox-observed §3): `M` becomes Dovecot's own GUID for the mailbox, `U` is renumbered
/// (here 1–3 → 6–8), UIDVALIDITY unchanged, nothing else touched.
async fn force_resync(c: &Ctx, sp: &Mailspace, saved: &[crate::store::SavedMail]) -> Guid128 {
    let dovecot_inbox = Guid128::generate();
    for (i, s) in saved.iter().enumerate() {
        c.backend
            .write_op(
                &c.loc(sp.namespace(), &s.oid.to_hex()),
                WriteOp::new()
                    .assert_exists()
                    .set_xattr("M", text(&dovecot_inbox.to_hex()))
                    .set_xattr("U", text(&(6 + i).to_string())),
            )
            .await
            .unwrap();
    }
    dovecot_inbox
}

async fn xattr(c: &Ctx, sp: &Mailspace, oid: &str, k: &str) -> Vec<u8> {
    c.backend
        .get_xattrs(&c.loc(sp.namespace(), oid))
        .await
        .unwrap()
        .remove(k)
        .unwrap_or_default()
}

/// Issue 19 item 1, objects own the truth (`rbox index` of a librmb namespace, or
/// `fsck --truth objects`): after a force-resync, fsck re-indexes from `M`/`U` — UIDs
/// Dovecot assigned are kept, the mailbox takes Dovecot's GUID with its name and
/// UIDVALIDITY — and never writes the old `M`/`U` back.
pub async fn fsck_objects_truth_follows_force_resync(c: Ctx) {
    use crate::index::format::Truth;
    let store = c.store();
    let sp = c.space(&store, "u");
    let mut saved = Vec::new();
    for i in 0..3 {
        saved.push(save(&sp, "INBOX", body(i)).await);
    }
    assert_eq!(sp.index().truth().await.unwrap(), Truth::Index, "default");
    let before = sp.mailbox("INBOX").await.unwrap();
    let dovecot_inbox = force_resync(&c, &sp, &saved).await;

    let opts = FsckOptions {
        truth: Some(Truth::Objects),
        ..FsckOptions::check()
    };
    let check = sp.fsck(opts.clone()).await.unwrap();
    assert_eq!(check.truth, Truth::Objects);
    assert_eq!(check.count(FindingKind::MismatchedEntry), 3, "{check:?}");
    assert_eq!(check.count(FindingKind::UnindexedMail), 0, "reported once");
    assert_eq!(
        sp.index().truth().await.unwrap(),
        Truth::Index,
        "a check stores nothing"
    );

    let repaired = sp
        .fsck(FsckOptions {
            repair: true,
            ..opts
        })
        .await
        .unwrap();
    assert!(repaired.unrepaired().next().is_none(), "{repaired:?}");
    assert_eq!(sp.index().truth().await.unwrap(), Truth::Objects, "stored");
    // The objects are as Dovecot left them.
    for (i, s) in saved.iter().enumerate() {
        let oid = s.oid.to_hex();
        assert_eq!(
            xattr(&c, &sp, &oid, "M").await,
            text(&dovecot_inbox.to_hex())
        );
        assert_eq!(xattr(&c, &sp, &oid, "U").await, text(&(6 + i).to_string()));
    }
    // One INBOX, now with Dovecot's GUID, its UIDVALIDITY, and Dovecot's UIDs.
    let boxes = sp.list_mailboxes().await.unwrap();
    assert_eq!(boxes.len(), 1, "{boxes:?}");
    assert_eq!(boxes[0].name, "INBOX");
    assert_eq!(boxes[0].guid, dovecot_inbox);
    assert_eq!(boxes[0].uidvalidity, before.uidvalidity);
    let mails = sp.list_mails("INBOX", 0, 100).await.unwrap().mails;
    assert_eq!(
        mails.iter().map(|(u, r)| (*u, r.oid)).collect::<Vec<_>>(),
        saved
            .iter()
            .enumerate()
            .map(|(i, s)| (6 + i as u32, s.oid))
            .collect::<Vec<_>>()
    );
    assert!(sp.mailbox("INBOX").await.unwrap().next_uid() >= 9);
    // A second resync would find nothing to reassign: the next fsck (setting stored) is clean.
    let again = sp.fsck(FsckOptions::check()).await.unwrap();
    assert!(again.is_clean(), "{again:?}");
    // New mail goes on after Dovecot's UIDs (another process: this store's mailbox cache
    // and UID leases still name the old GUID).
    let fresh = c.store();
    let sp2 = c.space(&fresh, "u");
    let next = save(&sp2, "INBOX", body(9)).await;
    assert_eq!((next.mailbox, next.uid), (dovecot_inbox, 9));
}

/// Issue 19 item 1, the index owns the truth (stateless mode, the default): the same
/// disagreement is repaired by rewriting `M`/`U` from the index.
pub async fn fsck_index_truth_rewrites_objects(c: Ctx) {
    use crate::index::format::Truth;
    let store = c.store();
    let sp = c.space(&store, "u");
    let mut saved = Vec::new();
    for i in 0..3 {
        saved.push(save(&sp, "INBOX", body(i)).await);
    }
    let inbox = saved[0].mailbox;
    force_resync(&c, &sp, &saved).await;
    let repaired = sp.fsck(FsckOptions::repair()).await.unwrap();
    assert_eq!(repaired.truth, Truth::Index);
    assert_eq!(repaired.count(FindingKind::MismatchedEntry), 3);
    assert!(repaired.unrepaired().next().is_none(), "{repaired:?}");
    for s in &saved {
        let oid = s.oid.to_hex();
        assert_eq!(xattr(&c, &sp, &oid, "M").await, text(&inbox.to_hex()));
        assert_eq!(xattr(&c, &sp, &oid, "U").await, text(&s.uid.to_string()));
    }
    assert!(sp.fsck(FsckOptions::check()).await.unwrap().is_clean());
}
