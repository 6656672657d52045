//! The `rbox` binary against the real micro Ceph (`make test` starts it): every command a
//! user relies on, with its exit code, on this test's own pools.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rbox_core::backend::librados::LibradosBackend;
use rbox_core::backend::{Backend, ObjectLocation, WriteOp};
use rbox_core::format::cfg::RboxConfig;
use rbox_core::format::flags::MailFlags;
use rbox_core::format::guid::{Guid128, MailGuid};
use rbox_core::format::metadata::{MailMetadata, encode_keywords};
use rbox_core::rados::Cluster;
use rbox_core::store::{SaveRequest, Store, StoreConfig};
use serde_json::{Value, json};

use common::{Rbox, connect, create_pool, delete_pool, stderr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local environment (make test)"]
async fn rbox_cli_against_ceph() {
    let cluster = connect().await;
    let tag = format!(
        "{}-{}",
        std::process::id(),
        rbox_core::format::Guid128::generate().nsec()
    );
    let (mail, index) = (format!("cli-mail-{tag}"), format!("cli-index-{tag}"));
    create_pool(&cluster, &mail).await;
    create_pool(&cluster, &index).await;
    let result = tokio::spawn({
        let (cluster, mail, index) = (cluster.clone(), mail.clone(), index.clone());
        async move { scenario(cluster, mail, index).await }
    })
    .await;
    delete_pool(&cluster, &mail).await;
    delete_pool(&cluster, &index).await;
    result.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
}

async fn scenario(cluster: Cluster, mail: String, index: String) {
    let backend: Arc<dyn Backend> = Arc::new(LibradosBackend::new(cluster));
    let mut config = StoreConfig::new(mail.clone(), index.clone());
    config.fsck_grace = Duration::ZERO;
    let store = Store::open(backend.clone(), config).await.unwrap();
    let ns = "alice_u";
    let sp = store.namespace(ns).unwrap();
    let rbox = Rbox {
        pool: mail.clone(),
        index_pool: index.clone(),
    };

    // A body with CRLF, NUL and high bytes must come back byte for byte.
    let body: Vec<u8> =
        b"From: a@b.example\r\nSubject: cli\r\n\r\nbinary \x00\xff\xfe tail\r\n".to_vec();
    let mut req = SaveRequest::new("INBOX", body.clone());
    req.create_mailbox = true;
    req.received = Some(1_704_110_403);
    let first = sp.save(req).await.unwrap();
    let mut req = SaveRequest::new("INBOX", b"Subject: second\n\nx\n".to_vec());
    req.received = Some(1_704_200_000);
    let second = sp.save(req).await.unwrap();
    let oid = first.oid.to_hex();

    // ls: index listing with a query and a sort; the scan finds the same mails.
    let ls = rbox.json(&[
        "-N",
        ns,
        "ls",
        "R<2024-01-02 00:00:00",
        "--sort",
        "recv_date",
    ]);
    assert_eq!(ls["source"], "index");
    assert_eq!(ls["count"], 1, "{ls}");
    assert_eq!(ls["mails"][0]["oid"], oid.as_str());
    assert_eq!(ls["mails"][0]["uid"], first.uid);
    let all = rbox.json(&["-N", ns, "ls", "-", "--sort", "phy_size"]);
    assert_eq!(all["count"], 2);
    assert_eq!(
        all["mails"][0]["oid"],
        second.oid.to_hex().as_str(),
        "smaller first"
    );
    let scan = rbox.json(&["-N", ns, "ls", "--scan", &format!("U={}", second.uid)]);
    assert_eq!(scan["source"], "scan");
    assert_eq!(scan["mails"][0]["oid"], second.oid.to_hex().as_str());
    assert_eq!(scan["mails"][0]["metadata"]["B"], "INBOX");
    // A query on an xattr-only key (B) through the index reads the xattrs.
    let by_b = rbox.json(&["-N", ns, "ls", "B=INBOX;U>0"]);
    assert_eq!(by_b["count"], 2);
    let human = rbox.run(&["-N", ns, "ls"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains(&oid));

    // get: the body on stdout, byte-exact; a query writes rmb's file layout.
    let got = rbox.run(&["-N", ns, "get", &oid]);
    assert_eq!(got.status.code(), Some(0));
    assert_eq!(got.stdout, body);
    let dir = std::env::temp_dir().join(format!("rbox-cli-get-{mail}"));
    let files = rbox.json(&["-N", ns, "get", "U>0", "--out", dir.to_str().unwrap()]);
    assert_eq!(files["count"], 2);
    let path = dir
        .join(first.mailbox.to_hex())
        .join(format!("{}.{oid}", first.uid));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    let _ = std::fs::remove_dir_all(&dir);

    // set: a flag lands in the index; an attribute pair lands in the xattr.
    assert_eq!(rbox.code(&["-N", ns, "set", &oid, "--add-flag", "seen"]), 0);
    let (_, _, rec) = sp.indexed(&oid).await.unwrap();
    assert!(rec.flags.contains(MailFlags::SEEN), "{rec:?}");
    let set = rbox.json(&["-N", ns, "set", &oid, "B", "Archive"]);
    assert_eq!(set["metadata"]["B"], "Archive");
    assert_eq!(
        sp.mail_info(&oid)
            .await
            .unwrap()
            .metadata
            .orig_mailbox
            .as_deref(),
        Some("Archive")
    );
    assert_eq!(
        rbox.code(&["-N", ns, "set", &oid, "U", "7"]),
        2,
        "U belongs to the index"
    );

    // delete without confirmation is refused and deletes nothing.
    let refused = rbox.run(&["-N", ns, "delete", &oid]);
    assert_eq!(refused.status.code(), Some(4));
    assert!(stderr(&refused).contains("--yes-i-really-mean-it"));
    assert_eq!(sp.read(&oid).await.unwrap().data, body);
    assert_eq!(rbox.code(&["-N", ns, "delete", "-"]), 4);
    assert_eq!(sp.list_object_ids().await.unwrap().len(), 2);

    // fsck: plant a zero-byte leftover and a dangling index entry.
    let leftover = "0123456789abcdef0123456789abcdef";
    backend
        .write_op(
            &ObjectLocation::new(mail.clone(), ns, leftover),
            WriteOp::new().create(true),
        )
        .await
        .unwrap();
    backend
        .remove(&ObjectLocation::new(mail.clone(), ns, second.oid.to_hex()))
        .await
        .unwrap();
    let check = rbox.run(&["-N", ns, "fsck", "--grace", "0", "--json"]);
    assert_eq!(check.status.code(), Some(3), "findings without repair");
    let report: Value = serde_json::from_slice(&check.stdout).unwrap();
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"ZeroByteObject"), "{kinds:?}");
    assert!(kinds.contains(&"DanglingEntry"), "{kinds:?}");
    // --repair without confirmation fixes the index but keeps the leftover object.
    assert_eq!(
        rbox.code(&["-N", ns, "fsck", "--grace", "0", "--repair"]),
        3
    );
    assert!(
        sp.list_object_ids()
            .await
            .unwrap()
            .contains(&leftover.to_string())
    );
    let fixed = rbox.run(&[
        "-N",
        ns,
        "fsck",
        "--grace",
        "0",
        "--repair",
        "--yes-i-really-mean-it",
    ]);
    assert_eq!(
        fixed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fixed.stdout)
    );
    assert_eq!(rbox.code(&["-N", ns, "fsck", "--grace", "0"]), 0);
    assert!(
        !sp.list_object_ids()
            .await
            .unwrap()
            .contains(&leftover.to_string())
    );
    assert_eq!(rbox.json(&["-N", ns, "ls"])["count"], 1);

    // mailbox ls.
    let boxes = rbox.json(&["-N", ns, "mailbox", "ls", "--usage"]);
    assert_eq!(boxes["mailboxes"][0]["name"], "INBOX");
    assert_eq!(boxes["mailboxes"][0]["mails"], 1);

    // cfg: defaults shown while absent, created byte-exact, bad keys refused clearly.
    let shown = rbox.json(&["cfg", "show"]);
    assert_eq!(shown["present"], false);
    assert_eq!(shown["config"]["user_suffix"], "_u");
    assert_eq!(rbox.code(&["cfg", "create"]), 0);
    let raw = rbox.run(&["cfg", "show", "--raw"]);
    assert_eq!(raw.stdout, RboxConfig::default().to_json());
    assert_eq!(raw.stdout.len(), 282);
    assert_eq!(rbox.code(&["cfg", "create"]), 1, "already exists");
    let bad = rbox.run(&["cfg", "update", "no_such_key=1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("unknown rbox_cfg key \"no_such_key\""),
        "{}",
        stderr(&bad)
    );
    assert_eq!(
        rbox.code(&["cfg", "update", "rbox_update_attributes=maybe"]),
        2
    );
    assert_eq!(rbox.code(&["cfg", "update", "user_mapping"]), 2);
    let updated = rbox.json(&["cfg", "update", "rbox_update_attributes=true"]);
    assert_eq!(updated["config"]["rbox_update_attributes"], "true");
    let now = rbox.json(&["cfg", "show"]);
    assert_eq!(now["present"], true);
    assert_eq!(now["config"]["rbox_update_attributes"], "true");
    // A malformed rbox_cfg is a clear error, not a crash; --force needs confirmation.
    backend
        .write_op(
            &ObjectLocation::new(mail.clone(), "", "rbox_cfg"),
            WriteOp::new().write_full(b"{\"user_mapping\": tru".to_vec()),
        )
        .await
        .unwrap();
    let broken = rbox.run(&["-N", ns, "ls"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        stderr(&broken).contains("not valid JSON"),
        "{}",
        stderr(&broken)
    );
    assert_eq!(rbox.code(&["cfg", "create", "--force"]), 4);
    assert_eq!(
        rbox.code(&[
            "cfg",
            "create",
            "--force",
            "--yes-i-really-mean-it",
            "user_mapping=true"
        ]),
        0
    );
    // With user mapping on, an unknown user has no namespace (not found), and a user name
    // that cannot be a namespace is a usage error.
    assert_eq!(rbox.code(&["-u", "nobody", "ls"]), 5);
    assert_eq!(rbox.code(&["user", "show", "carol"]), 5);
    let carol = rbox.json(&["user", "create", "carol", "--to", ns]);
    assert_eq!(carol["namespace"], ns);
    assert_eq!(
        rbox.json(&["-u", "carol", "ls"])["count"],
        1,
        "carol's mail is alice_u's"
    );
    assert_eq!(rbox.code(&["user", "rename", "carol", "dave"]), 0);
    assert_eq!(rbox.json(&["user", "show", "dave"])["namespace"], ns);
    assert_eq!(rbox.code(&["-u", "carol", "ls"]), 5);
    assert_eq!(rbox.code(&["user", "delete", "dave"]), 4);
    assert_eq!(
        rbox.code(&["user", "delete", "dave", "--yes-i-really-mean-it"]),
        0
    );
    assert_eq!(rbox.json(&["-N", ns, "ls"])["count"], 1, "the mail stays");
    assert_eq!(rbox.code(&["-u", "bad\u{1}user", "ls"]), 2);
    assert_eq!(rbox.code(&["-N", ns, "ls", "U<abc"]), 2);

    // lspools, canary.
    let pools = rbox.json(&["lspools"]);
    assert!(
        pools["pools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == mail.as_str())
    );
    let canary = rbox.json(&["-N", "cli-canary", "canary"]);
    assert_eq!(canary["namespace"], "cli-canary");

    // bench: save keeps its mails for read and list; cleanup needs confirmation.
    let save = rbox.json(&[
        "-N",
        "cli-bench",
        "bench",
        "save",
        "--count",
        "40",
        "-b",
        "4K",
        "--keep",
    ]);
    assert_eq!(save["ops"], 40);
    let read = rbox.json(&["-N", "cli-bench", "bench", "read", "-b", "4K"]);
    assert_eq!(read["ops"], 40);
    let list = rbox.json(&["-N", "cli-bench", "bench", "list", "--count", "2"]);
    assert_eq!(list["mails"], 40);
    assert_eq!(rbox.code(&["-N", "cli-bench", "bench", "cleanup"]), 4);
    assert_eq!(
        rbox.code(&[
            "-N",
            "cli-bench",
            "bench",
            "cleanup",
            "--yes-i-really-mean-it"
        ]),
        0
    );

    // bench mixed: intervals and a summary as JSON lines, a ledger of the live mails.
    let ledger = std::env::temp_dir().join(format!("rbox-cli-ledger-{mail}"));
    let mixed = rbox.run(&[
        "-N",
        "cli-mixed",
        "bench",
        "mixed",
        "--duration",
        "3",
        "-t",
        "4",
        "--report-every",
        "1",
        "--json",
        "--ledger",
        ledger.to_str().unwrap(),
    ]);
    assert_eq!(mixed.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8_lossy(&mixed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    let summary = lines.last().unwrap();
    assert_eq!(summary["mode"], "mixed");
    assert!(lines.len() >= 3, "intervals, then the summary: {lines:?}");
    assert!(summary["ok"]["save"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["errors"], json!({}), "{summary}");
    let live = std::fs::read_to_string(&ledger).unwrap();
    assert_eq!(
        live.lines().count() as u64,
        summary["live_mails"].as_u64().unwrap()
    );
    let first = live.lines().next().unwrap().split(' ').next().unwrap();
    assert_eq!(rbox.code(&["-N", "cli-mixed", "get", first]), 0);
    let _ = std::fs::remove_file(&ledger);

    // delete with confirmation expunges.
    assert_eq!(
        rbox.code(&["-N", ns, "delete", &oid, "--yes-i-really-mean-it"]),
        0
    );
    assert!(sp.read(&oid).await.is_err());
    assert_eq!(rbox.json(&["-N", ns, "ls"])["count"], 0);

    beside_upstream_plugin(&backend, &rbox, &mail).await;
}

/// An object as upstream's plugin writes it (rbox-observed §2.2): NUL-terminated decimal
/// xattrs, keywords in the object's omap.
async fn plugin_object(
    backend: &Arc<dyn Backend>,
    loc: ObjectLocation,
    mailbox: Guid128,
    uid: u32,
    keywords: &[&str],
) {
    let body = b"From: sender3 <sender3@peer.test>\nSubject: upstream\n\nbody\n";
    let m = MailMetadata {
        mailbox_guid: Some(mailbox),
        guid: Some(MailGuid::Compact(Guid128::generate())),
        received: Some(1_704_110_403),
        physical_size: Some(body.len() as u64),
        virtual_size: Some(body.len() as u64 + 4),
        orig_mailbox: Some("INBOX".into()),
        uid: Some(uid),
        version: Some("0.1".into()),
        ..Default::default()
    };
    let mut op = WriteOp::new().create(true).write_full(body.to_vec());
    for (k, v) in m.encode() {
        op = op.set_xattr(k, v);
    }
    let kw: Vec<String> = keywords.iter().map(|k| k.to_string()).collect();
    if !kw.is_empty() {
        op = op.omap_set(encode_keywords(&kw));
    }
    backend.write_op(&loc, op).await.unwrap();
}

fn nul(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Issue 19: the tool beside a namespace upstream's plugin wrote (and force-resynced).
async fn beside_upstream_plugin(backend: &Arc<dyn Backend>, rbox: &Rbox, mail: &str) {
    let ns = "plugin_u";
    let loc = |oid: &str| ObjectLocation::new(mail.to_string(), ns, oid);
    let (inbox, archive) = (Guid128::generate(), Guid128::generate());
    let oids: Vec<String> = (0..3).map(|_| Guid128::generate().to_hex()).collect();
    plugin_object(backend, loc(&oids[0]), inbox, 1, &[]).await;
    plugin_object(backend, loc(&oids[1]), inbox, 2, &[]).await;
    // A COPY to Archive keeps B=INBOX; keywords in the object's omap.
    plugin_object(backend, loc(&oids[2]), archive, 1, &["$Label1", "Junk"]).await;

    // save --create-mailbox refuses to make a second INBOX.
    let file = std::env::temp_dir().join(format!("rbox-i19-{mail}.eml"));
    std::fs::write(&file, b"Subject: new\n\nx\n").unwrap();
    let f = file.to_str().unwrap();
    let refused = rbox.run(&["-N", ns, "save", "--create-mailbox", "-f", f]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("run `rbox index` first"),
        "{}",
        stderr(&refused)
    );

    // ls --scan: counted by GUID, keywords from the omap (K configured).
    assert_eq!(
        rbox.code(&["cfg", "update", "rbox_mail_attributes=MGPORZVBUIK"]),
        0
    );
    let human = rbox.run(&["-N", ns, "ls", "--scan"]);
    let out = String::from_utf8_lossy(&human.stdout);
    assert!(out.contains("3 mails in 2 mailboxes"), "{out}");
    let scan = rbox.json(&["-N", ns, "ls", "--scan"]);
    let copy = scan["mails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["oid"] == oids[2].as_str())
        .unwrap();
    assert_eq!(copy["keywords"], json!(["$Label1", "Junk"]));

    // rbox index, then upstream's force-resync (new M, renumbered U) and an expunge.
    assert_eq!(rbox.code(&["-N", ns, "index"]), 0);
    let dovecot_inbox = Guid128::generate();
    for (i, oid) in oids[..2].iter().enumerate() {
        backend
            .write_op(
                &loc(oid),
                WriteOp::new()
                    .set_xattr("M", nul(&dovecot_inbox.to_hex()))
                    .set_xattr("U", nul(&(6 + i).to_string()))
                    .with_mtime(std::time::SystemTime::now() + Duration::from_secs(3600)),
            )
            .await
            .unwrap();
    }
    let stale = rbox.run(&["-N", ns, "ls"]);
    assert_eq!(stale.status.code(), Some(0));
    assert!(
        stderr(&stale).contains("older than its mail"),
        "{}",
        stderr(&stale)
    );
    assert!(stderr(&stale).contains("2 changed"), "{}", stderr(&stale));

    // (The hour ahead made the objects "young" for fsck: stamp them now.)
    for (i, oid) in oids[..2].iter().enumerate() {
        backend
            .write_op(
                &loc(oid),
                WriteOp::new().set_xattr("U", nul(&(6 + i).to_string())),
            )
            .await
            .unwrap();
    }
    // fsck --repair follows Dovecot (rbox index set truth=objects) and says so after.
    let fixed = rbox.run(&["-N", ns, "fsck", "--grace", "0", "--repair"]);
    let out = String::from_utf8_lossy(&fixed.stdout);
    assert_eq!(fixed.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "namespace {ns} after repair: 3 objects, 3 index records, 2 mailboxes"
        )),
        "{out}"
    );
    for (i, oid) in oids[..2].iter().enumerate() {
        let x = backend.get_xattrs(&loc(oid)).await.unwrap();
        assert_eq!(x["M"], nul(&dovecot_inbox.to_hex()), "M not written back");
        assert_eq!(x["U"], nul(&(6 + i).to_string()), "U not written back");
    }
    let ls = rbox.json(&["-N", ns, "ls", "--mailbox", "INBOX"]);
    let uids: Vec<u64> = ls["mails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["uid"].as_u64().unwrap())
        .collect();
    assert_eq!(uids, vec![6, 7], "Dovecot's UIDs kept");
    assert_eq!(ls["mails"][0]["mailbox"], dovecot_inbox.to_hex().as_str());
    assert_eq!(rbox.code(&["-N", ns, "fsck", "--grace", "0"]), 0);
    assert_eq!(
        rbox.code(&["-N", ns, "save", "-f", f]),
        0,
        "indexed: saves work"
    );
    let _ = std::fs::remove_file(&file);

    // A missing user mapping names the user as given (user_mapping is on here).
    let erin = rbox.run(&["-u", "erin", "ls"]);
    assert_eq!(erin.status.code(), Some(5));
    assert!(stderr(&erin).contains("\"erin\""), "{}", stderr(&erin));
    assert!(!stderr(&erin).contains("erin_u"), "{}", stderr(&erin));
}
