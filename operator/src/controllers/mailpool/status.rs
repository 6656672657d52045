//! The MailPool status, built purely. Values that drift on an idle cluster (usage, scrub
//! flags of PG states, canary latency) change the status only past a threshold or when their
//! meaning changes, so an unchanged MailPool writes no status.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::conditions::{DEGRADED, DELETION_BLOCKED, POOLS_READY, READY, STORAGE_HEALTHY};
use crate::api::{CanaryResult, MailPoolStatus, PoolPhase, PoolStatus};
use crate::k8s::conditions::{Desired, is_true, merge};

use super::ceph_apply::{PoolHealth, PoolRecord};

/// One canary run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanaryOutcome {
    pub ok: bool,
    pub latency_ms: u64,
    pub message: Option<String>,
}

/// Everything a successful apply saw.
#[derive(Clone, Debug)]
pub struct Applied {
    pub records: [PoolRecord; 2],
    /// (max_bytes, max_objects) per pool as applied.
    pub quotas: [(u64, u64); 2],
    pub health: Option<[PoolHealth; 2]>,
    pub entity: String,
    pub secret: String,
    pub config_map: String,
    pub key_rotation: Option<String>,
    /// The canary of this reconcile, if one was due.
    pub canary: Option<CanaryOutcome>,
    pub quota_warning_percent: u32,
    /// What was found changed behind the operator's back and repaired (see [`Drift`]).
    pub drift: Vec<Drift>,
}

/// A difference from the desired state found while the spec had not changed since the last
/// converged reconcile: someone or something changed the platform by hand. Repaired, and
/// reported (a Warning Event, `rbox_operator_drift_repaired_total`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// The kind of object, a metric label: `pool`, `cephx_user`, `rbox_cfg`, `secret`,
    /// `configmap`.
    pub what: &'static str,
    /// What differed, for the Event.
    pub detail: String,
}

/// Keep `old` unless `new` moved by more than `max(floor, 1 %)`.
pub fn sticky(old: Option<u64>, new: u64, floor: u64) -> u64 {
    match old {
        Some(o) if o.abs_diff(new) <= floor.max(o / 100) => o,
        _ => new,
    }
}

/// PG states without the scrub flags, which come and go on a healthy idle pool.
pub fn pg_states(raw: &BTreeMap<String, u32>) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for (state, n) in raw {
        let s: Vec<&str> = state
            .split('+')
            .filter(|p| !matches!(*p, "scrubbing" | "deep" | "scrub_scheduled"))
            .collect();
        *out.entry(s.join("+")).or_insert(0) += n;
    }
    out
}

fn pool_status(
    prev: Option<&PoolStatus>,
    rec: &PoolRecord,
    quota: (u64, u64),
    health: Option<&PoolHealth>,
) -> PoolStatus {
    let prev = prev.filter(|p| p.name == rec.name);
    let mut st = PoolStatus {
        name: rec.name.clone(),
        id: (rec.id >= 0).then_some(rec.id),
        adopted: rec.adopted,
        quota_max_bytes: Some(quota.0),
        quota_max_objects: Some(quota.1),
        managed_parameters: rec.managed_parameters.clone(),
        ..Default::default()
    };
    match health {
        Some(h) => {
            st.used_bytes = Some(sticky(
                prev.and_then(|p| p.used_bytes),
                h.usage.stored_bytes,
                1 << 20,
            ));
            st.objects = Some(sticky(prev.and_then(|p| p.objects), h.usage.objects, 16));
            st.pg_states = pg_states(&h.pg_states);
            st.large_omap_objects = Some(h.large_omap_objects);
        }
        None => {
            if let Some(p) = prev {
                st.used_bytes = p.used_bytes;
                st.objects = p.objects;
                st.pg_states = p.pg_states.clone();
                st.large_omap_objects = p.large_omap_objects;
            }
        }
    }
    st
}

/// Problems worth a `Degraded` condition (sorted, stable wording).
pub fn problems(pools: &[&PoolStatus], warn_percent: u32) -> Vec<String> {
    let mut out = Vec::new();
    for p in pools {
        let pct = |used: Option<u64>, quota: Option<u64>| match (used, quota) {
            (Some(u), Some(q)) if q > 0 => Some(u.saturating_mul(100) / q),
            _ => None,
        };
        if let Some(x) = pct(p.used_bytes, p.quota_max_bytes)
            && x >= u64::from(warn_percent)
        {
            out.push(format!("pool {} uses {x}% of its byte quota", p.name));
        }
        if let Some(x) = pct(p.objects, p.quota_max_objects)
            && x >= u64::from(warn_percent)
        {
            out.push(format!("pool {} uses {x}% of its object quota", p.name));
        }
        let not_active: u32 = p
            .pg_states
            .iter()
            .filter(|(s, _)| s.as_str() != "active+clean")
            .map(|(_, n)| n)
            .sum();
        if not_active > 0 {
            out.push(format!(
                "pool {} has {not_active} PGs not active+clean",
                p.name
            ));
        }
        if let Some(n) = p.large_omap_objects.filter(|n| *n > 0) {
            out.push(format!("pool {} has {n} large omap objects", p.name));
        }
    }
    out
}

fn canary_result(
    prev: Option<&CanaryResult>,
    now_run: Option<&CanaryOutcome>,
    now: &Time,
) -> Option<CanaryResult> {
    let Some(c) = now_run else {
        return prev.cloned();
    };
    // Recorded when its meaning changes (pass ↔ fail, another failure); the latency of every
    // run goes to the canary histogram instead, so a passing canary writes no status.
    match prev {
        Some(p) if p.ok == c.ok && p.message == c.message => Some(p.clone()),
        _ => Some(CanaryResult {
            time: now.clone(),
            latency_milliseconds: c.latency_ms,
            ok: c.ok,
            message: c.message.clone(),
        }),
    }
}

pub fn build(
    prev: Option<&MailPoolStatus>,
    generation: Option<i64>,
    a: &Applied,
    now: Time,
) -> MailPoolStatus {
    let existing = prev.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    let data = pool_status(
        prev.and_then(|p| p.data_pool.as_ref()),
        &a.records[0],
        a.quotas[0],
        a.health.as_ref().map(|h| &h[0]),
    );
    let index = pool_status(
        prev.and_then(|p| p.index_pool.as_ref()),
        &a.records[1],
        a.quotas[1],
        a.health.as_ref().map(|h| &h[1]),
    );
    let last_canary = canary_result(
        prev.and_then(|p| p.last_canary.as_ref()),
        a.canary.as_ref(),
        &now,
    );
    let describe = |p: &PoolStatus| {
        format!(
            "{} (id {}, {})",
            p.name,
            p.id.unwrap_or(-1),
            if p.adopted { "adopted" } else { "created" }
        )
    };
    let storage = match &last_canary {
        None => Desired::new(
            STORAGE_HEALTHY,
            false,
            "CanaryPending",
            "no canary has run yet",
        ),
        Some(c) if c.ok => Desired::new(
            STORAGE_HEALTHY,
            true,
            "CanaryPassed",
            "the canary saved, read, verified and expunged a mail",
        ),
        Some(c) => Desired::new(
            STORAGE_HEALTHY,
            false,
            "CanaryFailed",
            c.message.clone().unwrap_or_default(),
        ),
    };
    let storage_ok = storage.status;
    let issues = problems(&[&data, &index], a.quota_warning_percent);
    let desired = vec![
        Desired::new(
            POOLS_READY,
            true,
            "Reconciled",
            format!(
                "data pool {}, index pool {}, user {}",
                describe(&data),
                describe(&index),
                a.entity
            ),
        ),
        storage,
        Desired::new(
            READY,
            storage_ok,
            if storage_ok {
                "Ready"
            } else {
                "StorageUnhealthy"
            },
            if storage_ok {
                "mail can be stored"
            } else {
                "see StorageHealthy"
            },
        ),
        Desired::new(
            DEGRADED,
            !issues.is_empty(),
            if issues.is_empty() {
                "Healthy"
            } else {
                "PoolProblems"
            },
            issues.join("; "),
        ),
        Desired::new(DELETION_BLOCKED, false, "NotDeleting", ""),
    ];
    let conditions = merge(existing, &desired, generation, now);
    let phase = if storage_ok && issues.is_empty() {
        PoolPhase::Ready
    } else if last_canary.is_none() {
        PoolPhase::Creating
    } else {
        PoolPhase::Degraded
    };
    MailPoolStatus {
        conditions,
        observed_generation: generation,
        phase: Some(phase),
        data_pool: Some(data),
        index_pool: Some(index),
        dovecot_user: Some(a.entity.clone()),
        keyring_secret: Some(a.secret.clone()),
        ceph_config_map: Some(a.config_map.clone()),
        last_canary,
        key_rotation: a.key_rotation.clone(),
    }
}

/// The apply failed: PoolsReady and Ready are False with the reason; the rest is kept.
/// A failed reconcile. `storage_down`: the failure was on the path mail takes (monitors or
/// OSDs unreachable, RADOS calls timing out), so mail cannot be stored either, whatever the
/// last canary said; the canary itself does not run when the reconcile fails before it.
pub fn build_failed(
    prev: Option<&MailPoolStatus>,
    generation: Option<i64>,
    reason: &str,
    message: &str,
    storage_down: bool,
    now: Time,
) -> MailPoolStatus {
    let mut st = prev.cloned().unwrap_or_default();
    let mut desired = vec![
        Desired::new(POOLS_READY, false, reason, message),
        Desired::new(READY, false, reason, message),
    ];
    if storage_down {
        desired.push(Desired::new(
            STORAGE_HEALTHY,
            false,
            "StorageUnreachable",
            format!("mail cannot be stored: {message}"),
        ));
    }
    st.conditions = merge(&st.conditions, &desired, generation, now);
    st.observed_generation = generation;
    st.phase = Some(match reason {
        "ClusterNotFound" | "CephUnreachable" | "ConnectionSettings" => PoolPhase::Pending,
        _ => PoolPhase::Failed,
    });
    st
}

/// Deletion waits for the user.
pub fn build_deleting(
    prev: Option<&MailPoolStatus>,
    generation: Option<i64>,
    blocked: Option<&str>,
    now: Time,
) -> MailPoolStatus {
    let mut st = prev.cloned().unwrap_or_default();
    let desired = match blocked {
        Some(msg) => vec![
            Desired::new(DELETION_BLOCKED, true, "ConfirmationMissing", msg),
            Desired::new(READY, false, "DeletionBlocked", msg),
        ],
        None => vec![Desired::new(DELETION_BLOCKED, false, "Deleting", "")],
    };
    st.conditions = merge(&st.conditions, &desired, generation, now);
    st.phase = Some(if blocked.is_some() {
        PoolPhase::DeletionBlocked
    } else {
        PoolPhase::Deleting
    });
    st
}

/// Is the MailPool Ready per its status?
pub fn is_ready(st: Option<&MailPoolStatus>) -> bool {
    st.is_some_and(|s| is_true(&s.conditions, READY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceph::observe::PoolUsage;

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn applied(stored: u64, canary: Option<CanaryOutcome>) -> Applied {
        let rec = |n: &str, id| PoolRecord {
            name: n.into(),
            id,
            adopted: false,
            managed_parameters: BTreeMap::new(),
            writes: 0,
            sent: Vec::new(),
        };
        let health = |stored| PoolHealth {
            usage: PoolUsage {
                stored_bytes: stored,
                objects: 3,
                max_avail_bytes: 1 << 30,
            },
            pg_states: BTreeMap::from([("active+clean".to_string(), 8)]),
            large_omap_objects: 0,
        };
        Applied {
            records: [rec("d", 1), rec("i", 2)],
            quotas: [(10 << 20, 0), (0, 0)],
            health: Some([health(stored), health(0)]),
            entity: "client.x".into(),
            secret: "s".into(),
            config_map: "c".into(),
            key_rotation: None,
            canary,
            quota_warning_percent: 85,
            drift: Vec::new(),
        }
    }

    fn pass(ms: u64) -> Option<CanaryOutcome> {
        Some(CanaryOutcome {
            ok: true,
            latency_ms: ms,
            message: None,
        })
    }

    #[test]
    fn passing_canaries_and_small_drift_write_nothing() {
        let a = build(
            None,
            Some(1),
            &applied(1000, pass(12)),
            t("2026-01-01T00:00:00Z"),
        );
        assert!(is_ready(Some(&a)));
        assert_eq!(a.phase, Some(PoolPhase::Ready));
        let b = build(
            Some(&a),
            Some(1),
            &applied(1500, pass(30)),
            t("2026-01-01T00:01:00Z"),
        );
        assert_eq!(
            a, b,
            "a passing canary with another latency and 500 B drift changed the status"
        );
        let c = build(
            Some(&b),
            Some(1),
            &applied(1000, None),
            t("2026-01-01T00:01:30Z"),
        );
        assert_eq!(a, c);
    }

    #[test]
    fn failing_canary_flips_storage_healthy_and_ready() {
        let a = build(
            None,
            Some(1),
            &applied(0, pass(5)),
            t("2026-01-01T00:00:00Z"),
        );
        let fail = Some(CanaryOutcome {
            ok: false,
            latency_ms: 30000,
            message: Some("canary save failed: timed out".into()),
        });
        let b = build(
            Some(&a),
            Some(1),
            &applied(0, fail),
            t("2026-01-01T00:01:00Z"),
        );
        assert!(!is_true(&b.conditions, STORAGE_HEALTHY));
        assert!(!is_ready(Some(&b)));
        assert_eq!(b.phase, Some(PoolPhase::Degraded));
        let c = b
            .conditions
            .iter()
            .find(|c| c.type_ == STORAGE_HEALTHY)
            .unwrap();
        assert_eq!(c.reason, "CanaryFailed");
        assert!(c.message.contains("timed out"));
    }

    #[test]
    fn quota_use_and_unclean_pgs_are_degraded() {
        let mut a = applied(9 << 20, pass(5));
        if let Some(h) = a.health.as_mut() {
            h[1].pg_states = BTreeMap::from([
                ("active+clean+scrubbing+deep".to_string(), 7),
                ("peering".to_string(), 1),
            ]);
        }
        let s = build(None, Some(1), &a, t("2026-01-01T00:00:00Z"));
        let d = s.conditions.iter().find(|c| c.type_ == DEGRADED).unwrap();
        assert_eq!(d.status, "True");
        assert!(
            d.message.contains("pool d uses 90% of its byte quota"),
            "{}",
            d.message
        );
        assert!(
            d.message.contains("pool i has 1 PGs not active+clean"),
            "{}",
            d.message
        );
        // Scrub flags are folded away.
        assert_eq!(
            s.index_pool.unwrap().pg_states.get("active+clean"),
            Some(&7)
        );
    }

    #[test]
    fn failure_keeps_the_rest_and_says_why() {
        let a = build(
            None,
            Some(1),
            &applied(0, pass(5)),
            t("2026-01-01T00:00:00Z"),
        );
        let f = build_failed(
            Some(&a),
            Some(2),
            "IncompatiblePool",
            "pool d cannot be adopted: it is erasure-coded",
            false,
            t("2026-01-01T00:01:00Z"),
        );
        assert_eq!(f.phase, Some(PoolPhase::Failed));
        // A layout problem says nothing about whether mail can be stored.
        assert!(is_true(&f.conditions, STORAGE_HEALTHY));
        let down = build_failed(
            Some(&a),
            Some(2),
            "RboxError",
            "timed out: read d//rbox_cfg",
            true,
            t("2026-01-01T00:01:00Z"),
        );
        let storage = down
            .conditions
            .iter()
            .find(|c| c.type_ == STORAGE_HEALTHY)
            .expect("StorageHealthy");
        assert_eq!(storage.status, "False");
        assert!(storage.message.contains("timed out"));
        assert!(!is_ready(Some(&f)));
        assert_eq!(f.data_pool, a.data_pool);
        let b = build_deleting(
            Some(&f),
            Some(2),
            Some("pools hold 3 objects"),
            t("2026-01-01T00:02:00Z"),
        );
        assert!(is_true(&b.conditions, DELETION_BLOCKED));
        assert_eq!(b.phase, Some(PoolPhase::DeletionBlocked));
    }
}
