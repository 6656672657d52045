//! The Secret and ConfigMap a MailPool produces, applied only when they differ from what the
//! API server has (a server-side apply of identical content would still be a write).

use std::fmt::Debug;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::controllers::ceph_errors::Error;
use crate::k8s::apply::{apply, with_timeout};

/// Do `have`'s managed parts (labels we set, owner references, content) equal `want`'s?
pub trait Managed {
    fn same(&self, want: &Self) -> bool;
}

fn meta_same<K: Resource>(have: &K, want: &K) -> bool {
    let (h, w) = (have.meta(), want.meta());
    let labels_ok = w
        .labels
        .iter()
        .flatten()
        .all(|(k, v)| h.labels.as_ref().and_then(|l| l.get(k)) == Some(v));
    labels_ok && h.owner_references == w.owner_references
}

impl Managed for Secret {
    fn same(&self, want: &Self) -> bool {
        meta_same(self, want) && self.data == want.data && self.type_ == want.type_
    }
}

impl Managed for ConfigMap {
    fn same(&self, want: &Self) -> bool {
        meta_same(self, want) && self.data == want.data
    }
}

/// What [`apply_if_changed`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// As desired: nothing written.
    Same,
    /// It did not exist.
    Created,
    /// Our labels or owner references were changed or removed.
    MetadataRepaired,
    /// The content differed (a rotated key, new monitors, or a hand edit).
    ContentUpdated,
}

/// Read, compare, and apply only on a difference.
pub async fn apply_if_changed<K>(api: &Api<K>, want: &K) -> Result<Written, Error>
where
    K: Resource + Managed + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = want.meta().name.clone().unwrap_or_default();
    let outcome = match with_timeout(api.get_opt(&name)).await? {
        Some(have) if have.same(want) => return Ok(Written::Same),
        Some(have) if !meta_same(&have, want) => Written::MetadataRepaired,
        Some(_) => Written::ContentUpdated,
        None => Written::Created,
    };
    apply(api, want).await?;
    Ok(outcome)
}
