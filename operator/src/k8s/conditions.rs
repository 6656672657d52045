//! Kubernetes-style conditions that only change when their meaning changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition as a controller computes it (without timestamps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub type_: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Desired {
    pub fn new(type_: &str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Merge `desired` into `existing`: a condition whose status, reason, message and generation
/// are unchanged is kept byte for byte (its `lastTransitionTime` too); the transition time
/// moves only when the status flips. Conditions of other types are kept.
pub fn merge(
    existing: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = existing
        .iter()
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .cloned()
        .collect();
    for d in desired {
        let status = if d.status { "True" } else { "False" }.to_string();
        let old = existing.iter().find(|c| c.type_ == d.type_);
        let cond = match old {
            Some(o)
                if o.status == status
                    && o.reason == d.reason
                    && o.message == d.message
                    && o.observed_generation == generation =>
            {
                o.clone()
            }
            Some(o) => Condition {
                last_transition_time: if o.status == status {
                    o.last_transition_time.clone()
                } else {
                    now.clone()
                },
                message: d.message.clone(),
                observed_generation: generation,
                reason: d.reason.clone(),
                status,
                type_: d.type_.clone(),
            },
            None => Condition {
                last_transition_time: now.clone(),
                message: d.message.clone(),
                observed_generation: generation,
                reason: d.reason.clone(),
                status,
                type_: d.type_.clone(),
            },
        };
        out.push(cond);
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// Is condition `type_` True?
pub fn is_true(conds: &[Condition], type_: &str) -> bool {
    conds.iter().any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn unchanged_condition_keeps_its_time_and_changes_nothing() {
        let first = merge(
            &[],
            &[Desired::new("Ready", true, "Reconciled", "ok")],
            Some(1),
            t("2026-01-01T00:00:00Z"),
        );
        let again = merge(
            &first,
            &[Desired::new("Ready", true, "Reconciled", "ok")],
            Some(1),
            t("2026-01-02T00:00:00Z"),
        );
        assert_eq!(first, again);
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let a = merge(
            &[],
            &[Desired::new("Ready", true, "Reconciled", "ok")],
            Some(1),
            t("2026-01-01T00:00:00Z"),
        );
        let b = merge(
            &a,
            &[Desired::new("Ready", true, "Reconciled", "still ok")],
            Some(2),
            t("2026-01-02T00:00:00Z"),
        );
        assert_eq!(b[0].last_transition_time, t("2026-01-01T00:00:00Z"));
        assert_eq!(b[0].message, "still ok");
        assert_eq!(b[0].observed_generation, Some(2));
        let c = merge(
            &b,
            &[Desired::new("Ready", false, "CephUnreachable", "down")],
            Some(2),
            t("2026-01-03T00:00:00Z"),
        );
        assert_eq!(c[0].last_transition_time, t("2026-01-03T00:00:00Z"));
        assert_eq!(c[0].status, "False");
        assert!(!is_true(&c, "Ready"));
    }

    #[test]
    fn other_types_are_kept_and_order_is_stable() {
        let a = merge(
            &[],
            &[
                Desired::new("B", true, "R", ""),
                Desired::new("A", false, "R", ""),
            ],
            None,
            t("2026-01-01T00:00:00Z"),
        );
        let b = merge(
            &a,
            &[Desired::new("C", true, "R", "")],
            None,
            t("2026-01-01T00:00:00Z"),
        );
        let types: Vec<&str> = b.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["A", "B", "C"]);
    }
}
