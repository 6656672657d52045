//! The generated `dovecot.conf` (Dovecot 2.3 with the rbox storage plugin).
//!
//! [`render`] is pure and deterministic: the same [`FleetConfig`] always gives the same bytes,
//! so [`config_hash`] of the rendered file changes exactly when the configuration changes and
//! a pod rolls only then. Everything that depends on where files live inside the container is
//! in [`Layout`]: the controller renders with [`Layout::pod`]; the doveconf check renders the
//! *same* config with [`Layout::rooted`] under a temporary directory (doveconf opens the TLS
//! files and requires the system users to exist on the machine that runs it).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// Ports Dovecot listens on inside the pod. All above 1024: Dovecot runs as a non-root user,
/// which cannot bind privileged ports; Services map the well-known ports onto these.
pub mod ports {
    pub const IMAP: u16 = 10143;
    pub const IMAPS: u16 = 10993;
    pub const POP3: u16 = 10110;
    pub const POP3S: u16 = 10995;
    pub const LMTP: u16 = 10024;
    pub const SUBMISSION: u16 = 10587;
    /// Dovecot's `health-check` script service (PING → PONG, and `GET /ping` for HTTP probes).
    pub const HEALTH: u16 = 10080;
    /// The OpenMetrics listener of Dovecot's `stats` service (`GET /metrics`).
    pub const METRICS: u16 = 9900;
}

/// Where things live in the container (or, for the check, under a temporary directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Directory of the ConfigMap: `dovecot.conf`, `health-check.sh`, `drain.sh`.
    pub config_dir: String,
    /// Dovecot's runtime sockets and pids (writable: an emptyDir, the root fs is read-only).
    pub base_dir: String,
    /// Dovecot's state (writable emptyDir).
    pub state_dir: String,
    /// Dovecot's own index files (the RWX volume, or an acknowledged emptyDir).
    pub index_dir: String,
    /// ceph.conf, mounted from the MailPool's ConfigMap (the keyring sits next to it).
    pub ceph_conf: String,
    /// TLS certificate and key, mounted from the TLS Secret. Not under `config_dir`: a
    /// ConfigMap volume is read-only, so nothing can be mounted inside it.
    pub tls_cert: String,
    pub tls_key: String,
    /// Directory of the auth Secret's files (passwd-file, LDAP or SQL args file).
    pub auth_dir: String,
    /// The system user and group every Dovecot process runs as. Must exist in the container's
    /// `/etc/passwd` (the pod mounts a generated one) and, for the check, on the checking host.
    pub system_user: String,
    pub system_group: String,
}

/// The system user name inside the pod (its uid is the fleet's mail uid).
pub const POD_USER: &str = "vmail";

impl Layout {
    /// The layout of a fleet's pod (mount paths of the StatefulSet's volumes).
    pub fn pod() -> Self {
        Self {
            config_dir: "/etc/dovecot".into(),
            base_dir: "/run/dovecot".into(),
            state_dir: "/var/lib/dovecot".into(),
            index_dir: "/srv/dovecot-index".into(),
            ceph_conf: "/etc/ceph/ceph.conf".into(),
            tls_cert: "/etc/dovecot-tls/tls.crt".into(),
            tls_key: "/etc/dovecot-tls/tls.key".into(),
            auth_dir: "/etc/dovecot-auth".into(),
            system_user: POD_USER.into(),
            system_group: POD_USER.into(),
        }
    }

    /// The pod layout moved under `root`, with the system user replaced by one that exists on
    /// the checking machine. Only path prefixes and user names differ from [`Layout::pod`].
    pub fn rooted(root: &str, system_user: &str, system_group: &str) -> Self {
        let pod = Self::pod();
        let r = |p: &str| format!("{}{p}", root.trim_end_matches('/'));
        Self {
            config_dir: r(&pod.config_dir),
            base_dir: r(&pod.base_dir),
            state_dir: r(&pod.state_dir),
            index_dir: r(&pod.index_dir),
            ceph_conf: r(&pod.ceph_conf),
            tls_cert: r(&pod.tls_cert),
            tls_key: r(&pod.tls_key),
            auth_dir: r(&pod.auth_dir),
            system_user: system_user.into(),
            system_group: system_group.into(),
        }
    }

    pub fn conf_file(&self) -> String {
        format!("{}/dovecot.conf", self.config_dir)
    }
    pub fn health_script(&self) -> String {
        format!("{}/health-check.sh", self.config_dir)
    }
    pub fn drain_script(&self) -> String {
        format!("{}/drain.sh", self.config_dir)
    }
    pub fn auth_file(&self, file: &str) -> String {
        format!("{}/{file}", self.auth_dir)
    }
}

/// The rbox plugin settings (from the MailPool and its MailCluster).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rbox {
    /// `rbox_pool_name`: the mail object (data) pool.
    pub pool: String,
    /// `rbox_index_pool_name`.
    pub index_pool: String,
    /// `rados_user_name`: the full cephx name (`client.…`).
    pub rados_user: String,
    /// `rbox_cluster_name` (librados cluster name, `ceph` unless the cluster says otherwise).
    pub cluster_name: String,
    /// `rbox_cfg_object_name`.
    pub cfg_object: String,
}

/// One protocol's listener: the Service port is the fleet's business; Dovecot always listens
/// on the fixed high port of [`ports`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Protocols {
    pub imap: bool,
    pub pop3: bool,
    pub lmtp: bool,
    pub submission: bool,
}

/// How users authenticate: the same source serves as passdb and userdb, with uid, gid and
/// home overridden by the fleet's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// A Dovecot passwd-file (`user:{SCHEME}hash`), mounted from a Secret as `file`.
    PasswdFile { file: String },
    /// Dovecot's LDAP args file (`dovecot-ldap.conf.ext` content), mounted from a Secret.
    Ldap { file: String },
    /// Dovecot's SQL args file (`dovecot-sql.conf.ext` content), mounted from a Secret.
    Sql { file: String },
}

impl Auth {
    /// The file name (inside [`Layout::auth_dir`]) the Secret's key is mounted as.
    pub fn file(&self) -> &str {
        match self {
            Auth::PasswdFile { file } | Auth::Ldap { file } | Auth::Sql { file } => file,
        }
    }
}

/// Everything the generated configuration depends on. Plain data, no Kubernetes types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetConfig {
    /// `namespace/name` of the fleet (header comment only).
    pub fleet: String,
    pub rbox: Rbox,
    pub protocols: Protocols,
    /// TLS from a Secret: STARTTLS on the plain ports plus implicit-TLS IMAPS/POP3S listeners,
    /// and plaintext authentication only over TLS.
    pub tls: bool,
    pub auth: Auth,
    /// uid/gid every Dovecot process runs as (never 0: see `rbox-observed.md` §1).
    pub mail_uid: u32,
    pub mail_gid: u32,
    /// User snippet appended last (validated by doveconf before it is ever applied).
    pub extra_config: Option<String>,
}

impl FleetConfig {
    /// A typical fleet (IMAP and LMTP, passwd-file, no TLS, uid/gid 5000): the base of tests
    /// and examples, which change what they are about.
    pub fn example() -> Self {
        Self {
            fleet: "mail/imap".into(),
            rbox: Rbox {
                pool: "mail-data".into(),
                index_pool: "mail-index".into(),
                rados_user: "client.dovecot-mail".into(),
                cluster_name: "ceph".into(),
                cfg_object: "rbox_cfg".into(),
            },
            protocols: Protocols {
                imap: true,
                pop3: false,
                lmtp: true,
                submission: false,
            },
            tls: false,
            auth: Auth::PasswdFile {
                file: "passwd".into(),
            },
            mail_uid: 5000,
            mail_gid: 5000,
            extra_config: None,
        }
    }
}

/// OpenMetrics metrics exported on [`ports::METRICS`] (Dovecot 2.3.19 filter syntax).
const METRICS: &[(&str, &str, &str)] = &[
    (
        "imap_command",
        "event=imap_command_finished",
        "cmd_name tagged_reply_state",
    ),
    (
        "pop3_command",
        "event=pop3_command_finished",
        "cmd_name success",
    ),
    (
        "auth_success",
        "event=auth_request_finished AND success=yes",
        "",
    ),
    (
        "auth_failure",
        "event=auth_request_finished AND NOT success=yes",
        "",
    ),
    ("mail_delivery", "event=mail_delivery_finished", ""),
    (
        "smtp_server_transaction",
        "event=smtp_server_transaction_finished",
        "protocol",
    ),
    ("mail_user_session", "event=mail_user_session_finished", ""),
];

/// Render the complete `dovecot.conf` for `cfg` with the paths of `layout`.
pub fn render(cfg: &FleetConfig, layout: &Layout) -> String {
    let mut out = String::with_capacity(4096);
    let w = &mut out;
    let _ = writeln!(
        w,
        "# dovecot.conf generated by rbox-operator for DovecotFleet {}.\n\
         # Do not edit: the operator overwrites it. Put additions in spec.extraConfig.",
        cfg.fleet
    );

    section(w, "Protocols and listeners");
    let mut protocols = Vec::new();
    let p = cfg.protocols;
    for (on, name) in [
        (p.imap, "imap"),
        (p.pop3, "pop3"),
        (p.lmtp, "lmtp"),
        (p.submission, "submission"),
    ] {
        if on {
            protocols.push(name);
        }
    }
    let protocols = if protocols.is_empty() {
        "none".to_string()
    } else {
        protocols.join(" ")
    };
    let _ = writeln!(w, "protocols = {protocols}");
    let _ = writeln!(w, "listen = *");

    section(
        w,
        "Running as a non-root user on a read-only root filesystem",
    );
    let _ = writeln!(w, "base_dir = {}", layout.base_dir);
    let _ = writeln!(w, "state_dir = {}", layout.state_dir);
    let _ = writeln!(w, "default_internal_user = {}", layout.system_user);
    let _ = writeln!(w, "default_internal_group = {}", layout.system_group);
    let _ = writeln!(w, "default_login_user = {}", layout.system_user);
    let _ = writeln!(w, "mail_uid = {}", cfg.mail_uid);
    let _ = writeln!(w, "mail_gid = {}", cfg.mail_gid);
    let _ = writeln!(w, "first_valid_uid = {}", cfg.mail_uid);
    let _ = writeln!(w, "last_valid_uid = {}", cfg.mail_uid);
    let _ = writeln!(w, "first_valid_gid = {}", cfg.mail_gid);
    let _ = writeln!(w, "last_valid_gid = {}", cfg.mail_gid);
    // A non-root master cannot chroot its helpers.
    for svc in ["anvil", "imap-login", "pop3-login", "submission-login"] {
        let listeners = match svc {
            "imap-login" if p.imap => {
                listener_pair("imap", ports::IMAP, "imaps", ports::IMAPS, cfg.tls)
            }
            "pop3-login" if p.pop3 => {
                listener_pair("pop3", ports::POP3, "pop3s", ports::POP3S, cfg.tls)
            }
            "submission-login" if p.submission => {
                format!(
                    "  inet_listener submission {{\n    port = {}\n  }}\n",
                    ports::SUBMISSION
                )
            }
            _ => String::new(),
        };
        let _ = writeln!(w, "service {svc} {{\n  chroot =\n{listeners}}}");
    }
    // auth-worker runs as root by default; a non-root master cannot switch to it.
    let _ = writeln!(
        w,
        "service auth-worker {{\n  user = $default_internal_user\n}}"
    );
    if p.lmtp {
        let _ = writeln!(
            w,
            "service lmtp {{\n  inet_listener lmtp {{\n    port = {}\n  }}\n  service_count = 0\n}}",
            ports::LMTP
        );
    }

    section(
        w,
        "Storage: rbox (mail in RADOS, Dovecot index files on the index volume)",
    );
    let _ = writeln!(w, "mail_plugins = $mail_plugins storage_rbox");
    let _ = writeln!(w, "mail_location = rbox:{}/%u", layout.index_dir);
    // A FETCH over many mails reads that many objects ahead, in parallel.
    let _ = writeln!(w, "mail_prefetch_count = 32");
    // librados needs more address space than Dovecot's default 256 MiB (thread stacks).
    let _ = writeln!(w, "default_vsz_limit = 0");
    // Dovecot clears its children's environment; librados finds ceph.conf only through this.
    let _ = writeln!(
        w,
        "import_environment = $import_environment CEPH_CONF={}",
        layout.ceph_conf
    );
    // Process reuse: a mail process keeps its one Ceph connection for the logins it
    // serves after the first, so a login does not pay for a new connection.
    for (svc, on) in [("imap", p.imap), ("pop3", p.pop3)] {
        if on {
            let _ = writeln!(w, "service {svc} {{\n  service_count = 0\n}}");
        }
    }
    let _ = writeln!(w, "plugin {{");
    let r = &cfg.rbox;
    let _ = writeln!(w, "  rbox_cluster_name = {}", r.cluster_name);
    let _ = writeln!(w, "  rados_user_name = {}", r.rados_user);
    let _ = writeln!(w, "  rbox_pool_name = {}", r.pool);
    let _ = writeln!(w, "  rbox_index_pool_name = {}", r.index_pool);
    let _ = writeln!(w, "  rbox_cfg_object_name = {}", r.cfg_object);
    let _ = writeln!(w, "}}");

    section(w, "TLS");
    if cfg.tls {
        let _ = writeln!(w, "ssl = required");
        let _ = writeln!(w, "ssl_cert = <{}", layout.tls_cert);
        let _ = writeln!(w, "ssl_key = <{}", layout.tls_key);
        let _ = writeln!(w, "ssl_min_protocol = TLSv1.2");
        let _ = writeln!(w, "ssl_prefer_server_ciphers = yes");
        let _ = writeln!(w, "disable_plaintext_auth = yes");
    } else {
        // No TLS Secret: TLS is terminated in front of Dovecot (or not at all); passwords
        // then travel as the client sent them.
        let _ = writeln!(w, "ssl = no");
        let _ = writeln!(w, "disable_plaintext_auth = no");
    }

    section(w, "Authentication");
    let _ = writeln!(w, "auth_mechanisms = plain login");
    let (driver, passdb_args, userdb_args) = match &cfg.auth {
        Auth::PasswdFile { file } => {
            let path = layout.auth_file(file);
            (
                "passwd-file",
                format!("scheme=CRYPT username_format=%u {path}"),
                format!("username_format=%u {path}"),
            )
        }
        Auth::Ldap { file } => ("ldap", layout.auth_file(file), layout.auth_file(file)),
        Auth::Sql { file } => ("sql", layout.auth_file(file), layout.auth_file(file)),
    };
    let _ = writeln!(
        w,
        "passdb {{\n  driver = {driver}\n  args = {passdb_args}\n}}"
    );
    // The user database answers "does this user exist" (LMTP refuses unknown recipients) and
    // may add fields (quota, …); uid, gid and home are always the fleet's: every process runs
    // as the one non-root user.
    let _ = writeln!(
        w,
        "userdb {{\n  driver = {driver}\n  args = {userdb_args}\n  override_fields = uid={} gid={} home={}/%u\n}}",
        cfg.mail_uid, cfg.mail_gid, layout.index_dir
    );

    section(w, "Health check (probes) and metrics");
    let _ = writeln!(
        w,
        "service health-check {{\n  executable = script -p {}\n  inet_listener health-check {{\n    port = {}\n  }}\n}}",
        layout.health_script(),
        ports::HEALTH
    );
    let _ = writeln!(
        w,
        "service stats {{\n  inet_listener http {{\n    port = {}\n  }}\n}}",
        ports::METRICS
    );
    for (name, filter, group_by) in METRICS {
        let _ = write!(w, "metric {name} {{\n  filter = {filter}\n");
        if !group_by.is_empty() {
            let _ = writeln!(w, "  group_by = {group_by}");
        }
        let _ = writeln!(w, "}}");
    }

    section(w, "Logging to stderr (the container log)");
    for key in ["log_path", "info_log_path", "debug_log_path"] {
        let _ = writeln!(w, "{key} = /dev/stderr");
    }
    let _ = writeln!(w, "log_timestamp = \"%Y-%m-%dT%H:%M:%S \"");

    if let Some(extra) = cfg.extra_config.as_deref().filter(|s| !s.trim().is_empty()) {
        section(
            w,
            "spec.extraConfig (appended last, so it overrides the settings above)",
        );
        out.push_str(extra.trim_end());
        out.push('\n');
    }
    out
}

fn section(w: &mut String, title: &str) {
    let _ = writeln!(w, "\n# --- {title}");
}

fn listener_pair(plain: &str, plain_port: u16, tls: &str, tls_port: u16, with_tls: bool) -> String {
    let tls_port = if with_tls { tls_port } else { 0 };
    format!(
        "  inet_listener {plain} {{\n    port = {plain_port}\n  }}\n  inet_listener {tls} {{\n    port = {tls_port}\n  }}\n"
    )
}

/// `sha256:<hex>` of everything a pod reads from the ConfigMap: a change in any file rolls
/// the pods, nothing else does.
pub fn config_hash<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut h = Sha256::new();
    let mut files: Vec<(&str, &str)> = files.into_iter().collect();
    files.sort();
    for (name, content) in files {
        // Length-prefixed, so ("a","bc") and ("ab","c") differ.
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((content.len() as u64).to_le_bytes());
        h.update(content.as_bytes());
    }
    let digest = h.finalize();
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}
