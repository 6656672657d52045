//! One librados connection per MailCluster, shared by every reconcile that needs it.
//!
//! Connecting can take seconds (or time out when monitors are down), so each cluster has its
//! own lock: a stuck cluster never blocks reconciles of objects on other clusters. A
//! connection is replaced when its settings change (new monitors, user or key) or after a
//! connection-level error; librados itself re-hunts monitors while a handle lives.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use rbox_core::backend::BackendError;
use rbox_core::backend::librados::LibradosBackend;
use rbox_core::rados::{Cluster, ConnectOptions};

/// A live connection and the storage backend over it.
#[derive(Debug)]
pub struct Connection {
    pub cluster: Cluster,
    pub backend: Arc<LibradosBackend>,
    fingerprint: u64,
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>;

#[derive(Debug, Default)]
pub struct Connections {
    slots: Mutex<HashMap<String, Slot>>,
}

/// What identifies a connection's settings. The key takes part only through a hash that stays
/// in memory.
pub fn fingerprint(opts: &ConnectOptions) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    opts.cluster_name.hash(&mut h);
    opts.user.hash(&mut h);
    opts.mon_host.hash(&mut h);
    opts.conf_path.hash(&mut h);
    opts.keyring.hash(&mut h);
    opts.key.as_ref().map(|k| &k.0).hash(&mut h);
    h.finish()
}

impl Connections {
    fn slot(&self, key: &str) -> Slot {
        let mut map = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key.to_string()).or_default().clone()
    }

    /// The connection for `key` (e.g. `namespace/mailcluster`), connecting if there is none or
    /// its settings changed. Only callers of the same key wait on each other.
    pub async fn get(
        &self,
        key: &str,
        opts: ConnectOptions,
    ) -> Result<Arc<Connection>, BackendError> {
        let fp = fingerprint(&opts);
        let slot = self.slot(key);
        let mut guard = slot.lock().await;
        if let Some(conn) = guard.as_ref()
            && conn.fingerprint == fp
        {
            return Ok(conn.clone());
        }
        let cluster = Cluster::connect(opts).await?;
        let backend = Arc::new(LibradosBackend::new(cluster.clone()));
        let conn = Arc::new(Connection {
            cluster,
            backend,
            fingerprint: fp,
        });
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// Drop the connection of `key` (after a connection-level error); the next `get` reconnects.
    /// A key that has no slot (its MailCluster was deleted meanwhile) is not brought back.
    pub async fn invalidate(&self, key: &str) {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned();
        if let Some(slot) = slot {
            *slot.lock().await = None;
        }
    }

    /// Forget `key` entirely (its MailCluster was deleted). The connection (librados threads,
    /// monitor session) shuts down when the last reconcile holding it lets go.
    pub fn remove(&self, key: &str) {
        self.forget_where(|k| k == key);
    }

    /// Forget every key for which `gone` holds.
    pub fn forget_where(&self, gone: impl Fn(&str) -> bool) {
        let mut map = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let before = map.len();
        map.retain(|k, _| !gone(k));
        if map.len() != before {
            tracing::info!(
                dropped = before - map.len(),
                "librados connections of deleted MailClusters dropped"
            );
        }
    }

    /// Whether `key` has a slot (a connection or one being made).
    pub fn contains(&self, key: &str) -> bool {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(key)
    }

    /// A slot for `key` without connecting (tests of who forgets connections).
    #[cfg(test)]
    pub(crate) fn touch(&self, key: &str) {
        self.slot(key);
    }

    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbox_core::rados::Secret;
    use std::time::{Duration, Instant};

    #[test]
    fn fingerprint_changes_with_key_and_monitors() {
        let a = ConnectOptions {
            mon_host: Some("m1".into()),
            key: Some(Secret("k1".into())),
            ..Default::default()
        };
        let mut b = a.clone();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.key = Some(Secret("k2".into()));
        assert_ne!(fingerprint(&a), fingerprint(&b));
        let mut c = a.clone();
        c.mon_host = Some("m2".into());
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    /// A cluster whose monitors do not answer must not hold up another cluster's connection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_cluster_does_not_block_another_key() {
        let conns = Arc::new(Connections::default());
        let dead = ConnectOptions {
            mon_host: Some("[v2:127.0.0.1:9,v1:127.0.0.1:10]".into()),
            key: Some(Secret("AQAAAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAAAA==".into())),
            connect_timeout: Duration::from_secs(4),
            ..Default::default()
        };
        let c1 = conns.clone();
        let d1 = dead.clone();
        let stuck = tokio::spawn(async move { c1.get("ns/dead", d1).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The same key waits for the stuck connect...
        let slot = conns.slot("ns/dead");
        assert!(
            slot.try_lock().is_err(),
            "the stuck connect holds its own key's lock"
        );
        // ...but another key's lock is free at once.
        let started = Instant::now();
        let other = conns.slot("ns/other");
        assert!(other.try_lock().is_ok());
        assert!(started.elapsed() < Duration::from_millis(100));
        let err = stuck.await.unwrap().unwrap_err();
        assert!(
            matches!(err, BackendError::Timeout(_) | BackendError::Connection(_)),
            "{err:?}"
        );
    }
}
