//! The generated configuration runs a real Dovecot 2.3 (Debian's `dovecot-core`,
//! `dovecot-imapd`, `dovecot-lmtpd`) as a non-root user: the master starts with the pod's
//! settings (only the paths moved under a temporary directory, as in the doveconf check), the
//! readiness probe's `GET /ping` and Dovecot's own `PING` get their answers from the
//! health-check script, IMAP greets and LMTP accepts on their pod ports, and the OpenMetrics listener
//! serves the declared metrics. The rbox plugin is not in Debian, so no mail process can run
//! here; everything up to the login does.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rbox_operator::dovecot::config::{FleetConfig, Layout, ports};
use rbox_operator::dovecot::doveconf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Send `request`, read until the peer closes or `until` appears, within 5 s.
async fn exchange(port: u16, request: &[u8], until: &str) -> String {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        if !request.is_empty() {
            s.write_all(request).await?;
        }
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if !until.is_empty() && String::from_utf8_lossy(&buf).contains(until) {
                break;
            }
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(5), fut).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => format!("<io error: {e}>"),
        Err(_) => "<timeout>".into(),
    }
}

fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn generated_config_runs_dovecot_as_non_root_with_probes_and_metrics() {
    assert!(
        std::path::Path::new("/usr/lib/dovecot/imap").exists()
            && std::path::Path::new("/usr/lib/dovecot/lmtp").exists(),
        "this test needs Debian's dovecot-core, dovecot-imapd and dovecot-lmtpd (make test installs them)"
    );
    // As root (the project machines), drop to nobody like the pod's non-root user; otherwise
    // run as ourselves.
    let euid = unsafe_free_euid();
    let (user, group, uid) = if euid == 0 {
        let (u, g) = doveconf::host_unprivileged_user();
        (u.to_string(), g.to_string(), 65534)
    } else {
        (run_text("id", &["-un"]), run_text("id", &["-gn"]), euid)
    };
    let gid: u32 = if euid == 0 {
        65534
    } else {
        run_text("id", &["-g"]).parse().expect("gid")
    };

    let dir = tempfile::Builder::new()
        .prefix("rbox-dovecot-run-")
        .tempdir()
        .expect("tempdir");
    let root = dir.path().to_string_lossy().into_owned();
    let layout = Layout::rooted(&root, &user, &group);
    // The pod's uid is the mail uid; here that is the user Dovecot runs as.
    let cfg = FleetConfig {
        fleet: "test/runtime".into(),
        mail_uid: uid,
        mail_gid: gid,
        ..FleetConfig::example()
    };
    doveconf::materialize(&cfg, &layout)
        .await
        .expect("write config");
    std::fs::write(layout.auth_file("passwd"), "alice:{PLAIN}secret::::::\n").unwrap();
    // The unprivileged user must reach its files (tempdir is 0700 root).
    for entry in walk(dir.path()) {
        let mode = if entry.is_dir() { 0o777 } else { 0o755 };
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    let conf = layout.conf_file();
    let mut cmd = if euid == 0 {
        let mut c = tokio::process::Command::new("setpriv");
        c.args([
            "--reuid",
            &uid.to_string(),
            "--regid",
            &gid.to_string(),
            "--clear-groups",
            "dovecot",
            "-F",
            "-c",
            &conf,
        ]);
        c
    } else {
        let mut c = tokio::process::Command::new("dovecot");
        c.args(["-F", "-c", &conf]);
        c
    };
    let log_path = dir.path().join("dovecot.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start dovecot");
    let pid = child.id().expect("pid");
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // The readiness probe: HTTP GET /ping on the health port.
    let deadline = Instant::now() + Duration::from_secs(15);
    let ping = loop {
        let r = exchange(
            ports::HEALTH,
            b"GET /ping HTTP/1.1\r\nHost: 10.0.0.1:10080\r\nUser-Agent: kube-probe/1.37\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            "",
        )
        .await;
        if r.starts_with("HTTP/") || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        ping.starts_with("HTTP/1.0 200 OK\r\n") && ping.ends_with("\r\n\r\nPONG\n"),
        "GET /ping answered {ping:?}; dovecot log:\n{}",
        log_text()
    );
    let other = exchange(ports::HEALTH, b"GET /other HTTP/1.1\r\n\r\n", "").await;
    assert!(other.starts_with("HTTP/1.0 404"), "{other:?}");
    // Dovecot's own health-check protocol.
    assert_eq!(exchange(ports::HEALTH, b"PING\n", "PONG").await, "PONG\n");

    // The master and its children run as the unprivileged user.
    let master = std::fs::read_to_string(format!("{}/master.pid", layout.base_dir))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .unwrap_or(pid);
    assert_eq!(uid_of(master), Some(uid), "master uid");
    assert_ne!(uid, 0);

    // IMAP and LMTP greet on their pod ports.
    let imap = exchange(ports::IMAP, b"", "\r\n").await;
    assert!(imap.starts_with("* OK"), "IMAP greeting {imap:?}");
    // The LMTP listener accepts; the lmtp process loads the mail plugins before it greets, so
    // without the rbox plugin it stops right there (in the pod's image it greets with 220).
    let lmtp = exchange(ports::LMTP, b"", "\r\n").await;
    assert!(!lmtp.starts_with("<"), "LMTP port: {lmtp:?}");

    // A login authenticates against the passwd-file (the mail process then stops: no rbox
    // plugin in Debian), and the auth metric counts it.
    let login = exchange(ports::IMAP, b"a1 LOGIN alice secret\r\n", "\r\na1 ").await;
    assert!(login.contains("\r\na1 OK Logged in"), "{login:?}");
    let bad = exchange(ports::IMAP, b"a1 LOGIN alice wrong\r\n", "a1 NO").await;
    assert!(bad.contains("a1 NO"), "{bad:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = exchange(
        ports::METRICS,
        b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n",
        "",
    )
    .await;
    assert!(
        metrics.starts_with("HTTP/1.1 200") || metrics.starts_with("HTTP/1.0 200"),
        "{metrics:?}"
    );
    for sample in [
        "dovecot_auth_success_total 1\n",
        "dovecot_auth_failure_total 1\n",
    ] {
        assert!(
            metrics.contains(sample),
            "/metrics lacks {sample:?}:\n{metrics}"
        );
    }
    // Every metric block of the generated config is live.
    let generated = std::fs::read_to_string(&conf).unwrap();
    let declared: Vec<&str> = generated
        .lines()
        .filter_map(|l| l.strip_prefix("metric ")?.strip_suffix(" {"))
        .collect();
    assert!(declared.len() >= 5, "{declared:?}");
    for name in declared {
        assert!(
            metrics.contains(&format!("# TYPE dovecot_{name} counter")),
            "/metrics lacks metric {name}:\n{metrics}\ndovecot log:\n{}",
            log_text()
        );
    }
    // The plugin is what fails, and it fails where the image must provide it.
    assert!(
        log_text().contains("storage_rbox"),
        "expected the missing rbox plugin in the log:\n{}",
        log_text()
    );

    // The drain script is valid shell.
    let sh = std::process::Command::new("sh")
        .args(["-n", &layout.drain_script()])
        .status()
        .unwrap();
    assert!(sh.success());

    // SIGTERM (what Kubernetes sends after the preStop hook) stops it.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &master.to_string()])
        .status();
    let stopped = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    assert!(stopped.is_ok(), "dovecot did not stop on SIGTERM");
}

fn run_text(cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .expect(cmd);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn unsafe_free_euid() -> u32 {
    run_text("id", &["-u"]).parse().expect("uid")
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
