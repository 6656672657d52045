//! Apply a MailPool's Ceph side: read first, plan purely, write only what differs. Generic
//! over the monitor client and the RADOS backend so unit tests run it against the fake
//! monitor and the in-memory backend.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rbox_core::backend::{Backend, NamespaceFilter};
use rbox_core::format::cfg::RboxConfig;
use rbox_core::store::{read_cfg, write_cfg};

use crate::ceph::observe::{ObservedPool, PoolUsage};
use crate::ceph::pool::{DesiredPool, Layout, Observed, plan_pool, track_parameters};
use crate::ceph::user::{self, UserAction, UserInfo};
use crate::ceph::{Admin, CephError, MonClient};
use crate::controllers::ceph_errors::Error;
use crate::runtime::metrics::Metrics;

use super::build::layout_conflicts;

/// What the operator knows about one of its pools after applying it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PoolRecord {
    pub name: String,
    pub id: i64,
    /// The pool existed before this MailPool: never deleted by the operator.
    pub adopted: bool,
    /// Free-form parameters the operator set, with the value each had before ("" = unset).
    pub managed_parameters: BTreeMap<String, String>,
    /// The commands this reconcile sent (empty in steady state).
    pub writes: usize,
    /// What they were, one line each (`MonCmd::describe`: never key material).
    pub sent: Vec<String>,
}

/// What the previous status says about a pool (same name only).
#[derive(Clone, Debug, Default)]
pub struct PoolMemory {
    pub managed_parameters: BTreeMap<String, String>,
}

fn to_opt(m: &BTreeMap<String, String>) -> BTreeMap<String, Option<String>> {
    m.iter()
        .map(|(k, v)| (k.clone(), (!v.is_empty()).then(|| v.clone())))
        .collect()
}

fn from_opt(m: &BTreeMap<String, Option<String>>) -> BTreeMap<String, String> {
    m.iter()
        .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
        .collect()
}

/// Make both pools match. Reads: `osd pool ls detail`, `osd crush rule dump`, the EC profile
/// of an EC pool, `osd pool get all` only where free-form parameters are in play.
pub async fn ensure_pools<M: MonClient>(
    admin: &Admin<M>,
    desired: [&DesiredPool; 2],
    memory: [&PoolMemory; 2],
) -> Result<[PoolRecord; 2], Error> {
    let pools = admin.pools().await?;
    let rules = admin.crush_rules().await?;
    let mut records: Vec<PoolRecord> = Vec::new();
    let mut created = Vec::new();
    for (d, mem) in desired.into_iter().zip(memory) {
        let observed: Option<&ObservedPool> = pools.iter().find(|p| p.name == d.name);
        let profile_name = match (&d.layout, observed) {
            (_, Some(p)) if !p.erasure_code_profile.is_empty() => {
                Some(p.erasure_code_profile.clone())
            }
            (Layout::Erasure { profile, .. }, _) => Some(profile.clone()),
            _ => None,
        };
        let ec_profile = match &profile_name {
            Some(n) => admin.ec_profile(n).await?,
            None => None,
        };
        let pool_all = if observed.is_some()
            && (!d.parameters.is_empty() || !mem.managed_parameters.is_empty())
        {
            Some(admin.pool_get_all(&d.name).await?)
        } else {
            None
        };
        let (baseline, restore) = track_parameters(
            &d.parameters,
            &to_opt(&mem.managed_parameters),
            pool_all.as_ref(),
        );
        let plan = plan_pool(
            d,
            &Observed {
                pool: observed,
                rules: &rules,
                ec_profile: ec_profile.as_ref(),
                pool_all: pool_all.as_ref(),
            },
            &restore,
        )?;
        if !plan.is_empty() {
            tracing::info!(pool = %d.name, commands = plan.commands.len(), creates = plan.creates_pool, "applying pool plan");
        }
        admin.apply(&plan.commands).await?;
        if plan.creates_pool {
            created.push(d.name.clone());
        }
        records.push(PoolRecord {
            name: d.name.clone(),
            id: observed.map(|p| p.id).unwrap_or(-1),
            // Ceph itself records which MailPool created a pool (application metadata), so a
            // stale or lost status can never turn an adopted pool into a deletable one.
            adopted: observed.is_some_and(|p| p.owner.is_none() || p.owner != d.owner),
            managed_parameters: from_opt(&baseline),
            writes: plan.commands.len(),
            sent: plan.commands.iter().map(|c| c.describe()).collect(),
        });
    }
    if !created.is_empty() {
        let pools = admin.pools().await?;
        for r in &mut records {
            if let Some(p) = pools.iter().find(|p| p.name == r.name) {
                r.id = p.id;
            }
        }
        for name in &created {
            wait_active(admin, name, Duration::from_secs(60)).await?;
        }
    }
    let [a, b]: [PoolRecord; 2] = records
        .try_into()
        .map_err(|_| Error::Invalid("internal: expected two pool records".into()))?;
    Ok([a, b])
}

/// Wait until every PG of a new pool is active: writes (the canary, `rbox_cfg`) before that
/// would block.
pub async fn wait_active<M: MonClient>(
    admin: &Admin<M>,
    pool: &str,
    limit: Duration,
) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        let (states, _) = admin.pg_states(pool).await?;
        let total: u32 = states.values().sum();
        let active: u32 = states
            .iter()
            .filter(|(s, _)| s.split('+').any(|p| p == "active"))
            .map(|(_, n)| n)
            .sum();
        if total > 0 && active == total {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(Error::Ceph(CephError::Unreachable(format!(
                "PGs of new pool {pool} not active after {limit:?}: {states:?}"
            ))));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What [`ensure_cfg`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CfgWrite {
    /// It was as desired: nothing written.
    Same,
    /// It was missing and was written.
    Created,
    /// It differed (in keys that may change) and was rewritten.
    Rewritten,
}

/// Write `rbox_cfg` when it is missing or differs; refuse to rewrite layout keys under an
/// existing config.
pub async fn ensure_cfg(
    backend: &dyn Backend,
    pool: &str,
    object: &str,
    desired: &RboxConfig,
    metrics: Option<&Metrics>,
) -> Result<CfgWrite, Error> {
    let started = Instant::now();
    let current = read_cfg(backend, pool, object).await?;
    if let Some(m) = metrics {
        m.ceph_call("rbox_cfg read", started.elapsed());
    }
    let outcome = match current {
        Some(c) if &c == desired => return Ok(CfgWrite::Same),
        Some(c) => {
            let conflicts = layout_conflicts(&c, desired);
            if !conflicts.is_empty() {
                return Err(Error::Invalid(format!(
                    "{object} in pool {pool} has {}: refusing to rewrite it under stored mail",
                    conflicts.join(", ")
                )));
            }
            CfgWrite::Rewritten
        }
        None => CfgWrite::Created,
    };
    if let Some(m) = metrics {
        m.ceph_write("rbox_cfg write");
    }
    write_cfg(backend, pool, object, desired).await?;
    Ok(outcome)
}

/// Create, correct or rotate the Dovecot user; returns it as Ceph has it afterwards, and what
/// was done.
pub async fn ensure_user<M: MonClient>(
    admin: &Admin<M>,
    entity: &str,
    caps: &[(String, String)],
    rotate: bool,
) -> Result<(UserInfo, UserAction), Error> {
    let current = admin.user(entity).await?;
    let action = user::plan_user(current.as_ref(), caps, rotate);
    let cmds = user::commands(&action, entity, caps);
    if cmds.is_empty()
        && let Some(u) = current
    {
        return Ok((u, action));
    }
    tracing::info!(entity, ?action, "applying cephx user");
    admin.apply(&cmds).await?;
    let user = admin.user(entity).await?.ok_or_else(|| {
        Error::Ceph(CephError::Command {
            prefix: "auth get".into(),
            errno: -2,
            message: format!("{entity} missing right after it was created"),
        })
    })?;
    Ok((user, action))
}

/// Usage, PG states and large-omap objects of one pool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolHealth {
    pub usage: PoolUsage,
    pub pg_states: BTreeMap<String, u32>,
    pub large_omap_objects: u64,
}

pub async fn pool_health<M: MonClient>(
    admin: &Admin<M>,
    pools: [&str; 2],
) -> Result<[PoolHealth; 2], Error> {
    let usage = admin.usage().await?;
    let mut out: [PoolHealth; 2] = Default::default();
    for (slot, name) in out.iter_mut().zip(pools) {
        let (pg_states, large_omap_objects) = admin.pg_states(name).await?;
        *slot = PoolHealth {
            usage: usage.get(name).cloned().unwrap_or_default(),
            pg_states,
            large_omap_objects,
        };
    }
    Ok(out)
}

/// Objects that are mail (or user data) in a pool: everything except `rbox_cfg` and the
/// canary's namespace.
pub async fn count_mail(
    backend: &Arc<dyn Backend>,
    pool: &str,
    cfg_object: &str,
) -> Result<usize, Error> {
    let listed = backend
        .list_objects(pool, &NamespaceFilter::All)
        .await
        .map_err(|e| Error::Store(rbox_core::error::StoreError::Backend(e)))?;
    Ok(crate::ceph::delete::mail_objects(&listed, cfg_object))
}
