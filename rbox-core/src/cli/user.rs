//! `rbox user show|create|rename|delete`: librmb's user mapping objects (namespace
//! `user_ns` of the mail pool; only with `user_mapping=true` in rbox_cfg).

use serde_json::json;

use super::args::UserCommand;
use super::error::{CliError, CliResult};
use super::output::{print, print_json};
use crate::store::Store;

pub async fn run(store: &Store, cmd: &UserCommand, json: bool) -> CliResult<()> {
    let (user, ns, what) = match cmd {
        UserCommand::Show { user } => {
            let ns = store.lookup_user_mapping(user).await?.ok_or_else(|| {
                CliError::NotFound(format!("user {user:?} has no mapping object"))
            })?;
            (user, ns, "maps to")
        }
        UserCommand::Create { user, to } => {
            let ns = store.create_user_mapping(user, to.as_deref()).await?;
            (user, ns, "now maps to")
        }
        UserCommand::Rename { old, new } => {
            let ns = store.rename_user(old, new).await?;
            (new, ns, "(renamed) maps to")
        }
        UserCommand::Delete { user, confirm } => {
            if !confirm.yes {
                return Err(CliError::NotConfirmed(format!(
                    "refusing to remove the mapping object of {user:?} without --yes-i-really-mean-it \
                     (its mail would no longer be found by user name)"
                )));
            }
            let ns = store.lookup_user_mapping(user).await?.unwrap_or_default();
            store.delete_user_mapping(user).await?;
            (user, ns, "no longer maps to")
        }
    };
    if json {
        print_json(&json!({"user": user, "namespace": ns}))
    } else {
        print(&format!("{user} {what} namespace {ns}\n"))
    }
}
