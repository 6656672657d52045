//! fsck: compare a namespace's mail objects with its omap index, report every
//! inconsistency, and (with `repair`) fix them. `index` (migration) is fsck's re-indexing on a
//! namespace that has no index yet.
//!
//! Rule zero: a mail body with valid metadata is never deleted — it is re-indexed. Only
//! zero-byte objects (interrupted saves/expunges) and index entries are removed. Garbage
//! xattrs of an indexed mail are rewritten from its index record ([`super::fsck_xattrs`]);
//! garbage nothing can rebuild is reported and left alone.
//! Objects younger than the grace period are left alone: a save or expunge may still be
//! working on them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use futures::StreamExt;

use super::Mailspace;
use super::body::unix_secs;
use super::fsck_xattrs::{Indexed, describe, rebuildable};
use super::read::MailInfo;
use crate::backend::{BackendError, NamespaceFilter, WriteOp};
use crate::error::{Result, StoreError};
use crate::format::flags::{FlagsByte, MailFlags};
use crate::format::guid::{Guid128, MailGuid};
use crate::format::metadata::{MetadataKey, encode_text};
use crate::index::format::{
    self, KEY_HEADER, MailboxState, Truth, parse_mail_key, parse_shard_object, shard_of,
};
use crate::index::mailboxes::ListedMailbox;
use crate::index::{MailRecord, MailboxHeader, MailboxRecord};

/// What kind of problem a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// Zero-byte mail object no index entry points to (interrupted save or expunge).
    ZeroByteObject,
    /// Object whose metadata does not decode or lacks `M`/`G`. Never deleted; when the
    /// object is indexed, repair rewrites the values the index record holds.
    InvalidMetadata,
    /// Mail with valid metadata and no index entry.
    UnindexedMail,
    /// Two mails claim the same mailbox and UID; one gets a new UID.
    DuplicateUid,
    /// Index entry whose object does not exist.
    DanglingEntry,
    /// Index entry whose object is zero bytes (interrupted expunge).
    ExpungedEntry,
    /// Index entry whose object says another mailbox or UID (`M`/`U`).
    MismatchedEntry,
    /// One object referenced by several index entries.
    DuplicateReference,
    /// An index key or value that does not decode.
    CorruptIndexEntry,
    /// A record's UID is not below the mailbox's next UID.
    HeaderBehind,
    /// A listed mailbox without its head object.
    MissingHead,
    /// A mailbox left half-deleted.
    DeletingMailbox,
    /// An index object of a mailbox that is not in the list.
    OrphanIndexObject,
    /// A name entry that does not match the mailbox records.
    NameEntryMismatch,
    /// `Z` differs from the object size (expected for compressed mails; informational).
    SizeMismatch,
    /// Not examined further: younger than the grace period.
    TooYoung,
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsckFinding {
    pub kind: FindingKind,
    pub oid: Option<String>,
    pub mailbox: Option<Guid128>,
    pub uid: Option<u32>,
    pub detail: String,
    /// What repair did (when it did something).
    pub action: Option<String>,
}

/// The result of [`Mailspace::fsck`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    pub namespace: String,
    pub objects_scanned: u64,
    pub records_checked: u64,
    pub mailboxes: u64,
    pub findings: Vec<FsckFinding>,
    /// Repairs that failed (the finding stays unrepaired).
    pub repair_errors: Vec<String>,
    /// The namespace counted again after a repair that changed something (`None`
    /// otherwise: the counts above, taken before repairing, still hold).
    pub after_repair: Option<FsckTotals>,
    /// Who owned the truth in this run (objects' `M`/`U` or the index records).
    pub truth: Truth,
}

/// Objects, index records and mailboxes of a namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsckTotals {
    pub objects: u64,
    pub records: u64,
    pub mailboxes: u64,
}

impl FsckReport {
    /// Findings that are problems (not informational).
    pub fn problems(&self) -> impl Iterator<Item = &FsckFinding> {
        self.findings
            .iter()
            .filter(|f| !matches!(f.kind, FindingKind::SizeMismatch | FindingKind::TooYoung))
    }

    /// Nothing wrong was found (informational findings aside).
    pub fn is_clean(&self) -> bool {
        self.repair_errors.is_empty() && self.problems().next().is_none()
    }

    /// Problems that are still there: not repaired, or left alone on purpose (invalid
    /// metadata nothing can rebuild is never touched).
    pub fn unrepaired(&self) -> impl Iterator<Item = &FsckFinding> {
        self.problems().filter(|f| f.action.is_none())
    }

    pub fn count(&self, kind: FindingKind) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }

    pub fn repaired(&self) -> usize {
        self.findings.iter().filter(|f| f.action.is_some()).count()
    }
}

/// How fsck runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsckOptions {
    pub repair: bool,
    /// Override the store's grace period.
    pub grace: Option<Duration>,
    /// Remove zero-byte leftovers when repairing (off for `index`, which never deletes).
    pub remove_leftovers: bool,
    /// Who owns the truth for this run, overriding the namespace's `truth` setting; with
    /// `repair` it is also stored as the setting.
    pub truth: Option<Truth>,
}

impl FsckOptions {
    pub fn check() -> Self {
        Self {
            repair: false,
            grace: None,
            remove_leftovers: true,
            truth: None,
        }
    }
    pub fn repair() -> Self {
        Self {
            repair: true,
            ..Self::check()
        }
    }
}

/// What [`Mailspace::build_index`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexBuildReport {
    pub objects_scanned: u64,
    pub mailboxes_created: u64,
    pub mails_indexed: u64,
    /// Mails whose `U` had to be rewritten (missing or duplicate UIDs).
    pub uids_assigned: u64,
    /// Objects left out: invalid metadata, zero bytes, or too young.
    pub skipped: u64,
    pub fsck: FsckReport,
}

#[derive(Clone, Debug)]
struct Rec {
    mailbox: Guid128,
    uid: u32,
    raw: Vec<u8>,
    record: MailRecord,
}

struct Run {
    opts: FsckOptions,
    truth: Truth,
    grace: Duration,
    now: SystemTime,
    report: FsckReport,
}

impl Run {
    fn find(
        &mut self,
        kind: FindingKind,
        oid: Option<&str>,
        mailbox: Option<Guid128>,
        uid: Option<u32>,
        detail: impl Into<String>,
    ) -> usize {
        self.report.findings.push(FsckFinding {
            kind,
            oid: oid.map(str::to_string),
            mailbox,
            uid,
            detail: detail.into(),
            action: None,
        });
        self.report.findings.len() - 1
    }

    /// Run a repair for finding `i` and record its outcome.
    fn outcome(&mut self, i: usize, r: Result<String>) {
        match r {
            Ok(action) => self.report.findings[i].action = Some(action),
            Err(e) => {
                let f = &self.report.findings[i];
                self.report.repair_errors.push(format!(
                    "{:?} {:?}: {e}",
                    f.kind,
                    f.oid.as_deref().unwrap_or("")
                ));
            }
        }
    }

    fn young(&self, info: &MailInfo) -> bool {
        self.now
            .duration_since(info.mtime)
            .map(|age| age < self.grace)
            .unwrap_or(true)
    }
}

/// Valid metadata a record can be rebuilt from: decodes, has every key the index needs, a
/// usable `U`, and a GUID object id.
fn object_is_indexable(info: &MailInfo) -> bool {
    info.errors.is_empty()
        && !info.is_zero_byte()
        && info.metadata.missing_for_index().is_empty()
        && info
            .metadata
            .uid
            .is_some_and(|u| (1..u32::MAX).contains(&u))
        && Guid128::parse_hex(&info.oid).is_ok()
}

impl Mailspace {
    /// Check (and with `opts.repair`, fix) this namespace. See the module docs.
    pub async fn fsck(&self, opts: FsckOptions) -> Result<FsckReport> {
        let grace = opts.grace.unwrap_or(self.inner.config.fsck_grace);
        let truth = match opts.truth {
            Some(t) => t,
            None => self.index.truth().await?,
        };
        let store_truth = opts.repair && opts.truth.is_some();
        let mut run = Run {
            opts,
            truth,
            grace,
            now: SystemTime::now(),
            report: FsckReport {
                namespace: self.ns.clone(),
                truth,
                ..Default::default()
            },
        };
        self.fsck_run(&mut run).await?;
        if store_truth && self.index.exists().await? && self.index.truth().await? != truth {
            self.index.set_truth(truth).await?;
        }
        if run.opts.repair && run.report.repaired() > 0 {
            run.report.after_repair = Some(self.totals().await?);
        }
        Ok(run.report)
    }

    /// Count objects, index records and mailboxes (what fsck's summary shows).
    async fn totals(&self) -> Result<FsckTotals> {
        let objects = self.list_object_ids().await?.len() as u64;
        let boxes = self.index.list_mailboxes().await?;
        let mut records = 0;
        for b in &boxes {
            let mut after = 0;
            loop {
                let page = self.index.list_records(&b.guid, after, 1000).await?;
                records += page.records.len() as u64;
                match page.next_after {
                    Some(a) => after = a,
                    None => break,
                }
            }
        }
        Ok(FsckTotals {
            objects,
            records,
            mailboxes: boxes.len() as u64,
        })
    }

    /// Build the omap index of a namespace written by librmb only (migration). Refuses a
    /// namespace that already has an index. Nothing is deleted; mails without or with
    /// clashing `U` get a new UID (and their `U` xattr rewritten, as upstream's rebuild
    /// does). Mailboxes are created with the GUID from `M` and named after `B` — librmb
    /// does not keep names in RADOS and `B` is the name at save time, so rename afterwards
    /// where needed.
    pub async fn build_index(&self) -> Result<IndexBuildReport> {
        if self.index.exists().await? {
            return Err(StoreError::IndexExists(self.ns.clone()));
        }
        let report = self
            .fsck(FsckOptions {
                repair: true,
                grace: Some(Duration::ZERO),
                remove_leftovers: false,
                // librmb wrote this namespace: its Dovecot keeps the truth in the objects.
                truth: Some(Truth::Objects),
            })
            .await?;
        if !self.index.exists().await? {
            // Nothing was indexed (no valid mail): still record whose namespace it is.
            self.index.set_truth(Truth::Objects).await?;
        }
        let mailboxes_created = report
            .findings
            .iter()
            .filter(|f| {
                f.action
                    .as_deref()
                    .is_some_and(|a| a.contains("created mailbox"))
            })
            .count() as u64;
        let mails_indexed = report
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::UnindexedMail && f.action.is_some())
            .count() as u64;
        let uids_assigned = report
            .findings
            .iter()
            .filter(|f| f.action.as_deref().is_some_and(|a| a.contains("new UID")))
            .count() as u64;
        let skipped = (report.count(FindingKind::InvalidMetadata)
            + report.count(FindingKind::ZeroByteObject)
            + report.count(FindingKind::TooYoung)) as u64;
        Ok(IndexBuildReport {
            objects_scanned: report.objects_scanned,
            mailboxes_created,
            mails_indexed,
            uids_assigned,
            skipped,
            fsck: report,
        })
    }

    async fn fsck_run(&self, run: &mut Run) -> Result<()> {
        // ---- 1. the mail objects ----------------------------------------------------
        let ids = self.list_object_ids().await?;
        run.report.objects_scanned = ids.len() as u64;
        let concurrency = self.inner.config.scan_concurrency.max(1);
        let infos: Vec<Result<MailInfo>> = futures::stream::iter(ids)
            .map(|oid| async move { self.mail_info(&oid).await })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let mut objects: BTreeMap<String, MailInfo> = BTreeMap::new();
        for r in infos {
            match r {
                Ok(i) => {
                    objects.insert(i.oid.clone(), i);
                }
                Err(StoreError::MailNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }

        // ---- 2. the index -------------------------------------------------------------
        let mut mailboxes: BTreeMap<Guid128, ListedMailbox> = BTreeMap::new();
        for (key, raw) in self.index.list_prefix(format::PREFIX_MAILBOX).await? {
            let parsed = format::parse_mailbox_key(&key)
                .ok_or_else(|| "key is not mb.<32 hex>".to_string())
                .and_then(|g| {
                    MailboxRecord::decode(&raw)
                        .map(|r| (g, r))
                        .map_err(|e| e.to_string())
                });
            match parsed {
                Ok((guid, record)) => {
                    mailboxes.insert(guid, ListedMailbox { guid, record, raw });
                }
                Err(why) => {
                    let i = run.find(
                        FindingKind::CorruptIndexEntry,
                        None,
                        None,
                        None,
                        format!("{} key {key:?}: {why}", format::LIST_OBJECT),
                    );
                    if run.opts.repair {
                        let r = self.remove_list_key(&key, &raw).await;
                        run.outcome(i, r);
                    }
                }
            }
        }
        run.report.mailboxes = mailboxes.len() as u64;
        self.check_names(run, &mailboxes).await?;

        let mut headers: HashMap<Guid128, MailboxHeader> = HashMap::new();
        let mut deleting: BTreeSet<Guid128> = BTreeSet::new();
        for (guid, m) in &mailboxes {
            if m.record.state == MailboxState::Deleting {
                deleting.insert(*guid);
                let i = run.find(
                    FindingKind::DeletingMailbox,
                    None,
                    Some(*guid),
                    None,
                    format!("mailbox {:?} was being deleted", m.record.name),
                );
                if run.opts.repair {
                    let r = self
                        .finish_mailbox_deletion(guid)
                        .await
                        .map(|n| format!("finished deletion ({n} mails expunged)"));
                    run.outcome(i, r);
                }
                continue;
            }
            match self.index.header(guid).await {
                Ok(Some(h)) => {
                    headers.insert(*guid, h);
                }
                Ok(None) => {
                    let i = run.find(
                        FindingKind::MissingHead,
                        None,
                        Some(*guid),
                        None,
                        format!("mailbox {:?} has no head object", m.record.name),
                    );
                    if run.opts.repair {
                        match self.index.ensure_head(m).await {
                            Ok(h) => {
                                headers.insert(*guid, h);
                                run.outcome(i, Ok("created head object".into()));
                            }
                            Err(e) => run.outcome(i, Err(e)),
                        }
                    }
                }
                Err(StoreError::IndexFormat { error, .. }) => {
                    run.find(
                        FindingKind::CorruptIndexEntry,
                        None,
                        Some(*guid),
                        None,
                        format!(
                            "header of mailbox {:?}: {error} (fix by hand)",
                            m.record.name
                        ),
                    );
                }
                Err(e) => return Err(e),
            }
        }

        // Every index object of the namespace: shards, orphans.
        let index_objects = match self
            .backend()
            .list_objects(self.index.pool(), &NamespaceFilter::Only(self.ns.clone()))
            .await
        {
            Ok(v) => v,
            Err(BackendError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut records: Vec<Rec> = Vec::new();
        let mut shards: BTreeMap<Guid128, BTreeSet<u32>> = BTreeMap::new();
        for o in &index_objects {
            if o.oid == format::LIST_OBJECT {
                continue;
            }
            match parse_shard_object(&o.oid) {
                Some((g, k)) => {
                    shards.entry(g).or_default().insert(k);
                }
                None => {
                    run.find(
                        FindingKind::OrphanIndexObject,
                        Some(&o.oid),
                        None,
                        None,
                        "unknown object in the index namespace (left alone)",
                    );
                }
            }
        }
        for (guid, ks) in &shards {
            if deleting.contains(guid) {
                continue;
            }
            let listed = mailboxes.contains_key(guid);
            for &k in ks {
                let entries = self
                    .index
                    .shard_entries_raw(guid, k)
                    .await?
                    .unwrap_or_default();
                if !listed {
                    let n = entries
                        .iter()
                        .filter(|(key, _)| key.starts_with(format::PREFIX_MAIL))
                        .count();
                    let i = run.find(
                        FindingKind::OrphanIndexObject,
                        Some(&format::shard_object(guid, k)),
                        Some(*guid),
                        None,
                        format!("index object of an unlisted mailbox ({n} records)"),
                    );
                    if run.opts.repair && n == 0 {
                        let r = self
                            .backend()
                            .remove(&self.index.shard_loc(guid, k))
                            .await
                            .map(|()| "removed empty object".to_string())
                            .map_err(StoreError::from);
                        run.outcome(i, r);
                    }
                    continue;
                }
                let Some(h) = headers.get(guid).copied() else {
                    continue;
                };
                for (key, raw) in entries {
                    if key == KEY_HEADER && k == 0 {
                        continue;
                    }
                    let decoded = parse_mail_key(&key)
                        .filter(|&u| shard_of(u, h.shard_span) == k)
                        .ok_or_else(|| "key is not u.<uid> of this shard".to_string())
                        .and_then(|u| {
                            MailRecord::decode(&raw)
                                .map(|r| (u, r))
                                .map_err(|e| e.to_string())
                        });
                    match decoded {
                        Ok((uid, record)) => records.push(Rec {
                            mailbox: *guid,
                            uid,
                            raw,
                            record,
                        }),
                        Err(why) => {
                            let i = run.find(
                                FindingKind::CorruptIndexEntry,
                                None,
                                Some(*guid),
                                parse_mail_key(&key),
                                format!("{} key {key:?}: {why}", format::shard_object(guid, k)),
                            );
                            if run.opts.repair {
                                let r = self.remove_shard_key(guid, k, &key, &raw).await;
                                run.outcome(i, r);
                            }
                        }
                    }
                }
            }
        }
        run.report.records_checked = records.len() as u64;

        // ---- 3. records against objects ----------------------------------------------
        let mut by_oid: BTreeMap<Guid128, Vec<usize>> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            by_oid.entry(r.record.oid).or_default().push(i);
        }
        let mut dropped = vec![false; records.len()];
        for (oid, idxs) in &by_oid {
            if idxs.len() < 2 {
                continue;
            }
            let info = objects.get(&oid.to_hex());
            let keep = idxs
                .iter()
                .copied()
                .find(|&i| {
                    info.is_some_and(|inf| {
                        inf.metadata.mailbox_guid == Some(records[i].mailbox)
                            && inf.metadata.uid == Some(records[i].uid)
                    })
                })
                .unwrap_or(idxs[0]);
            for &i in idxs.iter().filter(|&&i| i != keep) {
                dropped[i] = true;
                let r = records[i].clone();
                let f = run.find(
                    FindingKind::DuplicateReference,
                    Some(&oid.to_hex()),
                    Some(r.mailbox),
                    Some(r.uid),
                    format!(
                        "also referenced by mailbox {} UID {}",
                        records[keep].mailbox, records[keep].uid
                    ),
                );
                if run.opts.repair {
                    let res = self.drop_record(&r, &headers).await;
                    run.outcome(f, res);
                }
            }
        }
        let mut referenced: BTreeSet<String> = BTreeSet::new();
        let mut claimed: BTreeSet<(Guid128, u32)> = BTreeSet::new();
        // Objects whose valid M/U won over their record (truth = objects): object id →
        // the mailbox the dropped record was in.
        let mut moved: BTreeMap<String, Guid128> = BTreeMap::new();
        let mut behind: BTreeMap<Guid128, u32> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            if dropped[i] {
                continue;
            }
            let oid = r.record.oid.to_hex();
            if let Some(h) = headers.get(&r.mailbox)
                && r.uid >= h.next_uid
            {
                let e = behind.entry(r.mailbox).or_insert(0);
                *e = (*e).max(r.uid);
            }
            match objects.get(&oid) {
                None => {
                    // Listed before the index was read: a save may have finished since.
                    match self.backend().stat(&self.mail_loc(&oid)).await {
                        Ok(_) => {
                            referenced.insert(oid);
                            claimed.insert((r.mailbox, r.uid));
                            continue;
                        }
                        Err(BackendError::NotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                    let f = run.find(
                        FindingKind::DanglingEntry,
                        Some(&oid),
                        Some(r.mailbox),
                        Some(r.uid),
                        "index entry without object",
                    );
                    if run.opts.repair {
                        let res = self.drop_record(r, &headers).await;
                        run.outcome(f, res);
                    }
                }
                Some(info) if info.is_zero_byte() => {
                    referenced.insert(oid.clone());
                    let f = run.find(
                        FindingKind::ExpungedEntry,
                        Some(&oid),
                        Some(r.mailbox),
                        Some(r.uid),
                        "index entry of a zero-byte object (interrupted expunge)",
                    );
                    if run.opts.repair {
                        let res = match self.drop_record(r, &headers).await {
                            Ok(a) => match self.backend().remove(&self.mail_loc(&oid)).await {
                                Ok(()) | Err(BackendError::NotFound(_)) => {
                                    Ok(format!("{a}; removed zero-byte object"))
                                }
                                Err(e) => Err(e.into()),
                            },
                            Err(e) => Err(e),
                        };
                        run.outcome(f, res);
                    }
                }
                Some(info) => {
                    let m = &info.metadata;
                    let ix = Indexed {
                        mailbox: r.mailbox,
                        mailbox_name: mailboxes.get(&r.mailbox).map(|l| l.record.name.as_str()),
                        uid: r.uid,
                        record: &r.record,
                    };
                    let (fixable, stuck): (Vec<_>, Vec<_>) =
                        info.errors.iter().partition(|e| rebuildable(e, ix));
                    let mismatch = fixable.is_empty()
                        && (m.mailbox_guid != Some(r.mailbox) || m.uid != Some(r.uid));
                    if mismatch && run.truth == Truth::Objects && object_is_indexable(info) {
                        if run.young(info) {
                            // Dovecot may still be moving it: neither side is touched.
                            run.find(
                                FindingKind::TooYoung,
                                Some(&oid),
                                m.mailbox_guid,
                                m.uid,
                                "younger than the grace period and not where the index says; not examined",
                            );
                            referenced.insert(oid.clone());
                            continue;
                        }
                        // Another writer (Dovecot) moved or renumbered the mail validly:
                        // the record goes, the object is indexed at its own M/U below.
                        let f = run.find(
                            FindingKind::MismatchedEntry,
                            Some(&oid),
                            Some(r.mailbox),
                            Some(r.uid),
                            format!(
                                "object says M={} U={}; the objects own the truth: re-index from them",
                                m.mailbox_guid.map(|g| g.to_hex()).unwrap_or_default(),
                                m.uid.map(|u| u.to_string()).unwrap_or_default()
                            ),
                        );
                        let dropped = if run.opts.repair {
                            let res = self.drop_record(r, &headers).await;
                            let ok = res.is_ok();
                            run.outcome(
                                f,
                                res.map(|a| format!("{a}; the object is re-indexed at its M/U")),
                            );
                            ok
                        } else {
                            false
                        };
                        if dropped {
                            moved.insert(oid.clone(), r.mailbox);
                        } else {
                            // Reported once, here, not again as unindexed.
                            referenced.insert(oid.clone());
                        }
                        continue;
                    }
                    referenced.insert(oid.clone());
                    claimed.insert((r.mailbox, r.uid));
                    if !fixable.is_empty() {
                        // Garbage the index can rebuild (M/U included when they point
                        // elsewhere); the body stays as it is.
                        let f = run.find(
                            FindingKind::InvalidMetadata,
                            Some(&oid),
                            Some(r.mailbox),
                            Some(r.uid),
                            format!("{} (rebuildable from the index record)", describe(&fixable)),
                        );
                        if run.opts.repair {
                            let res = self.rewrite_xattrs_from_index(&oid, ix).await;
                            run.outcome(f, res);
                        }
                    }
                    if !stuck.is_empty() {
                        run.find(
                            FindingKind::InvalidMetadata,
                            Some(&oid),
                            Some(r.mailbox),
                            Some(r.uid),
                            format!(
                                "{} (the index holds nothing to rebuild it from; left alone)",
                                describe(&stuck)
                            ),
                        );
                    }
                    if mismatch {
                        let f = run.find(
                            FindingKind::MismatchedEntry,
                            Some(&oid),
                            Some(r.mailbox),
                            Some(r.uid),
                            format!(
                                "object says M={} U={}",
                                m.mailbox_guid
                                    .map(|g| g.to_hex())
                                    .unwrap_or_else(|| "-".into()),
                                m.uid.map(|u| u.to_string()).unwrap_or_else(|| "-".into())
                            ),
                        );
                        if run.opts.repair {
                            let op = WriteOp::new()
                                .assert_exists()
                                .set_xattr(
                                    MetadataKey::MailboxGuid.xattr_name(),
                                    encode_text(&r.mailbox.to_hex()),
                                )
                                .set_xattr(
                                    MetadataKey::MailUid.xattr_name(),
                                    encode_text(&r.uid.to_string()),
                                );
                            let res = self
                                .backend()
                                .write_op(&self.mail_loc(&oid), op)
                                .await
                                .map(|()| "rewrote M and U from the index".to_string())
                                .map_err(StoreError::from);
                            run.outcome(f, res);
                        }
                    }
                    if let Some(z) = m.physical_size
                        && z != info.size
                    {
                        run.find(
                            FindingKind::SizeMismatch,
                            Some(&oid),
                            Some(r.mailbox),
                            Some(r.uid),
                            format!("Z={z}, object has {} bytes", info.size),
                        );
                    }
                }
            }
        }
        for (guid, max_uid) in behind {
            let name = mailboxes
                .get(&guid)
                .map(|m| m.record.name.clone())
                .unwrap_or_default();
            let f = run.find(
                FindingKind::HeaderBehind,
                None,
                Some(guid),
                Some(max_uid),
                format!("mailbox {name:?} has records up to UID {max_uid} at or past next_uid"),
            );
            if run.opts.repair {
                let res = self
                    .raise_next_uid(&guid, &name, max_uid, &mut headers)
                    .await;
                run.outcome(f, res);
            }
        }

        // ---- 4. objects without entries ----------------------------------------------
        let mut unindexed: Vec<&MailInfo> = Vec::new();
        for (oid, info) in &objects {
            if referenced.contains(oid) {
                continue;
            }
            if run.young(info) {
                run.find(
                    FindingKind::TooYoung,
                    Some(oid),
                    info.metadata.mailbox_guid,
                    info.metadata.uid,
                    "younger than the grace period; not examined",
                );
                continue;
            }
            if info.is_zero_byte() {
                let f = run.find(
                    FindingKind::ZeroByteObject,
                    Some(oid),
                    info.metadata.mailbox_guid,
                    info.metadata.uid,
                    "zero-byte object without index entry (interrupted save or expunge)",
                );
                if run.opts.repair && run.opts.remove_leftovers {
                    let res = match self.backend().remove(&self.mail_loc(oid)).await {
                        Ok(()) | Err(BackendError::NotFound(_)) => Ok("removed".to_string()),
                        Err(e) => Err(e.into()),
                    };
                    run.outcome(f, res);
                }
                continue;
            }
            let missing = info.metadata.missing_for_index();
            if !info.errors.is_empty() || !missing.is_empty() || Guid128::parse_hex(oid).is_err() {
                let mut why: Vec<String> = info.errors.iter().map(ToString::to_string).collect();
                if !missing.is_empty() {
                    why.push(format!(
                        "missing {}",
                        missing
                            .iter()
                            .map(|k| k.letter().to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
                if Guid128::parse_hex(oid).is_err() {
                    why.push("object id is not a 32-hex GUID".into());
                }
                run.find(
                    FindingKind::InvalidMetadata,
                    Some(oid),
                    info.metadata.mailbox_guid,
                    info.metadata.uid,
                    format!("{} (left alone)", why.join("; ")),
                );
                continue;
            }
            unindexed.push(info);
        }
        // Mails keeping their own UID go first, lowest first, so clashes are decided
        // deterministically.
        unindexed.sort_by_key(|i| {
            (
                i.metadata.mailbox_guid,
                i.metadata.uid.unwrap_or(u32::MAX),
                i.oid.clone(),
            )
        });
        for info in unindexed {
            let (Some(mb), Ok(oid)) = (info.metadata.mailbox_guid, Guid128::parse_hex(&info.oid))
            else {
                continue;
            };
            if run.opts.repair
                && !mailboxes.contains_key(&mb)
                && let Some(old) = moved.get(&info.oid).copied()
                && mailboxes.contains_key(&old)
                && !claimed.iter().any(|(g, _)| *g == old)
            {
                // Dovecot gave the mailbox its own GUID (force-resync): the emptied
                // mailbox of the index becomes that GUID, same name and UIDVALIDITY.
                let f = run.find(
                    FindingKind::MismatchedEntry,
                    None,
                    Some(old),
                    None,
                    format!("every mail of this mailbox now says M={mb}"),
                );
                let res = self
                    .take_over_mailbox(old, mb, &mut mailboxes, &mut headers)
                    .await;
                run.outcome(f, res);
            }
            let wanted = info.metadata.uid.filter(|u| (1..u32::MAX).contains(u));
            let clash = wanted.is_some_and(|u| claimed.contains(&(mb, u)));
            let kind = if clash {
                FindingKind::DuplicateUid
            } else {
                FindingKind::UnindexedMail
            };
            let detail = match (info.metadata.uid, clash) {
                (Some(u), true) => format!("UID {u} is already taken in this mailbox"),
                (None, _) => "mail without index entry and without U".to_string(),
                (Some(_), false) => "mail without index entry".to_string(),
            };
            let f = run.find(kind, Some(&info.oid), Some(mb), info.metadata.uid, detail);
            if run.opts.repair {
                let keep = wanted.filter(|_| !clash);
                let res = self
                    .reindex(info, oid, mb, keep, &mut mailboxes, &mut headers)
                    .await;
                if let Ok((_, uid)) = &res {
                    claimed.insert((mb, *uid));
                }
                run.outcome(f, res.map(|(a, _)| a));
            } else if let Some(u) = wanted.filter(|_| !clash) {
                claimed.insert((mb, u));
            }
        }
        Ok(())
    }

    async fn check_names(
        &self,
        run: &mut Run,
        mailboxes: &BTreeMap<Guid128, ListedMailbox>,
    ) -> Result<()> {
        let names = self.index.list_names_raw().await?;
        let mut named: BTreeSet<Guid128> = BTreeSet::new();
        for (key, raw) in names {
            let name = &key[format::PREFIX_NAME.len()..];
            let target = std::str::from_utf8(&raw)
                .ok()
                .and_then(|s| Guid128::parse_hex(s).ok());
            let ok =
                target.is_some_and(|g| mailboxes.get(&g).is_some_and(|m| m.record.name == name));
            if ok {
                if let Some(g) = target {
                    named.insert(g);
                }
                continue;
            }
            let i = run.find(
                FindingKind::NameEntryMismatch,
                None,
                target,
                None,
                format!("name entry {name:?} does not match a mailbox record"),
            );
            if run.opts.repair {
                let r = self.remove_list_key(&key, &raw).await;
                run.outcome(i, r);
            }
        }
        for (g, m) in mailboxes {
            if named.contains(g) {
                continue;
            }
            let i = run.find(
                FindingKind::NameEntryMismatch,
                None,
                Some(*g),
                None,
                format!("mailbox {:?} has no name entry", m.record.name),
            );
            if run.opts.repair {
                let key = format::name_key(&m.record.name);
                let op = WriteOp::new()
                    .omap_cmp(key.clone(), crate::backend::CmpOp::Eq, Vec::new())
                    .omap_set([(key, g.to_hex().into_bytes())]);
                let r = self
                    .backend()
                    .write_op(&self.index.list_loc(), op)
                    .await
                    .map(|()| "added name entry".to_string())
                    .map_err(|e| match e {
                        BackendError::Canceled(_) => StoreError::Invalid(format!(
                            "name {:?} is taken by another mailbox; rename one of them",
                            m.record.name
                        )),
                        e => e.into(),
                    });
                run.outcome(i, r);
            }
        }
        Ok(())
    }

    async fn remove_list_key(&self, key: &str, raw: &[u8]) -> Result<String> {
        let op = WriteOp::new()
            .omap_cmp(key, crate::backend::CmpOp::Eq, raw.to_vec())
            .omap_rm_keys([key]);
        self.backend().write_op(&self.index.list_loc(), op).await?;
        Ok("removed key".into())
    }

    async fn remove_shard_key(
        &self,
        guid: &Guid128,
        shard: u32,
        key: &str,
        raw: &[u8],
    ) -> Result<String> {
        let op = WriteOp::new()
            .omap_cmp(key, crate::backend::CmpOp::Eq, raw.to_vec())
            .omap_rm_keys([key]);
        self.backend()
            .write_op(&self.index.shard_loc(guid, shard), op)
            .await?;
        Ok("removed key".into())
    }

    async fn drop_record(
        &self,
        r: &Rec,
        headers: &HashMap<Guid128, MailboxHeader>,
    ) -> Result<String> {
        let span = headers
            .get(&r.mailbox)
            .map(|h| h.shard_span)
            .unwrap_or(format::SHARD_SPAN);
        if self
            .index
            .remove_record(&r.mailbox, span, r.uid, &r.raw)
            .await?
        {
            Ok("removed index entry".into())
        } else {
            Err(StoreError::Invalid(
                "index entry changed meanwhile; left alone".into(),
            ))
        }
    }

    /// Replace mailbox `old` (no records left) by one with GUID `new`, keeping its name and
    /// UIDVALIDITY; `old`'s index objects are removed.
    async fn take_over_mailbox(
        &self,
        old: Guid128,
        new: Guid128,
        mailboxes: &mut BTreeMap<Guid128, ListedMailbox>,
        headers: &mut HashMap<Guid128, MailboxHeader>,
    ) -> Result<String> {
        let Some(prev) = mailboxes.get(&old).cloned() else {
            return Err(StoreError::MailboxNotFound(old.to_hex()));
        };
        let last_shard = headers.get(&old).map(|h| h.last_shard()).unwrap_or(0);
        self.index.remove_mailbox_entry(&old).await?;
        for k in 0..=last_shard {
            match self.backend().remove(&self.index.shard_loc(&old, k)).await {
                Ok(()) | Err(BackendError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        mailboxes.remove(&old);
        headers.remove(&old);
        let m = self
            .index
            .create_mailbox_with(&prev.record.name, Some(new), Some(prev.record.uidvalidity))
            .await?;
        mailboxes.insert(new, m);
        Ok(format!(
            "mailbox {:?} now has GUID {new} (UIDVALIDITY {} kept)",
            prev.record.name, prev.record.uidvalidity
        ))
    }

    async fn raise_next_uid(
        &self,
        guid: &Guid128,
        name: &str,
        max_uid: u32,
        headers: &mut HashMap<Guid128, MailboxHeader>,
    ) -> Result<String> {
        let next = max_uid
            .checked_add(1)
            .ok_or_else(|| StoreError::UidSpaceExhausted(name.to_string()))?;
        let h = self
            .index
            .update_header(guid, name, |h| {
                Ok((h.next_uid < next).then_some(MailboxHeader {
                    next_uid: next,
                    ..*h
                }))
            })
            .await?;
        headers.insert(*guid, h);
        Ok(format!("raised next_uid to {}", h.next_uid))
    }

    /// Index an unindexed mail body (body first: a new UID is written to the object before
    /// the record goes in). Returns the action text and the UID used.
    async fn reindex(
        &self,
        info: &MailInfo,
        oid: Guid128,
        mb: Guid128,
        keep_uid: Option<u32>,
        mailboxes: &mut BTreeMap<Guid128, ListedMailbox>,
        headers: &mut HashMap<Guid128, MailboxHeader>,
    ) -> Result<(String, u32)> {
        let mut actions = Vec::new();
        let listed = match mailboxes.get(&mb) {
            Some(m) => m.clone(),
            None => {
                let m = self.recreate_mailbox(mb, info).await?;
                actions.push(format!("created mailbox {:?}", m.record.name));
                mailboxes.insert(mb, m.clone());
                m
            }
        };
        if listed.record.state == MailboxState::Deleting {
            return Err(StoreError::MailboxDeleting(listed.record.name));
        }
        let header = match headers.get(&mb) {
            Some(h) => *h,
            None => {
                let h = self.index.ensure_head(&listed).await?;
                headers.insert(mb, h);
                h
            }
        };
        let name = listed.record.name.clone();
        let (uid, modseq) = match keep_uid {
            Some(u) => {
                if u >= header.next_uid {
                    let h = self
                        .index
                        .update_header(&mb, &name, |h| {
                            Ok(Some(MailboxHeader {
                                next_uid: h.next_uid.max(u + 1),
                                highest_modseq: h.highest_modseq + 1,
                                ..*h
                            }))
                        })
                        .await?;
                    headers.insert(mb, h);
                    (u, h.highest_modseq)
                } else {
                    (u, header.highest_modseq)
                }
            }
            None => {
                let a = self.index.allocate(&mb, &name, 1).await?;
                headers.insert(mb, a.header);
                let op = WriteOp::new().assert_exists().set_xattr(
                    MetadataKey::MailUid.xattr_name(),
                    encode_text(&a.first_uid.to_string()),
                );
                self.backend()
                    .write_op(&self.mail_loc(&info.oid), op)
                    .await?;
                actions.push(format!("new UID {}", a.first_uid));
                (a.first_uid, a.modseq)
            }
        };
        let m = &info.metadata;
        let keywords = self.stored_keywords(info).await?;
        let record = MailRecord {
            oid,
            guid: m
                .guid
                .clone()
                .unwrap_or_else(|| MailGuid::Compact(Guid128::generate())),
            flags: MailFlags(m.flags.and_then(FlagsByte::mask).unwrap_or(0) & MailFlags::ALL),
            keywords,
            modseq,
            physical_size: m.physical_size.unwrap_or(info.size),
            virtual_size: m.virtual_size.or(m.physical_size).unwrap_or(info.size),
            received: m.received.unwrap_or_else(|| unix_secs(info.mtime)),
            saved: unix_secs(info.mtime),
        };
        let span = headers
            .get(&mb)
            .map(|h| h.shard_span)
            .unwrap_or(format::SHARD_SPAN);
        self.index.insert(&mb, span, &[(uid, record)]).await?;
        actions.push(format!("indexed as {name:?} UID {uid}"));
        Ok((actions.join("; "), uid))
    }

    /// Re-create a mailbox for mails whose `M` is not listed: same GUID, named after `B`
    /// (or `recovered-<guid>`), with a suffix when the name is taken.
    async fn recreate_mailbox(&self, mb: Guid128, info: &MailInfo) -> Result<ListedMailbox> {
        let base = info
            .metadata
            .orig_mailbox
            .clone()
            .filter(|b| format::validate_mailbox_name(b).is_ok())
            .unwrap_or_else(|| format!("recovered-{mb}"));
        let candidates = [
            base.clone(),
            format!("{base}-{}", &mb.to_hex()[..8]),
            format!("recovered-{mb}"),
        ];
        let mut last = None;
        for name in candidates {
            match self.index.create_mailbox(&name, Some(mb)).await {
                Ok(m) => return Ok(m),
                Err(StoreError::MailboxExists(_)) => last = Some(StoreError::MailboxExists(name)),
                Err(StoreError::Invalid(msg)) if msg.contains("already used") => {
                    // Created concurrently (or by an earlier mail of this run).
                    if let Some(m) = self.index.mailbox(&mb).await? {
                        return Ok(m);
                    }
                    last = Some(StoreError::Invalid(msg));
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(StoreError::MailboxExists(base)))
    }
}
