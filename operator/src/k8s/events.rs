//! Kubernetes Events for what a user must see (failures, deletion blocked, recovery).

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Publishes Events attached to the object they are about. Failures to publish are logged,
/// never propagated: an Event is a courtesy, not part of the reconcile.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    pub fn new(client: kube::Client, controller: &str) -> Self {
        let reporter = Reporter {
            controller: controller.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    pub async fn warning<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(obj, EventType::Warning, reason, action, note)
            .await
    }

    pub async fn normal<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(obj, EventType::Normal, reason, action, note)
            .await
    }

    async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        let reference = obj.object_ref(&());
        match tokio::time::timeout(super::KUBE_TIMEOUT, self.recorder.publish(&ev, &reference))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, reason, "could not publish event"),
            Err(_) => tracing::warn!(reason, "publishing an event timed out"),
        }
    }
}

/// The object of a guarded watch event, or `None` after a Warning Event on a malformed one:
/// one object that does not deserialize must not stop the watch (`DeserializeGuard`), and its
/// owner must be told why nothing happens. The reconcile then waits for a change.
pub async fn well_formed<'a, K>(
    guard: &'a kube::core::DeserializeGuard<K>,
    events: &Events,
) -> Option<&'a K>
where
    kube::core::DeserializeGuard<K>: Resource<DynamicType = ()>,
{
    match &guard.0 {
        Ok(obj) => Some(obj),
        Err(invalid) => {
            events
                .warning(guard, "MalformedObject", "Reconcile", invalid.error.clone())
                .await;
            None
        }
    }
}
