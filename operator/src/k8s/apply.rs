//! Server-side apply and status patches, each bounded by [`super::KUBE_TIMEOUT`].

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{FIELD_MANAGER, KUBE_TIMEOUT};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("kubernetes API call timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("object has no name")]
    NoName,
    #[error("cannot serialize: {0}")]
    Serialize(String),
}

pub async fn with_timeout<T>(
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, ApplyError> {
    match tokio::time::timeout(KUBE_TIMEOUT, fut).await {
        Ok(r) => r.map_err(ApplyError::from),
        Err(_) => Err(ApplyError::Timeout(KUBE_TIMEOUT)),
    }
}

/// Server-side apply `obj` with our field manager, forcing conflicts (we own what we apply).
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K, ApplyError>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = obj.meta().name.clone().ok_or(ApplyError::NoName)?;
    with_timeout(api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    ))
    .await
}

/// Write `status` only when it differs from what the object already has: no status churn,
/// so an unchanged object reconciles with zero writes. Returns whether a write happened.
pub async fn patch_status_if_changed<K, S>(
    api: &Api<K>,
    name: &str,
    current: Option<&S>,
    desired: &S,
) -> Result<bool, ApplyError>
where
    K: Resource + Clone + Debug + DeserializeOwned,
    S: Serialize + PartialEq,
{
    if current == Some(desired) {
        return Ok(false);
    }
    // A merge patch leaves keys it does not mention alone: a field that went away (a `None`
    // skipped in serialization) must be sent as null, or it stays and the status never
    // converges (a write on every reconcile).
    let current = current
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| ApplyError::Serialize(e.to_string()))?
        .unwrap_or(serde_json::Value::Null);
    let desired =
        serde_json::to_value(desired).map_err(|e| ApplyError::Serialize(e.to_string()))?;
    let patch = serde_json::json!({ "status": merge_patch(&current, &desired) });
    with_timeout(api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))).await?;
    Ok(true)
}

/// Annotation holding the hash of what the operator last applied to an object.
pub const APPLIED_HASH_ANNOTATION: &str = "mail.rbox.io/applied-hash";

/// Server-side apply `obj` unless the object already carries the hash of exactly this desired
/// state (one GET instead of a PATCH): an unchanged object reconciles with zero writes.
/// Returns the object as the API server has it, and whether it had to be created.
pub async fn apply_if_changed<K>(api: &Api<K>, mut obj: K) -> Result<(K, bool), ApplyError>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    use sha2::Digest;
    let name = obj.meta().name.clone().ok_or(ApplyError::NoName)?;
    let bytes = serde_json::to_vec(&obj).unwrap_or_default();
    let hash: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    obj.meta_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert(APPLIED_HASH_ANNOTATION.to_string(), hash.clone());
    let existing = with_timeout(api.get_opt(&name)).await?;
    if let Some(existing) = &existing
        && existing.meta().deletion_timestamp.is_none()
        && existing
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(APPLIED_HASH_ANNOTATION))
            == Some(&hash)
    {
        return Ok((existing.clone(), false));
    }
    Ok((apply(api, &obj).await?, existing.is_none()))
}

/// The JSON merge patch (RFC 7386) that turns `from` into `to`: changed values, and null for
/// every key `to` no longer has.
pub fn merge_patch(from: &serde_json::Value, to: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (from, to) {
        (Value::Object(f), Value::Object(t)) => {
            let mut out = serde_json::Map::new();
            for (k, tv) in t {
                match f.get(k) {
                    Some(fv) if fv == tv => {}
                    Some(fv) => {
                        out.insert(k.clone(), merge_patch(fv, tv));
                    }
                    None => {
                        out.insert(k.clone(), tv.clone());
                    }
                }
            }
            for k in f.keys() {
                if !t.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(out)
        }
        (_, t) => t.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::merge_patch;
    use serde_json::json;

    #[test]
    fn removed_keys_become_null_and_unchanged_ones_are_left_out() {
        let from = json!({"a": 1, "b": {"x": 1, "y": 2}, "gone": "z", "list": [1, 2]});
        let to = json!({"a": 1, "b": {"x": 1}, "list": [1], "new": true});
        assert_eq!(
            merge_patch(&from, &to),
            json!({"b": {"y": null}, "gone": null, "list": [1], "new": true})
        );
        assert_eq!(merge_patch(&json!(null), &json!({"a": 1})), json!({"a": 1}));
    }
}
