//! A tower layer on the kube client that counts API requests by kind (reads vs writes), so
//! tests and metrics can prove that an unchanged object reconciles with zero writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use http::{Method, Request};
use tower::{Layer, Service};

#[derive(Clone, Debug, Default)]
pub struct RequestCounts {
    reads: Arc<AtomicU64>,
    writes: Arc<AtomicU64>,
    write_log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl RequestCounts {
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
    /// `METHOD path` of every write, for assertion messages.
    pub fn write_log(&self) -> Vec<String> {
        self.write_log.lock().map(|l| l.clone()).unwrap_or_default()
    }
    /// Take the writes logged since the last call (keeps the log from growing in a long-running
    /// process).
    pub fn take_write_log(&self) -> Vec<String> {
        self.write_log
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    pub fn reset(&self) {
        self.reads.store(0, Ordering::Relaxed);
        self.writes.store(0, Ordering::Relaxed);
        if let Ok(mut l) = self.write_log.lock() {
            l.clear();
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct CountLayer {
    pub counts: RequestCounts,
}

impl<S> Layer<S> for CountLayer {
    type Service = CountService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CountService {
            inner,
            counts: self.counts.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct CountService<S> {
    inner: S,
    counts: RequestCounts,
}

impl<S, B> Service<Request<B>> for CountService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            self.counts.reads.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counts.writes.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut l) = self.counts.write_log.lock() {
                l.push(format!("{} {}", req.method(), req.uri().path()));
            }
        }
        self.inner.call(req)
    }
}

/// The resource a request path writes, with its subresource: `mailpools/status`, `secrets`,
/// `events`. For metrics labels (bounded: no names).
pub fn resource_of(path: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/group/version/...
    let rest = match parts.first() {
        Some(&"api") => parts.get(2..),
        Some(&"apis") => parts.get(3..),
        _ => None,
    }
    .unwrap_or(&[]);
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    match rest {
        [kind] | [kind, _] => (*kind).to_string(),
        [kind, _, sub, ..] => format!("{kind}/{sub}"),
        [] => "unknown".into(),
    }
}

/// A client whose every request is counted.
pub fn counting_client(config: kube::Config) -> Result<(kube::Client, RequestCounts), kube::Error> {
    let layer = CountLayer::default();
    let counts = layer.counts.clone();
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&layer)
        .build();
    Ok((client, counts))
}

#[cfg(test)]
mod tests {
    use super::resource_of;

    #[test]
    fn resources_of_paths() {
        assert_eq!(
            resource_of("/apis/mail.rbox.io/v1alpha1/namespaces/ns/mailpools/mail/status"),
            "mailpools/status"
        );
        assert_eq!(resource_of("/api/v1/namespaces/ns/secrets/x"), "secrets");
        assert_eq!(resource_of("/api/v1/namespaces/ns/secrets"), "secrets");
        assert_eq!(
            resource_of("/apis/events.k8s.io/v1/namespaces/ns/events"),
            "events"
        );
        assert_eq!(resource_of("/api/v1/namespaces/ns"), "namespaces");
    }
}
