//! One tokio runtime and one Ceph connection per mail process, opened on first use and
//! reused by every session and user the process serves (Dovecot's process reuse).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rbox_core::backend::BackendError;
use rbox_core::backend::librados::LibradosBackend;
use rbox_core::error::StoreError;
use rbox_core::format::guid::Guid128;
use rbox_core::rados::Cluster;
use rbox_core::store::{ExternalMirror, Mailspace, Store};

use crate::settings::PluginSettings;

/// A user's handle: the user's namespace in the shared store, the process's queue of
/// omap mirror writes for that store, and the reads started ahead of use.
#[derive(Debug)]
pub struct User {
    pub space: Mailspace,
    pub mirror: ExternalMirror,
    pub prefetch: Prefetch,
}

type PendingRead = tokio::task::JoinHandle<Result<Vec<u8>, StoreError>>;

/// Bodies being read ahead (Dovecot's `mail_prefetch_count`), by object id. Bounded: a
/// prefetch whose mail is never read (a closed mail, an aborted FETCH) must not pin memory,
/// so when the table is full it is emptied (prefetching is only an optimisation).
#[derive(Debug, Default)]
pub struct Prefetch {
    pending: Mutex<HashMap<Guid128, PendingRead>>,
}

/// At most this many reads ahead per user session.
const PREFETCH_MAX: usize = 256;

impl Prefetch {
    /// Start reading `oid` in the background unless it is already under way.
    pub fn start(&self, space: &Mailspace, oid: Guid128) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.contains_key(&oid) {
            return;
        }
        if pending.len() >= PREFETCH_MAX {
            for (_, h) in pending.drain() {
                h.abort();
            }
        }
        let space = space.clone();
        let h = runtime().spawn(async move { space.read_body(&oid).await });
        pending.insert(oid, h);
    }

    /// The body of `oid`: the prefetched read if one was started, else a read now.
    pub async fn read(&self, space: &Mailspace, oid: &Guid128) -> Result<Vec<u8>, StoreError> {
        let started = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(oid);
        if let Some(h) = started
            && let Ok(r) = h.await
        {
            return r;
        }
        space.read_body(oid).await
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        let pending = self.pending.get_mut().unwrap_or_else(|p| p.into_inner());
        for (_, h) in pending.drain() {
            h.abort();
        }
    }
}

/// Unapplied mirror ops a process may hold before a commit waits for the queue.
const MIRROR_BACKLOG: usize = 4096;

/// How long process exit waits for queued mirror writes (then fsck has the rest).
const EXIT_FLUSH: Duration = Duration::from_secs(15);

static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

fn runtime() -> &'static tokio::runtime::Runtime {
    RT.get_or_init(|| {
        log_to_stderr();
        // Two workers: Ceph completions and the batched writes of a commit run there
        // while Dovecot's single thread waits in `block_on`.
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rbox-rt")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the rbox runtime: {e}"))
    })
}

/// Warnings of rbox-core (background mirror writes among them) go to stderr, which Dovecot
/// collects into its log: writing to fd 2 is safe from any thread, unlike Dovecot's
/// own logging. `RBOX_LOG` (an env filter, e.g. `rbox_core=debug`) overrides the level.
fn log_to_stderr() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RBOX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}

/// Run a future to completion from Dovecot's thread.
pub fn block_on<F: Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

type Stores = HashMap<PluginSettings, (Store, ExternalMirror)>;

fn stores() -> &'static Mutex<Stores> {
    static STORES: OnceLock<Mutex<Stores>> = OnceLock::new();
    STORES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The process's store for these settings, with its mirror queue: connected once, then
/// shared. A failed connect is not remembered, so the next command tries again.
pub fn store(settings: &PluginSettings) -> Result<(Store, ExternalMirror), StoreError> {
    if let Some(s) = stores()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(settings)
    {
        return Ok(s.clone());
    }
    let store = block_on(open_store(settings))?;
    let entry = (store, ExternalMirror::new(MIRROR_BACKLOG));
    stores()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(settings.clone(), entry.clone());
    Ok(entry)
}

/// At process exit: wait (bounded) for the queued mirror writes of every store.
pub fn flush_mirrors() {
    let Some(rt) = RT.get() else {
        return; // this process never used Ceph
    };
    let mirrors: Vec<ExternalMirror> = stores()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .map(|(_, m)| m.clone())
        .collect();
    let left = rt.block_on(async {
        let all = futures::future::join_all(mirrors.iter().map(|m| m.flush()));
        let _ = tokio::time::timeout(EXIT_FLUSH, all).await;
        mirrors.iter().map(|m| m.pending()).sum::<usize>()
    });
    if left > 0 {
        tracing::warn!(
            left,
            "exiting with omap mirror writes unapplied; rbox fsck --repair re-creates them"
        );
    }
}

async fn open_store(settings: &PluginSettings) -> Result<Store, StoreError> {
    let cluster = Cluster::connect(settings.connect_options()).await?;
    let backend: Arc<dyn rbox_core::backend::Backend> = Arc::new(LibradosBackend::new(cluster));
    let config = settings.store_config();
    let store = Store::open(backend.clone(), config.clone()).await?;
    if store.cfg_present() {
        return Ok(store);
    }
    // Like librmb: the first connect writes the default rbox_cfg.
    match store.create_cfg(None).await {
        Ok(cfg) => Ok(Store::with_cfg(backend, config, cfg)),
        Err(StoreError::Backend(BackendError::Exists(_))) => Store::open(backend, config).await,
        Err(e) => Err(e),
    }
}

pub fn open_user(settings: &PluginSettings, username: &str) -> Result<User, StoreError> {
    let (store, mirror) = store(settings)?;
    let space = block_on(store.user(username))?;
    Ok(User {
        space,
        mirror,
        prefetch: Prefetch::default(),
    })
}
