//! One tokio runtime and one Ceph connection per mail process, opened on first use and
//! reused by every session and user the process serves (Dovecot's process reuse).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use rbox_core::backend::BackendError;
use rbox_core::backend::librados::LibradosBackend;
use rbox_core::error::StoreError;
use rbox_core::rados::Cluster;
use rbox_core::store::{Mailspace, Store};

use crate::settings::PluginSettings;

/// A user's handle: the shared store and the user's namespace in it.
#[derive(Debug)]
pub struct User {
    pub space: Mailspace,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
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

/// Run a future to completion from Dovecot's thread.
pub fn block_on<F: Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

fn stores() -> &'static Mutex<HashMap<PluginSettings, Store>> {
    static STORES: OnceLock<Mutex<HashMap<PluginSettings, Store>>> = OnceLock::new();
    STORES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The process's store for these settings: connected once, then shared. A failed
/// connect is not remembered, so the next command tries again.
pub fn store(settings: &PluginSettings) -> Result<Store, StoreError> {
    if let Some(s) = stores()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(settings)
    {
        return Ok(s.clone());
    }
    let store = block_on(open_store(settings))?;
    stores()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(settings.clone(), store.clone());
    Ok(store)
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
    let store = store(settings)?;
    let space = block_on(store.user(username))?;
    Ok(User { space })
}
