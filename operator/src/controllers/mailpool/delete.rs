//! Deleting a MailPool. `Retain` (default) keeps pools and mail and removes only the Dovecot
//! cephx user. `Delete` removes the pools the operator created, and only when the
//! confirmation annotation names the data pool; without it the deletion waits and says, in
//! `DeletionBlocked`, how many objects the pools hold. Adopted pools and pools another
//! MailPool names are never deleted.

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use rbox_core::backend::Backend;
use serde_json::json;

use super::build::{default_profile_name, dovecot_entity};
use super::{PoolCtx, ceph_apply, status};
use crate::api::{CONFIRM_DELETE_ANNOTATION, MailCluster, MailPool, ReclaimPolicy};
use crate::ceph::delete::{OwnedPool, plan_delete};
use crate::controllers::ceph_errors::Error;
use crate::controllers::cluster_conn;
use crate::controllers::instrument::now;
use crate::k8s::apply::{patch_status_if_changed, with_timeout};

pub const FINALIZER: &str = "mail.rbox.io/ceph-cleanup";

fn has_finalizer(mp: &MailPool) -> bool {
    mp.finalizers().iter().any(|f| f == FINALIZER)
}

async fn set_finalizers(
    api: &Api<MailPool>,
    mp: &MailPool,
    list: Vec<String>,
    cas: bool,
) -> Result<(), Error> {
    // Adding uses the resourceVersion as a compare-and-swap against concurrent finalizer
    // edits; removing follows our own status write (a newer version), so it goes without.
    let patch = if cas {
        json!({"metadata": {"finalizers": list, "resourceVersion": mp.resource_version()}})
    } else {
        json!({"metadata": {"finalizers": list}})
    };
    with_timeout(api.patch(
        &mp.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    ))
    .await?;
    Ok(())
}

/// Add the finalizer once (no write when it is there).
pub async fn ensure_finalizer(api: &Api<MailPool>, mp: &MailPool) -> Result<(), Error> {
    if has_finalizer(mp) {
        return Ok(());
    }
    let mut list = mp.finalizers().to_vec();
    list.push(FINALIZER.into());
    set_finalizers(api, mp, list, true).await
}

async fn remove_finalizer(api: &Api<MailPool>, mp: &MailPool) -> Result<(), Error> {
    let list = mp
        .finalizers()
        .iter()
        .filter(|f| f.as_str() != FINALIZER)
        .cloned()
        .collect();
    set_finalizers(api, mp, list, false).await
}

/// The confirmation: the annotation's value must equal the data pool's name.
pub fn confirmed(mp: &MailPool) -> bool {
    mp.annotations().get(CONFIRM_DELETE_ANNOTATION) == Some(&mp.spec.data.name)
}

pub async fn finalize(mp: &MailPool, ctx: &PoolCtx, api: &Api<MailPool>) -> Result<Action, Error> {
    if !has_finalizer(mp) {
        return Ok(Action::await_change());
    }
    let ns = mp.namespace().unwrap_or_default();
    let clusters: Api<MailCluster> = Api::namespaced(ctx.base.client.clone(), &ns);
    let Some(mc) = with_timeout(clusters.get_opt(&mp.spec.cluster_ref.name)).await? else {
        // Nothing can be cleaned without the cluster; dropping the finalizer destroys nothing.
        ctx.events
            .warning(
                mp,
                "ClusterGone",
                "Delete",
                format!(
                    "MailCluster {} no longer exists: Ceph pools and user were left as they are",
                    mp.spec.cluster_ref.name
                ),
            )
            .await;
        remove_finalizer(api, mp).await?;
        return Ok(Action::await_change());
    };
    let info = cluster_conn::resolve(&ctx.base, &mc).await?;
    let conn = cluster_conn::connect(&ctx.base, &info).await?;
    let admin = cluster_conn::admin(&ctx.base, &conn);
    let entity = dovecot_entity(mp);
    let data = &mp.spec.data.name;
    let index = &mp.spec.index.name;

    let pools = match mp.spec.reclaim_policy {
        ReclaimPolicy::Retain => Vec::new(),
        ReclaimPolicy::Delete => {
            if !confirmed(mp) {
                let backend: Arc<dyn Backend> = conn.backend.clone();
                let cfg_object = &mc.spec.rbox.cfg_object_name;
                let mut count = 0;
                for p in [data, index] {
                    // A pool that is already gone holds nothing.
                    count += ceph_apply::count_mail(&backend, p, cfg_object)
                        .await
                        .unwrap_or(0);
                }
                let msg = format!(
                    "reclaimPolicy is Delete and the pools {data} and {index} hold {count} mail objects; \
                     to delete them, annotate the MailPool with {CONFIRM_DELETE_ANNOTATION}={data} \
                     (or set reclaimPolicy: Retain to keep them)"
                );
                let st = status::build_deleting(
                    mp.status.as_ref(),
                    mp.metadata.generation,
                    Some(&msg),
                    now(),
                );
                if patch_status_if_changed(api, &mp.name_any(), mp.status.as_ref(), &st).await? {
                    ctx.events
                        .warning(mp, "DeletionBlocked", "Delete", msg.clone())
                        .await;
                }
                // Waiting for the user is not a failure: a fixed, quiet requeue (the
                // annotation, when it comes, triggers a reconcile at once anyway).
                tracing::info!(mailpool = %mp.name_any(), "{msg}");
                return Ok(Action::requeue(std::time::Duration::from_secs(30)));
            }
            // Pools another MailPool names stay, whoever created them.
            let others: Api<MailPool> = Api::namespaced(ctx.base.client.clone(), &ns);
            let shared: BTreeSet<String> = with_timeout(others.list(&Default::default()))
                .await?
                .items
                .into_iter()
                .filter(|o| o.uid() != mp.uid())
                .flat_map(|o| [o.spec.data.name, o.spec.index.name])
                .collect();
            let existing = admin.pools().await?;
            // Created by this MailPool only when Ceph says so (the owner recorded on the
            // pool at creation); anything else was adopted and stays.
            let uid = mp.uid();
            let created = |name: &str| {
                existing
                    .iter()
                    .any(|p| p.name == name && p.owner.is_some() && p.owner == uid)
            };
            [
                (data, created(data), &mp.spec.data),
                (index, created(index), &mp.spec.index),
            ]
            .into_iter()
            .filter(|(n, _, _)| !shared.contains(*n))
            .map(|(n, created, settings)| OwnedPool {
                name: n.clone(),
                created,
                created_profile: settings
                    .erasure_coded
                    .as_ref()
                    .filter(|ec| ec.profile_name.is_none())
                    .map(|_| default_profile_name(n)),
                erasure_coded: settings.erasure_coded.is_some(),
                exists: existing.iter().any(|p| &p.name == n),
            })
            .collect()
        }
    };
    let st = status::build_deleting(mp.status.as_ref(), mp.metadata.generation, None, now());
    patch_status_if_changed(api, &mp.name_any(), mp.status.as_ref(), &st).await?;
    for cmd in plan_delete(&pools, Some(&entity)) {
        match admin.run(&cmd).await {
            Ok(_) => {}
            // Already gone is what we want.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let deleted: Vec<&str> = pools
        .iter()
        .filter(|p| p.created && p.exists)
        .map(|p| p.name.as_str())
        .collect();
    ctx.events
        .normal(mp, "Deleted", "Delete", if deleted.is_empty() {
            format!("kept the pools {data} and {index} (reclaimPolicy {:?} or adopted); removed {entity}", mp.spec.reclaim_policy)
        } else {
            format!("deleted pools {deleted:?} and {entity}")
        })
        .await;
    remove_finalizer(api, mp).await?;
    ctx.forget(mp);
    Ok(Action::await_change())
}
