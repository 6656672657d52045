//! `rbox mailbox ls|create|rename|delete`: the mailbox list of a namespace's omap index.

use serde_json::json;

use super::args::MailboxCommand;
use super::error::{CliError, CliResult};
use super::output::{Table, human_bytes, print, print_json};
use crate::format::date::format_date;
use crate::index::format::MailboxState;
use crate::store::{MailboxStatus, Mailspace};

fn state(s: MailboxState) -> &'static str {
    match s {
        MailboxState::Active => "active",
        MailboxState::Deleting => "deleting",
    }
}

fn status_json(m: &MailboxStatus, usage: Option<(u64, u64)>) -> serde_json::Value {
    json!({
        "name": m.name, "guid": m.guid.to_hex(), "state": state(m.state),
        "uidvalidity": m.uidvalidity, "created": m.created, "next_uid": m.next_uid(),
        "highest_modseq": m.header.map(|h| h.highest_modseq),
        "mails": usage.map(|u| u.0), "bytes": usage.map(|u| u.1),
    })
}

pub async fn run(sp: &Mailspace, cmd: &MailboxCommand, json: bool) -> CliResult<()> {
    match cmd {
        MailboxCommand::Ls { usage } => {
            let boxes = sp.list_mailboxes().await?;
            let mut rows = Vec::new();
            for m in boxes {
                let u = if *usage && m.state == MailboxState::Active {
                    Some(sp.mailbox_usage(&m.name).await?)
                } else {
                    None
                };
                rows.push((m, u));
            }
            if json {
                return print_json(&json!({
                    "namespace": sp.namespace(),
                    "mailboxes": rows.iter().map(|(m, u)| status_json(m, *u)).collect::<Vec<_>>(),
                }));
            }
            let mut t = Table::new(&[
                "NAME",
                "GUID",
                "STATE",
                ">UIDVALIDITY",
                ">NEXT UID",
                "CREATED",
                ">MAILS",
                ">SIZE",
            ]);
            for (m, u) in &rows {
                t.row(vec![
                    m.name.clone(),
                    m.guid.to_hex(),
                    state(m.state).into(),
                    m.uidvalidity.to_string(),
                    m.next_uid().to_string(),
                    format_date(m.created),
                    u.map(|u| u.0.to_string()).unwrap_or_default(),
                    u.map(|u| human_bytes(u.1)).unwrap_or_default(),
                ]);
            }
            let mut s = t.render();
            s.push_str(&format!(
                "{} mailboxes in namespace {}\n",
                rows.len(),
                sp.namespace()
            ));
            print(&s)
        }
        MailboxCommand::Create { name } => {
            let m = sp.create_mailbox(name).await?;
            done(json, &m, "created")
        }
        MailboxCommand::Rename { old, new } => {
            let m = sp.rename_mailbox(old, new).await?;
            done(json, &m, "renamed")
        }
        MailboxCommand::Delete {
            name,
            force,
            confirm,
        } => {
            if !confirm.yes {
                return Err(CliError::NotConfirmed(format!(
                    "refusing to delete mailbox {name:?} without --yes-i-really-mean-it"
                )));
            }
            let n = sp.delete_mailbox(name, *force).await?;
            if json {
                print_json(&json!({"deleted": name, "mails_expunged": n}))
            } else {
                print(&format!("deleted mailbox {name} ({n} mails expunged)\n"))
            }
        }
    }
}

fn done(json: bool, m: &MailboxStatus, what: &str) -> CliResult<()> {
    if json {
        print_json(&status_json(m, None))
    } else {
        print(&format!("{what} mailbox {} ({})\n", m.name, m.guid))
    }
}
