//! Shared helpers of the end-to-end tests (each `tests/*.rs` file does `mod support;`).
//!
//! The tests run against the real local environment (`make test` starts it and exports
//! `RBOX_E2E_*`). Each test works in its own namespace and its own Ceph pools, so the test
//! binaries can run in parallel. The operator runs as a local process, authenticated with a
//! token of the Helm chart's ServiceAccount (not the admin kubeconfig), so the chart's RBAC is
//! exercised by every test that starts it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;

pub const MANAGER: &str = "rbox-e2e";
/// The chart release every test's operator authenticates as.
pub const RELEASE: &str = "rbox-e2e";
pub const RELEASE_NAMESPACE: &str = "rbox-e2e-system";

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: this test needs the local environment; run `make test`")
    })
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// State directory of the local environment (logs of test operators go below it).
pub fn e2e_dir() -> PathBuf {
    PathBuf::from(std::env::var("RBOX_E2E_DIR").unwrap_or_else(|_| "/tmp/rbox-e2e".into()))
}

/// An admin client (the test's own view; the operator uses the chart's ServiceAccount).
pub async fn admin_client() -> Client {
    let path = env("RBOX_E2E_KUBECONFIG");
    let kubeconfig = Kubeconfig::read_from(&path).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(config).expect("client")
}

/// A name unique to this process and moment, valid as a namespace and a Ceph pool name.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!(
        "{prefix}-{:x}",
        (nanos as u64) ^ u64::from(std::process::id()) << 40
    )
}

/// Create a test namespace (and, first, make sure the CRDs and the chart are installed).
pub async fn create_namespace(client: &Client, name: &str) {
    ensure_chart_installed();
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .expect("namespace object");
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&ns),
    )
    .await
    .expect("create namespace");
}

pub async fn delete_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

/// Poll `check` until it returns `Some`, or panic with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Run a command; panic with its stderr when it fails. Returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl` with the admin kubeconfig (the 1.37 one from the env's PATH).
pub fn kubectl(args: &[&str]) -> Command {
    let mut c = Command::new("kubectl");
    c.env("KUBECONFIG", env("RBOX_E2E_KUBECONFIG")).args(args);
    c
}

/// The `ceph` CLI as admin, with a connect timeout (its default is 300 s). The test's
/// independent view of Ceph: never the operator's own.
pub fn ceph(args: &[&str]) -> Command {
    let mut c = Command::new("ceph");
    c.args(["-c", &env("RBOX_E2E_CEPH_CONF"), "--connect-timeout", "20"])
        .args(args);
    c
}

/// `ceph ... -f json`, parsed.
pub fn ceph_json(args: &[&str]) -> serde_json::Value {
    let mut full = args.to_vec();
    full.extend(["-f", "json"]);
    let out = run(&mut ceph(&full));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ceph {args:?}: not JSON ({e}): {out}"))
}

pub fn ceph_pool_exists(pool: &str) -> bool {
    ceph_json(&["osd", "pool", "ls"])
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p == pool))
}

/// Remove a pool a test created (cleanup; errors ignored).
pub fn ceph_remove_pool(pool: &str) {
    let _ = ceph(&[
        "osd",
        "pool",
        "rm",
        pool,
        pool,
        "--yes-i-really-really-mean-it",
    ])
    .output();
}

/// A Secret with the environment's admin keyring and monitor addresses (keys `keyring`,
/// `mon_host`), as the examples expect (`ceph-admin`).
pub async fn ceph_admin_secret(client: &Client, namespace: &str, name: &str) {
    let keyring =
        std::fs::read_to_string(env("RBOX_E2E_CEPH_KEYRING")).expect("read admin keyring");
    ceph_secret(
        client,
        namespace,
        name,
        &keyring,
        &env("RBOX_E2E_CEPH_MON_HOST"),
    )
    .await;
}

/// Install the CRDs from `crds/` and the chart (ServiceAccount + RBAC) once per environment;
/// safe to call from parallel test binaries (a file lock serialises helm).
pub fn ensure_chart_installed() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(install_chart);
}

fn install_chart() {
    let root = repo_root();
    let lock = e2e_dir().join("chart-install.lock");
    let script = format!(
        r#"set -e
if [ -d "{crds}" ]; then
  kubectl apply --server-side --force-conflicts -f "{crds}" >/dev/null
  kubectl wait --for condition=established --timeout=60s -f "{crds}" >/dev/null
fi
kubectl get namespace {ns} >/dev/null 2>&1 || kubectl create namespace {ns} >/dev/null
helm upgrade --install {rel} "{chart}" --namespace {ns} --set replicaCount=1 \
  --set podDisruptionBudget.enabled=false --set leaderElection.enabled=true >/dev/null
kubectl -n {ns} scale deployment {rel}-rbox-operator --replicas=0 >/dev/null"#,
        crds = root.join("crds").display(),
        chart = root.join("charts/rbox-operator").display(),
        ns = RELEASE_NAMESPACE,
        rel = RELEASE,
    );
    run(Command::new("flock")
        .arg(&lock)
        .args(["bash", "-c", &script])
        .env("KUBECONFIG", env("RBOX_E2E_KUBECONFIG")));
}

/// A kubeconfig that authenticates with a fresh token of the chart's ServiceAccount.
pub fn service_account_kubeconfig(path: &Path) {
    let sa = format!("{RELEASE}-rbox-operator");
    let token = run(&mut kubectl(&[
        "-n",
        RELEASE_NAMESPACE,
        "create",
        "token",
        &sa,
        "--duration",
        "2h",
    ]));
    let server = run(&mut kubectl(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]));
    let ca = run(&mut kubectl(&[
        "config",
        "view",
        "--minify",
        "--raw",
        "-o",
        "jsonpath={.clusters[0].cluster.certificate-authority}",
    ]));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: local, cluster: {{server: \"{server}\", certificate-authority: \"{ca}\"}}}}]\n\
         users: [{{name: {sa}, user: {{token: \"{}\"}}}}]\n\
         contexts: [{{name: local, context: {{cluster: local, user: {sa}}}}}]\ncurrent-context: local\n",
        token.trim()
    );
    std::fs::write(path, text).expect("write kubeconfig");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The operator binary running as a local process, killed on drop.
#[derive(Debug)]
pub struct Operator {
    child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
    pub kubeconfig: PathBuf,
}

impl Operator {
    /// Start an operator that watches only `namespace`, without leader election.
    pub async fn start(namespace: &str) -> Operator {
        Self::start_with(namespace, &["--no-leader-election"], &[]).await
    }

    /// Start with extra `run` arguments and environment variables.
    pub async fn start_with(namespace: &str, args: &[&str], envs: &[(&str, &str)]) -> Operator {
        ensure_chart_installed();
        let dir = e2e_dir().join("test-operators");
        std::fs::create_dir_all(&dir).expect("operator dir");
        let metrics_port = free_port();
        let tag = format!("{namespace}-{metrics_port}");
        let kubeconfig = dir.join(format!("{tag}.kubeconfig"));
        service_account_kubeconfig(&kubeconfig);
        let log = dir.join(format!("{tag}.log"));
        let logfile = std::fs::File::create(&log).expect("operator log");
        let child = Command::new(env!("CARGO_BIN_EXE_rbox-operator"))
            .arg("run")
            .args(["--watch-namespace", namespace])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            // The chart grants Leases only in its release namespace; tests that elect a leader
            // pass their own `--leader-lease` name.
            .args(["--leader-namespace", RELEASE_NAMESPACE])
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("RBOX_E2E_OPERATOR_LOG").unwrap_or("info,rbox_operator=debug".into()),
            )
            .env("POD_NAME", format!("test-{tag}"))
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().expect("log fd"))
            .stderr(logfile)
            .spawn()
            .expect("start the operator");
        let op = Operator {
            child,
            metrics_port,
            log,
            kubeconfig,
        };
        let port = op.metrics_port;
        wait_for(
            Duration::from_secs(60),
            "the operator's /healthz",
            || async move { http_get(port, "/healthz").await.map(|_| ()) },
        )
        .await;
        op
    }

    pub async fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics")
            .await
            .unwrap_or_default()
    }

    /// The value of one sample line of /metrics (`name{labels}` exactly as printed), or 0.
    pub async fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics().await, series)
    }

    /// Still running (not crashed, not exited)?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown path runs, as when a node dies.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait until the operator's Kubernetes write counter stops moving (unchanged over 3 s),
    /// so a test measures steady state, not the tail of the first convergence.
    pub async fn wait_quiet(&self, timeout: Duration) -> f64 {
        let deadline = Instant::now() + timeout;
        let mut last = self.metric("rbox_operator_kube_api_writes").await;
        loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let now = self.metric("rbox_operator_kube_api_writes").await;
            if now == last {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "the operator kept writing for {timeout:?}"
            );
            last = now;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sum of every sample of `series` (a metric name, optionally with a `{` label prefix).
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(series)
                && l[series.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c == ' ' || c == '{' || c == ',')
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A plain HTTP/1.0 GET on 127.0.0.1 (no HTTP client crate needed for /metrics).
pub async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200")
            .then(|| body.to_string())
            .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}

/// A micro Ceph cluster of a test's own (for faults that must not disturb other tests),
/// stopped and removed on drop.
#[derive(Debug)]
pub struct MicroCeph {
    pub dir: PathBuf,
}

impl MicroCeph {
    pub fn start(name: &str) -> MicroCeph {
        let dir = e2e_dir().join(name);
        run(Command::new(repo_root().join("e2e/ceph-micro"))
            .arg("up")
            .arg(&dir));
        MicroCeph { dir }
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.join("ceph.conf")
    }

    pub fn keyring(&self) -> String {
        std::fs::read_to_string(self.dir.join("ceph.client.admin.keyring")).expect("keyring")
    }

    pub fn mon_host(&self) -> String {
        std::fs::read_to_string(self.dir.join("mon_host"))
            .expect("mon_host")
            .trim()
            .to_string()
    }

    /// `mon`, `mgr` or `osd`.
    pub fn stop_daemon(&self, daemon: &str) {
        run(Command::new(repo_root().join("e2e/ceph-micro"))
            .arg("stop-daemon")
            .arg(&self.dir)
            .arg(daemon));
    }

    pub fn start_daemon(&self, daemon: &str) {
        run(Command::new(repo_root().join("e2e/ceph-micro"))
            .arg("start-daemon")
            .arg(&self.dir)
            .arg(daemon));
    }
}

impl Drop for MicroCeph {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("e2e/ceph-micro"))
            .arg("down")
            .arg(&self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Secret `name` in `namespace` with a keyring and the monitors (`mon_host`), as the
/// examples' MailCluster reads them (`external.keyringSecret` + `monitorsSecretKey`).
pub async fn ceph_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    keyring: &str,
    mon_host: &str,
) {
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), namespace);
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {"keyring": keyring, "mon_host": mon_host},
    }))
    .expect("secret object");
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&secret),
    )
    .await
    .expect("create ceph secret");
}

/// Server-side apply of a custom object given as JSON (kind from its `kind`).
pub async fn apply_json(client: &Client, namespace: &str, obj: serde_json::Value) {
    let kind = obj["kind"].as_str().expect("kind").to_string();
    let name = obj["metadata"]["name"].as_str().expect("name").to_string();
    let (group, version) = obj["apiVersion"]
        .as_str()
        .expect("apiVersion")
        .split_once('/')
        .unwrap_or(("", "v1"));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, &kind);
    let ar = kube::api::ApiResource::from_gvk(&gvk);
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let dynobj: kube::api::DynamicObject = serde_json::from_value(obj).expect("object");
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&dynobj),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {kind}/{name}: {e}"));
}

/// The object (`mailclusters`, `mailpools`, `dovecotfleets`) as JSON, if it exists.
pub async fn get_json(
    client: &Client,
    namespace: &str,
    plural: &str,
    name: &str,
) -> Option<serde_json::Value> {
    let api = custom_api(client, namespace, plural);
    api.get_opt(name)
        .await
        .ok()
        .flatten()
        .map(|o| serde_json::to_value(o).expect("json"))
}

/// `(status, reason, message)` of condition `type_` in an object's status.
pub fn condition(obj: &serde_json::Value, type_: &str) -> Option<(String, String, String)> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Wait until condition `type_` of the object has `status` ("True"/"False"); returns the object.
pub async fn wait_condition(
    client: &Client,
    namespace: &str,
    plural: &str,
    name: &str,
    type_: &str,
    status: &str,
    timeout: Duration,
) -> serde_json::Value {
    wait_for(
        timeout,
        &format!("{plural}/{name} {type_}={status}"),
        || async {
            let obj = get_json(client, namespace, plural, name).await?;
            (condition(&obj, type_)?.0 == status).then_some(obj)
        },
    )
    .await
}

/// Delete a custom object and wait until it is gone (its finalizer handled by a running
/// operator). Tests do this before they stop their operator, so no namespace hangs.
pub async fn delete_and_wait(
    client: &Client,
    namespace: &str,
    plural: &str,
    name: &str,
    timeout: Duration,
) {
    let api = custom_api(client, namespace, plural);
    let _ = api.delete(name, &DeleteParams::default()).await;
    wait_for(
        timeout,
        &format!("{plural}/{name} to be deleted"),
        || async { matches!(api.get_opt(name).await, Ok(None)).then_some(()) },
    )
    .await;
}

/// The documents of a multi-document YAML file (empty documents skipped).
pub fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    use serde::Deserialize as _;
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| {
            serde_json::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Delete a custom object and drop its finalizers (cleanup of objects whose operator-side
/// cleanup cannot succeed by design, e.g. Ceph credentials without the caps to clean up).
pub async fn force_delete(client: &Client, namespace: &str, plural: &str, name: &str) {
    let api = custom_api(client, namespace, plural);
    let _ = api.delete(name, &DeleteParams::default()).await;
    let _ = api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await;
}

/// A dynamic `Api` of one of the three kinds, by plural name.
pub fn custom_api(client: &Client, namespace: &str, plural: &str) -> Api<kube::api::DynamicObject> {
    let kind = match plural {
        "mailclusters" => "MailCluster",
        "mailpools" => "MailPool",
        "dovecotfleets" => "DovecotFleet",
        other => panic!("unknown plural {other}"),
    };
    let gvk = kube::api::GroupVersionKind::gvk("mail.rbox.io", "v1alpha1", kind);
    let ar = kube::api::ApiResource::from_gvk(&gvk);
    Api::namespaced_with(client.clone(), namespace, &ar)
}

/// A MailCluster in external mode reading keyring and monitors from Secret `secret`.
pub fn cluster_json(name: &str, secret: &str) -> serde_json::Value {
    json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailCluster", "metadata": {"name": name},
        "spec": {"ceph": {"external": {"monitorsSecretKey": "mon_host", "keyringSecret": {"name": secret}, "user": "client.admin"}}},
    })
}

/// A MailPool with two one-copy pools on the OSD failure domain (the micro Ceph has one OSD).
pub fn pool_json(name: &str, cluster: &str, data: &str, index: &str) -> serde_json::Value {
    let layout = |n: &str| json!({"name": n, "replicated": {"size": 1, "allowSizeOne": true}, "failureDomain": "osd", "pgNumMin": 8});
    json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailPool", "metadata": {"name": name},
        "spec": {"clusterRef": {"name": cluster}, "data": layout(data), "index": layout(index)},
    })
}

/// The usual start of a test on the shared Ceph: its namespace, the `ceph-admin` Secret of
/// the environment's cluster, and a MailCluster `main` that uses it. Returns the data and
/// index pool names reserved for the test (`<ns>-data`, `<ns>-index`).
pub async fn main_cluster(client: &Client, ns: &str) -> (String, String) {
    create_namespace(client, ns).await;
    let keyring = std::fs::read_to_string(env("RBOX_E2E_CEPH_KEYRING")).expect("admin keyring");
    ceph_secret(
        client,
        ns,
        "ceph-admin",
        &keyring,
        &env("RBOX_E2E_CEPH_MON_HOST"),
    )
    .await;
    apply_json(client, ns, cluster_json("main", "ceph-admin")).await;
    (format!("{ns}-data"), format!("{ns}-index"))
}

/// Remove what a MailPool of the test left in Ceph (its pools, Retain keeps them; its
/// Dovecot user) and the namespace.
pub async fn cleanup(client: &Client, ns: &str, pools: &[&str], users: &[&str]) {
    for p in pools {
        ceph_remove_pool(p);
    }
    for u in users {
        let _ = ceph(&["auth", "del", u]).output();
    }
    delete_namespace(client, ns).await;
}
