//! Golden files of the generated configuration, each option's effect, and the real doveconf
//! (Debian's `dovecot-core`) on every golden file. `UPDATE_GOLDEN=1` rewrites the golden files.

use super::config::{Auth, FleetConfig, Layout, Protocols, Rbox, config_hash, render};
use super::doveconf::{CheckError, check};
use super::files;

fn base() -> FleetConfig {
    FleetConfig::example()
}

/// The fixtures with golden files: name → config.
fn fixtures() -> Vec<(&'static str, FleetConfig)> {
    let minimal = base();
    let full = FleetConfig {
        fleet: "prod/dovecot".into(),
        protocols: Protocols {
            imap: true,
            pop3: true,
            lmtp: true,
            submission: true,
        },
        tls: true,
        auth: Auth::Ldap {
            file: "dovecot-ldap.conf.ext".into(),
        },
        mail_uid: 2000,
        mail_gid: 3000,
        extra_config: Some(
            "submission_relay_host = smtp.prod.svc\nmail_max_userip_connections = 50\n\
             protocol imap {\n  imap_idle_notify_interval = 5 mins\n}\n"
                .into(),
        ),
        ..base()
    };
    let sql_pop3 = FleetConfig {
        fleet: "tenant-b/pop".into(),
        rbox: Rbox {
            pool: "b-data".into(),
            index_pool: "b-index".into(),
            rados_user: "client.b".into(),
            cluster_name: "ceph".into(),
            cfg_object: "rbox_cfg".into(),
        },
        protocols: Protocols {
            imap: false,
            pop3: true,
            lmtp: false,
            submission: false,
        },
        auth: Auth::Sql {
            file: "dovecot-sql.conf.ext".into(),
        },
        ..base()
    };
    vec![("minimal", minimal), ("full", full), ("sql-pop3", sql_pop3)]
}

fn golden_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/dovecot/testdata")
        .join(format!("{name}.conf"))
}

#[test]
fn golden_files_match() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (name, cfg) in fixtures() {
        let got = render(&cfg, &Layout::pod());
        let path = golden_path(name);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
        if got != want {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "generated config differs from golden files {stale:?}; review and rerun with UPDATE_GOLDEN=1"
    );
}

/// The configuration doveconf sees is the golden file with only the layout moved: the check
/// is about the file the pods get, not a look-alike.
fn golden_rooted(golden: &str, root: &str) -> String {
    let mut s = golden.to_string();
    for prefix in [
        "/etc/dovecot",
        "/etc/dovecot-tls",
        "/etc/dovecot-auth",
        "/run/dovecot",
        "/var/lib/dovecot",
        "/srv/dovecot-index",
        "/etc/ceph",
    ] {
        s = s.replace(&format!("{prefix}/"), &format!("{root}{prefix}/"));
        s = s.replace(&format!("{prefix}\n"), &format!("{root}{prefix}\n"));
    }
    s.replace("_user = vmail\n", "_user = nobody\n")
        .replace("_group = vmail\n", "_group = nogroup\n")
}

#[tokio::test]
async fn every_golden_file_passes_doveconf() {
    for (name, cfg) in fixtures() {
        let golden = std::fs::read_to_string(golden_path(name)).unwrap();
        let rooted = render(&cfg, &Layout::rooted("/tmp/x", "nobody", "nogroup"));
        assert_eq!(
            rooted,
            golden_rooted(&golden, "/tmp/x"),
            "{name}: checked config is not the golden file"
        );
        if let Err(e) = check(&cfg).await {
            panic!("{name}: doveconf refused the golden config: {e}");
        }
    }
}

#[tokio::test]
async fn broken_snippet_is_refused_with_doveconfs_message() {
    let cfg = FleetConfig {
        extra_config: Some("mail_location = maildir:~/Maildir\nbogus_setting = 1\n".into()),
        ..base()
    };
    match check(&cfg).await {
        Err(CheckError::Refused(msg)) => {
            assert!(msg.contains("Unknown setting: bogus_setting"), "{msg}");
            // Reported with the pod's path, not the temporary directory.
            assert!(msg.contains("/etc/dovecot/dovecot.conf line"), "{msg}");
            assert!(!msg.contains("rbox-doveconf-"), "{msg}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let unbalanced = FleetConfig {
        extra_config: Some("protocol imap {\n".into()),
        ..base()
    };
    assert!(matches!(
        check(&unbalanced).await,
        Err(CheckError::Refused(_))
    ));
}

#[tokio::test]
async fn missing_doveconf_is_reported_as_unavailable() {
    let err = super::doveconf::run_doveconf_with("/nonexistent/doveconf", "/dev/null").await;
    assert!(
        matches!(err, Err(CheckError::Unavailable { .. })),
        "{err:?}"
    );
}

fn conf(cfg: &FleetConfig) -> String {
    render(cfg, &Layout::pod())
}

fn has_line(conf: &str, line: &str) -> bool {
    conf.lines().any(|l| l == line)
}

#[test]
fn rbox_plugin_settings_come_from_the_pool() {
    let c = conf(&base());
    for line in [
        "mail_plugins = $mail_plugins storage_rbox",
        "mail_location = rbox:/srv/dovecot-index/%u",
        "  rbox_pool_name = mail-data",
        "  rbox_index_pool_name = mail-index",
        "  rados_user_name = client.dovecot-mail",
        "  rbox_cluster_name = ceph",
        "  rbox_cfg_object_name = rbox_cfg",
        "import_environment = $import_environment CEPH_CONF=/etc/ceph/ceph.conf",
        "default_vsz_limit = 0",
    ] {
        assert!(has_line(&c, line), "missing {line:?} in\n{c}");
    }
}

#[test]
fn protocols_select_listeners() {
    let c = conf(&base());
    assert!(has_line(&c, "protocols = imap lmtp"));
    assert!(c.contains("inet_listener imap {\n    port = 10143"));
    assert!(c.contains("inet_listener lmtp {\n    port = 10024"));
    assert!(!c.contains("inet_listener pop3 "));
    assert!(!c.contains("inet_listener submission "));
    let all = FleetConfig {
        protocols: Protocols {
            imap: true,
            pop3: true,
            lmtp: true,
            submission: true,
        },
        ..base()
    };
    let c = conf(&all);
    assert!(has_line(&c, "protocols = imap pop3 lmtp submission"));
    assert!(c.contains("inet_listener pop3 {\n    port = 10110"));
    assert!(c.contains("inet_listener submission {\n    port = 10587"));
    let none = FleetConfig {
        protocols: Protocols::default(),
        ..base()
    };
    assert!(has_line(&conf(&none), "protocols = none"));
}

#[test]
fn tls_enables_ssl_and_implicit_tls_listeners() {
    let plain = conf(&base());
    assert!(has_line(&plain, "ssl = no"));
    assert!(has_line(&plain, "disable_plaintext_auth = no"));
    assert!(plain.contains("inet_listener imaps {\n    port = 0\n"));
    let tls = conf(&FleetConfig {
        tls: true,
        ..base()
    });
    assert!(has_line(&tls, "ssl = required"));
    assert!(has_line(&tls, "ssl_cert = </etc/dovecot-tls/tls.crt"));
    assert!(has_line(&tls, "ssl_key = </etc/dovecot-tls/tls.key"));
    assert!(has_line(&tls, "disable_plaintext_auth = yes"));
    assert!(tls.contains("inet_listener imaps {\n    port = 10993\n"));
}

#[test]
fn auth_backends() {
    let c = conf(&base());
    assert!(c.contains(
        "passdb {\n  driver = passwd-file\n  args = scheme=CRYPT username_format=%u /etc/dovecot-auth/passwd\n}"
    ));
    let c = conf(&FleetConfig {
        auth: Auth::Ldap {
            file: "ldap.conf".into(),
        },
        ..base()
    });
    assert!(c.contains("passdb {\n  driver = ldap\n  args = /etc/dovecot-auth/ldap.conf\n}"));
    let c = conf(&FleetConfig {
        auth: Auth::Sql {
            file: "sql.conf".into(),
        },
        ..base()
    });
    assert!(c.contains("passdb {\n  driver = sql\n  args = /etc/dovecot-auth/sql.conf\n}"));
    // Whatever the source, the user database pins uid, gid and home.
    assert!(c.contains("userdb {\n  driver = sql\n  args = /etc/dovecot-auth/sql.conf\n  override_fields = uid=5000 gid=5000 home=/srv/dovecot-index/%u\n}"));
    let c = conf(&base());
    assert!(c.contains("userdb {\n  driver = passwd-file\n  args = username_format=%u /etc/dovecot-auth/passwd\n  override_fields = uid=5000 gid=5000 home=/srv/dovecot-index/%u\n}"));
}

#[test]
fn mail_user_is_the_only_valid_uid_and_runs_everything() {
    let c = conf(&FleetConfig {
        mail_uid: 1234,
        mail_gid: 4321,
        ..base()
    });
    for line in [
        "mail_uid = 1234",
        "mail_gid = 4321",
        "first_valid_uid = 1234",
        "last_valid_uid = 1234",
        "first_valid_gid = 4321",
        "default_internal_user = vmail",
        "default_login_user = vmail",
    ] {
        assert!(has_line(&c, line), "missing {line:?}");
    }
    // Non-root: no chroot for login processes and anvil.
    assert!(c.contains("service imap-login {\n  chroot =\n"));
    assert!(c.contains("service anvil {\n  chroot =\n}"));
    let cfg = FleetConfig {
        mail_uid: 1234,
        mail_gid: 4321,
        ..base()
    };
    assert!(
        files::passwd(&cfg, &Layout::pod())
            .contains("vmail:x:1234:4321:Dovecot (rbox-operator):/srv/dovecot-index:")
    );
    assert!(files::group(&cfg).contains("vmail:x:4321:\n"));
}

#[test]
fn health_metrics_and_logging() {
    let c = conf(&base());
    assert!(c.contains(
        "service health-check {\n  executable = script -p /etc/dovecot/health-check.sh\n  inet_listener health-check {\n    port = 10080"
    ));
    assert!(c.contains("service stats {\n  inet_listener http {\n    port = 9900"));
    assert!(c.contains(
        "metric imap_command {\n  filter = event=imap_command_finished\n  group_by = cmd_name tagged_reply_state\n}"
    ));
    assert!(c.contains("metric auth_failure {"));
    assert!(has_line(&c, "log_path = /dev/stderr"));
    assert!(has_line(&c, "info_log_path = /dev/stderr"));
}

#[test]
fn extra_config_is_appended_last() {
    let c = conf(&FleetConfig {
        extra_config: Some("mail_max_userip_connections = 7\n\n\n".into()),
        ..base()
    });
    assert!(c.ends_with("mail_max_userip_connections = 7\n"), "{c}");
    let blank = conf(&FleetConfig {
        extra_config: Some("  \n".into()),
        ..base()
    });
    assert_eq!(blank, conf(&base()));
}

#[test]
fn hash_is_deterministic_and_changes_with_any_file() {
    let a = files::all(&base());
    let h = |v: &[(&str, String)]| config_hash(v.iter().map(|(k, c)| (*k, c.as_str())));
    assert_eq!(h(&a), h(&files::all(&base())));
    assert_eq!(h(&a).len(), 64);
    let b = files::all(&FleetConfig {
        mail_uid: 5001,
        ..base()
    });
    assert_ne!(h(&a), h(&b));
    let c = files::all(&FleetConfig {
        extra_config: Some("mail_debug = yes".into()),
        ..base()
    });
    assert_ne!(h(&a), h(&c));
    // Order of the files does not matter; their boundaries do.
    let mut rev = a.clone();
    rev.reverse();
    assert_eq!(h(&a), h(&rev));
    assert_ne!(config_hash([("a", "bc")]), config_hash([("ab", "c")]));
}

#[test]
fn render_is_pure() {
    for (_, cfg) in fixtures() {
        assert_eq!(conf(&cfg), conf(&cfg.clone()));
    }
}
