//! A small fake API server for controller tests (tower-test): lists answered from fixtures,
//! watches held open until the test pushes events, single-object GETs answered 404, writes
//! echoed. It records every request so a test can wait for what the controller asked.
//!
//! What it does not do (deliberately): apply patches, keep resource versions consistent,
//! serve status subresources. Tests that need a real API server are the e2e tests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::mpsc;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
type Reply = tower_test::mock::SendResponse<Response<Body>>;

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub accept: String,
    /// The body of a write (an Event, an applied object).
    pub body: String,
}

impl Seen {
    pub fn is_watch(&self) -> bool {
        self.query.split('&').any(|q| q == "watch=true")
    }
}

/// Collections (last path segment) that a GET lists rather than reads one object of.
const COLLECTIONS: &[&str] = &[
    "mailclusters",
    "mailpools",
    "dovecotfleets",
    "secrets",
    "configmaps",
    "statefulsets",
    "services",
    "poddisruptionbudgets",
    "persistentvolumeclaims",
    "events",
    "leases",
];

enum Command {
    Push(String, Vec<Value>),
    Release(String),
}

#[derive(Default)]
struct State {
    lists: HashMap<String, Vec<Value>>,
    /// Status code answered to every request of a path (a 403, a 500).
    fail: HashMap<String, u16>,
    /// Paths whose lists are held until released.
    gated: HashMap<String, Vec<(Request<Body>, Reply)>>,
    /// Open watches by collection path.
    watches: HashMap<String, Vec<Reply>>,
    /// Events pushed before a watch was open.
    pending: HashMap<String, VecDeque<Vec<Value>>>,
}

/// The test's side of the fake.
#[derive(Clone)]
pub struct FakeApi {
    pub client: kube::Client,
    log: Arc<Mutex<Vec<Seen>>>,
    commands: mpsc::UnboundedSender<Command>,
}

/// Builder: fixtures and faults before the server starts.
#[derive(Default)]
pub struct FakeApiBuilder {
    state: State,
}

impl FakeApiBuilder {
    /// Objects a list of `path` returns.
    pub fn list(mut self, path: &str, items: Vec<Value>) -> Self {
        self.state.lists.insert(path.to_string(), items);
        self
    }

    /// Every request of `path` (and below it) is answered with `code`.
    pub fn fail(mut self, path: &str, code: u16) -> Self {
        self.state.fail.insert(path.to_string(), code);
        self
    }

    /// Lists of `path` are held until [`FakeApi::release`].
    pub fn gate(mut self, path: &str) -> Self {
        self.state.gated.insert(path.to_string(), Vec::new());
        self
    }

    pub fn start(self) -> FakeApi {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "ns");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(serve(handle, self.state, log.clone(), rx));
        FakeApi {
            client,
            log,
            commands: tx,
        }
    }
}

impl FakeApi {
    pub fn builder() -> FakeApiBuilder {
        FakeApiBuilder::default()
    }

    /// Send watch events (`{"type": …, "object": …}`) on the watch of `path` (now, or as
    /// soon as the controller opens it).
    pub fn push(&self, path: &str, events: Vec<Value>) {
        let _ = self.commands.send(Command::Push(path.to_string(), events));
    }

    /// Answer the held lists of `path` and stop holding them.
    pub fn release(&self, path: &str) {
        let _ = self.commands.send(Command::Release(path.to_string()));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Wait (up to 20 s) until `pred` holds for one request seen; return it.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Seen) -> bool) -> Seen {
        self.wait_until(what, || self.seen().into_iter().find(|s| pred(s)))
            .await
    }

    /// Wait (up to 20 s) until `probe` returns something.
    pub async fn wait_until<T>(&self, what: &str, probe: impl Fn() -> Option<T>) -> T {
        for _ in 0..400 {
            if let Some(t) = probe() {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out waiting for {what}; requests seen: {:#?}",
            self.seen()
        );
    }
}

async fn serve(
    mut handle: Handle,
    mut state: State,
    log: Arc<Mutex<Vec<Seen>>>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    loop {
        tokio::select! {
            req = handle.next_request() => {
                let Some((req, reply)) = req else { return };
                let (parts, body) = req.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let req = Request::from_parts(parts, Body::from(bytes.to_vec()));
                answer(&mut state, &log, req, reply, String::from_utf8_lossy(&bytes).into());
            }
            cmd = commands.recv() => match cmd {
                Some(Command::Push(path, events)) => {
                    match state.watches.get_mut(&path).and_then(|w| w.pop()) {
                        Some(reply) => reply.send_response(watch_body(&events)),
                        None => state.pending.entry(path).or_default().push_back(events),
                    }
                }
                Some(Command::Release(path)) => {
                    for (req, reply) in state.gated.remove(&path).unwrap_or_default() {
                        answer(&mut state, &log, req, reply, String::new());
                    }
                }
                // The test dropped its side; keep answering what the controller asks.
                None => std::future::pending::<()>().await,
            }
        }
    }
}

fn answer(
    state: &mut State,
    log: &Mutex<Vec<Seen>>,
    req: Request<Body>,
    reply: Reply,
    body: String,
) {
    let seen = Seen {
        method: req.method().clone(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or_default().to_string(),
        accept: req
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        body,
    };
    let path = seen.path.clone();
    let watch = seen.is_watch();
    let method = seen.method.clone();
    if method == Method::GET && !watch && state.gated.contains_key(&path) {
        // Recorded when answered.
        state.gated.entry(path).or_default().push((req, reply));
        return;
    }
    log.lock().unwrap_or_else(|p| p.into_inner()).push(seen);
    if let Some(code) = state
        .fail
        .iter()
        .find(|(p, _)| path.starts_with(p.as_str()))
        .map(|(_, c)| *c)
    {
        reply.send_response(status(code));
        return;
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    match method {
        Method::GET if watch => match state.pending.get_mut(&path).and_then(|p| p.pop_front()) {
            Some(events) => reply.send_response(watch_body(&events)),
            // Held open: the controller waits for events like on a real server.
            None => state.watches.entry(path).or_default().push(reply),
        },
        Method::GET if COLLECTIONS.contains(&last) => {
            let items = state.lists.get(&path).cloned().unwrap_or_default();
            let body = json!({"apiVersion": "v1", "kind": "List",
                              "metadata": {"resourceVersion": "1"}, "items": items});
            reply.send_response(ok(StatusCode::OK, &body));
        }
        Method::GET => reply.send_response(status(404)),
        Method::POST | Method::PATCH | Method::PUT => {
            // Echo what was sent (an Event, an applied object); bodies are not kept.
            reply.send_response(ok(StatusCode::CREATED, &json!({})));
        }
        _ => reply.send_response(status(405)),
    }
}

fn ok(code: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(body).unwrap_or_default()))
        .expect("a valid response")
}

fn status(code: u16) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "reason": if code == 404 { "NotFound" } else { "Fake" }, "code": code, "message": format!("fake {code}")});
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .body(Body::from(serde_json::to_vec(&body).unwrap_or_default()))
        .expect("a valid response")
}

fn watch_body(events: &[Value]) -> Response<Body> {
    let mut body = Vec::new();
    for e in events {
        body.extend(serde_json::to_vec(e).unwrap_or_default());
        body.push(b'\n');
    }
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::from(body))
        .expect("a valid response")
}

/// A MailCluster (external mode) as the API server would list it.
pub fn mailcluster(name: &str) -> Value {
    json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailCluster",
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                     "resourceVersion": "1", "generation": 1},
        "spec": {"ceph": {"external": {"monitors": ["127.0.0.1:6789"],
                                       "keyringSecret": {"name": "admin"}}}}
    })
}

/// A MailPool on MailCluster `cluster`.
pub fn mailpool(name: &str, cluster: &str) -> Value {
    json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailPool",
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                     "resourceVersion": "1", "generation": 1},
        "spec": {
            "clusterRef": {"name": cluster},
            "data": {"name": "mail-data", "replicated": {"size": 1, "allowSizeOne": true},
                     "failureDomain": "osd"},
            "index": {"name": "mail-index", "replicated": {"size": 1, "allowSizeOne": true},
                      "failureDomain": "osd"},
        }
    })
}

pub const CLUSTERS: &str = "/apis/mail.rbox.io/v1alpha1/namespaces/ns/mailclusters";
pub const POOLS: &str = "/apis/mail.rbox.io/v1alpha1/namespaces/ns/mailpools";
pub const FLEETS: &str = "/apis/mail.rbox.io/v1alpha1/namespaces/ns/dovecotfleets";
pub const SECRETS: &str = "/api/v1/namespaces/ns/secrets";
