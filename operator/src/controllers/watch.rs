//! What the controllers' watches share: the main watch on a reflector of the controller's
//! own (so a deleted object's per-object state is forgotten), readiness once the initial
//! lists are in, and the report of watch errors.

use std::collections::HashSet;
use std::fmt::Debug;

use futures::{Stream, StreamExt, TryStreamExt};
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use super::instrument::object_key;
use crate::runtime::metrics::Metrics;
use crate::runtime::watch_backoff::WatchBackoff;

/// Which keys (`namespace/name`) are gone: the predicate says, for a key, whether its object
/// no longer exists.
pub type Gone<'a> = &'a dyn Fn(&str) -> bool;

/// A reflector over `api` for `Controller::for_stream`, and its store. `started` fires when
/// the initial list is in. When an object is deleted (a Delete event, or missing from the
/// relist after a watch outage, when no Delete event is ever seen), `forget` is called, so
/// per-object state kept beside the store (retry counts, librados connections) does not
/// outlive the object.
///
/// (Readiness is taken from the stream, not `Store::wait_until_ready`: in kube-runtime 5.0 a
/// second waiter beside the controller's own is never woken.)
pub fn main_watch<K>(
    api: Api<K>,
    cfg: watcher::Config,
    started: Started,
    forget: impl Fn(Gone<'_>) + Send + 'static,
) -> (
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    Store<K>,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let store = reader.clone();
    let mut started = Some(started);
    let stream = reflector::reflector(writer, watcher(api, cfg).backoff(WatchBackoff::default()))
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone)
                && let Some(s) = started.take()
            {
                let _ = s.send(());
            }
            forget_gone(event, &store, &forget)
        })
        .applied_objects();
    (stream, reader)
}

/// The reflector has applied `event` to `store` when this runs.
fn forget_gone<K>(event: &watcher::Event<K>, store: &Store<K>, forget: &impl Fn(Gone<'_>))
where
    K: Resource<DynamicType = ()> + Clone,
{
    match event {
        watcher::Event::Delete(obj) => {
            let key = object_key(obj);
            forget(&|k| k == key);
        }
        watcher::Event::InitDone => {
            let live: HashSet<String> = store
                .state()
                .iter()
                .map(|o| object_key(o.as_ref()))
                .collect();
            forget(&|k| !live.contains(k));
        }
        _ => {}
    }
}

/// Consume a controller's results: reconcile failures are already counted and logged by the
/// reconcile wrapper; watch errors (a 403, an undecodable list, an API server away) are
/// logged and counted here instead of being dropped.
pub async fn drain<K, E, S>(controller: &'static str, metrics: Metrics, results: S)
where
    K: Resource,
    E: std::error::Error + 'static,
    S: Stream<Item = Result<(ObjectRef<K>, Action), controller::Error<E, watcher::Error>>>,
{
    results
        .for_each(|res| {
            if let Err(e) = res {
                report(controller, &metrics, &e);
            }
            futures::future::ready(())
        })
        .await;
}

fn report<E: std::error::Error + 'static>(
    controller: &'static str,
    metrics: &Metrics,
    err: &controller::Error<E, watcher::Error>,
) {
    match err {
        controller::Error::QueueError(e) => {
            metrics.watch_failed(controller);
            tracing::warn!(controller, error = %e, "watch failed");
        }
        controller::Error::ReconcilerFailed(..) => {}
        other => tracing::debug!(controller, error = %other, "controller"),
    }
}

/// Fired once the main watch has its initial list (what `/readyz` waits for).
pub type Started = tokio::sync::oneshot::Sender<()>;
