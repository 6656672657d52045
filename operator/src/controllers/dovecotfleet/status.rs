//! Status (pure): the fleet's status from its StatefulSet and the outcome of this reconcile.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::build::CONFIG_HASH_ANNOTATION;
use super::validate::{Blocked, IndexVolume};
use crate::api::{DovecotFleet, DovecotFleetStatus, conditions as ct};
use crate::k8s::conditions::{Desired, merge};

/// Condition type warning that Dovecot's index files live in an emptyDir.
pub const EPHEMERAL_INDEX: &str = "EphemeralIndex";

/// What this reconcile did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The desired objects were applied (`checked`: doveconf accepted the config; `false`
    /// when doveconf is not available to the operator, with the reason).
    Applied {
        unchecked_reason: Option<String>,
        /// With an emptyDir index: the reason of the `EphemeralIndex` warning.
        ephemeral_index: Option<&'static str>,
    },
    /// A prerequisite is missing or the spec cannot be used: nothing was changed.
    Blocked(Blocked),
    /// doveconf refused the generated configuration: nothing was changed.
    Refused(String),
}

pub fn desired_status(
    fleet: &DovecotFleet,
    sts: Option<&StatefulSet>,
    outcome: &Outcome,
    now: Time,
) -> DovecotFleetStatus {
    let current = fleet.status.clone().unwrap_or_default();
    let desired_replicas = fleet.spec.replicas;
    let st = sts.and_then(|s| s.status.clone()).unwrap_or_default();
    let ready = st.ready_replicas.unwrap_or(0);

    let mut conds = Vec::new();
    // Available: enough pods serve mail (all but the one a rollout or disruption may take).
    conds.push(match sts {
        None => Desired::new(
            ct::AVAILABLE,
            false,
            "NotDeployed",
            "no Dovecot StatefulSet yet",
        ),
        Some(_) if desired_replicas == 0 => {
            Desired::new(ct::AVAILABLE, false, "ScaledToZero", "spec.replicas is 0")
        }
        Some(_) => {
            let needed = (desired_replicas - 1).max(1);
            let msg = format!("{ready}/{desired_replicas} Dovecot pods ready");
            if ready >= needed {
                Desired::new(ct::AVAILABLE, true, "MinimumReplicasReady", msg)
            } else {
                Desired::new(ct::AVAILABLE, false, "TooFewReplicasReady", msg)
            }
        }
    });
    // Progressing: the StatefulSet is still converging on the spec.
    conds.push(match (sts, outcome) {
        (None, Outcome::Blocked(b)) => {
            Desired::new(ct::PROGRESSING, false, b.reason, b.message.clone())
        }
        (None, _) => Desired::new(
            ct::PROGRESSING,
            true,
            "Creating",
            "creating the StatefulSet",
        ),
        (Some(s), _) => {
            let generation = s.metadata.generation.unwrap_or(0);
            let observed = st.observed_generation.unwrap_or(0);
            let replicas = st.replicas;
            let updated = st.updated_replicas.unwrap_or(0);
            let revs_differ = st.current_revision.is_some()
                && st.update_revision.is_some()
                && st.current_revision != st.update_revision;
            if observed < generation {
                Desired::new(
                    ct::PROGRESSING,
                    true,
                    "Updating",
                    "the StatefulSet controller has not seen the latest spec yet",
                )
            } else if revs_differ || updated < replicas {
                Desired::new(
                    ct::PROGRESSING,
                    true,
                    "RollingUpdate",
                    format!("{updated}/{replicas} pods updated to the new pod template"),
                )
            } else if replicas != desired_replicas || ready != desired_replicas {
                Desired::new(
                    ct::PROGRESSING,
                    true,
                    "Scaling",
                    format!("{replicas} pods, {ready} ready, {desired_replicas} wanted"),
                )
            } else {
                Desired::new(
                    ct::PROGRESSING,
                    false,
                    "Complete",
                    format!("{ready} pods ready and up to date"),
                )
            }
        }
    });
    // Degraded: something keeps the fleet from following its spec.
    conds.push(match outcome {
        Outcome::Blocked(b) => Desired::new(ct::DEGRADED, true, b.reason, b.message.clone()),
        Outcome::Refused(msg) => Desired::new(
            ct::DEGRADED,
            true,
            "ConfigRefused",
            format!("doveconf refused the generated dovecot.conf (check spec.extraConfig); the running pods keep their configuration: {msg}"),
        ),
        Outcome::Applied { unchecked_reason: Some(why), .. } => Desired::new(
            ct::DEGRADED,
            false,
            "ConfigNotChecked",
            format!("applied without the doveconf check: {why}"),
        ),
        Outcome::Applied { .. } => Desired::new(ct::DEGRADED, false, "AsExpected", "configuration accepted by doveconf and applied"),
    });
    let ephemeral = match outcome {
        Outcome::Applied {
            ephemeral_index: Some(reason),
            ..
        } => Some(*reason),
        _ => None,
    };
    if let Some(reason) = ephemeral {
        conds.push(Desired::new(
            EPHEMERAL_INDEX,
            true,
            reason,
            "Dovecot's index files (UIDs, flags, caches) are in an emptyDir and start empty whenever a pod is replaced: \
             use a ReadWriteMany persistentVolumeClaim to keep them",
        ));
    }
    // The warning goes away with the emptyDir; a blocked reconcile keeps what it had.
    let keep_ephemeral = ephemeral.is_some() || !matches!(outcome, Outcome::Applied { .. });
    let existing: Vec<Condition> = current
        .conditions
        .iter()
        .filter(|c| keep_ephemeral || c.type_ != EPHEMERAL_INDEX)
        .cloned()
        .collect();

    DovecotFleetStatus {
        replicas: st.replicas,
        ready_replicas: ready,
        updated_replicas: st.updated_replicas.unwrap_or(0),
        current_revision: st.current_revision.clone(),
        update_revision: st.update_revision.clone(),
        config_hash: sts
            .and_then(|s| s.spec.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(CONFIG_HASH_ANNOTATION).cloned()),
        conditions: merge(&existing, &conds, fleet.metadata.generation, now),
        observed_generation: fleet.metadata.generation,
    }
}

/// The `EphemeralIndex` warning's reason for an index volume (None: not ephemeral).
pub fn ephemeral_reason(index: &IndexVolume) -> Option<&'static str> {
    match index {
        IndexVolume::Claim(_) => None,
        IndexVolume::EmptyDir {
            acknowledged: true, ..
        } => Some("Acknowledged"),
        IndexVolume::EmptyDir { .. } => Some("SingleReplica"),
    }
}
