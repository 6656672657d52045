//! `rbox ls` and `rbox get`: find mails by an rmb query, from the omap index (cost: this
//! user) or by a librmb-style namespace scan (cost: the pool).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde_json::{Value, json};

use super::args::{GetArgs, LsArgs};
use super::error::{CliError, CliResult};
use super::output::{Table, bar, human_bytes, print, print_json, spinner};
use crate::StoreError;
use crate::format::date::format_date;
use crate::format::flags::MailFlags;
use crate::format::guid::Guid128;
use crate::format::metadata::{MailMetadata, MetadataKey};
use crate::format::query::{Query, QueryTarget, SortKey};
use crate::store::{MailInfo, Mailspace, Staleness};

/// Keys an index record answers without reading the object's xattrs.
const RECORD_KEYS: [MetadataKey; 7] = [
    MetadataKey::MailboxGuid,
    MetadataKey::Guid,
    MetadataKey::MailUid,
    MetadataKey::ReceivedTime,
    MetadataKey::SaveTime,
    MetadataKey::PhysicalSize,
    MetadataKey::VirtualSize,
];

/// Where the listing came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Index,
    Scan,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Index => "index",
            Source::Scan => "scan",
        }
    }
}

/// One listed mail.
#[derive(Clone, Debug)]
pub struct Listed {
    pub oid: String,
    pub meta: MailMetadata,
    /// Object mtime (scan) or the record's save date (index), Unix seconds.
    pub saved: i64,
    /// Current mailbox name (index), or `B` (scan).
    pub mailbox_name: Option<String>,
    pub flags: MailFlags,
    pub keywords: Vec<String>,
    /// Object size (scan, or when xattrs were read).
    pub object_size: Option<u64>,
}

impl Listed {
    fn target(&self) -> QueryTarget<'_> {
        QueryTarget {
            metadata: &self.meta,
            save_time: Some(self.saved),
        }
    }

    fn from_info(i: MailInfo, mailbox_name: Option<String>) -> Self {
        let flags = i
            .metadata
            .flags
            .and_then(|f| f.mask())
            .map(|m| MailFlags(m & MailFlags::ALL))
            .unwrap_or_default();
        Listed {
            saved: crate::store::unix_secs(i.mtime),
            mailbox_name: mailbox_name.or_else(|| i.metadata.orig_mailbox.clone()),
            oid: i.oid,
            flags,
            keywords: i.ima_keywords,
            object_size: Some(i.size),
            meta: i.metadata,
        }
    }

    pub fn to_json(&self) -> Value {
        let metadata: BTreeMap<String, String> = MetadataKey::ALL
            .iter()
            .filter_map(|k| self.meta.value_of(*k).map(|v| (k.letter().to_string(), v)))
            .collect();
        json!({
            "oid": self.oid,
            "mailbox": self.meta.mailbox_guid.map(|g| g.to_hex()),
            "mailbox_name": self.mailbox_name,
            "uid": self.meta.uid,
            "received": self.meta.received,
            "saved": self.saved,
            "physical_size": self.meta.physical_size,
            "virtual_size": self.meta.virtual_size,
            "object_size": self.object_size,
            "guid": self.meta.guid.as_ref().map(|g| g.to_string()),
            "flags": self.flags.names(),
            "keywords": self.keywords,
            "metadata": metadata,
        })
    }
}

/// What a listing found.
#[derive(Debug)]
pub struct Listing {
    pub source: Source,
    pub mails: Vec<Listed>,
    /// Objects that are not valid mails (scan), or records whose object could not be read.
    pub invalid: Vec<(String, String)>,
    /// Index listings: whether the index looks older than the mail it lists.
    pub stale: Option<Staleness>,
}

/// Run a query, sorted (by mailbox name, then `sort`, then object id).
pub async fn find(
    sp: &Mailspace,
    query: &Query,
    sort: SortKey,
    scan: bool,
    mailbox: Option<&str>,
    quiet: bool,
) -> CliResult<Listing> {
    let use_scan = scan || !sp.index().exists().await?;
    if use_scan && !scan {
        eprintln!(
            "rbox: namespace {:?} has no omap index; scanning it instead (build the index with `rbox index`)",
            sp.namespace()
        );
    }
    let mut l = if use_scan {
        scan_namespace(sp, quiet).await?
    } else {
        from_index(sp, query, mailbox, quiet).await?
    };
    l.mails.retain(|m| query.matches(m.target()));
    // Grouped by mailbox: its name, then its GUID (a scan only knows `B`, the name at save
    // time, which mails of different mailboxes may share).
    l.mails.sort_by(|a, b| {
        a.mailbox_name
            .cmp(&b.mailbox_name)
            .then_with(|| a.meta.mailbox_guid.cmp(&b.meta.mailbox_guid))
            .then_with(|| sort.value(a.target()).cmp(&sort.value(b.target())))
            .then_with(|| a.oid.cmp(&b.oid))
    });
    Ok(l)
}

/// librmb's way: list the namespace, then stat + xattrs of every object.
async fn scan_namespace(sp: &Mailspace, quiet: bool) -> CliResult<Listing> {
    let ids = sp.list_object_ids().await?;
    let pb = bar(ids.len() as u64, "scanning", quiet);
    let infos: Vec<(String, Result<MailInfo, StoreError>)> = futures::stream::iter(ids)
        .map(|oid| {
            let pb = &pb;
            async move {
                let r = match sp.mail_info(&oid).await {
                    // Keywords the plugin keeps in the object's omap, as `rbox index` reads them.
                    Ok(mut i) if i.size > 0 && i.metadata.mailbox_guid.is_some() => {
                        sp.stored_keywords(&i).await.map(|k| {
                            i.ima_keywords = k;
                            i
                        })
                    }
                    r => r,
                };
                pb.inc(1);
                (oid, r)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    pb.finish_and_clear();
    let mut mails = Vec::new();
    let mut invalid = Vec::new();
    for (oid, r) in infos {
        match r {
            Ok(i) if i.is_zero_byte() => {
                invalid.push((oid, "zero-byte object (being written or expunged)".into()))
            }
            Ok(i) if !i.errors.is_empty() => {
                let why: Vec<String> = i.errors.iter().map(ToString::to_string).collect();
                invalid.push((oid, why.join("; ")));
            }
            Ok(i) if i.metadata.mailbox_guid.is_none() => {
                invalid.push((oid, "no M xattr: not a mail object".into()))
            }
            Ok(i) => mails.push(Listed::from_info(i, None)),
            // Vanished between listing and reading.
            Err(StoreError::MailNotFound(_)) => {}
            Err(e) => invalid.push((oid, e.to_string())),
        }
    }
    Ok(Listing {
        source: Source::Scan,
        mails,
        invalid,
        stale: None,
    })
}

/// rbox-core's way: mailbox list, then each mailbox's records; xattrs only when the query
/// asks for keys the records do not hold.
async fn from_index(
    sp: &Mailspace,
    query: &Query,
    only: Option<&str>,
    quiet: bool,
) -> CliResult<Listing> {
    let mut boxes = sp.list_mailboxes().await?;
    if let Some(name) = only {
        boxes.retain(|b| b.name == name);
        if boxes.is_empty() {
            return Err(StoreError::MailboxNotFound(name.to_string()).into());
        }
    }
    let pb = spinner("listing", quiet);
    let mut mails = Vec::new();
    for b in &boxes {
        let mut after = 0;
        loop {
            let page = sp.index().list_records(&b.guid, after, 1000).await?;
            pb.inc(page.records.len() as u64);
            for (uid, r) in page.records {
                mails.push(Listed {
                    oid: r.oid.to_hex(),
                    meta: MailMetadata {
                        mailbox_guid: Some(b.guid),
                        guid: Some(r.guid),
                        uid: Some(uid),
                        received: Some(r.received),
                        physical_size: Some(r.physical_size),
                        virtual_size: Some(r.virtual_size),
                        ..Default::default()
                    },
                    saved: r.saved,
                    mailbox_name: Some(b.name.clone()),
                    flags: r.flags,
                    keywords: r.keywords,
                    object_size: None,
                });
            }
            match page.next_after {
                Some(a) => after = a,
                None => break,
            }
        }
    }
    pb.finish_and_clear();
    let listed: Vec<_> = mails
        .iter()
        .filter_map(|m| Some((m.meta.mailbox_guid?, m.meta.uid?, m.oid.clone())))
        .collect();
    let stale = Some(sp.index_staleness(&listed).await?);
    let mut invalid = Vec::new();
    if query
        .predicates
        .iter()
        .any(|p| !RECORD_KEYS.contains(&p.key))
    {
        // The query needs xattrs (B, P, O, I, A, F, …): read them for these mails only.
        let pb = bar(mails.len() as u64, "xattrs", quiet);
        let read: Vec<(Listed, Result<MailInfo, StoreError>)> = futures::stream::iter(mails)
            .map(|m| {
                let pb = &pb;
                async move {
                    let r = sp.mail_info(&m.oid).await;
                    pb.inc(1);
                    (m, r)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        pb.finish_and_clear();
        mails = Vec::new();
        for (m, r) in read {
            match r {
                Ok(i) => {
                    let mut l = Listed::from_info(i, m.mailbox_name);
                    // The index is the truth for flags, keywords and the save date.
                    l.flags = m.flags;
                    l.keywords = m.keywords;
                    l.saved = m.saved;
                    mails.push(l);
                }
                Err(e) => invalid.push((m.oid, format!("indexed, but: {e}"))),
            }
        }
    }
    Ok(Listing {
        source: Source::Index,
        mails,
        invalid,
        stale,
    })
}

fn flags_cell(f: MailFlags) -> String {
    f.names().join(" ")
}

pub fn render_table(l: &Listing, limit: Option<usize>) -> String {
    let mut t = Table::new(&[
        "MAILBOX", ">UID", "OID", "RECEIVED", "SAVED", ">SIZE", "FLAGS", "KEYWORDS",
    ]);
    let shown = l.mails.iter().take(limit.unwrap_or(usize::MAX));
    for m in shown {
        let name = m.mailbox_name.clone().unwrap_or_else(|| "?".into());
        t.row(vec![
            match (l.source, m.meta.mailbox_guid) {
                // `B` alone does not tell mailboxes apart: add the GUID's first 8 digits.
                (Source::Scan, Some(g)) => format!("{name} ({})", &g.to_hex()[..8]),
                _ => name,
            },
            m.meta.uid.map(|u| u.to_string()).unwrap_or_default(),
            m.oid.clone(),
            m.meta.received.map(format_date).unwrap_or_default(),
            format_date(m.saved),
            m.meta
                .physical_size
                .or(m.object_size)
                .map(|s| s.to_string())
                .unwrap_or_default(),
            flags_cell(m.flags),
            m.keywords.join(" "),
        ]);
    }
    let mut out = t.render();
    // Counted by GUID (`M`), as rmb does, not by name.
    let mailboxes: std::collections::BTreeSet<_> =
        l.mails.iter().map(|m| m.meta.mailbox_guid).collect();
    let bytes: u64 = l
        .mails
        .iter()
        .map(|m| m.meta.physical_size.or(m.object_size).unwrap_or(0))
        .sum();
    out.push_str(&format!(
        "{} mails in {} mailboxes, {} (from the {})\n",
        l.mails.len(),
        mailboxes.len(),
        human_bytes(bytes),
        l.source.as_str()
    ));
    for (oid, why) in &l.invalid {
        out.push_str(&format!("invalid: {oid}: {why}\n"));
    }
    out
}

/// The warning `rbox ls` prints (stderr) when the index looks stale.
pub fn stale_warning(ns: &str, s: &Staleness) -> Option<String> {
    if !s.is_stale() {
        return None;
    }
    Some(format!(
        "rbox: warning: the omap index of namespace {ns:?} is older than its mail: of the {} newest \
         indexed mails checked, {} changed after the index was last written and {} are gone \
         (another writer, e.g. Dovecot with upstream's rbox plugin, does not update the index); \
         `rbox ls --scan` lists the objects as they are, `rbox fsck` shows what differs",
        s.checked,
        s.changed.len(),
        s.missing.len()
    ))
}

pub fn to_json(sp: &Mailspace, l: &Listing, limit: Option<usize>) -> Value {
    json!({
        "index_stale": l.stale.as_ref().map(|s| json!({
            "stale": s.is_stale(), "checked": s.checked, "changed": s.changed,
            "missing": s.missing, "newest_object": s.newest_object, "indexed_at": s.indexed_at,
        })),
        "namespace": sp.namespace(),
        "source": l.source.as_str(),
        "count": l.mails.len(),
        "mails": l.mails.iter().take(limit.unwrap_or(usize::MAX)).map(Listed::to_json).collect::<Vec<_>>(),
        "invalid": l.invalid.iter().map(|(o, w)| json!({"oid": o, "error": w})).collect::<Vec<_>>(),
    })
}

pub async fn ls(sp: &Mailspace, a: &LsArgs, json: bool, quiet: bool) -> CliResult<()> {
    let query = Query::parse(&a.query).map_err(|e| CliError::Usage(e.to_string()))?;
    let l = find(sp, &query, a.sort, a.scan, a.mailbox.as_deref(), quiet).await?;
    if let Some(w) = l
        .stale
        .as_ref()
        .and_then(|s| stale_warning(sp.namespace(), s))
    {
        eprintln!("{w}");
    }
    if json {
        print_json(&to_json(sp, &l, a.limit))
    } else {
        print(&render_table(&l, a.limit))
    }
}

fn is_oid(s: &str) -> bool {
    Guid128::parse_hex(s).is_ok()
}

fn default_out() -> CliResult<PathBuf> {
    std::env::var_os("HOME")
        .map(|h| Path::new(&h).join("rmb"))
        .ok_or_else(|| CliError::Usage("HOME is not set: give --out".into()))
}

/// `<out>/<mailbox guid>/<uid>.<oid>`, as rmb names them.
pub fn out_path(out: &Path, m: &Listed) -> PathBuf {
    let mb = m
        .meta
        .mailbox_guid
        .map(|g| g.to_hex())
        .unwrap_or_else(|| "unknown".into());
    let uid = m.meta.uid.map(|u| u.to_string()).unwrap_or_default();
    out.join(mb).join(format!("{uid}.{}", m.oid))
}

pub async fn get(sp: &Mailspace, a: &GetArgs, json: bool, quiet: bool) -> CliResult<()> {
    if is_oid(&a.target) && a.out.is_none() {
        let mail = sp.read(&a.target).await?;
        let mut out = std::io::stdout().lock();
        use std::io::Write;
        return match out.write_all(&mail.data).and_then(|_| out.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(CliError::io("writing to stdout", e)),
        };
    }
    let out = match &a.out {
        Some(o) => o.clone(),
        None => default_out()?,
    };
    let mails = if is_oid(&a.target) {
        let info = sp.mail_info(&a.target).await?;
        vec![Listed::from_info(info, None)]
    } else {
        let query = Query::parse(&a.target).map_err(|e| CliError::Usage(e.to_string()))?;
        find(sp, &query, SortKey::Uid, a.scan, None, quiet)
            .await?
            .mails
    };
    let pb = bar(mails.len() as u64, "downloading", quiet);
    let mut written = Vec::new();
    for m in &mails {
        let mail = sp.read(&m.oid).await?;
        let path = out_path(&out, m);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir.display(), e))?;
        }
        std::fs::write(&path, &mail.data).map_err(|e| CliError::io(path.display(), e))?;
        written.push(path);
        pb.inc(1);
    }
    pb.finish_and_clear();
    if json {
        print_json(&json!({
            "count": written.len(),
            "files": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        }))
    } else {
        let mut s: String = written
            .iter()
            .map(|p| format!("{}\n", p.display()))
            .collect();
        s.push_str(&format!(
            "{} mails written to {}\n",
            written.len(),
            out.display()
        ));
        print(&s)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::backend::{Backend, ObjectLocation, WriteOp};
    use crate::format::cfg::RboxConfig;
    use crate::format::guid::MailGuid;
    use crate::format::metadata::encode_keywords;
    use crate::store::{Store, StoreConfig};

    const BODY: &[u8] = b"From: sender3 <sender3@peer.test>\nTo: alice\nSubject: rbox ground truth 3 (imap append)\n\nMessage three.\n";

    fn store(backend: Arc<MemoryBackend>, attrs: &str) -> Store {
        let cfg = RboxConfig::default()
            .apply_updates(&[&format!("rbox_mail_attributes={attrs}")])
            .unwrap();
        Store::with_cfg(backend, StoreConfig::new("mail", "index"), cfg)
    }

    /// An object as upstream's plugin writes it (rbox-observed §2.2): NUL-terminated
    /// decimal xattrs `B G I M R U V Z`, keywords (if any) in the object's omap.
    async fn plugin_object(
        b: &MemoryBackend,
        ns: &str,
        mailbox: Guid128,
        b_name: &str,
        uid: u32,
        keywords: &[&str],
    ) -> String {
        let oid = Guid128::generate().to_hex();
        let m = MailMetadata {
            mailbox_guid: Some(mailbox),
            guid: Some(MailGuid::Compact(Guid128::generate())),
            received: Some(1_704_110_403),
            physical_size: Some(BODY.len() as u64),
            virtual_size: Some(BODY.len() as u64 + 5),
            orig_mailbox: Some(b_name.into()),
            uid: Some(uid),
            version: Some("0.1".into()),
            ..Default::default()
        };
        let mut op = WriteOp::new().create(true).write_full(BODY.to_vec());
        for (k, v) in m.encode() {
            op = op.set_xattr(k, v);
        }
        if !keywords.is_empty() {
            let kw: Vec<String> = keywords.iter().map(|k| k.to_string()).collect();
            op = op.omap_set(encode_keywords(&kw));
        }
        b.write_op(&ObjectLocation::new("mail", ns, &oid), op)
            .await
            .unwrap();
        oid
    }

    /// Issue 19 items 3 and 4: INBOX with two mails and Archive with a copy (which keeps
    /// `B=INBOX`, as upstream's COPY does) and keywords in its omap.
    async fn upstream_layout(attrs: &str) -> (Store, Mailspace, Guid128, Guid128, String) {
        let backend = Arc::new(MemoryBackend::with_pools(&["mail", "index"]));
        let store = store(backend.clone(), attrs);
        let sp = store.namespace("alice_u").unwrap();
        let (inbox, archive) = (Guid128::generate(), Guid128::generate());
        plugin_object(&backend, "alice_u", inbox, "INBOX", 1, &[]).await;
        plugin_object(&backend, "alice_u", inbox, "INBOX", 2, &[]).await;
        let copy = plugin_object(
            &backend,
            "alice_u",
            archive,
            "INBOX",
            1,
            &["$Label1", "Junk"],
        )
        .await;
        (store, sp, inbox, archive, copy)
    }

    async fn scan(sp: &Mailspace) -> Listing {
        find(
            sp,
            &Query::parse("-").unwrap(),
            SortKey::Uid,
            true,
            None,
            true,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn index_listing_warns_when_the_index_is_older_than_its_mail() {
        let backend = Arc::new(MemoryBackend::with_pools(&["mail", "index"]));
        let store = store(backend.clone(), "MGPORZVBUI");
        let sp = store.namespace("alice_u").unwrap();
        let mut req = crate::store::SaveRequest::new("INBOX", BODY);
        req.create_mailbox = true;
        let saved = sp.save(req).await.unwrap();
        let all = Query::parse("-").unwrap();
        let l = find(&sp, &all, SortKey::Uid, false, None, true)
            .await
            .unwrap();
        let s = l.stale.as_ref().unwrap();
        assert!(!s.is_stale());
        assert_eq!(stale_warning("alice_u", s), None);
        // Dovecot (upstream's plugin) expunges it: the index does not know.
        backend
            .remove(&ObjectLocation::new("mail", "alice_u", saved.oid.to_hex()))
            .await
            .unwrap();
        let l = find(&sp, &all, SortKey::Uid, false, None, true)
            .await
            .unwrap();
        let s = l.stale.as_ref().unwrap();
        let w = stale_warning("alice_u", s).expect("stale");
        assert!(w.contains("older than its mail"), "{w}");
        assert!(w.contains("1 are gone"), "{w}");
        assert!(w.contains("rbox ls --scan"), "{w}");
        assert_eq!(
            to_json(&sp, &l, None)["index_stale"]["missing"][0],
            saved.oid.to_hex()
        );
        // A scan has nothing to compare.
        assert!(scan(&sp).await.stale.is_none());
    }

    #[tokio::test]
    async fn scan_counts_mailboxes_by_guid_not_by_saved_name() {
        let (_store, sp, inbox, archive, copy) = upstream_layout("MGPORZVBUI").await;
        let l = scan(&sp).await;
        assert_eq!(l.mails.len(), 3);
        let out = render_table(&l, None);
        assert!(out.contains("3 mails in 2 mailboxes"), "{out}");
        // The rows of one mailbox are together, and each shows which GUID it is.
        let tags: Vec<String> = l
            .mails
            .iter()
            .map(|m| m.meta.mailbox_guid.unwrap().to_hex())
            .collect();
        let mut grouped = tags.clone();
        grouped.dedup();
        assert_eq!(grouped.len(), 2, "grouped by M: {tags:?}");
        for g in [inbox, archive] {
            assert!(
                out.contains(&format!("INBOX ({})", &g.to_hex()[..8])),
                "{out}"
            );
        }
        let row = out.lines().find(|r| r.contains(&copy)).unwrap();
        assert!(row.contains(&archive.to_hex()[..8]), "{row}");
        // JSON keeps B as the name and M as the mailbox.
        let j = to_json(&sp, &l, None);
        let m = j["mails"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["oid"] == copy.as_str())
            .unwrap();
        assert_eq!(m["mailbox"], archive.to_hex().as_str());
        assert_eq!(m["mailbox_name"], "INBOX");
    }

    #[tokio::test]
    async fn scan_shows_keywords_from_the_object_omap_like_the_index() {
        let (_store, sp, _inbox, _archive, copy) = upstream_layout("MGPORZVBUIK").await;
        let l = scan(&sp).await;
        let m = l.mails.iter().find(|m| m.oid == copy).unwrap();
        assert_eq!(m.keywords, vec!["$Label1", "Junk"]);
        let out = render_table(&l, None);
        let row = out.lines().find(|r| r.contains(&copy)).unwrap();
        assert!(row.contains("$Label1 Junk"), "{row}");
        // The same keywords `rbox index` puts in the index.
        sp.build_index().await.unwrap();
        let idx = find(
            &sp,
            &Query::parse("-").unwrap(),
            SortKey::Uid,
            false,
            None,
            true,
        )
        .await
        .unwrap();
        assert_eq!(idx.source, Source::Index);
        let r = idx.mails.iter().find(|m| m.oid == copy).unwrap();
        assert_eq!(r.keywords, m.keywords);
        // Without K in rbox_mail_attributes the omap is not read (as rbox index).
        let (_s, sp2, _, _, copy2) = upstream_layout("MGPORZVBUI").await;
        let l2 = scan(&sp2).await;
        assert!(
            l2.mails
                .iter()
                .find(|m| m.oid == copy2)
                .unwrap()
                .keywords
                .is_empty()
        );
    }
}
