//! The MailPool controller: pools, CRUSH rules, application tag, quotas and PG hints through
//! librados `mon_command`; `rbox_cfg` through rbox-core; the Dovecot cephx user with its
//! keyring Secret and ceph.conf ConfigMap; the storage canary; guarded deletion.
//!
//! Pipeline: read (object, MailCluster, connection) → [`validate`] (pure) → [`build`] the
//! desired state (pure) → apply ([`ceph_apply`]: read, plan, write what differs; [`objects`]:
//! Secret/ConfigMap only when they differ) → [`status`] (pure, written only when changed).
//! An unchanged MailPool therefore reconciles with zero Ceph and zero Kubernetes writes; the
//! canary's probe mail (RADOS data in the reserved namespace) is the one purposeful write.

pub mod build;
pub mod canary;
pub mod ceph_apply;
pub mod delete;
pub mod objects;
pub mod status;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::PartialObjectMeta;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use rbox_core::backend::Backend;
use tokio_util::sync::CancellationToken;

use super::ceph_errors::Error;
use super::instrument::{forget_backoff, instrumented, now, object_key, retry};
use super::watch::{self, Gone, Started};
use super::{Context, cluster_conn};
use crate::api::{MailCluster, MailPool, PoolStatus, ROTATE_KEY_ANNOTATION};
use crate::ceph::user::{UserAction, dovecot_caps};
use crate::ceph::{Admin, MonClient};
use crate::k8s::apply::{patch_status_if_changed, with_timeout};
use crate::k8s::events::Events;
use crate::runtime::metrics::PoolLabels;
use ceph_apply::PoolMemory;
use status::Drift;

pub const CONTROLLER: &str = "mailpool";
/// A reconcile that creates pools waits for their PGs (up to 60 s) and runs a canary.
const DEADLINE: Duration = Duration::from_secs(150);

#[derive(Debug)]
pub struct PoolCtx {
    pub base: Context,
    pub events: Events,
    /// When each MailPool's canary last ran (in memory: after a restart it runs at once).
    canary_last: Mutex<HashMap<String, Instant>>,
}

impl PoolCtx {
    pub fn new(base: Context) -> Self {
        Self {
            events: Events::new(base.client.clone(), "rbox-operator/mailpool"),
            base,
            canary_last: Mutex::default(),
        }
    }

    /// Is a canary due, and how long until the next one?
    fn canary_due(&self, key: &str, interval: Duration) -> (bool, Duration) {
        let map = self.canary_last.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some(t) if t.elapsed() < interval => (false, interval - t.elapsed()),
            _ => (true, interval),
        }
    }

    fn canary_ran(&self, key: &str) {
        self.canary_last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), Instant::now());
    }

    fn forget(&self, mp: &MailPool) {
        let key = object_key(mp);
        self.forget_where(&|k| k == key);
    }

    /// Forget the canary times of MailPools that are gone.
    fn forget_where(&self, gone: Gone<'_>) {
        self.canary_last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| !gone(k));
    }
}

pub async fn run(ctx: Context, token: CancellationToken, started: Started) {
    let api: Api<DeserializeGuard<MailPool>> = ctx.watched_api();
    let owned = watcher::Config::default().labels(&format!(
        "{}={}",
        build::MANAGED_BY.0,
        build::MANAGED_BY.1
    ));
    // Metadata only (`PartialObjectMeta` makes kube ask the API server for no more): the
    // owner reference is all the trigger needs, and keyring values must not sit in operator
    // memory.
    let secrets: Api<PartialObjectMeta<Secret>> = ctx.watched_api();
    let config_maps: Api<ConfigMap> = ctx.watched_api();
    // Guarded: one malformed MailCluster must not stop the changes of every other one from
    // reaching their MailPools (an unguarded list fails as a whole).
    let clusters: Api<DeserializeGuard<MailCluster>> = ctx.watched_api();
    let metrics = ctx.metrics.clone();
    let pctx = Arc::new(PoolCtx::new(ctx));
    let forget_retries = forget_backoff(&pctx.base, CONTROLLER);
    let forget_ctx = pctx.clone();
    let (objects, store) = watch::main_watch(
        api,
        watcher::Config::default().any_semantic(),
        started,
        move |gone| {
            forget_retries(gone);
            forget_ctx.forget_where(gone);
        },
    );
    let controller = Controller::for_stream(objects, store.clone())
        .trigger_backoff(crate::runtime::watch_backoff::WatchBackoff::default());
    let results = controller
        .owns(secrets, owned.clone())
        .owns(config_maps, owned)
        // A MailCluster that changes (new monitors, new key, new rbox settings) re-reconciles
        // the MailPools that reference it.
        .watches(
            clusters,
            watcher::Config::default(),
            move |mc: DeserializeGuard<MailCluster>| pools_of_cluster(&store, &mc),
        )
        .graceful_shutdown_on(async move { token.cancelled().await })
        .run(reconcile, error_policy, pctx);
    watch::drain(CONTROLLER, metrics, results).await;
}

/// The (well-formed) MailPools that reference the MailCluster `mc` (well-formed or not: a
/// malformed one still has a name).
fn pools_of_cluster(
    store: &Store<DeserializeGuard<MailPool>>,
    mc: &DeserializeGuard<MailCluster>,
) -> Vec<ObjectRef<DeserializeGuard<MailPool>>> {
    let ns = mc.namespace();
    let name = mc.name_any();
    store
        .state()
        .into_iter()
        .filter_map(|g| match &g.0 {
            Ok(mp) if mp.namespace() == ns && mp.spec.cluster_ref.name == name => {
                Some(ObjectRef::new(&mp.name_any()).within(ns.as_deref().unwrap_or("")))
            }
            _ => None,
        })
        .collect()
}

async fn reconcile(
    obj: Arc<DeserializeGuard<MailPool>>,
    ctx: Arc<PoolCtx>,
) -> Result<Action, Error> {
    let Some(mp) = crate::k8s::events::well_formed(&obj, &ctx.events).await else {
        return Ok(Action::await_change());
    };
    let key = object_key(mp);
    instrumented(
        &ctx.base,
        CONTROLLER,
        &key,
        DEADLINE,
        reconcile_pool(mp, &ctx),
    )
    .await
}

fn error_policy(obj: Arc<DeserializeGuard<MailPool>>, _err: &Error, ctx: Arc<PoolCtx>) -> Action {
    retry(&ctx.base, CONTROLLER, &object_key(obj.as_ref()))
}

async fn reconcile_pool(cached: &MailPool, ctx: &PoolCtx) -> Result<Action, Error> {
    let ns = cached.namespace().unwrap_or_default();
    let api: Api<MailPool> = Api::namespaced(ctx.base.client.clone(), &ns);
    // The watch cache can lag behind our own last status write (a reconcile triggered by the
    // Secret we just applied sees the old status). Decisions that depend on the status (which
    // key rotation was answered, which parameters we set and what they were before) must see
    // the latest one: one GET per reconcile.
    let Some(fresh) = with_timeout(api.get_opt(&cached.name_any())).await? else {
        return Ok(Action::await_change());
    };
    let mp = &fresh;
    if mp.metadata.deletion_timestamp.is_some() {
        return delete::finalize(mp, ctx, &api).await;
    }
    delete::ensure_finalizer(&api, mp).await?;
    let key = object_key(mp);
    match apply(mp, ctx, &key).await {
        Ok((applied, next)) => {
            let failed_canary = applied.canary.as_ref().and_then(|c| c.message.clone());
            let st = status::build(mp.status.as_ref(), mp.metadata.generation, &applied, now());
            let changed =
                patch_status_if_changed(&api, &mp.name_any(), mp.status.as_ref(), &st).await?;
            if changed {
                tracing::debug!(mailpool = %key, changed = ?status_diff(mp.status.as_ref(), &st), "status written");
            }
            report_drift(&ctx.events, mp, &applied.drift).await;
            if changed && let Some(msg) = failed_canary {
                ctx.events.warning(mp, "CanaryFailed", "Canary", msg).await;
            }
            Ok(Action::requeue(next))
        }
        Err(e) => {
            if e.is_connection_fault() {
                ctx.base
                    .connections
                    .invalidate(&format!("{ns}/{}", mp.spec.cluster_ref.name))
                    .await;
            }
            let st = status::build_failed(
                mp.status.as_ref(),
                mp.metadata.generation,
                e.reason(),
                &e.to_string(),
                e.is_connection_fault(),
                now(),
            );
            if patch_status_if_changed(&api, &mp.name_any(), mp.status.as_ref(), &st).await? {
                ctx.events
                    .warning(mp, e.reason(), "Reconcile", e.to_string())
                    .await;
            }
            Err(e)
        }
    }
}

/// Read the MailCluster and the connection, then converge. Returns what was applied and when
/// to come back (the next canary).
async fn apply(
    mp: &MailPool,
    ctx: &PoolCtx,
    key: &str,
) -> Result<(status::Applied, Duration), Error> {
    validate::validate(&mp.spec)?;
    let ns = mp.namespace().unwrap_or_default();
    let clusters: Api<MailCluster> = Api::namespaced(ctx.base.client.clone(), &ns);
    let mc = with_timeout(clusters.get_opt(&mp.spec.cluster_ref.name))
        .await?
        .ok_or_else(|| Error::ClusterNotFound(format!("{ns}/{}", mp.spec.cluster_ref.name)))?;
    let info = cluster_conn::resolve(&ctx.base, &mc).await?;
    let conn = cluster_conn::connect(&ctx.base, &info).await?;
    let admin = cluster_conn::admin(&ctx.base, &conn);
    let interval = Duration::from_secs(u64::from(mc.spec.health.canary_interval_seconds.max(10)));
    let (due, next) = ctx.canary_due(key, interval);
    let applied = converge(
        mp,
        &mc,
        &ctx.base,
        &info.mon_host,
        &admin,
        conn.backend.clone(),
        due,
    )
    .await?;
    if due {
        ctx.canary_ran(key);
    }
    Ok((applied, next))
}

/// Top-level status fields that differ (for the debug log: why was status written?).
fn status_diff(
    old: Option<&crate::api::MailPoolStatus>,
    new: &crate::api::MailPoolStatus,
) -> Vec<String> {
    let o = old
        .map(|o| serde_json::to_value(o).unwrap_or_default())
        .unwrap_or_default();
    let n = serde_json::to_value(new).unwrap_or_default();
    n.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| o.get(k.as_str()) != Some(v))
        .map(|(k, v)| {
            format!(
                "{k}: {} -> {v}",
                o.get(k.as_str()).cloned().unwrap_or_default()
            )
        })
        .collect()
}

fn memory(prev: Option<&PoolStatus>, name: &str) -> PoolMemory {
    match prev.filter(|p| p.name == name) {
        Some(p) => PoolMemory {
            managed_parameters: p.managed_parameters.clone(),
        },
        None => PoolMemory::default(),
    }
}

/// The Ceph and Kubernetes side of one reconcile, generic over the monitor client and the
/// RADOS backend (unit tests: the fake monitor and the in-memory backend).
pub async fn converge<M: MonClient>(
    mp: &MailPool,
    mc: &MailCluster,
    ctx: &Context,
    mon_host: &str,
    admin: &Admin<M>,
    backend: Arc<dyn Backend>,
    run_canary: bool,
) -> Result<status::Applied, Error> {
    let data = build::desired_pool(&mp.spec.data, mp.uid())?;
    let index = build::desired_pool(&mp.spec.index, mp.uid())?;
    let prev = mp.status.as_ref();
    let records = ceph_apply::ensure_pools(
        admin,
        [&data, &index],
        [
            &memory(prev.and_then(|p| p.data_pool.as_ref()), &data.name),
            &memory(prev.and_then(|p| p.index_pool.as_ref()), &index.name),
        ],
    )
    .await?;
    let settled = settled(mp, &data.name, &index.name);
    let mut drift = Vec::new();
    if settled {
        for r in records.iter().filter(|r| !r.sent.is_empty()) {
            drift.push(Drift {
                what: "pool",
                detail: format!("pool {} differed: {}", r.name, r.sent.join("; ")),
            });
        }
    }
    let cfg = build::rbox_config(&mc.spec.rbox)?;
    let cfg_object = &mc.spec.rbox.cfg_object_name;
    let cfg_write = ceph_apply::ensure_cfg(
        backend.as_ref(),
        &data.name,
        cfg_object,
        &cfg,
        Some(&ctx.metrics),
    )
    .await?;
    // A rewrite follows the MailCluster's rbox settings (not part of this spec): only a
    // missing object is drift.
    if settled && cfg_write == ceph_apply::CfgWrite::Created {
        drift.push(Drift {
            what: "rbox_cfg",
            detail: format!("{cfg_object} was missing from pool {}", data.name),
        });
    }

    let entity = build::dovecot_entity(mp);
    let caps = dovecot_caps(&data.name, &index.name);
    let requested = mp.annotations().get(ROTATE_KEY_ANNOTATION).cloned();
    let rotate = requested.is_some() && requested != prev.and_then(|p| p.key_rotation.clone());
    let (user, action) = ceph_apply::ensure_user(admin, &entity, &caps, rotate).await?;
    if settled {
        match action {
            UserAction::Create => drift.push(Drift {
                what: "cephx_user",
                detail: format!("cephx user {entity} was missing (recreated with a new key)"),
            }),
            UserAction::FixCaps => drift.push(Drift {
                what: "cephx_user",
                detail: format!("the caps of cephx user {entity} differed"),
            }),
            UserAction::Nothing | UserAction::Rotate => {}
        }
    }

    let ns = mp.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let secret = build::keyring_secret(mp, &entity, &user.key);
    let conf = build::ceph_conf_map(mp, mon_host, &entity, (&data.name, &index.name));
    let written = [
        (
            "secret",
            "Secret",
            &secret.metadata.name,
            objects::apply_if_changed(&secrets, &secret).await?,
        ),
        (
            "configmap",
            "ConfigMap",
            &conf.metadata.name,
            objects::apply_if_changed(&config_maps, &conf).await?,
        ),
    ];
    // New content follows a rotated key or new monitors: only a deleted object or our
    // labels/owner references changed are drift.
    for (what, kind, name, w) in written {
        let name = name.as_deref().unwrap_or_default();
        let detail = match w {
            objects::Written::Created => format!("{kind} {name} was missing"),
            objects::Written::MetadataRepaired => {
                format!("the labels or owner references of {kind} {name} differed")
            }
            objects::Written::Same | objects::Written::ContentUpdated => continue,
        };
        if settled {
            drift.push(Drift { what, detail });
        }
    }
    for d in &drift {
        ctx.metrics.drift(CONTROLLER, d.what);
    }

    // Usage and PG states are reports, not requirements: a failure to read them leaves the
    // previous values.
    let health = match ceph_apply::pool_health(admin, [&data.name, &index.name]).await {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "reading pool usage failed");
            None
        }
    };
    let canary = if run_canary {
        let labels = PoolLabels {
            namespace: ns.clone(),
            mailpool: mp.name_any(),
        };
        let timeout = Duration::from_secs(u64::from(mc.spec.health.canary_timeout_seconds.max(1)));
        Some(
            canary::run(
                backend,
                (&data.name, &index.name),
                cfg_object,
                timeout,
                &ctx.metrics,
                &labels,
            )
            .await,
        )
    } else {
        None
    };
    Ok(status::Applied {
        records,
        quotas: [
            (data.quota_max_bytes, data.quota_max_objects),
            (index.quota_max_bytes, index.quota_max_objects),
        ],
        health,
        entity,
        secret: build::secret_name(mp),
        config_map: build::config_map_name(mp),
        key_rotation: if rotate {
            requested
        } else {
            prev.and_then(|p| p.key_rotation.clone())
        },
        canary,
        quota_warning_percent: mc.spec.health.quota_warning_percent,
        drift,
    })
}

/// Did the last reconcile converge this very spec? Then whatever differs now was changed
/// behind the operator's back. (A new generation, a first reconcile, a failed one or renamed
/// pools: differences are the operator's own work.)
fn settled(mp: &MailPool, data: &str, index: &str) -> bool {
    let Some(st) = mp.status.as_ref() else {
        return false;
    };
    let pools_ready = st
        .conditions
        .iter()
        .any(|c| c.type_ == crate::api::conditions::POOLS_READY && c.status == "True");
    pools_ready
        && st.observed_generation.is_some()
        && st.observed_generation == mp.metadata.generation
        && st.data_pool.as_ref().is_some_and(|p| p.name == data)
        && st.index_pool.as_ref().is_some_and(|p| p.name == index)
}

/// Say what drift was repaired: a Warning Event on the MailPool (and a log line), so an
/// operator learns that someone or something changes the platform by hand.
async fn report_drift(events: &Events, mp: &MailPool, drift: &[Drift]) {
    if drift.is_empty() {
        return;
    }
    let note: Vec<&str> = drift.iter().map(|d| d.detail.as_str()).collect();
    let note = format!(
        "repaired changes made outside the operator: {}",
        note.join("; ")
    );
    tracing::warn!(mailpool = %object_key(mp), %note, "drift repaired");
    events.warning(mp, "DriftRepaired", "Reconcile", note).await;
}

#[cfg(test)]
mod scenario_tests;
