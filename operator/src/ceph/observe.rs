//! Reading what Ceph has now. Each reader is one monitor command plus a pure parser; the
//! parsers are unit-tested on replies captured from Ceph 16.

use std::collections::BTreeMap;

use serde_json::Value;

use super::command::{self, MonCmd};
use super::error::CephError;
use super::mon::{Admin, MonClient};
use crate::ceph::user::UserInfo;

/// Key of the application metadata that records which MailPool created a pool. Kept in Ceph,
/// next to the pool, so it survives a lost or stale status: only a pool carrying this
/// MailPool's uid is ever deleted by it.
pub const OWNER_KEY: &str = "owner";

/// Pool type codes of `pg_pool_t`.
pub const TYPE_REPLICATED: i64 = 1;
pub const TYPE_ERASURE: i64 = 3;

/// A pool as `osd pool ls detail` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedPool {
    pub id: i64,
    pub name: String,
    /// [`TYPE_REPLICATED`] or [`TYPE_ERASURE`].
    pub pool_type: i64,
    pub size: u32,
    pub min_size: u32,
    pub crush_rule: i64,
    pub erasure_code_profile: String,
    pub pg_num: u32,
    pub quota_max_bytes: u64,
    pub quota_max_objects: u64,
    /// Names of the flags (`hashpspool`, `bulk`, `ec_overwrites`, …).
    pub flags: Vec<String>,
    /// Pool options that are set (`compression_mode`, `target_size_ratio`, `pg_num_min`, …).
    pub options: BTreeMap<String, Value>,
    /// Application tags.
    pub applications: Vec<String>,
    /// `application_metadata.rbox.owner`: the MailPool (uid) that created the pool.
    pub owner: Option<String>,
}

impl ObservedPool {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub fn option_str(&self, key: &str) -> Option<String> {
        self.options.get(key).map(value_string)
    }
}

/// A CRUSH rule, reduced to what a pool placement means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrushRule {
    pub id: i64,
    pub name: String,
    /// 1 replicated, 3 erasure.
    pub rule_type: i64,
    pub root: String,
    pub device_class: Option<String>,
    pub failure_domain: String,
}

/// An erasure-code profile.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EcProfile {
    pub k: u32,
    pub m: u32,
    pub failure_domain: String,
    pub device_class: Option<String>,
    pub root: String,
    /// Every key as Ceph has it.
    pub raw: BTreeMap<String, String>,
}

/// Usage of one pool (`df detail`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PoolUsage {
    pub stored_bytes: u64,
    pub objects: u64,
    pub max_avail_bytes: u64,
}

/// What `status` says about the whole cluster.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ClusterHealth {
    pub fsid: String,
    /// `HEALTH_OK`, `HEALTH_WARN`, `HEALTH_ERR`.
    pub health: String,
    /// Active health checks: (code, severity, summary), sorted by code.
    pub checks: Vec<(String, String, String)>,
    pub bytes_total: u64,
    pub bytes_used: u64,
    pub bytes_avail: u64,
}

fn parse_err(cmd: &MonCmd, message: impl Into<String>) -> CephError {
    CephError::Parse {
        prefix: cmd.prefix().to_string(),
        message: message.into(),
    }
}

/// A JSON scalar as the string Ceph would print (`true`, `0.2`, `aggressive`).
pub fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(|x| {
            x.as_u64()
                .or_else(|| x.as_f64().map(|f| f as u64))
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0)
}

fn i64_of(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(|x| x.as_i64())
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).map(value_string).unwrap_or_default()
}

pub fn parse_pools(cmd: &MonCmd, v: &Value) -> Result<Vec<ObservedPool>, CephError> {
    let arr = v.as_array().ok_or_else(|| parse_err(cmd, "not an array"))?;
    arr.iter()
        .map(|p| {
            let name = p
                .get("pool_name")
                .and_then(Value::as_str)
                .ok_or_else(|| parse_err(cmd, "pool without pool_name"))?;
            Ok(ObservedPool {
                id: i64_of(p, "pool_id").unwrap_or(-1),
                name: name.to_string(),
                pool_type: i64_of(p, "type").unwrap_or(0),
                size: u64_of(p, "size") as u32,
                min_size: u64_of(p, "min_size") as u32,
                crush_rule: i64_of(p, "crush_rule").unwrap_or(-1),
                erasure_code_profile: str_of(p, "erasure_code_profile"),
                pg_num: u64_of(p, "pg_num") as u32,
                quota_max_bytes: u64_of(p, "quota_max_bytes"),
                quota_max_objects: u64_of(p, "quota_max_objects"),
                flags: str_of(p, "flags_names")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                options: p
                    .get("options")
                    .and_then(Value::as_object)
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                applications: p
                    .get("application_metadata")
                    .and_then(Value::as_object)
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default(),
                owner: p
                    .pointer(&format!(
                        "/application_metadata/{}/{OWNER_KEY}",
                        crate::ceph::APPLICATION
                    ))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        })
        .collect()
}

pub fn parse_rules(cmd: &MonCmd, v: &Value) -> Result<Vec<CrushRule>, CephError> {
    let arr = v.as_array().ok_or_else(|| parse_err(cmd, "not an array"))?;
    Ok(arr
        .iter()
        .map(|r| {
            let mut root = String::new();
            let mut device_class = None;
            let mut failure_domain = String::new();
            for step in r
                .get("steps")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                match step.get("op").and_then(Value::as_str).unwrap_or("") {
                    "take" => {
                        // A device-class rule takes the shadow bucket `root~class`.
                        let item = str_of(step, "item_name");
                        match item.split_once('~') {
                            Some((r, c)) => {
                                root = r.to_string();
                                device_class = Some(c.to_string());
                            }
                            None => root = item,
                        }
                    }
                    op if op.starts_with("choose") => failure_domain = str_of(step, "type"),
                    _ => {}
                }
            }
            CrushRule {
                id: i64_of(r, "rule_id").unwrap_or(-1),
                name: str_of(r, "rule_name"),
                rule_type: i64_of(r, "type").unwrap_or(0),
                root,
                device_class,
                failure_domain,
            }
        })
        .collect())
}

pub fn parse_ec_profile(cmd: &MonCmd, v: &Value) -> Result<EcProfile, CephError> {
    let obj = v
        .as_object()
        .ok_or_else(|| parse_err(cmd, "not an object"))?;
    let raw: BTreeMap<String, String> = obj
        .iter()
        .map(|(k, v)| (k.clone(), value_string(v)))
        .collect();
    let num = |k: &str| raw.get(k).and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    Ok(EcProfile {
        k: num("k"),
        m: num("m"),
        failure_domain: raw
            .get("crush-failure-domain")
            .cloned()
            .unwrap_or_else(|| "host".into()),
        device_class: raw
            .get("crush-device-class")
            .filter(|s| !s.is_empty())
            .cloned(),
        root: raw
            .get("crush-root")
            .cloned()
            .unwrap_or_else(|| "default".into()),
        raw,
    })
}

pub fn parse_pool_get_all(cmd: &MonCmd, v: &Value) -> Result<BTreeMap<String, String>, CephError> {
    let obj = v
        .as_object()
        .ok_or_else(|| parse_err(cmd, "not an object"))?;
    Ok(obj
        .iter()
        .map(|(k, v)| (k.clone(), value_string(v)))
        .collect())
}

pub fn parse_df(cmd: &MonCmd, v: &Value) -> Result<BTreeMap<String, PoolUsage>, CephError> {
    let pools = v
        .get("pools")
        .and_then(Value::as_array)
        .ok_or_else(|| parse_err(cmd, "no pools array"))?;
    Ok(pools
        .iter()
        .map(|p| {
            let stats = p.get("stats").cloned().unwrap_or(Value::Null);
            (
                str_of(p, "name"),
                PoolUsage {
                    stored_bytes: u64_of(&stats, "stored"),
                    objects: u64_of(&stats, "objects"),
                    max_avail_bytes: u64_of(&stats, "max_avail"),
                },
            )
        })
        .collect())
}

pub fn parse_status(v: &Value) -> ClusterHealth {
    let health = v.get("health").cloned().unwrap_or(Value::Null);
    let mut checks: Vec<(String, String, String)> = health
        .get("checks")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(code, c)| {
                    let msg = c
                        .pointer("/summary/message")
                        .map(value_string)
                        .unwrap_or_default();
                    (code.clone(), str_of(c, "severity"), msg)
                })
                .collect()
        })
        .unwrap_or_default();
    checks.sort();
    let pgmap = v.get("pgmap").cloned().unwrap_or(Value::Null);
    ClusterHealth {
        fsid: str_of(v, "fsid"),
        health: str_of(&health, "status"),
        checks,
        bytes_total: u64_of(&pgmap, "bytes_total"),
        bytes_used: u64_of(&pgmap, "bytes_used"),
        bytes_avail: u64_of(&pgmap, "bytes_avail"),
    }
}

/// PG states of a pool (`pg ls-by-pool`): state → count, and the number of large-omap
/// objects the OSDs reported during deep scrub.
pub fn parse_pg_states(v: &Value) -> (BTreeMap<String, u32>, u64) {
    // Pacific wraps the list in {"pg_ready":…, "pg_stats":[…]}; older releases return the list.
    let list = v
        .get("pg_stats")
        .and_then(Value::as_array)
        .or_else(|| v.as_array());
    let mut states = BTreeMap::new();
    let mut large_omap = 0;
    for pg in list.into_iter().flatten() {
        *states.entry(str_of(pg, "state")).or_insert(0) += 1;
        large_omap += pg
            .pointer("/stat_sum/num_large_omap_objects")
            .and_then(Value::as_u64)
            .unwrap_or(0);
    }
    (states, large_omap)
}

pub fn parse_auth_get(cmd: &MonCmd, v: &Value) -> Result<UserInfo, CephError> {
    let first = v
        .as_array()
        .and_then(|a| a.first())
        .ok_or_else(|| parse_err(cmd, "empty keyring"))?;
    let key = first
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| parse_err(cmd, "keyring without key"))?;
    let caps = first
        .get("caps")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), value_string(v)))
                .collect()
        })
        .unwrap_or_default();
    Ok(UserInfo {
        entity: str_of(first, "entity"),
        key: rbox_core::rados::Secret(key.to_string()),
        caps,
    })
}

// ---- readers (one command each) ----

impl<M: MonClient> Admin<M> {
    pub async fn pools(&self) -> Result<Vec<ObservedPool>, CephError> {
        let cmd = command::pool_ls_detail();
        parse_pools(&cmd, &self.json(&cmd).await?)
    }

    pub async fn crush_rules(&self) -> Result<Vec<CrushRule>, CephError> {
        let cmd = command::crush_rule_dump();
        parse_rules(&cmd, &self.json(&cmd).await?)
    }

    /// `None` when the profile does not exist.
    pub async fn ec_profile(&self, name: &str) -> Result<Option<EcProfile>, CephError> {
        let cmd = command::ec_profile_get(name);
        match self.json(&cmd).await {
            Ok(v) => parse_ec_profile(&cmd, &v).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn pool_get_all(&self, pool: &str) -> Result<BTreeMap<String, String>, CephError> {
        let cmd = command::pool_get_all(pool);
        parse_pool_get_all(&cmd, &self.json(&cmd).await?)
    }

    pub async fn usage(&self) -> Result<BTreeMap<String, PoolUsage>, CephError> {
        let cmd = command::df_detail();
        parse_df(&cmd, &self.json(&cmd).await?)
    }

    pub async fn health(&self) -> Result<ClusterHealth, CephError> {
        Ok(parse_status(&self.json(&command::status()).await?))
    }

    pub async fn version(&self) -> Result<String, CephError> {
        let v = self.json(&command::version()).await?;
        Ok(str_of(&v, "version"))
    }

    pub async fn pg_states(&self, pool: &str) -> Result<(BTreeMap<String, u32>, u64), CephError> {
        Ok(parse_pg_states(
            &self.json(&command::pg_ls_by_pool(pool)).await?,
        ))
    }

    /// `None` when the user does not exist.
    pub async fn user(&self, entity: &str) -> Result<Option<UserInfo>, CephError> {
        let cmd = command::auth_get(entity);
        match self.json(&cmd).await {
            Ok(v) => parse_auth_get(&cmd, &v).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_pool_ls_detail() {
        let v = json!([{
            "pool_id": 3, "pool_name": "mail", "flags": 1, "flags_names": "hashpspool,bulk",
            "type": 1, "size": 3, "min_size": 2, "crush_rule": 1, "pg_num": 8,
            "quota_max_bytes": 1024, "quota_max_objects": 0, "erasure_code_profile": "",
            "options": {"compression_mode": "aggressive", "target_size_ratio": 0.2},
            "application_metadata": {"rbox": {"owner": "uid-1"}}
        }]);
        let pools = parse_pools(&command::pool_ls_detail(), &v).unwrap();
        let p = &pools[0];
        assert_eq!((p.id, p.size, p.min_size, p.crush_rule), (3, 3, 2, 1));
        assert!(p.has_flag("bulk"));
        assert_eq!(p.option_str("target_size_ratio").as_deref(), Some("0.2"));
        assert_eq!(p.applications, ["rbox"]);
        assert_eq!(p.owner.as_deref(), Some("uid-1"));
        assert_eq!(p.quota_max_bytes, 1024);
    }

    #[test]
    fn parses_rules_with_and_without_device_class() {
        let v = json!([
            {"rule_id": 0, "rule_name": "replicated_rule", "type": 1, "steps": [
                {"op": "take", "item": -1, "item_name": "default"},
                {"op": "chooseleaf_firstn", "num": 0, "type": "host"},
                {"op": "emit"}]},
            {"rule_id": 1, "rule_name": "r_ssd", "type": 1, "steps": [
                {"op": "take", "item": -2, "item_name": "default~ssd"},
                {"op": "choose_firstn", "num": 0, "type": "osd"},
                {"op": "emit"}]}
        ]);
        let rules = parse_rules(&command::crush_rule_dump(), &v).unwrap();
        assert_eq!(rules[0].root, "default");
        assert_eq!(rules[0].device_class, None);
        assert_eq!(rules[0].failure_domain, "host");
        assert_eq!(rules[1].device_class.as_deref(), Some("ssd"));
        assert_eq!(rules[1].failure_domain, "osd");
    }

    #[test]
    fn parses_status_and_pg_states() {
        let s = parse_status(&json!({
            "fsid": "f", "health": {"status": "HEALTH_WARN", "checks": {
                "POOL_NEARFULL": {"severity": "HEALTH_WARN", "summary": {"message": "1 pool nearfull"}}}},
            "pgmap": {"bytes_total": 100, "bytes_used": 10, "bytes_avail": 90}
        }));
        assert_eq!(s.health, "HEALTH_WARN");
        assert_eq!(s.checks[0].0, "POOL_NEARFULL");
        assert_eq!(s.checks[0].1, "HEALTH_WARN");
        assert_eq!(s.checks[0].2, "1 pool nearfull");
        assert_eq!(s.bytes_avail, 90);
        let (states, omap) = parse_pg_states(&json!({"pg_ready": true, "pg_stats": [
            {"state": "active+clean", "stat_sum": {"num_large_omap_objects": 1}},
            {"state": "active+clean", "stat_sum": {}},
            {"state": "peering"}]}));
        assert_eq!(states.get("active+clean"), Some(&2));
        assert_eq!(states.get("peering"), Some(&1));
        assert_eq!(omap, 1);
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        assert!(parse_pools(&command::pool_ls_detail(), &json!({"x": 1})).is_err());
        assert!(parse_pools(&command::pool_ls_detail(), &json!([{"size": 1}])).is_err());
        assert!(parse_auth_get(&command::auth_get("client.x"), &json!([])).is_err());
    }
}
