//! The DovecotFleet controller: read (fleet, MailPool, MailCluster, referenced Secrets,
//! ConfigMaps, PVC) → validate (pure) → doveconf check → build (pure) → server-side apply of
//! ConfigMap, StatefulSet, Services, PDB, removal of Services no longer wanted → status.
//!
//! A fleet whose prerequisites are missing, or whose configuration doveconf refuses, gets a
//! `Degraded` condition and its running objects are left exactly as they are.

pub mod build;
pub mod status;
pub mod validate;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, PartialObjectMeta};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use self::build::{FLEET_LABEL, Owned};
use self::status::{Outcome, desired_status};
use self::validate::{Observed, Plan};
use super::Context;
use super::instrument::{ReconcileError, forget_backoff, instrumented, now, object_key, retry};
use super::watch::{self, Started};
use crate::api::{DovecotFleet, MailCluster, MailPool, conditions as ct};
use crate::dovecot::doveconf::{self, CheckError};
use crate::k8s::apply::{ApplyError, apply_if_changed, patch_status_if_changed, with_timeout};
use crate::k8s::events::Events;
use crate::runtime::ErrorCategory;
use crate::runtime::watch_backoff::WatchBackoff;

pub const CONTROLLER: &str = "dovecotfleet";
/// A reconcile reads a handful of objects, may run doveconf and applies at most a few.
const DEADLINE: Duration = Duration::from_secs(90);
/// How often a fleet waiting for something it does not watch (a PVC) looks again.
const BLOCKED_RECHECK: Duration = Duration::from_secs(30);
/// Resync of a healthy fleet (watches do the real work; this only bounds staleness).
const RESYNC: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] ApplyError),
    #[error("DovecotFleet has no namespace")]
    NoNamespace,
    #[error("reconcile took longer than {0:?}")]
    Timeout(Duration),
}

impl ReconcileError for Error {
    fn deadline_passed(deadline: Duration) -> Self {
        Error::Timeout(deadline)
    }
}

impl ErrorCategory for Error {
    fn category(&self) -> &'static str {
        match self {
            Error::Kube(ApplyError::Timeout(_)) => "kube_timeout",
            Error::Kube(_) => "kube",
            Error::NoNamespace => "invalid",
            Error::Timeout(_) => "timeout",
        }
    }
}

/// doveconf results by config hash (the check is deterministic in the config).
type CheckCache = Mutex<HashMap<String, Result<(), String>>>;

struct FleetCtx {
    ctx: Context,
    events: Events,
    checks: CheckCache,
}

/// Run the controller until `token` is cancelled.
pub async fn run(ctx: Context, token: CancellationToken, started: Started) {
    // DeserializeGuard: one malformed object (a schema the API server let through, an older
    // version) gets a Warning Event instead of breaking the watch for every other object.
    let fleets: Api<DeserializeGuard<DovecotFleet>> = ctx.watched_api();
    let owned = watcher::Config::default().labels(FLEET_LABEL);
    // A deleted fleet's retry count goes with it.
    let (objects, fleet_store) = watch::main_watch(
        fleets,
        watcher::Config::default().any_semantic(),
        started,
        forget_backoff(&ctx, CONTROLLER),
    );
    let controller = Controller::for_stream(objects, fleet_store.clone())
        .trigger_backoff(WatchBackoff::default());

    // MailPools: a reflector (for the Secret/ConfigMap mappers) and a trigger.
    let (pools, pool_writer) = reflector::store::<DeserializeGuard<MailPool>>();
    let pool_reflector = reflector::reflector(
        pool_writer,
        watcher(ctx.watched_api(), watcher::Config::default()),
    )
    .touched_objects()
    .for_each(|_| futures::future::ready(()));

    let fs = fleet_store.clone();
    let by_pool = move |pool: DeserializeGuard<MailPool>| {
        let ns = pool.namespace();
        let name = pool.name_any();
        fleets_where(&fs, ns.as_deref(), |f| f.spec.pool_ref.name == name)
    };
    let fs = fleet_store.clone();
    let ps = pools.clone();
    let by_secret = move |s: PartialObjectMeta<Secret>| {
        let ns = s.namespace();
        let name = s.name_any();
        fleets_where(&fs, ns.as_deref(), |f| {
            referenced_secrets(f, &ps).contains(&name)
        })
    };
    let fs = fleet_store.clone();
    let ps = pools.clone();
    let by_config_map = move |c: PartialObjectMeta<ConfigMap>| {
        let ns = c.namespace();
        let name = c.name_any();
        fleets_where(&fs, ns.as_deref(), |f| {
            pool_status_of(f, &ps).and_then(|s| s.ceph_config_map) == Some(name.clone())
        })
    };

    let fctx = Arc::new(FleetCtx {
        events: Events::new(ctx.client.clone(), "rbox-operator-dovecotfleet"),
        ctx: ctx.clone(),
        checks: Mutex::new(HashMap::new()),
    });
    // Only names matter to the mappers: `Api<PartialObjectMeta<_>>` asks the API server for
    // metadata only, so Secret values never reach the operator.
    let secrets_meta: Api<PartialObjectMeta<Secret>> = ctx.watched_api();
    let config_maps_meta: Api<PartialObjectMeta<ConfigMap>> = ctx.watched_api();
    let pools_api: Api<DeserializeGuard<MailPool>> = ctx.watched_api();
    let run = controller
        .owns(ctx.watched_api::<StatefulSet>(), owned.clone())
        .owns(ctx.watched_api::<Service>(), owned.clone())
        .owns(ctx.watched_api::<ConfigMap>(), owned.clone())
        .owns(ctx.watched_api::<PodDisruptionBudget>(), owned)
        .watches(pools_api, watcher::Config::default(), by_pool)
        .watches(secrets_meta, watcher::Config::default(), by_secret)
        .watches(config_maps_meta, watcher::Config::default(), by_config_map)
        .graceful_shutdown_on(async move { token.cancelled().await })
        .run(reconcile, error_policy, fctx);
    let run = watch::drain(CONTROLLER, ctx.metrics.clone(), run);
    // The reflector runs as long as the controller; the controller ends on shutdown.
    tokio::select! {
        _ = run => {}
        _ = pool_reflector => {}
    }
}

/// The (well-formed) fleets of namespace `ns` for which `pred` holds.
fn fleets_where(
    store: &Store<DeserializeGuard<DovecotFleet>>,
    ns: Option<&str>,
    pred: impl Fn(&DovecotFleet) -> bool,
) -> Vec<ObjectRef<DeserializeGuard<DovecotFleet>>> {
    store
        .state()
        .iter()
        .filter(|g| g.namespace().as_deref() == ns && g.0.as_ref().is_ok_and(&pred))
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

fn pool_status_of(
    f: &DovecotFleet,
    pools: &Store<DeserializeGuard<MailPool>>,
) -> Option<crate::api::MailPoolStatus> {
    let ns = f.namespace()?;
    let pool = pools.get(&ObjectRef::new(&f.spec.pool_ref.name).within(&ns))?;
    pool.0.as_ref().ok()?.status.clone()
}

fn auth_secret_names(a: &crate::api::AuthSettings) -> BTreeSet<String> {
    let p = a.passwd_file.as_ref().map(|f| f.secret_name.clone());
    let l = a.ldap.as_ref().map(|f| f.secret_name.clone());
    let s = a.sql.as_ref().map(|f| f.secret_name.clone());
    [p, l, s].into_iter().flatten().collect()
}

/// Names of the Secrets a fleet depends on (auth, TLS, its pool's keyring).
fn referenced_secrets(
    f: &DovecotFleet,
    pools: &Store<DeserializeGuard<MailPool>>,
) -> BTreeSet<String> {
    let mut out = auth_secret_names(&f.spec.auth);
    if let Some(t) = &f.spec.tls {
        out.insert(t.secret_name.clone());
    }
    if let Some(k) = pool_status_of(f, pools).and_then(|s| s.keyring_secret) {
        out.insert(k);
    }
    out
}

async fn reconcile(
    guard: Arc<DeserializeGuard<DovecotFleet>>,
    fctx: Arc<FleetCtx>,
) -> Result<Action, Error> {
    let Some(fleet) = crate::k8s::events::well_formed(&guard, &fctx.events).await else {
        return Ok(Action::await_change());
    };
    let key = object_key(fleet);
    instrumented(
        &fctx.ctx,
        CONTROLLER,
        &key,
        DEADLINE,
        reconcile_fleet(fleet, &fctx),
    )
    .await
}

async fn reconcile_fleet(fleet: &DovecotFleet, fctx: &FleetCtx) -> Result<Action, Error> {
    let ctx = &fctx.ctx;
    let ns = fleet.namespace().ok_or(Error::NoNamespace)?;
    if fleet.meta().deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove what the fleet owned.
        return Ok(Action::await_change());
    }
    let seen = read(ctx, &ns, fleet).await?;
    let sts_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    let (outcome, sts) = match validate::validate(fleet, &seen) {
        Err(blocked) => {
            let sts = with_timeout(sts_api.get_opt(&fleet.name_any())).await?;
            (Outcome::Blocked(blocked), sts)
        }
        Ok(plan) => match check(fctx, &plan).await {
            Err(msg) => {
                let sts = with_timeout(sts_api.get_opt(&fleet.name_any())).await?;
                (Outcome::Refused(msg), sts)
            }
            Ok(unchecked_reason) => {
                let owned = build::build(fleet, &plan);
                let (sts, created) = apply_all(ctx, &ns, fleet, owned).await?;
                report_drift(ctx, &fctx.events, fleet, &created).await;
                (
                    Outcome::Applied {
                        unchecked_reason,
                        ephemeral_index: status::ephemeral_reason(&plan.index),
                    },
                    Some(sts),
                )
            }
        },
    };

    let desired = desired_status(fleet, sts.as_ref(), &outcome, now());
    let api: Api<DovecotFleet> = Api::namespaced(ctx.client.clone(), &ns);
    let before = fleet.status.as_ref();
    patch_status_if_changed(&api, &fleet.name_any(), before, &desired).await?;
    publish_degraded_change(&fctx.events, fleet, &desired).await;

    Ok(match outcome {
        Outcome::Blocked(_) => Action::requeue(BLOCKED_RECHECK),
        _ => Action::requeue(RESYNC),
    })
}

fn error_policy(
    guard: Arc<DeserializeGuard<DovecotFleet>>,
    _err: &Error,
    fctx: Arc<FleetCtx>,
) -> Action {
    // Counted and logged by `instrumented`.
    retry(&fctx.ctx, CONTROLLER, &object_key(guard.as_ref()))
}

/// An Event when the Degraded condition turns on or changes its reason: users see refusals
/// and missing prerequisites in `kubectl describe` without polling the status.
async fn publish_degraded_change(
    events: &Events,
    fleet: &DovecotFleet,
    desired: &crate::api::DovecotFleetStatus,
) {
    let find = |conds: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
        conds
            .iter()
            .find(|c| c.type_ == ct::DEGRADED)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let before = fleet.status.as_ref().and_then(|s| find(&s.conditions));
    let after = find(&desired.conditions);
    if before == after {
        return;
    }
    if let Some((status, reason, message)) = after
        && status == "True"
    {
        events.warning(fleet, &reason, "Reconcile", message).await;
    }
}

/// Read what the fleet references. Secrets are reduced to their key names at once.
async fn read(ctx: &Context, ns: &str, fleet: &DovecotFleet) -> Result<Observed, Error> {
    let client = &ctx.client;
    let pools: Api<MailPool> = Api::namespaced(client.clone(), ns);
    let pool = with_timeout(pools.get_opt(&fleet.spec.pool_ref.name)).await?;
    let cluster = match &pool {
        Some(p) => {
            let clusters: Api<MailCluster> = Api::namespaced(client.clone(), ns);
            with_timeout(clusters.get_opt(&p.spec.cluster_ref.name)).await?
        }
        None => None,
    };
    let pool_status = pool
        .as_ref()
        .and_then(|p| p.status.clone())
        .unwrap_or_default();

    let mut secret_names: BTreeSet<String> = BTreeSet::new();
    secret_names.extend(auth_secret_names(&fleet.spec.auth));
    if let Some(t) = &fleet.spec.tls {
        secret_names.insert(t.secret_name.clone());
    }
    if let Some(k) = &pool_status.keyring_secret {
        secret_names.insert(k.clone());
    }
    let secrets_api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut secrets = BTreeMap::new();
    for name in secret_names {
        if let Some(s) = with_timeout(secrets_api.get_opt(&name)).await? {
            let mut keys: BTreeSet<String> = s.data.unwrap_or_default().into_keys().collect();
            keys.extend(s.string_data.unwrap_or_default().into_keys());
            secrets.insert(name, keys);
        }
    }
    let mut config_maps = BTreeMap::new();
    if let Some(name) = &pool_status.ceph_config_map {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        if let Some(c) = with_timeout(cms.get_opt(name)).await? {
            let mut keys: BTreeSet<String> = c.data.unwrap_or_default().into_keys().collect();
            keys.extend(c.binary_data.unwrap_or_default().into_keys());
            config_maps.insert(name.clone(), keys);
        }
    }
    let mut claims = BTreeSet::new();
    if let Some(pvc) = &fleet.spec.index_storage.persistent_volume_claim {
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        match with_timeout(pvcs.get_metadata_opt(&pvc.claim_name)).await {
            Ok(Some(_)) => {
                claims.insert(pvc.claim_name.clone());
            }
            Ok(None) => {}
            // The PVC check only explains a missing claim early; without the permission to read
            // claims (an older chart, a trimmed Role) the pods themselves show a missing claim
            // (Pending), so the fleet is not held back.
            Err(ApplyError::Kube(kube::Error::Api(e))) if e.code == 403 => {
                tracing::debug!(claim = %pvc.claim_name, "no permission to read PVCs; not checked");
                claims.insert(pvc.claim_name.clone());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Observed {
        pool,
        cluster,
        secrets,
        config_maps,
        claims,
    })
}

/// The doveconf check, cached by config hash. `Err(message)`: refused. `Ok(Some(reason))`:
/// doveconf could not run, the config is applied unchecked (Dovecot itself still refuses a
/// broken config at start, and the rollout stops at the first pod that is not Ready).
async fn check(fctx: &FleetCtx, plan: &Plan) -> Result<Option<String>, String> {
    let cached = fctx
        .checks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&plan.config_hash)
        .cloned();
    if let Some(r) = cached {
        return r.map(|()| None);
    }
    let result = match doveconf::check(&plan.config).await {
        Ok(()) => Ok(()),
        Err(CheckError::Refused(msg)) => Err(msg),
        Err(other) => {
            tracing::warn!(error = %other, "doveconf check skipped");
            // Not cached: the next reconcile tries again.
            return Ok(Some(other.to_string()));
        }
    };
    let mut cache = fctx.checks.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() > 1024 {
        cache.clear();
    }
    cache.insert(plan.config_hash.clone(), result.clone());
    result.map(|()| None)
}

/// Apply everything the fleet owns and delete Services it no longer wants. Returns the
/// StatefulSet as the API server has it, and the owned objects that had to be created.
async fn apply_all(
    ctx: &Context,
    ns: &str,
    fleet: &DovecotFleet,
    owned: Owned,
) -> Result<(StatefulSet, Vec<(&'static str, String)>), Error> {
    let client = &ctx.client;
    // Owned objects that did not exist and were created (`kind`, name).
    let mut created: Vec<(&'static str, String)> = Vec::new();
    let mut note = |kind: &'static str, name: String, was_created: bool| {
        if was_created {
            created.push((kind, name));
        }
    };
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let (cm, c) = apply_if_changed(&cms, owned.config_map).await?;
    note("ConfigMap", cm.name_any(), c);
    let svcs: Api<Service> = Api::namespaced(client.clone(), ns);
    let wanted: BTreeSet<String> = owned.services.iter().map(|s| s.name_any()).collect();
    for svc in owned.services {
        let (svc, c) = apply_if_changed(&svcs, svc).await?;
        note("Service", svc.name_any(), c);
    }
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    let (pdb, c) = apply_if_changed(&pdbs, owned.pdb).await?;
    note("PodDisruptionBudget", pdb.name_any(), c);
    let stss: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let (sts, c) = apply_if_changed(&stss, owned.stateful_set).await?;
    note("StatefulSet", sts.name_any(), c);

    // Services of protocols turned off: ours (owner reference), not wanted any more.
    let uid = fleet.uid().unwrap_or_default();
    let lp = ListParams::default().labels(&format!("{FLEET_LABEL}={}", fleet.name_any()));
    let existing = with_timeout(svcs.list_metadata(&lp)).await?;
    for s in existing.items {
        let ours = s.owner_references().iter().any(|o| o.uid == uid);
        let name = s.name_any();
        if ours && !wanted.contains(&name) {
            tracing::info!(fleet = %fleet.name_any(), service = %name, "deleting Service no longer wanted");
            match with_timeout(svcs.delete(&name, &DeleteParams::background())).await {
                Ok(_) => {}
                Err(ApplyError::Kube(kube::Error::Api(e))) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok((sts, created))
}

/// Did the last reconcile apply this very spec? Then an owned object that is missing now was
/// deleted behind the operator's back.
fn settled(fleet: &DovecotFleet) -> bool {
    fleet.status.as_ref().is_some_and(|st| {
        st.observed_generation.is_some()
            && st.observed_generation == fleet.metadata.generation
            && st
                .conditions
                .iter()
                .any(|c| c.type_ == ct::DEGRADED && c.status == "False")
    })
}

/// Owned objects recreated while the spec was unchanged: counted and told in a Warning Event.
async fn report_drift(
    ctx: &Context,
    events: &Events,
    fleet: &DovecotFleet,
    created: &[(&'static str, String)],
) {
    if created.is_empty() || !settled(fleet) {
        return;
    }
    for (kind, _) in created {
        ctx.metrics.drift(CONTROLLER, &kind.to_ascii_lowercase());
    }
    let what: Vec<String> = created.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let note = format!(
        "recreated objects deleted outside the operator: {}",
        what.join(", ")
    );
    tracing::warn!(fleet = %object_key(fleet), %note, "drift repaired");
    events
        .warning(fleet, "DriftRepaired", "Reconcile", note)
        .await;
}
