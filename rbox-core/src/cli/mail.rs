//! `rbox set`, `rbox delete`, `rbox save`: changing one namespace's mails.

use std::io::Read;

use serde_json::json;

use super::args::{DeleteArgs, SaveArgs, SetArgs};
use super::connect::Target;
use super::error::{CliError, CliResult};
use super::output::{Table, print, print_json};
use crate::format::date::parse_date;
use crate::format::flags::MailFlags;
use crate::format::metadata::MetadataKey;
use crate::store::{FlagOp, FlagUpdate, Mailspace, SaveRequest, Store};

/// `seen`, `Seen` or `\Seen` → the flag.
pub fn parse_flag(s: &str) -> CliResult<MailFlags> {
    let name = if s.starts_with('\\') {
        s.to_string()
    } else {
        format!("\\{s}")
    };
    MailFlags::from_name(&name).ok_or_else(|| {
        CliError::Usage(format!(
            "unknown flag {s:?}; use answered, flagged, deleted, seen, draft or recent"
        ))
    })
}

fn parse_flags(v: &[String]) -> CliResult<MailFlags> {
    v.iter()
        .try_fold(MailFlags::empty(), |acc, s| Ok(acc.union(parse_flag(s)?)))
}

/// `K V K V …` → pairs of metadata keys and values.
pub fn parse_pairs(v: &[String]) -> CliResult<Vec<(MetadataKey, String)>> {
    if !v.len().is_multiple_of(2) {
        return Err(CliError::Usage(format!(
            "attributes come in pairs `K V`; {:?} has no value",
            v.last().map(String::as_str).unwrap_or_default()
        )));
    }
    v.chunks(2)
        .map(|kv| {
            let mut c = kv[0].chars();
            let key = match (c.next(), c.next()) {
                (Some(l), None) => MetadataKey::from_letter(l),
                _ => None,
            }
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{:?} is not a metadata key; use one letter: M G P O R Z V B U I A C F S X",
                    kv[0]
                ))
            })?;
            Ok((key, kv[1].clone()))
        })
        .collect()
}

pub async fn set(sp: &Mailspace, a: &SetArgs, json: bool) -> CliResult<()> {
    let pairs = parse_pairs(&a.pairs)?;
    let add = parse_flags(&a.add_flags)?;
    let remove = parse_flags(&a.remove_flags)?;
    let flag_change = !(add.is_empty()
        && remove.is_empty()
        && a.add_keywords.is_empty()
        && a.remove_keywords.is_empty());
    if pairs.is_empty() && !flag_change {
        return Err(CliError::Usage(
            "nothing to set: give `K V` pairs or --add-flag/--remove-flag/--add-keyword/--remove-keyword"
                .into(),
        ));
    }
    for (key, value) in &pairs {
        sp.set_attribute(&a.oid, *key, value).await?;
    }
    let mut record = None;
    for (op, flags, keywords) in [
        (FlagOp::Add, add, &a.add_keywords),
        (FlagOp::Remove, remove, &a.remove_keywords),
    ] {
        if !flags.is_empty() || !keywords.is_empty() {
            let u = FlagUpdate {
                op,
                flags,
                keywords: keywords.clone(),
            };
            record = Some(sp.update_flags(&a.oid, &u).await?);
        }
    }
    let info = sp.mail_info(&a.oid).await?;
    let attrs: Vec<(char, String)> = MetadataKey::ALL
        .iter()
        .filter_map(|k| info.metadata.value_of(*k).map(|v| (k.letter(), v)))
        .collect();
    if json {
        print_json(&json!({
            "oid": a.oid,
            "metadata": attrs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "flags": record.as_ref().map(|r| r.flags.names()),
            "keywords": record.as_ref().map(|r| r.keywords.clone()),
        }))
    } else {
        let mut t = Table::new(&["KEY", "VALUE"]);
        for (k, v) in attrs {
            t.row(vec![k.to_string(), v]);
        }
        if let Some(r) = &record {
            t.row(vec!["flags".into(), r.flags.names().join(" ")]);
            t.row(vec!["keywords".into(), r.keywords.join(" ")]);
        }
        print(&t.render())
    }
}

pub async fn delete(
    store: &Store,
    sp: &Mailspace,
    target: Option<&Target>,
    a: &DeleteArgs,
    json: bool,
) -> CliResult<()> {
    let all = a.targets.iter().any(|t| t == "-");
    if all && a.targets.len() > 1 {
        return Err(CliError::Usage(
            "`delete -` removes the whole namespace; give no object ids with it".into(),
        ));
    }
    if !a.confirm.yes {
        let what = if all {
            format!(
                "every object of namespace {:?} (mail and index)",
                sp.namespace()
            )
        } else {
            format!("{} mail object(s)", a.targets.len())
        };
        return Err(CliError::NotConfirmed(format!(
            "refusing to delete {what} without --yes-i-really-mean-it"
        )));
    }
    if all {
        let removed = sp.purge().await?;
        let mut mapping_removed = false;
        if let (Some(Target::User(u)), true) = (target, store.cfg().user_mapping) {
            store.delete_user_mapping(u).await?;
            mapping_removed = true;
        }
        return if json {
            print_json(
                &json!({"namespace": sp.namespace(), "objects_removed": removed,
                "user_mapping_removed": mapping_removed}),
            )
        } else {
            print(&format!(
                "removed {removed} objects of namespace {}{}\n",
                sp.namespace(),
                if mapping_removed {
                    " and the user's mapping object"
                } else {
                    ""
                }
            ))
        };
    }
    let mut deleted = Vec::new();
    for oid in &a.targets {
        sp.delete_object(oid).await?;
        deleted.push(oid.clone());
    }
    if json {
        print_json(&json!({"deleted": deleted}))
    } else {
        print(
            &deleted
                .iter()
                .map(|o| format!("deleted {o}\n"))
                .collect::<String>(),
        )
    }
}

fn parse_when(s: &str) -> CliResult<i64> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| CliError::Usage(format!("date {s:?} is out of range")));
    }
    parse_date(s).map_err(|e| CliError::Usage(format!("date {s:?}: {e}")))
}

pub async fn save(sp: &Mailspace, a: &SaveArgs, json: bool) -> CliResult<()> {
    let body = match &a.file {
        Some(p) => std::fs::read(p).map_err(|e| CliError::io(p.display(), e))?,
        None => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(|e| CliError::io("reading stdin", e))?;
            b
        }
    };
    if body.is_empty() {
        return Err(CliError::Usage(
            "the mail is empty (zero-byte objects mean `expunged` to librmb)".into(),
        ));
    }
    let mut req = SaveRequest::new(a.mailbox.clone(), body);
    req.create_mailbox = a.create_mailbox;
    req.flags = parse_flags(&a.flags)?;
    req.keywords = a.keywords.clone();
    req.received = a.received.as_deref().map(parse_when).transpose()?;
    let saved = sp.save(req).await?;
    if json {
        print_json(&json!({
            "oid": saved.oid.to_hex(), "uid": saved.uid, "mailbox": saved.mailbox.to_hex(),
            "uidvalidity": saved.uidvalidity, "guid": saved.guid.to_string(),
            "physical_size": saved.physical_size, "virtual_size": saved.virtual_size,
        }))
    } else {
        print(&format!(
            "saved {} as UID {} in {} ({} bytes)\n",
            saved.oid, saved.uid, a.mailbox, saved.physical_size
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_by_any_spelling() {
        assert_eq!(parse_flag("seen").unwrap(), MailFlags::SEEN);
        assert_eq!(parse_flag("\\Flagged").unwrap(), MailFlags::FLAGGED);
        assert_eq!(parse_flag("DRAFT").unwrap(), MailFlags::DRAFT);
        assert_eq!(parse_flag("shiny").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn pairs_need_letters_and_values() {
        let p = parse_pairs(&[
            "B".into(),
            "Sent".into(),
            "R".into(),
            "2024-01-01 00:00:00".into(),
        ])
        .unwrap();
        assert_eq!(p[0], (MetadataKey::OrigMailbox, "Sent".into()));
        assert_eq!(p[1].0, MetadataKey::ReceivedTime);
        assert!(parse_pairs(&["B".into()]).is_err());
        assert!(parse_pairs(&["BB".into(), "x".into()]).is_err());
        assert!(parse_pairs(&["Q".into(), "x".into()]).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_when("1704110403").unwrap(), 1_704_110_403);
        assert_eq!(parse_when("2024-01-01 12:00:03").unwrap(), 1_704_110_403);
        assert!(parse_when("yesterday").is_err());
        assert!(parse_when("99999999999999999999999").is_err());
    }
}
