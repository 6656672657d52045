//! Reading and writing the `rbox_cfg` object (default namespace of the mail pool).

use super::Store;
use crate::backend::{Backend, BackendError, ObjectLocation, WriteOp};
use crate::error::{Result, StoreError};
use crate::format::cfg::RboxConfig;

fn loc(pool: &str, object: &str) -> ObjectLocation {
    ObjectLocation::new(pool, "", object)
}

/// Read and parse the config object. `None` if it does not exist.
pub async fn read_cfg(
    backend: &dyn Backend,
    pool: &str,
    object: &str,
) -> Result<Option<RboxConfig>> {
    match backend.read(&loc(pool, object), 0, None).await {
        Ok(r) => Ok(Some(RboxConfig::from_json(&r.data)?)),
        Err(BackendError::NotFound(_)) => {
            // A missing *pool* is an error the caller must see; a missing object is not.
            if backend.list_pools().await?.iter().any(|p| p == pool) {
                Ok(None)
            } else {
                Err(BackendError::NotFound(format!("pool {pool} does not exist")).into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Create the config object; `Exists` if it is already there.
pub async fn create_cfg(
    backend: &dyn Backend,
    pool: &str,
    object: &str,
    cfg: &RboxConfig,
) -> Result<()> {
    backend
        .write_op(
            &loc(pool, object),
            WriteOp::new().create(true).write_full(cfg.to_json()),
        )
        .await?;
    Ok(())
}

/// Overwrite the config object (to replace a malformed one).
pub async fn write_cfg(
    backend: &dyn Backend,
    pool: &str,
    object: &str,
    cfg: &RboxConfig,
) -> Result<()> {
    backend
        .write_op(&loc(pool, object), WriteOp::new().write_full(cfg.to_json()))
        .await?;
    Ok(())
}

/// Apply validated `key=value` updates to the existing object (all or nothing).
pub async fn update_cfg<S: AsRef<str>>(
    backend: &dyn Backend,
    pool: &str,
    object: &str,
    updates: &[S],
) -> Result<RboxConfig> {
    let current = read_cfg(backend, pool, object).await?.ok_or_else(|| {
        StoreError::Invalid(format!(
            "{object} does not exist in pool {pool}; create it first"
        ))
    })?;
    let next = current.apply_updates(updates)?;
    backend
        .write_op(
            &loc(pool, object),
            WriteOp::new().assert_exists().write_full(next.to_json()),
        )
        .await?;
    Ok(next)
}

impl Store {
    /// Create this store's config object with the given (or default) settings.
    pub async fn create_cfg(&self, cfg: Option<&RboxConfig>) -> Result<RboxConfig> {
        let cfg = cfg.cloned().unwrap_or_default();
        create_cfg(
            self.inner.backend.as_ref(),
            &self.inner.config.mail_pool,
            &self.inner.config.cfg_object,
            &cfg,
        )
        .await?;
        Ok(cfg)
    }

    /// Update this store's config object. The store keeps using the config it was opened
    /// with; open a new one to pick the change up.
    pub async fn update_cfg<S: AsRef<str>>(&self, updates: &[S]) -> Result<RboxConfig> {
        update_cfg(
            self.inner.backend.as_ref(),
            &self.inner.config.mail_pool,
            &self.inner.config.cfg_object,
            updates,
        )
        .await
    }

    /// Overwrite this store's config object (replace a malformed one, or converge on a
    /// desired config).
    pub async fn write_cfg(&self, cfg: &RboxConfig) -> Result<()> {
        write_cfg(
            self.inner.backend.as_ref(),
            &self.inner.config.mail_pool,
            &self.inner.config.cfg_object,
            cfg,
        )
        .await
    }

    /// Read the config object as it is now.
    pub async fn read_cfg(&self) -> Result<Option<RboxConfig>> {
        read_cfg(
            self.inner.backend.as_ref(),
            &self.inner.config.mail_pool,
            &self.inner.config.cfg_object,
        )
        .await
    }
}
