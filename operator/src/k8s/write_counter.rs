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

/// A client whose every request is counted.
pub fn counting_client(config: kube::Config) -> Result<(kube::Client, RequestCounts), kube::Error> {
    let layer = CountLayer::default();
    let counts = layer.counts.clone();
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&layer)
        .build();
    Ok((client, counts))
}
