//! Group commit for index writes of one mailbox.
//!
//! Concurrent saves into one mailbox would otherwise race on the same header with
//! compare-and-set and mostly lose. Instead, the first caller for a key starts a drainer
//! task; callers arriving while its op is in flight queue up and are committed together in
//! the next op. One index round trip then serves many saves. The drainer is a spawned task,
//! so a caller that gives up (drops its future) cannot stall the others.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::error::{Result, StoreError};

type Waiter<Out> = oneshot::Sender<Result<Out>>;
type Queue<Item, Out> = Vec<(Item, Waiter<Out>)>;

pub(crate) struct Coalescer<Item, Out> {
    queues: Mutex<HashMap<String, Queue<Item, Out>>>,
}

impl<Item, Out> std::fmt::Debug for Coalescer<Item, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.queues.lock().map(|q| q.len()).unwrap_or(0);
        f.debug_struct("Coalescer")
            .field("active_keys", &n)
            .finish()
    }
}

impl<Item, Out> Default for Coalescer<Item, Out> {
    fn default() -> Self {
        Self {
            queues: Mutex::new(HashMap::new()),
        }
    }
}

impl<Item: Send + 'static, Out: Send + 'static> Coalescer<Item, Out> {
    /// Queue `item` under `key`; `run` commits a batch and returns one output per item, in
    /// order. Every item of a failed batch gets the batch's error.
    pub(crate) async fn submit<F, Fut>(
        self: &Arc<Self>,
        key: String,
        item: Item,
        run: F,
    ) -> Result<Out>
    where
        F: Fn(Vec<Item>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Out>>> + Send,
    {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            match q.get_mut(&key) {
                Some(pending) => {
                    pending.push((item, tx));
                    false
                }
                None => {
                    q.insert(key.clone(), vec![(item, tx)]);
                    true
                }
            }
        };
        if start {
            let me = self.clone();
            tokio::spawn(async move { me.drain(key, run).await });
        }
        rx.await
            .map_err(|_| StoreError::Invalid("index batch task ended unexpectedly".into()))?
    }

    async fn drain<F, Fut>(&self, key: String, run: F)
    where
        F: Fn(Vec<Item>) -> Fut,
        Fut: Future<Output = Result<Vec<Out>>>,
    {
        // If this task dies (a panic in `run`), free the key: queued callers then see a
        // closed channel instead of waiting for a drainer that no longer exists.
        struct Release<'a, Item, Out> {
            queues: &'a Mutex<HashMap<String, Queue<Item, Out>>>,
            key: &'a str,
            armed: bool,
        }
        impl<Item, Out> Drop for Release<'_, Item, Out> {
            fn drop(&mut self) {
                if self.armed {
                    self.queues
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(self.key);
                }
            }
        }
        let mut release = Release {
            queues: &self.queues,
            key: &key,
            armed: true,
        };
        self.drain_loop(&key, &run).await;
        release.armed = false;
    }

    async fn drain_loop<F, Fut>(&self, key: &str, run: &F)
    where
        F: Fn(Vec<Item>) -> Fut,
        Fut: Future<Output = Result<Vec<Out>>>,
    {
        loop {
            let batch = {
                let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                match q.get_mut(key) {
                    Some(pending) if !pending.is_empty() => std::mem::take(pending),
                    _ => {
                        q.remove(key);
                        return;
                    }
                }
            };
            let (items, waiters): (Vec<Item>, Vec<Waiter<Out>>) = batch.into_iter().unzip();
            let n = items.len();
            match run(items).await {
                Ok(outs) if outs.len() == n => {
                    for (w, o) in waiters.into_iter().zip(outs) {
                        let _ = w.send(Ok(o));
                    }
                }
                Ok(outs) => {
                    let e = StoreError::Invalid(format!(
                        "index batch returned {} results for {n} items",
                        outs.len()
                    ));
                    for w in waiters {
                        let _ = w.send(Err(e.clone()));
                    }
                }
                Err(e) => {
                    for w in waiters {
                        let _ = w.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_items_share_batches_and_keep_order() {
        let c: Arc<Coalescer<u32, u32>> = Arc::new(Coalescer::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..50u32 {
            let c = c.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                c.submit("k".into(), i, move |items: Vec<u32>| {
                    let calls = calls.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        Ok(items.iter().map(|x| x * 10).collect())
                    }
                })
                .await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().unwrap(), i as u32 * 10);
        }
        let n = calls.load(Ordering::SeqCst);
        assert!(n < 50, "50 items took {n} batches");
    }

    #[tokio::test]
    async fn a_panicking_batch_frees_its_key() {
        let c: Arc<Coalescer<u32, u32>> = Arc::new(Coalescer::default());
        let r = c
            .submit("k".into(), 1, |_items: Vec<u32>| async {
                if true {
                    panic!("bug in a batch");
                }
                Ok(vec![])
            })
            .await;
        assert!(r.is_err());
        let r = c
            .submit("k".into(), 2, |items: Vec<u32>| async move { Ok(items) })
            .await;
        assert_eq!(r.unwrap(), 2, "a later caller gets a new drainer");
    }

    #[tokio::test]
    async fn errors_reach_every_waiter() {
        let c: Arc<Coalescer<u32, u32>> = Arc::new(Coalescer::default());
        let r = c
            .submit("k".into(), 1, |_items: Vec<u32>| async {
                Err::<Vec<u32>, _>(StoreError::Invalid("boom".into()))
            })
            .await;
        assert!(matches!(r, Err(StoreError::Invalid(m)) if m == "boom"));
        // The key is free again afterwards.
        let r = c
            .submit("k".into(), 2, |items: Vec<u32>| async move { Ok(items) })
            .await;
        assert_eq!(r.unwrap(), 2);
    }
}
