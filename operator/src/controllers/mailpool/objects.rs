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

/// Read, compare, and apply only on a difference. Returns whether it wrote.
pub async fn apply_if_changed<K>(api: &Api<K>, want: &K) -> Result<bool, Error>
where
    K: Resource + Managed + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = want.meta().name.clone().unwrap_or_default();
    if let Some(have) = with_timeout(api.get_opt(&name)).await?
        && have.same(want)
    {
        return Ok(false);
    }
    apply(api, want).await?;
    Ok(true)
}
