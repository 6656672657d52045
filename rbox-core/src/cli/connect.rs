//! From command-line options to a cluster, a store and a namespace.

use std::sync::Arc;
use std::time::Duration;

use super::args::{ConnArgs, TargetArgs};
use super::error::{CliError, CliResult};
use crate::backend::Backend;
use crate::backend::librados::LibradosBackend;
use crate::rados::{Cluster, ConnectOptions};
use crate::store::{Mailspace, Store, StoreConfig};

/// librados options for these command-line options.
pub fn connect_options(c: &ConnArgs) -> CliResult<ConnectOptions> {
    let user = c.entity().map_err(CliError::Usage)?;
    if c.connect_timeout == 0 || c.op_timeout == 0 {
        return Err(CliError::Usage("timeouts must be at least 1 second".into()));
    }
    Ok(ConnectOptions {
        cluster_name: c.cluster.clone(),
        user,
        conf_path: c.conf.clone(),
        mon_host: c.mon_host.clone(),
        keyring: c.keyring.clone(),
        key: None,
        connect_timeout: Duration::from_secs(c.connect_timeout),
        op_timeout: Duration::from_secs(c.op_timeout),
        extra_conf: Vec::new(),
    })
}

pub async fn backend(c: &ConnArgs) -> CliResult<Arc<dyn Backend>> {
    let cluster = Cluster::connect(connect_options(c)?).await?;
    Ok(Arc::new(LibradosBackend::new(cluster)))
}

pub fn store_config(t: &TargetArgs) -> StoreConfig {
    let mut cfg = StoreConfig::new(t.pool.clone(), t.index_pool.clone());
    cfg.cfg_object = t.cfg_object.clone();
    // One command saves a mail or two: UIDs prefetched for later saves would only become
    // gaps when the process exits (bench turns prefetch back on, like a long-lived server).
    cfg.uid_prefetch = 0;
    cfg
}

/// Open the store (reads rbox_cfg; a malformed one is an error that names the object).
pub async fn open(backend: Arc<dyn Backend>, config: StoreConfig) -> CliResult<Store> {
    let object = config.cfg_object.clone();
    Store::open(backend, config).await.map_err(|e| match e {
        crate::StoreError::Cfg(c) => CliError::Other(format!(
            "{c} (object {object}); fix it with `rbox cfg create --force --yes-i-really-mean-it`"
        )),
        e => e.into(),
    })
}

/// Which namespace the options name, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Namespace(String),
    User(String),
}

pub fn target(t: &TargetArgs) -> Option<Target> {
    match (&t.namespace, &t.user) {
        (Some(n), _) => Some(Target::Namespace(n.clone())),
        (None, Some(u)) => Some(Target::User(u.clone())),
        (None, None) => None,
    }
}

/// Refuse a `-N`/`-u` that can never name a namespace, before connecting. (A user name is
/// checked again with the real `user_suffix` once rbox_cfg is read.)
pub fn check_target(t: &TargetArgs) -> CliResult<()> {
    use crate::format::namespace::{user_key, validate_namespace};
    match target(t) {
        Some(Target::Namespace(n)) => {
            validate_namespace(&n).map_err(|e| CliError::Usage(format!("namespace {n:?}: {e}")))
        }
        Some(Target::User(u)) => user_key(&u, "")
            .map(|_| ())
            .map_err(|e| CliError::Usage(format!("user {u:?}: {e}"))),
        None => Ok(()),
    }
}

/// The namespace a command works on: `-N` as is, `-u` through the user mapping.
pub async fn mailspace(store: &Store, t: &TargetArgs) -> CliResult<Mailspace> {
    match target(t) {
        Some(Target::Namespace(n)) => Ok(store.namespace(&n)?),
        Some(Target::User(u)) => Ok(store.user(&u).await?),
        None => Err(CliError::Usage(
            "this command needs a namespace: -N <namespace> or -u <user>".into(),
        )),
    }
}
