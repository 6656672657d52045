//! Checking a generated configuration with Dovecot's own parser, `doveconf -n -c FILE`.
//!
//! doveconf opens the files the configuration references (`ssl_cert = <file`) and requires the
//! internal users to exist, so the check renders the *same* [`FleetConfig`] with
//! [`Layout::rooted`] under a temporary directory holding placeholder files, and with the
//! checking host's unprivileged user. Everything else — every setting, every block, the
//! user's snippet — is byte for byte what the pods get. Messages are reported with the pod's
//! paths (the temporary prefix is removed), so they point at the file the user can read.

use std::path::Path;
use std::time::Duration;

use super::config::{FleetConfig, Layout, render};
use super::files;

/// How long one doveconf run may take (it normally takes a few milliseconds).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The doveconf binary: `$RBOX_DOVECONF` or `doveconf` on `PATH`.
pub fn binary() -> String {
    std::env::var("RBOX_DOVECONF").unwrap_or_else(|_| "doveconf".to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// doveconf refused the configuration; the message is doveconf's own.
    #[error("doveconf refused the configuration: {0}")]
    Refused(String),
    /// doveconf is not installed where the operator runs.
    #[error("doveconf is not available ({binary}: {source})")]
    Unavailable {
        binary: String,
        source: std::io::Error,
    },
    #[error("doveconf did not finish within {0:?}")]
    Timeout(Duration),
    #[error("preparing the doveconf check: {0}")]
    Io(#[from] std::io::Error),
}

impl crate::runtime::ErrorCategory for CheckError {
    fn category(&self) -> &'static str {
        match self {
            CheckError::Refused(_) => "config_refused",
            CheckError::Unavailable { .. } => "doveconf_unavailable",
            CheckError::Timeout(_) => "doveconf_timeout",
            CheckError::Io(_) => "doveconf_io",
        }
    }
}

/// Check `cfg` with doveconf. `Ok` means doveconf accepted it.
pub async fn check(cfg: &FleetConfig) -> Result<(), CheckError> {
    let dir = tempfile::Builder::new()
        .prefix("rbox-doveconf-")
        .tempdir()?;
    let root = dir.path().to_string_lossy().into_owned();
    let (user, group) = host_unprivileged_user();
    let layout = Layout::rooted(&root, user, group);
    let conf = layout.conf_file();
    materialize(cfg, &layout).await?;
    let result = run_doveconf(&conf).await;
    // Report the pod's paths, not the temporary ones.
    result.map_err(|e| match e {
        CheckError::Refused(msg) => CheckError::Refused(msg.replace(&root, "")),
        other => other,
    })
}

/// Run `doveconf -n -c conf` and turn a refusal into doveconf's message.
pub async fn run_doveconf(conf: &str) -> Result<(), CheckError> {
    run_doveconf_with(&binary(), conf).await
}

/// [`run_doveconf`] with an explicit doveconf binary.
pub async fn run_doveconf_with(bin: &str, conf: &str) -> Result<(), CheckError> {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("-n")
        .arg("-c")
        .arg(conf)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|source| CheckError::Unavailable {
        binary: bin.to_string(),
        source,
    })?;
    let out = match tokio::time::timeout(TIMEOUT, child.wait_with_output()).await {
        Ok(r) => r?,
        Err(_) => return Err(CheckError::Timeout(TIMEOUT)),
    };
    if out.status.success() {
        return Ok(());
    }
    Err(CheckError::Refused(message(&String::from_utf8_lossy(
        &out.stderr,
    ))))
}

/// The useful part of doveconf's stderr: its Fatal/Error lines without the `doveconf: `
/// prefix, de-duplicated (doveconf often prints the same error as Error and as Fatal).
fn message(stderr: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let line = line.trim().trim_start_matches("doveconf: ");
        if line.is_empty() {
            continue;
        }
        let core = line
            .trim_start_matches("Fatal: ")
            .trim_start_matches("Error: ")
            .to_string();
        if let Some(l) = lines.iter_mut().find(|l| core.ends_with(l.as_str())) {
            *l = core; // the longer line says the same with more context
        } else if !lines.iter().any(|l| l.ends_with(&core)) {
            lines.push(core);
        }
    }
    if lines.is_empty() {
        "doveconf failed without a message".into()
    } else {
        lines.join("; ")
    }
}

/// Write the config, its scripts and an empty placeholder for every file it references, at the
/// paths of `layout` (a [`Layout::rooted`] one): what doveconf — or a test Dovecot — needs.
pub async fn materialize(cfg: &FleetConfig, layout: &Layout) -> Result<(), std::io::Error> {
    for dir in [
        &layout.config_dir,
        &layout.base_dir,
        &layout.state_dir,
        &layout.index_dir,
        &layout.auth_dir,
    ] {
        tokio::fs::create_dir_all(dir).await?;
    }
    let placeholders = [
        layout.ceph_conf.clone(),
        layout.tls_cert.clone(),
        layout.tls_key.clone(),
        layout.auth_file(cfg.auth.file()),
    ];
    for file in placeholders {
        if let Some(parent) = Path::new(&file).parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(&file, b"").await?;
    }
    tokio::fs::write(layout.health_script(), files::HEALTH_CHECK_SCRIPT).await?;
    tokio::fs::write(layout.drain_script(), files::drain_script(layout)).await?;
    // Executable, as the pod's ConfigMap volume makes them (mode 0555).
    for script in [layout.health_script(), layout.drain_script()] {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).await?;
    }
    tokio::fs::write(layout.conf_file(), render(cfg, layout)).await?;
    Ok(())
}

/// An unprivileged user and group that exist on this host (Debian: nobody/nogroup).
pub fn host_unprivileged_user() -> (&'static str, &'static str) {
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    if group.lines().any(|l| l.starts_with("nogroup:")) {
        ("nobody", "nogroup")
    } else {
        ("nobody", "nobody")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keeps_fatal_once() {
        let stderr = "doveconf: Error: default_login_user doesn't exist: vmail\n\
                      doveconf: Fatal: Error in configuration file d.conf: default_login_user doesn't exist: vmail\n";
        assert_eq!(
            message(stderr),
            "Error in configuration file d.conf: default_login_user doesn't exist: vmail"
        );
        assert_eq!(message(""), "doveconf failed without a message");
    }
}
