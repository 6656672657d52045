//! `rbox fsck [--repair]` and `rbox index`.

use std::time::Duration;

use serde_json::json;

use super::args::{FsckArgs, TruthArg};
use super::error::{CliError, CliResult, exit};
use super::output::{Table, print, print_json, timer};
use crate::index::format::Truth;
use crate::store::{FindingKind, FsckFinding, FsckOptions, FsckReport, Mailspace};

fn finding_json(f: &FsckFinding) -> serde_json::Value {
    json!({
        "kind": format!("{:?}", f.kind), "oid": f.oid, "mailbox": f.mailbox.map(|g| g.to_hex()),
        "uid": f.uid, "detail": f.detail, "action": f.action,
    })
}

pub fn report_json(r: &FsckReport) -> serde_json::Value {
    json!({
        "namespace": r.namespace,
        "truth": r.truth.as_str(),
        "objects_scanned": r.objects_scanned,
        "records_checked": r.records_checked,
        "mailboxes": r.mailboxes,
        "clean": r.is_clean(),
        "repaired": r.repaired(),
        "unrepaired": r.unrepaired().count(),
        "findings": r.findings.iter().map(finding_json).collect::<Vec<_>>(),
        "repair_errors": r.repair_errors,
        "after_repair": r.after_repair.map(|a| json!({
            "objects": a.objects, "records": a.records, "mailboxes": a.mailboxes,
        })),
    })
}

pub fn render(r: &FsckReport) -> String {
    let mut t = Table::new(&["KIND", "OID", "MAILBOX", ">UID", "DETAIL", "ACTION"]);
    for f in &r.findings {
        t.row(vec![
            format!("{:?}", f.kind),
            f.oid.clone().unwrap_or_default(),
            f.mailbox.map(|g| g.to_hex()).unwrap_or_default(),
            f.uid.map(|u| u.to_string()).unwrap_or_default(),
            f.detail.clone(),
            f.action.clone().unwrap_or_default(),
        ]);
    }
    let mut s = if t.is_empty() {
        String::new()
    } else {
        t.render()
    };
    // The namespace as it is now: after a repair, its counts after repairing.
    let (objects, records, mailboxes, when) = match r.after_repair {
        Some(a) => (a.objects, a.records, a.mailboxes, " after repair"),
        None => (r.objects_scanned, r.records_checked, r.mailboxes, ""),
    };
    s.push_str(&format!(
        "namespace {}{when}: {objects} objects, {records} index records, {mailboxes} mailboxes; {} problems, {} repaired, {} left\n",
        r.namespace,
        r.problems().count(),
        r.repaired(),
        r.unrepaired().count(),
    ));
    for e in &r.repair_errors {
        s.push_str(&format!("repair failed: {e}\n"));
    }
    s
}

/// Exit code of a finished fsck: 0 when nothing is left to do, 3 otherwise.
pub fn code(r: &FsckReport) -> u8 {
    if r.repair_errors.is_empty() && r.unrepaired().next().is_none() {
        exit::OK
    } else {
        exit::FINDINGS
    }
}

pub async fn fsck(sp: &Mailspace, a: &FsckArgs, json: bool, quiet: bool) -> CliResult<u8> {
    if a.confirm.yes && !a.repair {
        return Err(CliError::Usage(
            "--yes-i-really-mean-it only means something with --repair".into(),
        ));
    }
    let opts = FsckOptions {
        repair: a.repair,
        grace: a.grace.map(Duration::from_secs),
        // Zero-byte leftovers are the only objects repair removes: only when confirmed.
        remove_leftovers: a.confirm.yes,
        truth: a.truth.map(|t| match t {
            TruthArg::Objects => Truth::Objects,
            TruthArg::Index => Truth::Index,
        }),
    };
    let pb = timer("fsck", quiet);
    let r = sp.fsck(opts).await;
    pb.finish_and_clear();
    let r = r?;
    if json {
        print_json(&report_json(&r))?;
    } else {
        let mut s = render(&r);
        let leftovers = r
            .unrepaired()
            .filter(|f| f.kind == FindingKind::ZeroByteObject)
            .count();
        if a.repair && !a.confirm.yes && leftovers > 0 {
            s.push_str(&format!(
                "{leftovers} zero-byte leftovers kept: add --yes-i-really-mean-it to remove them\n"
            ));
        } else if !a.repair && !r.is_clean() {
            s.push_str("run with --repair to fix\n");
        }
        print(&s)?;
    }
    Ok(code(&r))
}

pub async fn index(sp: &Mailspace, json: bool, quiet: bool) -> CliResult<u8> {
    let pb = timer("indexing", quiet);
    let r = sp.build_index().await;
    pb.finish_and_clear();
    let r = r?;
    if json {
        print_json(&json!({
            "namespace": sp.namespace(),
            "objects_scanned": r.objects_scanned, "mailboxes_created": r.mailboxes_created,
            "mails_indexed": r.mails_indexed, "uids_assigned": r.uids_assigned,
            "skipped": r.skipped, "fsck": report_json(&r.fsck),
        }))?;
    } else {
        print(&format!(
            "namespace {}: {} objects scanned, {} mailboxes created, {} mails indexed, {} UIDs assigned, {} skipped\n{}",
            sp.namespace(),
            r.objects_scanned,
            r.mailboxes_created,
            r.mails_indexed,
            r.uids_assigned,
            r.skipped,
            render(&r.fsck)
        ))?;
    }
    Ok(code(&r.fsck))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FsckTotals;

    fn report(after: Option<FsckTotals>) -> FsckReport {
        FsckReport {
            namespace: "alice_u".into(),
            objects_scanned: 3,
            records_checked: 0,
            mailboxes: 0,
            findings: vec![FsckFinding {
                kind: FindingKind::UnindexedMail,
                oid: Some("4463a01079ba046b8622000083ecc375".into()),
                mailbox: None,
                uid: Some(3),
                detail: "no index entry".into(),
                action: after.map(|_| "indexed".into()),
            }],
            repair_errors: Vec::new(),
            after_repair: after,
            truth: Truth::Index,
        }
    }

    #[test]
    fn summary_shows_the_namespace_after_the_repair() {
        let after = FsckTotals {
            objects: 3,
            records: 3,
            mailboxes: 1,
        };
        let s = render(&report(Some(after)));
        assert!(
            s.contains("namespace alice_u after repair: 3 objects, 3 index records, 1 mailboxes; 1 problems, 1 repaired, 0 left"),
            "{s}"
        );
        assert_eq!(
            report_json(&report(Some(after)))["after_repair"]["records"],
            3
        );
        let s = render(&report(None));
        assert!(
            s.contains("namespace alice_u: 3 objects, 0 index records, 0 mailboxes; 1 problems, 0 repaired, 1 left"),
            "{s}"
        );
    }
}
