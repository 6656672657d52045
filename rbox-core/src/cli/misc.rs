//! `rbox lspools` and `rbox canary`.

use serde_json::json;

use super::error::CliResult;
use super::output::{Table, millis, print, print_json};
use crate::backend::Backend;
use crate::store::{Mailspace, Store};

pub async fn lspools(backend: &dyn Backend, json: bool) -> CliResult<()> {
    let pools = backend.list_pools().await?;
    if json {
        print_json(&json!({ "pools": pools }))
    } else {
        print(&pools.iter().map(|p| format!("{p}\n")).collect::<String>())
    }
}

/// The canary in the reserved namespace, or in `-N`/`-u` when given.
pub async fn canary(store: &Store, sp: Option<Mailspace>, json: bool) -> CliResult<()> {
    let r = match sp {
        Some(sp) => sp.run_canary().await?,
        None => store.canary().await?,
    };
    if json {
        return print_json(&json!({
            "namespace": r.namespace, "oid": r.oid, "uid": r.uid,
            "total_ms": millis(r.total),
            "steps": r.steps.iter().map(|s| json!({"step": s.name, "ms": millis(s.latency)})).collect::<Vec<_>>(),
        }));
    }
    let mut t = Table::new(&["STEP", ">MS"]);
    for s in &r.steps {
        t.row(vec![
            s.name.to_string(),
            format!("{:.2}", millis(s.latency)),
        ]);
    }
    t.row(vec!["total".into(), format!("{:.2}", millis(r.total))]);
    print(&format!(
        "{}canary ok: namespace {}, mail {} (UID {}), expunged\n",
        t.render(),
        r.namespace,
        r.oid,
        r.uid
    ))
}
