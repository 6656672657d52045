//! upstream's `plugin {}` setting names → rbox-core connection and store settings.

use std::path::PathBuf;
use std::time::Duration;

use rbox_core::rados::ConnectOptions;
use rbox_core::store::StoreConfig;

/// What identifies one Ceph connection + store of a process (users share it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PluginSettings {
    pub pool: String,
    pub index_pool: String,
    pub cluster_name: String,
    /// Full cephx entity (`client.dovecot`), as upstream passes it to librados.
    pub user: String,
    pub cfg_object: String,
    pub conf_path: Option<PathBuf>,
    /// `rbox_ceph_client_<option>` settings, passed to librados unchanged.
    pub ceph_client: Vec<(String, String)>,
    pub connect_timeout: Duration,
    pub op_timeout: Duration,
}

const CEPH_CLIENT_PREFIX: &str = "rbox_ceph_client_";

impl PluginSettings {
    /// Parse the settings Dovecot gives us; unknown `rbox_*` keys are ignored (upstream
    /// has many that do not apply to this implementation).
    pub fn parse(
        pairs: &[(String, String)],
        ceph_conf_env: Option<String>,
    ) -> Result<Self, String> {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let pool = get("rbox_pool_name").unwrap_or_else(|| "mail_storage".into());
        let index_pool = get("rbox_index_pool_name").unwrap_or_else(|| pool.clone());
        let cluster_name = get("rbox_cluster_name").unwrap_or_else(|| "ceph".into());
        let user = get("rados_user_name").unwrap_or_else(|| "client.admin".into());
        if !user.contains('.') {
            return Err(format!(
                "rados_user_name={user:?}: give the full cephx entity, e.g. client.{user}"
            ));
        }
        let cfg_object = get("rbox_cfg_object_name").unwrap_or_else(|| "rbox_cfg".into());
        let secs = |k: &str, default: u64| -> Result<Duration, String> {
            match get(k) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .map(Duration::from_secs)
                    .ok_or_else(|| format!("{k}={v:?}: expected a positive number of seconds")),
            }
        };
        let mut ceph_client: Vec<(String, String)> = pairs
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(CEPH_CLIENT_PREFIX)
                    .filter(|o| !o.is_empty())
                    .map(|o| (o.to_string(), v.clone()))
            })
            .collect();
        ceph_client.sort();
        let conf_path = ceph_conf_env
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                let p = PathBuf::from(format!("/etc/ceph/{cluster_name}.conf"));
                p.exists().then_some(p)
            });
        Ok(Self {
            pool,
            index_pool,
            cluster_name,
            user,
            cfg_object,
            conf_path,
            ceph_client,
            connect_timeout: secs("rbox_connect_timeout", 10)?,
            op_timeout: secs("rbox_op_timeout", 30)?,
        })
    }

    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            cluster_name: self.cluster_name.clone(),
            user: self.user.clone(),
            conf_path: self.conf_path.clone(),
            connect_timeout: self.connect_timeout,
            op_timeout: self.op_timeout,
            extra_conf: self.ceph_client.clone(),
            ..ConnectOptions::default()
        }
    }

    pub fn store_config(&self) -> StoreConfig {
        let mut c = StoreConfig::new(self.pool.clone(), self.index_pool.clone());
        c.cfg_object = self.cfg_object.clone();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn upstream_names_are_read() {
        let s = PluginSettings::parse(
            &pairs(&[
                ("rbox_pool_name", "mail_storage"),
                ("rbox_index_pool_name", "mail_index"),
                ("rados_user_name", "client.dovecot"),
                ("rbox_cluster_name", "ceph"),
                ("rbox_cfg_object_name", "my_cfg"),
                ("rbox_ceph_client_rados_osd_op_timeout", "5"),
                ("rbox_ceph_client_", "ignored"),
            ]),
            Some("/tmp/ceph.conf".into()),
        )
        .unwrap();
        assert_eq!(
            (s.pool.as_str(), s.index_pool.as_str()),
            ("mail_storage", "mail_index")
        );
        assert_eq!(s.user, "client.dovecot");
        assert_eq!(s.cfg_object, "my_cfg");
        assert_eq!(
            s.ceph_client,
            [("rados_osd_op_timeout".to_string(), "5".to_string())]
        );
        assert_eq!(s.conf_path, Some(PathBuf::from("/tmp/ceph.conf")));
        assert_eq!(s.store_config().cfg_object, "my_cfg");
    }

    #[test]
    fn short_user_names_and_bad_timeouts_are_refused() {
        let e = PluginSettings::parse(&pairs(&[("rados_user_name", "dovecot")]), None).unwrap_err();
        assert!(e.contains("client.dovecot"), "{e}");
        let e = PluginSettings::parse(&pairs(&[("rbox_op_timeout", "0")]), None).unwrap_err();
        assert!(e.contains("rbox_op_timeout"), "{e}");
    }
}
