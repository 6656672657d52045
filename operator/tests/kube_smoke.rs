//! Smoke test of the local Kubernetes control plane (`make test` starts it): CRDs, server-side
//! apply, watches, and StatefulSet pods that the scheduler places on kwok nodes.

use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Config};
use serde_json::json;

const MANAGER: &str = "rbox-e2e-smoke";

async fn client() -> Client {
    let path = std::env::var("RBOX_E2E_KUBECONFIG").unwrap_or_else(|_| {
        panic!(
            "RBOX_E2E_KUBECONFIG is not set: this test needs the local environment; run `make test`"
        )
    });
    let kubeconfig = Kubeconfig::read_from(&path).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

async fn namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .unwrap();
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&ns),
    )
    .await
    .expect("create namespace");
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn crd_server_side_apply_and_watch() {
    let client = client().await;
    let ns = unique("smoke-crd");
    namespace(&client, &ns).await;

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd_name = "widgets.smoke.e2e.rbox.io";
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": "smoke.e2e.rbox.io", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}}}}}}]
        }
    }))
    .unwrap();
    crds.patch(
        crd_name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds.clone(), crd_name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD Established within 30 s")
    .expect("watch CRD");

    let gvk = GroupVersionKind::gvk("smoke.e2e.rbox.io", "v1", "Widget");
    let ar = ApiResource::from_gvk(&gvk);
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let apply = |size: i64| json!({"apiVersion": "smoke.e2e.rbox.io/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": size}});
    widgets
        .patch(
            "w1",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(apply(1)),
        )
        .await
        .expect("create w1");

    // Watch first, then change: the watch must deliver the new value.
    let stream = watcher(
        widgets.clone(),
        watcher::Config::default().fields("metadata.name=w1"),
    )
    .applied_objects();
    let seen = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(obj) = stream.try_next().await.expect("watch stream") {
            if obj.data["spec"]["size"] == json!(2) {
                return true;
            }
        }
        false
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    widgets
        .patch(
            "w1",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(apply(2)),
        )
        .await
        .expect("update w1");
    let saw = tokio::time::timeout(Duration::from_secs(20), seen)
        .await
        .expect("watch saw the change in 20 s")
        .unwrap();
    assert!(saw);

    // The schema is enforced by the real API server.
    let err = widgets
        .patch(
            "w1",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(apply(0)),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("spec.size"), "{err}");

    let _ = Api::<Namespace>::all(client.clone())
        .delete(&ns, &DeleteParams::default())
        .await;
    crds.delete(crd_name, &DeleteParams::default())
        .await
        .expect("delete CRD");
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn statefulset_pods_run_on_kwok_nodes() {
    let client = client().await;
    let ns = unique("smoke-sts");
    namespace(&client, &ns).await;
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let replicas = 3;
    let set: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas, "podManagementPolicy": "Parallel", "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "containers": [{"name": "c", "image": "registry.invalid/none:1",
                    "readinessProbe": {"tcpSocket": {"port": 143}}}]}}
        }
    }))
    .unwrap();
    sts.patch(
        "web",
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&set),
    )
    .await
    .expect("apply StatefulSet");

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let ready = loop {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .expect("list pods");
        let ready: Vec<&Pod> = list
            .items
            .iter()
            .filter(|p| is_running_and_ready(p))
            .collect();
        if ready.len() == replicas {
            for p in &ready {
                let node = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default();
                assert!(node.starts_with("kwok-node-"), "pod scheduled on {node}");
            }
            break ready.len();
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "only {} of {replicas} pods Running+Ready after 90 s",
                ready.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(ready, replicas);

    // The StatefulSet controller (real controller-manager) reports them too.
    let status_ready = async {
        loop {
            let s = sts.get("web").await.expect("get sts");
            if s.status.as_ref().and_then(|st| st.ready_replicas) == Some(replicas as i32) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), status_ready)
        .await
        .expect("StatefulSet readyReplicas");

    let _ = Api::<Namespace>::all(client)
        .delete(&ns, &DeleteParams::default())
        .await;
}

fn is_running_and_ready(p: &Pod) -> bool {
    let Some(status) = &p.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}
