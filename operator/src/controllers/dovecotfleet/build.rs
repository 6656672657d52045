//! Build (pure): the objects a fleet owns — ConfigMap, StatefulSet, Services, headless
//! Service, PodDisruptionBudget — from the fleet and its validated [`Plan`].

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapProjection, ConfigMapVolumeSource, Container,
    ContainerPort, EmptyDirVolumeSource, ExecAction, HTTPGetAction, KeyToPath, Lifecycle,
    LifecycleHandler, PersistentVolumeClaimVolumeSource, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ProjectedVolumeSource, SeccompProfile,
    SecretProjection, SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec,
    TCPSocketAction, Volume, VolumeMount, VolumeProjection, WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use super::validate::{IndexVolume, Plan};
use crate::api::DovecotFleet;
use crate::dovecot::config::{Layout, ports};
use crate::dovecot::files;

/// Pod annotation carrying the hash of the ConfigMap's files: a config change changes the pod
/// template, and the StatefulSet rolls its pods one at a time.
pub const CONFIG_HASH_ANNOTATION: &str = "mail.rbox.io/config-hash";
/// Label naming the fleet on everything it owns.
pub const FLEET_LABEL: &str = "mail.rbox.io/fleet";
const CONTAINER: &str = "dovecot";
/// Seconds the preStop hook waits for the endpoint removal to reach every proxy.
pub const DRAIN_DELAY_SECONDS: i64 = 5;
/// Seconds kept after the drain for Dovecot's own shutdown.
pub const SHUTDOWN_MARGIN_SECONDS: i64 = 10;

/// Everything the fleet owns, built in one go.
#[derive(Clone, Debug)]
pub struct Owned {
    pub config_map: ConfigMap,
    pub stateful_set: StatefulSet,
    pub services: Vec<Service>,
    pub pdb: PodDisruptionBudget,
}

pub fn config_map_name(fleet: &str) -> String {
    format!("{fleet}-config")
}
pub fn headless_name(fleet: &str) -> String {
    format!("{fleet}-headless")
}

/// Labels on every owned object (and the pods).
pub fn labels(fleet: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "dovecot".into()),
        ("app.kubernetes.io/instance".into(), fleet.into()),
        ("app.kubernetes.io/component".into(), "mail-server".into()),
        (
            "app.kubernetes.io/managed-by".into(),
            crate::k8s::FIELD_MANAGER.into(),
        ),
        (FLEET_LABEL.into(), fleet.into()),
    ])
}

/// The pod selector (a subset of [`labels`] that never changes: selectors are immutable).
pub fn selector(fleet: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "dovecot".into()),
        (FLEET_LABEL.into(), fleet.into()),
    ])
}

fn owner_ref(fleet: &DovecotFleet) -> Option<OwnerReference> {
    fleet.controller_owner_ref(&())
}

fn meta(fleet: &DovecotFleet, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: fleet.namespace(),
        labels: Some(labels(&fleet.name_any())),
        owner_references: owner_ref(fleet).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

pub fn build(fleet: &DovecotFleet, plan: &Plan) -> Owned {
    Owned {
        config_map: config_map(fleet, plan),
        stateful_set: stateful_set(fleet, plan),
        services: services(fleet, plan),
        pdb: pdb(fleet),
    }
}

fn config_map(fleet: &DovecotFleet, plan: &Plan) -> ConfigMap {
    ConfigMap {
        metadata: meta(fleet, config_map_name(&fleet.name_any())),
        data: Some(
            plan.files
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

/// A named container port and the Service port in front of it.
struct PortDef {
    name: &'static str,
    container: u16,
    service: i32,
}

/// Protocol, its Service port if enabled, its pod port, and its implicit-TLS variant.
type ProtocolRow = (
    &'static str,
    Option<i32>,
    u16,
    Option<(&'static str, u16, i32)>,
);

/// Per enabled protocol: its plain port and, with TLS, its implicit-TLS port (fixed 993/995).
fn protocol_ports(plan: &Plan) -> Vec<(&'static str, Vec<PortDef>)> {
    let p = &plan.ports;
    let table: [ProtocolRow; 4] = [
        (
            "imap",
            p.imap,
            ports::IMAP,
            Some(("imaps", ports::IMAPS, 993)),
        ),
        (
            "pop3",
            p.pop3,
            ports::POP3,
            Some(("pop3s", ports::POP3S, 995)),
        ),
        ("lmtp", p.lmtp, ports::LMTP, None),
        ("submission", p.submission, ports::SUBMISSION, None),
    ];
    table
        .into_iter()
        .filter_map(|(name, service, container, tls)| {
            let mut defs = vec![PortDef {
                name,
                container,
                service: service?,
            }];
            if let Some((tls_name, tls_container, tls_service)) = tls.filter(|_| plan.config.tls) {
                defs.push(PortDef {
                    name: tls_name,
                    container: tls_container,
                    service: tls_service,
                });
            }
            Some((name, defs))
        })
        .collect()
}

fn service_port(p: &PortDef) -> ServicePort {
    ServicePort {
        name: Some(p.name.into()),
        port: p.service,
        target_port: Some(IntOrString::String(p.name.into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

/// One Service per enabled protocol (so IMAP can be a LoadBalancer while LMTP stays
/// cluster-internal), plus the headless Service that gives pods stable DNS names.
fn services(fleet: &DovecotFleet, plan: &Plan) -> Vec<Service> {
    let name = fleet.name_any();
    let svc = &fleet.spec.service;
    let mut out = Vec::new();
    let mut all_ports = Vec::new();
    for (proto, defs) in protocol_ports(plan) {
        // LMTP carries unauthenticated deliveries: never exposed outside the cluster.
        let exposed = proto != "lmtp";
        let mut metadata = meta(fleet, format!("{name}-{proto}"));
        if exposed && !svc.annotations.is_empty() {
            metadata.annotations = Some(svc.annotations.clone());
        }
        out.push(Service {
            metadata,
            spec: Some(ServiceSpec {
                type_: Some(
                    if exposed {
                        svc.type_.as_str()
                    } else {
                        "ClusterIP"
                    }
                    .into(),
                ),
                selector: Some(selector(&name)),
                ports: Some(defs.iter().map(service_port).collect()),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        });
        all_ports.extend(defs.iter().map(service_port));
    }
    all_ports.push(ServicePort {
        name: Some("metrics".into()),
        port: i32::from(ports::METRICS),
        target_port: Some(IntOrString::String("metrics".into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    });
    out.push(Service {
        metadata: meta(fleet, headless_name(&name)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector(&name)),
            ports: Some(all_ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    });
    out
}

/// At most one pod down at a time, voluntarily (drains, node maintenance).
fn pdb(fleet: &DovecotFleet) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(fleet, fleet.name_any()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector(&fleet.name_any())),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// `(delay, budget)` of the preStop drain for a grace period: the delay for the endpoint
/// removal to spread (5 s, at most half the grace period), and the time left for sessions to
/// end after keeping 10 s for Dovecot's own shutdown. A short grace period shortens the drain
/// rather than letting the kill cut Dovecot's shutdown.
pub fn drain_args(grace: i64) -> (i64, i64) {
    let delay = DRAIN_DELAY_SECONDS.min(grace.max(0) / 2);
    (delay, (grace - delay - SHUTDOWN_MARGIN_SECONDS).max(0))
}

fn stateful_set(fleet: &DovecotFleet, plan: &Plan) -> StatefulSet {
    let name = fleet.name_any();
    let spec = &fleet.spec;
    let layout = Layout::pod();
    let cfg = &plan.config;

    let mut volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map_name(&name),
                // Scripts are executed, config is read: nothing in it is secret.
                default_mode: Some(0o555),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "ceph".into(),
            projected: Some(ProjectedVolumeSource {
                default_mode: Some(0o440),
                sources: Some(vec![
                    VolumeProjection {
                        config_map: Some(ConfigMapProjection {
                            name: plan.ceph_config_map.clone(),
                            items: Some(vec![KeyToPath {
                                key: "ceph.conf".into(),
                                path: "ceph.conf".into(),
                                ..KeyToPath::default()
                            }]),
                            ..ConfigMapProjection::default()
                        }),
                        ..VolumeProjection::default()
                    },
                    VolumeProjection {
                        secret: Some(SecretProjection {
                            name: plan.keyring_secret.clone(),
                            // librados finds /etc/ceph/keyring by default, whatever the
                            // cluster and user name.
                            items: Some(vec![KeyToPath {
                                key: "keyring".into(),
                                path: "keyring".into(),
                                ..KeyToPath::default()
                            }]),
                            ..SecretProjection::default()
                        }),
                        ..VolumeProjection::default()
                    },
                ]),
                ..ProjectedVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "auth".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(plan.auth_secret.clone()),
                default_mode: Some(0o440),
                items: Some(vec![KeyToPath {
                    key: plan.auth_key.clone(),
                    path: cfg.auth.file().into(),
                    ..KeyToPath::default()
                }]),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
        empty_dir("run"),
        empty_dir("state"),
        empty_dir("tmp"),
    ];
    let mut mounts = vec![
        mount("config", &layout.config_dir, true),
        VolumeMount {
            sub_path: Some(files::PASSWD.into()),
            ..mount("config", "/etc/passwd", true)
        },
        VolumeMount {
            sub_path: Some(files::GROUP.into()),
            ..mount("config", "/etc/group", true)
        },
        mount("ceph", "/etc/ceph", true),
        mount("auth", &layout.auth_dir, true),
        mount("run", &layout.base_dir, false),
        mount("state", &layout.state_dir, false),
        mount("tmp", "/tmp", false),
        mount("index", &layout.index_dir, false),
    ];
    volumes.push(match &plan.index {
        IndexVolume::Claim(claim) => Volume {
            name: "index".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: Some(false),
            }),
            ..Volume::default()
        },
        IndexVolume::EmptyDir { size_limit, .. } => Volume {
            name: "index".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: size_limit.clone(),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
    });
    if let Some(tls) = &plan.tls_secret {
        volumes.push(Volume {
            name: "tls".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(tls.clone()),
                default_mode: Some(0o440),
                items: Some(
                    ["tls.crt", "tls.key"]
                        .into_iter()
                        .map(|k| KeyToPath {
                            key: k.into(),
                            path: k.into(),
                            ..KeyToPath::default()
                        })
                        .collect(),
                ),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        let tls_dir = layout
            .tls_cert
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        mounts.push(mount("tls", &tls_dir, true));
    }

    let mut container_ports: Vec<ContainerPort> = protocol_ports(plan)
        .iter()
        .flat_map(|(_, defs)| defs.iter())
        .map(|d| ContainerPort {
            name: Some(d.name.into()),
            container_port: i32::from(d.container),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        })
        .collect();
    for (pname, port) in [("health", ports::HEALTH), ("metrics", ports::METRICS)] {
        container_ports.push(ContainerPort {
            name: Some(pname.into()),
            container_port: i32::from(port),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        });
    }

    let grace = spec.termination_grace_period_seconds;
    let (drain_delay, drain_budget) = drain_args(grace);
    let container = Container {
        name: CONTAINER.into(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_string()),
        command: Some(vec![
            "dovecot".into(),
            "-F".into(),
            "-c".into(),
            layout.conf_file(),
        ]),
        ports: Some(container_ports),
        resources: spec.resources.clone(),
        volume_mounts: Some(mounts),
        // Dovecot's health-check service: proves the master accepts and can start processes.
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/ping".into()),
                port: IntOrString::String("health".into()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(10),
            timeout_seconds: Some(5),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        // Liveness only asks whether the master still listens: a slow Ceph must not get
        // healthy pods killed.
        liveness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String("health".into()),
                ..TCPSocketAction::default()
            }),
            initial_delay_seconds: Some(10),
            period_seconds: Some(20),
            timeout_seconds: Some(5),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec![
                        "/bin/sh".into(),
                        layout.drain_script(),
                        drain_delay.to_string(),
                        drain_budget.to_string(),
                    ]),
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };

    let sched = spec.scheduling.clone().unwrap_or_default();
    // Without an explicit affinity, prefer one replica per node.
    let affinity = sched.affinity.clone().or_else(|| {
        Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    WeightedPodAffinityTerm {
                        weight: 100,
                        pod_affinity_term: PodAffinityTerm {
                            label_selector: Some(LabelSelector {
                                match_labels: Some(selector(&name)),
                                ..LabelSelector::default()
                            }),
                            topology_key: "kubernetes.io/hostname".into(),
                            ..PodAffinityTerm::default()
                        },
                    },
                ]),
                ..PodAntiAffinity::default()
            }),
            ..Affinity::default()
        })
    });

    let mut pod_labels = labels(&name);
    pod_labels.extend(selector(&name));
    let pod = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: Some(BTreeMap::from([(
                CONFIG_HASH_ANNOTATION.to_string(),
                plan.config_hash.clone(),
            )])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            volumes: Some(volumes),
            termination_grace_period_seconds: Some(grace),
            security_context: Some(PodSecurityContext {
                run_as_user: Some(i64::from(cfg.mail_uid)),
                run_as_group: Some(i64::from(cfg.mail_gid)),
                fs_group: Some(i64::from(cfg.mail_gid)),
                run_as_non_root: Some(true),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            image_pull_secrets: if spec.image_pull_secrets.is_empty() {
                None
            } else {
                Some(spec.image_pull_secrets.clone())
            },
            node_selector: if sched.node_selector.is_empty() {
                None
            } else {
                Some(sched.node_selector.clone())
            },
            affinity,
            tolerations: if sched.tolerations.is_empty() {
                None
            } else {
                Some(sched.tolerations.clone())
            },
            topology_spread_constraints: if sched.topology_spread_constraints.is_empty() {
                None
            } else {
                Some(sched.topology_spread_constraints.clone())
            },
            priority_class_name: sched.priority_class_name.clone(),
            ..PodSpec::default()
        }),
    };

    StatefulSet {
        metadata: meta(fleet, name.clone()),
        spec: StatefulSetSpec {
            replicas: Some(spec.replicas),
            selector: LabelSelector {
                match_labels: Some(selector(&name)),
                ..LabelSelector::default()
            },
            service_name: Some(headless_name(&name)),
            // Mail servers need no start order; scaling adds or removes pods at once. Rolling
            // updates still replace one pod at a time.
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy {
                    partition: Some(0),
                    ..RollingUpdateStatefulSetStrategy::default()
                }),
            }),
            template: pod,
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}
