//! Users → namespaces, with librmb's optional user mapping (librmb-format §1.2).

use super::{Mailspace, Store};
use crate::backend::{BackendError, ObjectLocation, WriteOp};
use crate::error::{Result, StoreError};
use crate::format::guid::Guid128;
use crate::format::namespace::{decode_mapping, encode_mapping, user_key, validate_namespace};

impl Store {
    fn mapping_loc(&self, key: &str) -> ObjectLocation {
        ObjectLocation::new(
            self.inner.config.mail_pool.clone(),
            self.inner.cfg.user_ns.clone(),
            key,
        )
    }

    /// The lookup key of a user (`<user><suffix>`).
    pub fn user_key(&self, user: &str) -> Result<String> {
        Ok(user_key(user, &self.inner.cfg.user_suffix)?)
    }

    /// Read the mapping object for a key. `None` if it does not exist.
    async fn read_mapping(&self, key: &str) -> Result<Option<String>> {
        match self
            .inner
            .backend
            .read(&self.mapping_loc(key), 0, None)
            .await
        {
            Ok(r) if r.data.is_empty() => Ok(None),
            Ok(r) => Ok(Some(decode_mapping(&r.data)?)),
            Err(BackendError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Create a mapping object for `key` (exclusive). Returns the namespace that ended up
    /// stored: ours, or the one a concurrent creator wrote first.
    async fn create_mapping(&self, key: &str, ns: Option<&str>) -> Result<(String, bool)> {
        let ns = match ns {
            Some(n) => {
                validate_namespace(n)?;
                n.to_string()
            }
            None => Guid128::generate().to_hex(),
        };
        let op = WriteOp::new().create(true).write_full(encode_mapping(&ns));
        match self
            .inner
            .backend
            .write_op(&self.mapping_loc(key), op)
            .await
        {
            Ok(()) => Ok((ns, true)),
            Err(BackendError::Exists(_)) => match self.read_mapping(key).await? {
                Some(existing) => Ok((existing, false)),
                None => Err(StoreError::Invalid(format!(
                    "user mapping object {key} exists but is empty"
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The namespace a key resolves to (mapping applied when enabled). `who` is the name
    /// errors give: the user as the caller named them, not the object key.
    async fn resolve_key(&self, key: &str, who: &str, create: bool) -> Result<String> {
        if !self.inner.cfg.user_mapping {
            return Ok(key.to_string());
        }
        if let Some(ns) = self.read_mapping(key).await? {
            return Ok(ns);
        }
        if !create {
            return Err(StoreError::UserMappingMissing(who.to_string()));
        }
        Ok(self.create_mapping(key, None).await?.0)
    }

    /// A user's mail namespace. With user mapping, the mapping object must exist.
    pub async fn user(&self, user: &str) -> Result<Mailspace> {
        let key = self.user_key(user)?;
        let ns = self.resolve_key(&key, user, false).await?;
        self.namespace(&ns)
    }

    /// A user's mail namespace, creating the mapping object when mapping is on and it is
    /// missing (what the plugin does on first login).
    pub async fn user_or_create(&self, user: &str) -> Result<Mailspace> {
        let key = self.user_key(user)?;
        let ns = self.resolve_key(&key, user, true).await?;
        self.namespace(&ns)
    }

    /// The namespace of shared folders (`rbox_public_namespace`, mapped like a user key).
    pub async fn public(&self, create: bool) -> Result<Mailspace> {
        let key = self.inner.cfg.public_namespace.clone();
        let ns = self.resolve_key(&key, &key, create).await?;
        self.namespace(&ns)
    }

    /// The mapped namespace of a user, if mapping is on and the object exists.
    pub async fn lookup_user_mapping(&self, user: &str) -> Result<Option<String>> {
        if !self.inner.cfg.user_mapping {
            return Err(StoreError::UserMappingDisabled);
        }
        self.read_mapping(&self.user_key(user)?).await
    }

    /// Create a user's mapping object (with a given namespace, or a fresh GUID).
    /// `UserMappingExists` if the user already has one.
    pub async fn create_user_mapping(&self, user: &str, ns: Option<&str>) -> Result<String> {
        if !self.inner.cfg.user_mapping {
            return Err(StoreError::UserMappingDisabled);
        }
        let key = self.user_key(user)?;
        let (stored, created) = self.create_mapping(&key, ns).await?;
        if !created {
            return Err(StoreError::UserMappingExists {
                user: user.to_string(),
                existing: stored,
            });
        }
        Ok(stored)
    }

    /// Rename a user: copy the mapping object to the new key, then remove the old one (as
    /// `rmb rename` does). Re-running after a crash between the two steps finishes the job.
    pub async fn rename_user(&self, old: &str, new: &str) -> Result<String> {
        if !self.inner.cfg.user_mapping {
            return Err(StoreError::UserMappingDisabled);
        }
        let old_key = self.user_key(old)?;
        let new_key = self.user_key(new)?;
        let ns = self
            .read_mapping(&old_key)
            .await?
            .ok_or_else(|| StoreError::UserMappingMissing(old.to_string()))?;
        let (stored, _) = self.create_mapping(&new_key, Some(&ns)).await?;
        if stored != ns {
            return Err(StoreError::UserMappingExists {
                user: new.to_string(),
                existing: stored,
            });
        }
        match self.inner.backend.remove(&self.mapping_loc(&old_key)).await {
            Ok(()) | Err(BackendError::NotFound(_)) => Ok(ns),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove a user's mapping object (its mail is not touched).
    pub async fn delete_user_mapping(&self, user: &str) -> Result<()> {
        if !self.inner.cfg.user_mapping {
            return Err(StoreError::UserMappingDisabled);
        }
        let key = self.user_key(user)?;
        match self.inner.backend.remove(&self.mapping_loc(&key)).await {
            Ok(()) => Ok(()),
            Err(BackendError::NotFound(_)) => Err(StoreError::UserMappingMissing(user.to_string())),
            Err(e) => Err(e.into()),
        }
    }
}
