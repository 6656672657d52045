//! From a MailCluster to a live librados connection: read the keyring Secret (external mode)
//! or Rook's mon endpoints ConfigMap and admin Secret, then take the shared connection of
//! that cluster from [`super::connections::Connections`].

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, ResourceExt};
use rbox_core::rados::{ConnectOptions, Secret as Key};

use super::Context;
use super::ceph_errors::Error;
use super::connections::Connection;
use crate::api::{CephConnection, MailCluster};
use crate::ceph::Admin;
use crate::k8s::apply::with_timeout;
use rbox_core::rados::Cluster;

/// Rook's names for the monitor endpoints and the admin credentials.
pub const ROOK_MON_ENDPOINTS: &str = "rook-ceph-mon-endpoints";
pub const ROOK_MON_SECRET: &str = "rook-ceph-mon";

/// How to reach one MailCluster's Ceph.
#[derive(Clone, Debug)]
pub struct ConnectInfo {
    /// `namespace/name` of the MailCluster: the key of its shared connection.
    pub key: String,
    pub opts: ConnectOptions,
    /// Monitor addresses as written into the ceph.conf handed to Dovecot.
    pub mon_host: String,
}

/// The key of a keyring file's section for `user`, or the whole text when it is a bare key.
pub fn parse_keyring(text: &str, user: &str) -> Result<Key, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("the keyring is empty".into());
    }
    if is_bare_key(trimmed) {
        return Ok(Key(trimmed.to_string()));
    }
    let mut in_section = false;
    for line in trimmed.lines() {
        let line = line.trim();
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = section.trim() == user;
            continue;
        }
        if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == "key"
        {
            let v = v.trim();
            if !is_bare_key(v) {
                return Err(format!(
                    "the key of {user} in the keyring is not a base64 cephx key"
                ));
            }
            return Ok(Key(v.to_string()));
        }
    }
    if trimmed.contains('[') {
        Err(format!("the keyring has no key for {user}"))
    } else {
        Err(format!(
            "the keyring is neither a keyring file ([{user}] with key = …) nor a base64 cephx key"
        ))
    }
}

fn is_bare_key(s: &str) -> bool {
    // A base64 cephx key: one token of the base64 alphabet, length a multiple of 4.
    !s.is_empty()
        && s.len().is_multiple_of(4)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=')
}

/// Rook's `data` entry (`a=10.0.0.1:6789,b=10.0.0.2:6789`) as a `mon_host` value.
pub fn rook_mon_host(data: &str) -> Result<String, String> {
    let addrs: Vec<&str> = data
        .split(',')
        .filter_map(|e| e.split_once('=').map(|(_, a)| a.trim()))
        .filter(|a| !a.is_empty())
        .collect();
    if addrs.is_empty() {
        return Err(format!(
            "no monitor address in {ROOK_MON_ENDPOINTS} data {data:?}"
        ));
    }
    Ok(addrs.join(","))
}

/// Connection options from the spec and the credentials (pure).
pub fn connect_options(
    spec: &CephConnection,
    user: &str,
    key: Key,
    mon_host: &str,
) -> ConnectOptions {
    ConnectOptions {
        cluster_name: spec.cluster_name.clone(),
        user: user.to_string(),
        mon_host: Some(mon_host.to_string()),
        key: Some(key),
        connect_timeout: Duration::from_secs(u64::from(spec.timeouts.connect_seconds)),
        op_timeout: Duration::from_secs(u64::from(spec.timeouts.operation_seconds)),
        ..Default::default()
    }
}

fn secret_value(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .or_else(|| s.string_data.as_ref().and_then(|d| d.get(key)).cloned())
}

async fn get_opt<K>(api: &Api<K>, name: &str) -> Result<Option<K>, Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(with_timeout(api.get_opt(name)).await?)
}

/// Read what the MailCluster's connection needs from Kubernetes.
pub async fn resolve(ctx: &Context, mc: &MailCluster) -> Result<ConnectInfo, Error> {
    let ns = mc.namespace().unwrap_or_default();
    let key = format!("{ns}/{}", mc.name_any());
    let spec = &mc.spec.ceph;
    if let Some(ext) = &spec.external {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
        let name = &ext.keyring_secret.name;
        let secret = get_opt(&secrets, name)
            .await?
            .ok_or_else(|| Error::Settings(format!("Secret {ns}/{name} does not exist")))?;
        let text = secret_value(&secret, &ext.keyring_secret.key).ok_or_else(|| {
            Error::Settings(format!(
                "Secret {ns}/{name} has no key {:?}",
                ext.keyring_secret.key
            ))
        })?;
        let k = parse_keyring(&text, &ext.user)
            .map_err(|e| Error::Settings(format!("Secret {ns}/{name}: {e}")))?;
        let mon_host = match &ext.monitors_secret_key {
            Some(mk) => secret_value(&secret, mk)
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .ok_or_else(|| {
                    Error::Settings(format!(
                        "Secret {ns}/{name} has no monitor addresses under key {mk:?}"
                    ))
                })?,
            None if ext.monitors.is_empty() => {
                return Err(Error::Invalid(
                    "set ceph.external.monitors or ceph.external.monitorsSecretKey".into(),
                ));
            }
            None => ext.monitors.join(","),
        };
        Ok(ConnectInfo {
            key,
            opts: connect_options(spec, &ext.user, k, &mon_host),
            mon_host,
        })
    } else if let Some(rook) = &spec.rook {
        let rns = rook.namespace.clone().unwrap_or_else(|| ns.clone());
        let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &rns);
        let cm = get_opt(&cms, ROOK_MON_ENDPOINTS).await?.ok_or_else(|| {
            Error::Settings(format!(
                "ConfigMap {rns}/{ROOK_MON_ENDPOINTS} does not exist (is the Rook CephCluster {} running?)",
                rook.ceph_cluster_name
            ))
        })?;
        let data = cm
            .data
            .as_ref()
            .and_then(|d| d.get("data"))
            .cloned()
            .unwrap_or_default();
        let mon_host = rook_mon_host(&data).map_err(Error::Settings)?;
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &rns);
        let secret = get_opt(&secrets, ROOK_MON_SECRET).await?.ok_or_else(|| {
            Error::Settings(format!("Secret {rns}/{ROOK_MON_SECRET} does not exist"))
        })?;
        let user = secret_value(&secret, "ceph-username").unwrap_or_else(|| "client.admin".into());
        let k = secret_value(&secret, "ceph-secret")
            .or_else(|| secret_value(&secret, "admin-secret"))
            .ok_or_else(|| {
                Error::Settings(format!("Secret {rns}/{ROOK_MON_SECRET} has no ceph-secret"))
            })?;
        Ok(ConnectInfo {
            key,
            opts: connect_options(spec, &user, Key(k.trim().to_string()), &mon_host),
            mon_host,
        })
    } else {
        Err(Error::Invalid(
            "set exactly one of ceph.external or ceph.rook".into(),
        ))
    }
}

/// The shared connection of a MailCluster (connecting if needed).
pub async fn connect(ctx: &Context, info: &ConnectInfo) -> Result<Arc<Connection>, Error> {
    ctx.connections
        .get(&info.key, info.opts.clone())
        .await
        .map_err(|e| match e {
            // librados answers EINVAL when the key does not decode.
            rbox_core::backend::BackendError::Other { errno: -22, .. } => Error::Settings(format!(
                "Ceph refused the connection settings ({e}): is the key a valid cephx key for {}?",
                info.opts.user
            )),
            other => Error::Connect(other.to_string()),
        })
}

/// An admin handle over a connection, timed into the operator's metrics.
pub fn admin(ctx: &Context, conn: &Connection) -> Admin<Cluster> {
    Admin::new(conn.cluster.clone(), Some(ctx.metrics.clone()))
        .with_timeout(conn.cluster.op_timeout() + Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_sections_and_bare_keys() {
        let text = "[client.admin]\n\tkey = AQAbcd==\n\tcaps mon = \"allow *\"\n[client.x]\n key = AQxyzw==\n";
        assert_eq!(parse_keyring(text, "client.admin").unwrap().0, "AQAbcd==");
        assert_eq!(parse_keyring(text, "client.x").unwrap().0, "AQxyzw==");
        assert!(
            parse_keyring(text, "client.y")
                .unwrap_err()
                .contains("client.y")
        );
        assert_eq!(
            parse_keyring("AQAbcd==\n", "client.admin").unwrap().0,
            "AQAbcd=="
        );
        assert!(parse_keyring("  ", "client.admin").is_err());
        let garbage = parse_keyring("\u{1}not a keyring at all", "client.admin").unwrap_err();
        assert!(garbage.contains("key"), "{garbage}");
        assert!(parse_keyring("[client.admin]\nkey = not base64!\n", "client.admin").is_err());
    }

    #[test]
    fn rook_endpoints() {
        assert_eq!(
            rook_mon_host("a=10.0.0.1:6789,b=10.0.0.2:6789").unwrap(),
            "10.0.0.1:6789,10.0.0.2:6789"
        );
        assert!(rook_mon_host("").is_err());
    }
}
