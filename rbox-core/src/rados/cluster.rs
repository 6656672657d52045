//! The cluster handle: one librados connection, shared by every task.

use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::ffi;
use super::{RadosError, RadosResult, cstring};

/// How to reach and authenticate to a cluster. Everything librados would otherwise find in
/// `/etc/ceph` can be given explicitly, so the operator never depends on host files.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Cluster name (`ceph`).
    pub cluster_name: String,
    /// Full cephx entity name, e.g. `client.admin`.
    pub user: String,
    /// A ceph.conf to read first (optional).
    pub conf_path: Option<PathBuf>,
    /// `mon_host` override, e.g. `[v2:127.0.0.1:3300,v1:127.0.0.1:6789]`.
    pub mon_host: Option<String>,
    /// Keyring file path.
    pub keyring: Option<PathBuf>,
    /// The base64 cephx key itself (never logged).
    pub key: Option<Secret>,
    /// Deadline for connecting (`client_mount_timeout`) and for each later call.
    pub connect_timeout: Duration,
    pub op_timeout: Duration,
    /// Extra `conf_set` pairs applied last.
    pub extra_conf: Vec<(String, String)>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            cluster_name: "ceph".into(),
            user: "client.admin".into(),
            conf_path: None,
            mon_host: None,
            keyring: None,
            key: None,
            connect_timeout: Duration::from_secs(20),
            op_timeout: Duration::from_secs(30),
            extra_conf: Vec::new(),
        }
    }
}

/// A string that never prints its content.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Owns the `rados_t`. Shut down exactly once, when the last [`Cluster`] clone and the last
/// [`super::Pool`] (which hold an `Arc` of this) are gone — so an io context can never
/// outlive its cluster.
pub(crate) struct ClusterHandle {
    pub(crate) raw: ffi::rados_t,
}

// SAFETY: librados cluster handles are thread-safe (every C API entry point locks internally);
// the handle is only freed in Drop, when no other reference exists.
unsafe impl Send for ClusterHandle {}
unsafe impl Sync for ClusterHandle {}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        // rados_shutdown waits for the client's in-flight work and can block for as long as a
        // monitor or OSD hangs. The last clone is often dropped on an async worker thread (a
        // connection replaced after a fault), where blocking would stall every other task, so
        // inside a tokio runtime it runs on the blocking pool; the runtime waits for blocking
        // tasks when it shuts down, so a process never exits in the middle of a shutdown
        // (exiting while another thread is inside librados crashes). A handle dropped while
        // the runtime itself shuts down (a cancelled task holding a pool) finds the pool
        // closed: tokio then drops the closure unrun, and the guard's Drop shuts down right
        // there instead of leaving a live client behind.
        let guard = Shutdown(Some(Raw(self.raw)));
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || drop(guard))),
            Err(_) => drop(guard),
        }
    }
}

struct Raw(ffi::rados_t);
// SAFETY: the handle is no longer reachable from anywhere else (it is being dropped).
unsafe impl Send for Raw {}

/// Shuts the client down when dropped, exactly once: wherever the drop happens.
struct Shutdown(Option<Raw>);

impl Drop for Shutdown {
    fn drop(&mut self) {
        if let Some(raw) = self.0.take() {
            // SAFETY: raw came from a successful rados_create2 and is shut down only here.
            unsafe { ffi::rados_shutdown(raw.0) };
            live_handles(-1);
        }
    }
}

static LIVE: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// Count cluster handles not yet shut down (created +1, shut down -1).
fn live_handles(delta: isize) {
    let mut n = LIVE.0.lock().unwrap_or_else(|p| p.into_inner());
    *n = n.saturating_add_signed(delta);
    LIVE.1.notify_all();
}

/// Wait until every cluster handle that was dropped has finished `rados_shutdown` (and no
/// live one is left), at most `timeout`. Call before a process exits; returns whether all
/// were shut down.
pub fn wait_for_shutdowns(timeout: Duration) -> bool {
    let n = LIVE.0.lock().unwrap_or_else(|p| p.into_inner());
    let (n, _) = LIVE
        .1
        .wait_timeout_while(n, timeout, |n| *n > 0)
        .unwrap_or_else(|p| p.into_inner());
    *n == 0
}

/// A connected cluster. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) handle: Arc<ClusterHandle>,
    pub(crate) op_timeout: Duration,
    user: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connect. Blocking librados work runs on tokio's blocking pool, bounded by
    /// `connect_timeout` (librados' own default would wait 300 s for an absent monitor).
    pub async fn connect(opts: ConnectOptions) -> RadosResult<Cluster> {
        let deadline = opts.connect_timeout + Duration::from_secs(2);
        let user = opts.user.clone();
        let op_timeout = opts.op_timeout;
        let task = tokio::task::spawn_blocking(move || Self::connect_blocking(&opts));
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok(Ok(handle))) => Ok(Cluster {
                handle: Arc::new(handle),
                op_timeout,
                user,
            }),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(join)) => Err(RadosError::Connection(format!(
                "connect task failed: {join}"
            ))),
            Err(_) => Err(RadosError::Timeout(format!(
                "connecting as {user} took longer than {deadline:?}"
            ))),
        }
    }

    fn connect_blocking(opts: &ConnectOptions) -> RadosResult<ClusterHandle> {
        let cluster_name = cstring(&opts.cluster_name)?;
        let user = cstring(&opts.user)?;
        let mut raw: ffi::rados_t = std::ptr::null_mut();
        // SAFETY: valid out-pointer and NUL-terminated strings.
        let rc = unsafe { ffi::rados_create2(&mut raw, cluster_name.as_ptr(), user.as_ptr(), 0) };
        if rc < 0 {
            return Err(RadosError::from_errno(rc, "rados_create2"));
        }
        // From here on, Drop shuts the handle down on every error path.
        let handle = ClusterHandle { raw };
        live_handles(1);
        if let Some(path) = &opts.conf_path {
            let p = cstring(&path.to_string_lossy())?;
            // SAFETY: handle is live; p is NUL-terminated.
            let rc = unsafe { ffi::rados_conf_read_file(handle.raw, p.as_ptr()) };
            if rc < 0 {
                return Err(RadosError::from_errno(
                    rc,
                    format!("reading {}", path.display()),
                ));
            }
        }
        let secs = |d: Duration| d.as_secs().max(1).to_string();
        let mut conf: Vec<(String, String)> = vec![
            ("client_mount_timeout".into(), secs(opts.connect_timeout)),
            ("rados_mon_op_timeout".into(), secs(opts.op_timeout)),
            ("rados_osd_op_timeout".into(), secs(opts.op_timeout)),
        ];
        if let Some(m) = &opts.mon_host {
            conf.push(("mon_host".into(), m.clone()));
        }
        if let Some(k) = &opts.keyring {
            conf.push(("keyring".into(), k.to_string_lossy().into_owned()));
        }
        conf.extend(opts.extra_conf.iter().cloned());
        for (k, v) in &conf {
            set_conf(&handle, k, v)?;
        }
        if let Some(key) = &opts.key {
            // Set separately so the value can never end up in an error message.
            set_conf(&handle, "key", &key.0)
                .map_err(|_| RadosError::Connection("invalid cephx key".into()))?;
        }
        // SAFETY: handle is live and configured.
        let rc = unsafe { ffi::rados_connect(handle.raw) };
        if rc < 0 {
            return Err(match -rc {
                libc::ETIMEDOUT => RadosError::Timeout(format!(
                    "no monitor answered within {:?} (is mon_host right and reachable?)",
                    opts.connect_timeout
                )),
                libc::EACCES | libc::EPERM => RadosError::PermissionDenied(format!(
                    "cephx authentication as {} was refused",
                    opts.user
                )),
                _ => RadosError::from_errno(rc, "rados_connect"),
            });
        }
        Ok(handle)
    }

    /// The cephx user this handle authenticated as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Per-call deadline used by every async method.
    pub fn op_timeout(&self) -> Duration {
        self.op_timeout
    }

    /// A configuration value as the client sees it (`rados_conf_get`).
    pub fn conf_get(&self, option: &str) -> RadosResult<String> {
        let opt = cstring(option)?;
        let mut buf = vec![0u8; 4096];
        // SAFETY: buf is writable for its length; librados NUL-terminates within it.
        let rc = unsafe {
            ffi::rados_conf_get(
                self.handle.raw,
                opt.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if rc < 0 {
            return Err(RadosError::from_errno(rc, format!("conf_get {option}")));
        }
        let s = CStr::from_bytes_until_nul(&buf).map_err(|_| RadosError::Other {
            errno: -libc::EINVAL,
            context: format!("conf_get {option}: value not NUL-terminated"),
        })?;
        Ok(s.to_string_lossy().into_owned())
    }

    /// The cluster's fsid.
    pub fn fsid(&self) -> RadosResult<String> {
        let mut buf = vec![0u8; 64];
        // SAFETY: buf is writable for its length.
        let rc =
            unsafe { ffi::rados_cluster_fsid(self.handle.raw, buf.as_mut_ptr().cast(), buf.len()) };
        if rc < 0 {
            return Err(RadosError::from_errno(rc, "cluster_fsid"));
        }
        buf.truncate(rc as usize);
        Ok(String::from_utf8_lossy(&buf)
            .trim_end_matches('\0')
            .to_string())
    }

    /// Names of all pools (from the client's OSD map, refreshed first).
    pub async fn list_pools(&self) -> RadosResult<Vec<String>> {
        let handle = self.handle.clone();
        self.blocking("pool_list", move || {
            // SAFETY: handle is live. A fresh map makes pools created by mon commands visible.
            unsafe { ffi::rados_wait_for_latest_osdmap(handle.raw) };
            let mut len = 4096usize;
            loop {
                let mut buf = vec![0u8; len];
                // SAFETY: buf is writable for len bytes.
                let rc = unsafe { ffi::rados_pool_list(handle.raw, buf.as_mut_ptr().cast(), len) };
                if rc < 0 {
                    return Err(RadosError::from_errno(rc, "pool_list"));
                }
                if rc as usize > len {
                    len = rc as usize;
                    continue;
                }
                buf.truncate(rc as usize);
                return Ok(buf
                    .split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect());
            }
        })
        .await
    }

    /// Refresh the client's OSD map (after a pool was created by a mon command).
    pub async fn wait_for_latest_osdmap(&self) -> RadosResult<()> {
        let handle = self.handle.clone();
        self.blocking("wait_for_latest_osdmap", move || {
            // SAFETY: handle is live.
            let rc = unsafe { ffi::rados_wait_for_latest_osdmap(handle.raw) };
            if rc < 0 {
                Err(RadosError::from_errno(rc, "wait_for_latest_osdmap"))
            } else {
                Ok(())
            }
        })
        .await
    }

    /// Run blocking librados work off the async runtime, bounded by the op timeout. On
    /// timeout the blocking thread finishes on its own (librados' own op timeouts end it).
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce() -> RadosResult<T> + Send + 'static,
    ) -> RadosResult<T> {
        let deadline = self.op_timeout + Duration::from_secs(1);
        match tokio::time::timeout(deadline, tokio::task::spawn_blocking(f)).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(RadosError::Other {
                errno: -libc::EIO,
                context: format!("{what}: {join}"),
            }),
            Err(_) => Err(RadosError::Timeout(format!(
                "{what} took longer than {deadline:?}"
            ))),
        }
    }
}

fn set_conf(handle: &ClusterHandle, key: &str, value: &str) -> RadosResult<()> {
    let k = cstring(key)?;
    let v = CString::new(value).map_err(|_| RadosError::Other {
        errno: -libc::EINVAL,
        context: format!("conf {key}: value contains NUL"),
    })?;
    // SAFETY: handle is live, strings NUL-terminated.
    let rc = unsafe { ffi::rados_conf_set(handle.raw, k.as_ptr(), v.as_ptr()) };
    if rc < 0 {
        Err(RadosError::from_errno(rc, format!("conf_set {key}")))
    } else {
        Ok(())
    }
}
