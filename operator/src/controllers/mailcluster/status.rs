//! The MailCluster status, built purely from what was observed. Values that drift a little
//! all the time (capacity) change only past a threshold, so an idle cluster writes no status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::conditions::{CEPH_CONNECTED, DEGRADED, READY};
use crate::api::{Capacity, CephHealth, ClusterPhase, HealthCheck, MailClusterStatus};
use crate::ceph::observe::ClusterHealth;
use crate::k8s::conditions::{Desired, merge};

/// What a reconcile saw.
#[derive(Clone, Debug)]
pub enum Seen {
    Connected {
        health: ClusterHealth,
        version: String,
    },
    /// Connection or settings failed: (reason, message).
    Failed { reason: String, message: String },
}

pub fn parse_health(s: &str) -> Option<CephHealth> {
    match s {
        "HEALTH_OK" => Some(CephHealth::Ok),
        "HEALTH_WARN" => Some(CephHealth::Warn),
        "HEALTH_ERR" => Some(CephHealth::Err),
        _ => None,
    }
}

/// Keep `old` unless a value moved by more than 1 % of the total (or the total changed).
pub fn capacity_with_hysteresis(old: Option<&Capacity>, new: Capacity) -> Capacity {
    match old {
        Some(o) if o.total_bytes == new.total_bytes => {
            let slack = new.total_bytes / 100;
            if o.used_bytes.abs_diff(new.used_bytes) <= slack
                && o.available_bytes.abs_diff(new.available_bytes) <= slack
            {
                o.clone()
            } else {
                new
            }
        }
        _ => new,
    }
}

pub fn build(
    prev: Option<&MailClusterStatus>,
    generation: Option<i64>,
    seen: &Seen,
    now: Time,
) -> MailClusterStatus {
    let existing = prev.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    let mut st = prev.cloned().unwrap_or_default();
    st.observed_generation = generation;
    let desired = match seen {
        Seen::Connected { health, version } => {
            let h = parse_health(&health.health);
            st.fsid = Some(health.fsid.clone());
            st.ceph_version = Some(short_version(version));
            st.health = h;
            st.health_checks = health
                .checks
                .iter()
                .map(|(code, sev, msg)| HealthCheck {
                    name: code.clone(),
                    severity: parse_health(sev).unwrap_or(CephHealth::Warn),
                    summary: msg.clone(),
                })
                .collect();
            st.capacity = Some(capacity_with_hysteresis(
                prev.and_then(|p| p.capacity.as_ref()),
                Capacity {
                    total_bytes: health.bytes_total,
                    used_bytes: health.bytes_used,
                    available_bytes: health.bytes_avail,
                },
            ));
            let summary = if health.checks.is_empty() {
                health.health.clone()
            } else {
                format!(
                    "{}: {}",
                    health.health,
                    health
                        .checks
                        .iter()
                        .map(|c| c.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let (ready, degraded, phase) = match h {
                Some(CephHealth::Ok) => (true, false, ClusterPhase::Ready),
                Some(CephHealth::Warn) => (true, true, ClusterPhase::Degraded),
                _ => (false, true, ClusterPhase::Degraded),
            };
            st.phase = Some(phase);
            vec![
                Desired::new(
                    CEPH_CONNECTED,
                    true,
                    "Connected",
                    format!("fsid {}", health.fsid),
                ),
                Desired::new(
                    READY,
                    ready,
                    if ready {
                        "CephUsable"
                    } else {
                        "CephHealthError"
                    },
                    summary.clone(),
                ),
                Desired::new(
                    DEGRADED,
                    degraded,
                    if degraded {
                        "CephHealthWarning"
                    } else {
                        "CephHealthy"
                    },
                    summary,
                ),
            ]
        }
        Seen::Failed { reason, message } => {
            st.phase = Some(if prev.and_then(|p| p.fsid.as_ref()).is_some() {
                ClusterPhase::Failed
            } else {
                ClusterPhase::Connecting
            });
            vec![
                Desired::new(CEPH_CONNECTED, false, reason, message.clone()),
                Desired::new(READY, false, reason, message.clone()),
                Desired::new(DEGRADED, true, reason, message.clone()),
            ]
        }
    };
    st.conditions = merge(existing, &desired, generation, now);
    st
}

/// `16.2.15` out of `ceph version 16.2.15 (hash) pacific (stable)`.
pub fn short_version(v: &str) -> String {
    v.split_whitespace()
        .nth(2)
        .filter(|_| v.starts_with("ceph version"))
        .unwrap_or(v)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn ok(used: u64) -> Seen {
        Seen::Connected {
            health: ClusterHealth {
                fsid: "f".into(),
                health: "HEALTH_OK".into(),
                checks: vec![],
                bytes_total: 10_000,
                bytes_used: used,
                bytes_avail: 10_000 - used,
            },
            version: "ceph version 16.2.15 (abc) pacific (stable)".into(),
        }
    }

    #[test]
    fn healthy_cluster_is_ready_and_idle_drift_writes_nothing() {
        let a = build(None, Some(1), &ok(1000), t("2026-01-01T00:00:00Z"));
        assert_eq!(a.phase, Some(ClusterPhase::Ready));
        assert_eq!(a.ceph_version.as_deref(), Some("16.2.15"));
        assert!(crate::k8s::conditions::is_true(&a.conditions, READY));
        // 50 bytes of drift (< 1 % of 10 000): the same status, so no write.
        let b = build(Some(&a), Some(1), &ok(1050), t("2026-01-01T00:01:00Z"));
        assert_eq!(a, b);
        // 500 bytes: reported.
        let c = build(Some(&b), Some(1), &ok(1500), t("2026-01-01T00:02:00Z"));
        assert_eq!(c.capacity.unwrap().used_bytes, 1500);
    }

    #[test]
    fn failure_sets_conditions_false_with_the_reason() {
        let s = build(
            None,
            Some(1),
            &Seen::Failed {
                reason: "CephUnreachable".into(),
                message: "no monitor answered".into(),
            },
            t("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.phase, Some(ClusterPhase::Connecting));
        let c = s
            .conditions
            .iter()
            .find(|c| c.type_ == CEPH_CONNECTED)
            .unwrap();
        assert_eq!(c.status, "False");
        assert_eq!(c.reason, "CephUnreachable");
    }

    #[test]
    fn warn_is_degraded_but_ready() {
        let Seen::Connected {
            mut health,
            version,
        } = ok(1)
        else {
            unreachable!()
        };
        health.health = "HEALTH_WARN".into();
        health.checks = vec![("OSD_DOWN".into(), "HEALTH_WARN".into(), "1 osd down".into())];
        let s = build(
            None,
            None,
            &Seen::Connected { health, version },
            t("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.phase, Some(ClusterPhase::Degraded));
        assert!(crate::k8s::conditions::is_true(&s.conditions, DEGRADED));
        assert!(crate::k8s::conditions::is_true(&s.conditions, READY));
        assert_eq!(s.health_checks[0].name, "OSD_DOWN");
    }
}
