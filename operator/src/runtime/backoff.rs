//! Per-object exponential backoff for failed reconciles, reset on success.
//!
//! kube-runtime leaves the retry delay to the error policy; a fixed delay either hammers a
//! broken Ceph or makes a transient fault heal slowly. One object's failures never slow
//! another object down: the count is kept per object key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    /// Failures in a row and when the last one was.
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(2), Duration::from_secs(300))
    }
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Record a failure of `key` and return how long to wait before retrying it:
    /// base · 2^(n-1), capped, plus up to 10 % jitter so many objects failing together do not
    /// retry in lockstep.
    pub fn on_failure(&self, key: &str) -> Duration {
        self.on_failure_at(key, Instant::now())
    }

    /// An object that failed is retried within `max` (plus jitter), so an entry that has not
    /// failed again for three times that belongs to an object no longer reconciled (deleted
    /// while its reconcile was in flight, after the watch told us it was gone): dropped, so
    /// the map stays bounded whatever the order of events.
    fn on_failure_at(&self, key: &str, now: Instant) -> Duration {
        let stale = self.max.saturating_mul(3);
        let n = {
            let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, (_, last)| now.saturating_duration_since(*last) <= stale);
            let (n, last) = map.entry(key.to_string()).or_insert((0, now));
            *n = n.saturating_add(1);
            *last = now;
            *n
        };
        let exp = self.base.saturating_mul(1u32 << (n - 1).min(20));
        let delay = exp.min(self.max);
        let jitter_ms = (delay.as_millis() as u64 / 10).max(1);
        delay + Duration::from_millis(pseudo_random(key, n) % jitter_ms)
    }

    /// Forget the failures of `key` (call after a successful reconcile).
    pub fn on_success(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Forget every key for which `gone` holds (its object was deleted): without this, an
    /// object whose last reconcile failed stays in the map for the life of the process.
    pub fn forget_where(&self, gone: impl Fn(&str) -> bool) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| !gone(k));
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn failures(&self, key: &str) -> u32 {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .map(|(n, _)| *n)
            .unwrap_or(0)
    }
}

/// Cheap deterministic jitter (no RNG dependency needed for spreading retries).
fn pseudo_random(key: &str, n: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    n.hash(&mut h);
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        .hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_caps_and_resets_per_key() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let d: Vec<Duration> = (0..6).map(|_| b.on_failure("ns/a")).collect();
        for (got, want) in d.iter().zip([1u64, 2, 4, 8, 10, 10]) {
            let want = Duration::from_secs(want);
            assert!(
                *got >= want && *got <= want + want / 10,
                "{got:?} vs {want:?}"
            );
        }
        // Another object is unaffected.
        assert_eq!(b.on_failure("ns/b").as_secs(), 1);
        b.on_success("ns/a");
        assert_eq!(b.failures("ns/a"), 0);
        assert_eq!(b.on_failure("ns/a").as_secs(), 1);
        assert_eq!(b.failures("ns/b"), 1);
    }

    #[test]
    fn keys_not_failing_again_expire_and_deleted_ones_are_forgotten() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let t0 = Instant::now();
        b.on_failure_at("mailpool:ns/deleted", t0);
        b.on_failure_at("mailpool:ns/gone", t0);
        b.on_failure_at("mailcluster:ns/gone", t0);
        b.on_failure_at("mailpool:ns/live", t0 + Duration::from_secs(25));
        assert_eq!(b.len(), 4, "within 3 x max nothing expires");
        b.on_failure_at("mailpool:ns/live", t0 + Duration::from_secs(31));
        assert_eq!(b.len(), 1, "entries not refreshed for 3 x max are dropped");
        assert_eq!(b.failures("mailpool:ns/live"), 2);
        b.on_failure("mailpool:ns/gone");
        b.on_failure("mailcluster:ns/gone");
        b.forget_where(|k| k == "mailpool:ns/gone");
        assert_eq!(b.failures("mailpool:ns/gone"), 0);
        assert_eq!(b.failures("mailcluster:ns/gone"), 1);
    }

    #[test]
    fn never_overflows() {
        let b = Backoff::new(Duration::from_secs(3600), Duration::from_secs(300));
        for _ in 0..100 {
            assert!(b.on_failure("k") <= Duration::from_secs(330));
        }
    }
}
