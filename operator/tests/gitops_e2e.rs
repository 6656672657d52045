//! GitOps behaviour: a GitOps tool (here: server-side apply with Argo CD's field manager)
//! owns the spec, the operator owns only status, its finalizer and the objects it creates.
//! Re-syncing the same manifests after the operator reconciled changes nothing and meets no
//! conflict, so the two never fight.

mod support;

use std::time::Duration;

use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use support::{Operator, wait_condition};

const GITOPS: &str = "argocd-controller";

/// Apply as the GitOps tool would: its own field manager, no force.
async fn sync(api: &Api<DynamicObject>, obj: &serde_json::Value) -> DynamicObject {
    let name = obj["metadata"]["name"].as_str().unwrap();
    let o: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
    api.patch(name, &PatchParams::apply(GITOPS), &Patch::Apply(&o))
        .await
        .unwrap_or_else(|e| panic!("GitOps sync of {name} failed: {e}"))
}

/// Every field path the operator's field manager owns in the object itself (not status).
fn operator_owned_main_fields(obj: &DynamicObject) -> Vec<String> {
    let mut out = Vec::new();
    for mf in obj.metadata.managed_fields.iter().flatten() {
        if mf.manager.as_deref() != Some("rbox-operator")
            || mf.subresource.as_deref() == Some("status")
        {
            continue;
        }
        let fields = mf
            .fields_v1
            .as_ref()
            .map(|f| f.0.clone())
            .unwrap_or_default();
        for key in fields
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if key == "f:metadata" {
                for sub in fields["f:metadata"].as_object().unwrap().keys() {
                    out.push(format!("metadata.{sub}"));
                }
            } else {
                out.push(key);
            }
        }
    }
    out
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn operator_and_gitops_own_disjoint_fields() {
    let client = support::admin_client().await;
    let ns = support::unique("rbox-gitops");
    support::create_namespace(&client, &ns).await;
    support::ceph_admin_secret(&client, &ns, "ceph-admin").await;
    // Applied below with the GitOps tool's field manager, not the test's own.
    let cluster = support::cluster_json("main", "ceph-admin");
    let (data, index) = (format!("{ns}-data"), format!("{ns}-index"));
    let pool = support::pool_json("mail", "main", &data, &index);
    let clusters = support::custom_api(&client, &ns, "mailclusters");
    let pools = support::custom_api(&client, &ns, "mailpools");
    sync(&clusters, &cluster).await;
    sync(&pools, &pool).await;

    let op = Operator::start(&ns).await;
    wait_condition(
        &client,
        &ns,
        "mailpools",
        "mail",
        "Ready",
        "True",
        Duration::from_secs(180),
    )
    .await;
    wait_condition(
        &client,
        &ns,
        "mailclusters",
        "main",
        "Ready",
        "True",
        Duration::from_secs(60),
    )
    .await;

    op.wait_quiet(Duration::from_secs(60)).await;
    for (api, obj) in [(&clusters, &cluster), (&pools, &pool)] {
        let name = obj["metadata"]["name"].as_str().unwrap();
        let before = api.get(name).await.unwrap();
        // The operator never wrote the spec: its manager owns at most the finalizer.
        let owned = operator_owned_main_fields(&before);
        assert!(
            owned.iter().all(|f| f == "metadata.f:finalizers"),
            "{name}: the operator owns fields outside status: {owned:?}"
        );
        let spec_managers: Vec<_> = before
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .filter(|m| {
                m.fields_v1
                    .as_ref()
                    .is_some_and(|f| f.0.get("f:spec").is_some())
            })
            .filter_map(|m| m.manager.clone())
            .collect();
        assert_eq!(
            spec_managers,
            vec![GITOPS.to_string()],
            "{name}: spec managers"
        );
        // A re-sync of the same manifest: no conflict, no change.
        let after = sync(api, obj).await;
        assert_eq!(
            before.metadata.resource_version, after.metadata.resource_version,
            "{name}: a no-op GitOps sync changed the object"
        );
    }
    // And the operator does not react to the re-sync with writes of its own.
    let writes = op.metric("rbox_operator_kube_api_writes").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        op.metric("rbox_operator_kube_api_writes").await,
        writes,
        "writes after a no-op sync"
    );

    support::delete_and_wait(&client, &ns, "mailpools", "mail", Duration::from_secs(60)).await;
    drop(op);
    let user = format!("client.rbox.{ns}.mail");
    support::cleanup(&client, &ns, &[&data, &index], &[&user]).await;
}
