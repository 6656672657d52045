//! Mails whose UIDs Dovecot's index assigns (the plugin's index-on-disk mode).

use super::Ctx;
use super::store_cases::OBSERVED_BODY;
use crate::error::StoreError;
use crate::format::flags::MailFlags;
use crate::format::guid::{Guid128, MailGuid};
use crate::store::{
    ExternalFlags, ExternalMail, ExternalMailbox, ExternalMirror, MirrorOp, external_records,
};

fn mail(uid: u32, body: &[u8]) -> ExternalMail<'_> {
    let oid = Guid128::generate();
    ExternalMail {
        uid,
        oid,
        guid: MailGuid::Compact(Guid128::generate()),
        body,
        source: None,
        received: 1_704_110_403,
        saved: 1_704_110_404,
        flags: MailFlags::SEEN,
        keywords: vec!["$Label1".into()],
        pop3_uidl: None,
        pop3_order: None,
    }
}

/// Every xattr (with the UID Dovecot gave) lands in one op, and the omap index mirrors it.
pub async fn external_save_writes_upstream_bytes_and_mirrors(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let mb = ExternalMailbox {
        guid: Guid128::generate(),
        name: "INBOX".into(),
    };
    let mails = [mail(7, OBSERVED_BODY), mail(8, b"Subject: x\n\nshort\n")];
    let saved = sp.save_external(&mb, &mails).await.unwrap();
    assert!(saved.index_error.is_none(), "{:?}", saved.index_error);
    assert_eq!(
        saved.oids,
        [mails[0].oid, mails[1].oid],
        "Dovecot's object ids are kept"
    );
    let r = c
        .backend
        .read(&c.loc(sp.namespace(), &saved.oids[0].to_hex()), 0, None)
        .await
        .unwrap();
    assert_eq!(r.data, OBSERVED_BODY);
    let names: Vec<&str> = r.xattrs.keys().map(String::as_str).collect();
    assert_eq!(names, ["B", "G", "I", "M", "R", "U", "V", "Z"]);
    assert_eq!(r.xattrs["U"], b"7\0");
    assert_eq!(r.xattrs["V"], b"265\0");
    assert_eq!(r.xattrs["Z"], b"256\0");
    assert_eq!(
        r.xattrs["M"],
        format!("{}\0", mb.guid.to_hex()).into_bytes()
    );
    let listed = sp
        .index()
        .mailbox(&mb.guid)
        .await
        .unwrap()
        .expect("mailbox mirrored");
    assert_eq!(listed.record.name, "INBOX");
    let h = sp.index().header(&mb.guid).await.unwrap().unwrap();
    assert_eq!(h.next_uid, 9, "omap next_uid follows Dovecot's UIDs");
    let (_, rec) = sp
        .index()
        .get_record(&mb.guid, h.shard_span, 7)
        .await
        .unwrap()
        .expect("record for UID 7");
    assert_eq!(rec.oid, saved.oids[0]);
    assert_eq!(rec.flags, MailFlags::SEEN);
    assert_eq!(rec.keywords, ["$Label1"]);
    assert_eq!(
        sp.read_body(&saved.oids[1]).await.unwrap(),
        b"Subject: x\n\nshort\n"
    );
}

/// Flags mirror as final values; expunge removes objects and records, tolerating gone ones.
pub async fn external_flags_and_expunge(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let mb = ExternalMailbox {
        guid: Guid128::generate(),
        name: "Work".into(),
    };
    let mails = [mail(1, b"a\n"), mail(2, b"b\n")];
    let saved = sp.save_external(&mb, &mails).await.unwrap();
    sp.set_flags_external(
        &mb,
        &[ExternalFlags {
            uid: 2,
            flags: MailFlags::FLAGGED,
            keywords: vec![],
        }],
    )
    .await
    .unwrap();
    let h = sp.index().header(&mb.guid).await.unwrap().unwrap();
    let (_, rec) = sp
        .index()
        .get_record(&mb.guid, h.shard_span, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rec.flags, rec.keywords.len()), (MailFlags::FLAGGED, 0));
    // One object vanished behind our back: expunge still succeeds.
    c.backend
        .remove(&c.loc(sp.namespace(), &saved.oids[0].to_hex()))
        .await
        .unwrap();
    sp.expunge_external(&mb, &[(1, saved.oids[0]), (2, saved.oids[1])])
        .await
        .unwrap();
    assert!(matches!(
        sp.read_body(&saved.oids[1]).await,
        Err(StoreError::MailNotFound(_))
    ));
    let page = sp.index().list_records(&mb.guid, 0, 10).await.unwrap();
    assert!(
        page.records.is_empty(),
        "records removed: {:?}",
        page.records
    );
    // Rename and delete follow the external index.
    let renamed = ExternalMailbox {
        name: "Work/Old".into(),
        ..mb.clone()
    };
    sp.ensure_external_mailbox(&renamed).await.unwrap();
    assert!(
        sp.index()
            .mailbox_by_name("Work/Old")
            .await
            .unwrap()
            .is_some()
    );
    sp.delete_external_mailbox(&renamed).await.unwrap();
    assert!(sp.index().mailbox(&mb.guid).await.unwrap().is_none());
}

/// An oversized mail is refused before anything is written.
pub async fn external_save_refuses_oversize(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let mb = ExternalMailbox {
        guid: Guid128::generate(),
        name: "INBOX".into(),
    };
    let big = vec![b'x'; (sp.write_limits().max_object_size + 1) as usize];
    let err = sp.save_external(&mb, &[mail(1, &big)]).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(sp.index().mailbox(&mb.guid).await.unwrap().is_none());
}

/// The queued mirror: saves from many commits land merged and in order with the flag
/// change and expunge queued after them; `flush` waits for all of it.
pub async fn external_mirror_queue_applies_in_order(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let mb = ExternalMailbox {
        guid: Guid128::generate(),
        name: "INBOX".into(),
    };
    let mirror = ExternalMirror::new(4);
    let mut oids = Vec::new();
    // More commits than the backlog holds: push waits instead of growing without bound.
    for uid in 1..=10u32 {
        let body = format!("Subject: {uid}\n\nbody {uid}\n");
        let mails = [mail(uid, body.as_bytes())];
        let written = sp.write_external(&mb, &mails).await.unwrap();
        let op = MirrorOp::Saves {
            mailbox: mb.clone(),
            records: external_records(&mails, &written),
        };
        mirror.push(&sp, op).await;
        oids.extend(written.iter().map(|w| w.oid));
    }
    mirror
        .push(
            &sp,
            MirrorOp::Flags {
                mailbox: mb.clone(),
                changes: vec![ExternalFlags {
                    uid: 3,
                    flags: MailFlags::ANSWERED,
                    keywords: vec!["Work".into()],
                }],
            },
        )
        .await;
    sp.remove_external_objects(&[(4, oids[3])]).await.unwrap();
    mirror
        .push(
            &sp,
            MirrorOp::Expunges {
                mailbox: mb.clone(),
                mails: vec![(4, oids[3])],
            },
        )
        .await;
    mirror.flush().await;
    assert_eq!(mirror.pending(), 0);
    let h = sp.index().header(&mb.guid).await.unwrap().unwrap();
    assert_eq!(h.next_uid, 11);
    let page = sp.index().list_records(&mb.guid, 0, 100).await.unwrap();
    let uids: Vec<u32> = page.records.iter().map(|(u, _)| *u).collect();
    assert_eq!(uids, [1, 2, 3, 5, 6, 7, 8, 9, 10]);
    let (_, three) = &page.records[2];
    assert_eq!(
        (three.flags, three.keywords.clone()),
        (MailFlags::ANSWERED, vec!["Work".to_string()]),
        "the flag change queued after the save applied after it"
    );
    assert!(
        page.records
            .iter()
            .all(|(u, r)| r.oid == oids[*u as usize - 1])
    );
}

/// A copy reads its source object in RADOS and writes a new one with the destination's
/// `M`/`U` (the data and the mail GUID kept); a missing source fails the whole commit and
/// leaves nothing of it behind.
pub async fn external_copy_reads_source_in_rados(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let inbox = ExternalMailbox {
        guid: Guid128::generate(),
        name: "INBOX".into(),
    };
    let archive = ExternalMailbox {
        guid: Guid128::generate(),
        name: "Archive".into(),
    };
    let src = [mail(1, OBSERVED_BODY)];
    let saved = sp.save_external(&inbox, &src).await.unwrap();
    let copy = ExternalMail {
        body: &[],
        source: Some(saved.oids[0]),
        guid: src[0].guid.clone(),
        ..mail(5, &[])
    };
    let written = sp
        .write_external(&archive, std::slice::from_ref(&copy))
        .await
        .unwrap();
    assert_ne!(written[0].oid, saved.oids[0], "a copy is a new object");
    assert_eq!(written[0].physical_size, OBSERVED_BODY.len() as u64);
    let r = c
        .backend
        .read(&c.loc(sp.namespace(), &written[0].oid.to_hex()), 0, None)
        .await
        .unwrap();
    assert_eq!(r.data, OBSERVED_BODY);
    assert_eq!(r.xattrs["U"], b"5\0");
    assert_eq!(
        r.xattrs["M"],
        format!("{}\0", archive.guid.to_hex()).into_bytes()
    );
    let src_obj = c
        .backend
        .read(&c.loc(sp.namespace(), &saved.oids[0].to_hex()), 0, None)
        .await
        .unwrap();
    assert_eq!(r.xattrs["G"], src_obj.xattrs["G"], "the mail GUID is kept");
    assert_eq!(r.xattrs["V"], b"265\0");
    // One good copy and one of a vanished object: nothing of the commit stays.
    let before = sp.list_object_ids().await.unwrap().len();
    let gone = ExternalMail {
        source: Some(Guid128::generate()),
        ..copy.clone()
    };
    let good = ExternalMail {
        uid: 6,
        oid: Guid128::generate(),
        ..copy
    };
    let err = sp
        .write_external(&archive, &[good, gone])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::MailNotFound(_)), "{err:?}");
    assert_eq!(sp.list_object_ids().await.unwrap().len(), before);
}

/// A save that died before Dovecot's index commit leaves an object and its record; Dovecot
/// then hands the same UID to the next mail. The mirror follows Dovecot (the record points
/// at the new mail) and fsck finds the earlier object, which --repair moves to a new UID.
pub async fn external_reassigned_uid_follows_dovecot(c: Ctx) {
    let store = c.store();
    let sp = c.space(&store, "u");
    let mb = ExternalMailbox {
        guid: Guid128::generate(),
        name: "INBOX".into(),
    };
    let ghost = sp.save_external(&mb, &[mail(1, b"ghost\n")]).await.unwrap();
    let real = sp.save_external(&mb, &[mail(1, b"real\n")]).await.unwrap();
    assert!(real.index_error.is_none(), "{:?}", real.index_error);
    let h = sp.index().header(&mb.guid).await.unwrap().unwrap();
    let (_, rec) = sp
        .index()
        .get_record(&mb.guid, h.shard_span, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.oid, real.oids[0], "UID 1 is the mail Dovecot shows");
    let opts = crate::store::FsckOptions {
        grace: Some(std::time::Duration::ZERO),
        ..crate::store::FsckOptions::check()
    };
    let report = sp.fsck(opts.clone()).await.unwrap();
    let ghost_hex = ghost.oids[0].to_hex();
    assert!(
        report
            .problems()
            .any(|f| f.oid.as_deref() == Some(ghost_hex.as_str())),
        "{report:?}"
    );
    let repaired = sp
        .fsck(crate::store::FsckOptions {
            repair: true,
            ..opts.clone()
        })
        .await
        .unwrap();
    assert!(repaired.unrepaired().next().is_none(), "{repaired:?}");
    assert!(sp.fsck(opts).await.unwrap().is_clean());
    assert_eq!(sp.read_body(&ghost.oids[0]).await.unwrap(), b"ghost\n");
}
