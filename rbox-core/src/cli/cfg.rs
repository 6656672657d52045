//! `rbox cfg show|create|update`: the rbox_cfg object (default namespace of the mail pool).

use std::sync::Arc;

use serde_json::{Value, json};

use super::args::{CfgCommand, TargetArgs};
use super::error::{CliError, CliResult};
use super::output::{Table, print, print_json};
use crate::StoreError;
use crate::backend::{Backend, BackendError, ObjectLocation};
use crate::format::cfg::RboxConfig;
use crate::store::{create_cfg, read_cfg, update_cfg, write_cfg};

fn render(cfg: &RboxConfig, present: bool, t: &TargetArgs, json: bool) -> CliResult<()> {
    let mut entries: Vec<(String, String)> = cfg
        .entries()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    entries.extend(cfg.extra.iter().cloned());
    if json {
        let config: serde_json::Map<String, Value> =
            entries.into_iter().map(|(k, v)| (k, json!(v))).collect();
        print_json(&json!({
            "pool": t.pool, "object": t.cfg_object, "present": present, "config": config,
        }))
    } else {
        let mut table = Table::new(&["KEY", "VALUE"]);
        for (k, v) in entries {
            table.row(vec![k, v]);
        }
        let mut s = table.render();
        if !present {
            s.push_str(&format!(
                "({} does not exist in pool {}: these are the defaults; `rbox cfg create` writes them)\n",
                t.cfg_object, t.pool
            ));
        }
        print(&s)
    }
}

pub async fn run(
    backend: Arc<dyn Backend>,
    t: &TargetArgs,
    cmd: &CfgCommand,
    json: bool,
) -> CliResult<()> {
    let b = backend.as_ref();
    match cmd {
        CfgCommand::Show { raw: true } => {
            let loc = ObjectLocation::new(t.pool.clone(), "", t.cfg_object.clone());
            match b.read(&loc, 0, None).await {
                Ok(r) => {
                    let mut out = std::io::stdout().lock();
                    use std::io::Write;
                    out.write_all(&r.data)
                        .and_then(|_| out.flush())
                        .map_err(|e| CliError::io("writing to stdout", e))
                }
                Err(BackendError::NotFound(_)) => Err(CliError::NotFound(format!(
                    "{} does not exist in pool {}",
                    t.cfg_object, t.pool
                ))),
                Err(e) => Err(e.into()),
            }
        }
        CfgCommand::Show { raw: false } => {
            let found = read_cfg(b, &t.pool, &t.cfg_object)
                .await
                .map_err(|e| match e {
                    StoreError::Cfg(c) => CliError::Other(format!(
                        "{c} (object {} in pool {}; `rbox cfg show --raw` prints it)",
                        t.cfg_object, t.pool
                    )),
                    e => e.into(),
                })?;
            let present = found.is_some();
            render(&found.unwrap_or_default(), present, t, json)
        }
        CfgCommand::Create {
            settings,
            force,
            confirm,
        } => {
            let cfg = RboxConfig::default().apply_updates(settings)?;
            if *force {
                if !confirm.yes {
                    return Err(CliError::NotConfirmed(format!(
                        "refusing to overwrite {} without --yes-i-really-mean-it",
                        t.cfg_object
                    )));
                }
                write_cfg(b, &t.pool, &t.cfg_object, &cfg).await?;
            } else {
                match create_cfg(b, &t.pool, &t.cfg_object, &cfg).await {
                    Ok(()) => {}
                    Err(StoreError::Backend(BackendError::Exists(_))) => {
                        return Err(CliError::Other(format!(
                            "{} already exists in pool {}; change it with `rbox cfg update key=value` \
                             (or replace it with --force --yes-i-really-mean-it)",
                            t.cfg_object, t.pool
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            render(&cfg, true, t, json)
        }
        CfgCommand::Update { settings } => {
            let cfg = update_cfg(b, &t.pool, &t.cfg_object, settings).await?;
            render(&cfg, true, t, json)
        }
    }
}
