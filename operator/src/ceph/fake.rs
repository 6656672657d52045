//! An in-memory monitor for unit tests: answers the commands the operator sends the way Ceph
//! 16 does, keeps pools, rules, profiles and users, and records every command so tests can
//! assert the exact sequence (and that steady state sends no write).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use rbox_core::backend::BackendError;
use rbox_core::rados::MonReply;
use serde_json::{Value, json};

use super::mon::MonClient;

#[derive(Debug, Default)]
struct State {
    pools: BTreeMap<String, Value>,
    rules: Vec<Value>,
    profiles: BTreeMap<String, BTreeMap<String, String>>,
    users: BTreeMap<String, (String, BTreeMap<String, String>)>,
    objects: BTreeMap<String, u64>,
    next_pool: i64,
    log: Vec<Value>,
    key_seq: u32,
}

/// Clones share one state.
#[derive(Clone, Debug, Default)]
pub struct FakeMon {
    state: Arc<Mutex<State>>,
}

fn not_found(what: String) -> BackendError {
    BackendError::NotFound(what)
}

fn s(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl FakeMon {
    /// A cluster with Ceph's default replicated rule (id 0).
    pub fn new() -> Self {
        let fake = Self::default();
        fake.lock().rules.push(json!({
            "rule_id": 0, "rule_name": "replicated_rule", "type": 1,
            "steps": [{"op": "take", "item": -1, "item_name": "default"},
                      {"op": "chooseleaf_firstn", "num": 0, "type": "host"}, {"op": "emit"}]
        }));
        fake.lock().next_pool = 1;
        fake
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every command received, as JSON.
    pub fn log(&self) -> Vec<Value> {
        self.lock().log.clone()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    /// Prefixes of the commands received.
    pub fn prefixes(&self) -> Vec<String> {
        self.log().iter().map(|c| s(c, "prefix")).collect()
    }

    pub fn pool(&self, name: &str) -> Option<Value> {
        self.lock().pools.get(name).cloned()
    }

    pub fn user_caps(&self, entity: &str) -> Option<BTreeMap<String, String>> {
        self.lock().users.get(entity).map(|u| u.1.clone())
    }

    pub fn user_key(&self, entity: &str) -> Option<String> {
        self.lock().users.get(entity).map(|u| u.0.clone())
    }

    /// Pretend `n` objects are stored in `pool` (for `df`).
    pub fn set_objects(&self, pool: &str, n: u64) {
        self.lock().objects.insert(pool.into(), n);
    }

    /// Add a pool as someone else created it.
    pub fn add_pool(&self, name: &str, pool_type: i64, size: u32, apps: &[&str]) {
        let mut st = self.lock();
        let id = st.next_pool;
        st.next_pool += 1;
        let app: serde_json::Map<String, Value> =
            apps.iter().map(|a| (a.to_string(), json!({}))).collect();
        st.pools.insert(
            name.into(),
            json!({"pool_id": id, "pool_name": name, "type": pool_type, "size": size,
                   "min_size": 1, "crush_rule": 0, "pg_num": 8, "flags_names": "hashpspool",
                   "quota_max_bytes": 0, "quota_max_objects": 0, "erasure_code_profile": "",
                   "options": {}, "application_metadata": app}),
        );
    }

    fn handle(&self, cmd: &Value, input: &[u8]) -> Result<Value, BackendError> {
        let mut st = self.lock();
        st.log.push(cmd.clone());
        let prefix = s(cmd, "prefix");
        let pool = s(cmd, "pool");
        match prefix.as_str() {
            "osd pool ls" => Ok(Value::Array(st.pools.values().cloned().collect())),
            "osd crush rule dump" => Ok(Value::Array(st.rules.clone())),
            "osd erasure-code-profile get" => st
                .profiles
                .get(&s(cmd, "name"))
                .map(|p| json!(p))
                .ok_or_else(|| not_found(s(cmd, "name"))),
            "osd pool get" => {
                let p = st.pools.get(&pool).ok_or_else(|| not_found(pool.clone()))?;
                let mut all = serde_json::Map::new();
                all.insert("pool".into(), json!(pool));
                for k in ["size", "min_size", "pg_num"] {
                    all.insert(k.into(), p[k].clone());
                }
                let flags = s(p, "flags_names");
                for f in ["nodelete", "nodeep-scrub", "noscrub", "bulk"] {
                    all.insert(f.into(), json!(flags.split(',').any(|x| x == f)));
                }
                if let Some(o) = p["options"].as_object() {
                    for (k, v) in o {
                        all.insert(k.clone(), v.clone());
                    }
                }
                Ok(Value::Object(all))
            }
            "auth get" => {
                let e = s(cmd, "entity");
                let (key, caps) = st.users.get(&e).ok_or_else(|| not_found(e.clone()))?;
                Ok(json!([{"entity": e, "key": key, "caps": caps}]))
            }
            "df" => Ok(json!({"stats": {}, "pools": st.pools.values().map(|p| {
                let name = s(p, "pool_name");
                json!({"name": name, "id": p["pool_id"],
                       "stats": {"stored": 0, "objects": st.objects.get(&name).copied().unwrap_or(0), "max_avail": 1u64 << 30}})
            }).collect::<Vec<_>>()})),
            "status" => Ok(
                json!({"fsid": "fake-fsid", "health": {"status": "HEALTH_OK", "checks": {}},
                                  "pgmap": {"bytes_total": 100, "bytes_used": 1, "bytes_avail": 99}}),
            ),
            "version" => Ok(json!({"version": "ceph version 16.2.11 (fake) pacific (stable)"})),
            "pg ls-by-pool" => Ok(
                json!({"pg_ready": true, "pg_stats": [{"state": "active+clean", "stat_sum": {}}]}),
            ),
            "osd crush rule create-replicated" => {
                let name = s(cmd, "name");
                if st.rules.iter().any(|r| s(r, "rule_name") == name) {
                    return Ok(Value::Null);
                }
                let id = st.rules.len() as i64;
                let take = match cmd.get("class").and_then(Value::as_str) {
                    Some(c) => format!("{}~{c}", s(cmd, "root")),
                    None => s(cmd, "root"),
                };
                st.rules.push(json!({"rule_id": id, "rule_name": name, "type": 1, "steps": [
                    {"op": "take", "item_name": take},
                    {"op": "chooseleaf_firstn", "num": 0, "type": s(cmd, "type")}, {"op": "emit"}]}));
                Ok(Value::Null)
            }
            "osd erasure-code-profile set" => {
                let prof: BTreeMap<String, String> = cmd["profile"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|kv| {
                        kv.as_str()?
                            .split_once('=')
                            .map(|(k, v)| (k.into(), v.into()))
                    })
                    .collect();
                st.profiles.insert(s(cmd, "name"), prof);
                Ok(Value::Null)
            }
            "osd erasure-code-profile rm" => {
                st.profiles.remove(&s(cmd, "name"));
                Ok(Value::Null)
            }
            "osd pool create" => {
                if st.pools.contains_key(&pool) {
                    return Ok(Value::Null);
                }
                let erasure = s(cmd, "pool_type") == "erasure";
                let rule_name = s(cmd, "rule");
                let rule_id = st
                    .rules
                    .iter()
                    .find(|r| s(r, "rule_name") == rule_name)
                    .and_then(|r| r["rule_id"].as_i64())
                    .unwrap_or(0);
                let id = st.next_pool;
                st.next_pool += 1;
                let (size, profile) = if erasure {
                    let prof = s(cmd, "erasure_code_profile");
                    let p = st.profiles.get(&prof).cloned().unwrap_or_default();
                    let n = |k: &str| p.get(k).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
                    (n("k") + n("m"), prof)
                } else {
                    (cmd["size"].as_u64().unwrap_or(3) as u32, String::new())
                };
                st.pools.insert(
                    pool.clone(),
                    json!({
                    "pool_id": id, "pool_name": pool, "type": if erasure { 3 } else { 1 },
                    "size": size, "min_size": 1, "crush_rule": rule_id, "pg_num": cmd["pg_num"],
                    "flags_names": "hashpspool", "quota_max_bytes": 0, "quota_max_objects": 0,
                    "erasure_code_profile": profile, "options": {}, "application_metadata": {}}),
                );
                Ok(Value::Null)
            }
            "osd pool set" => {
                let rules = st.rules.clone();
                let p = st
                    .pools
                    .get_mut(&pool)
                    .ok_or_else(|| not_found(pool.clone()))?;
                let var = s(cmd, "var");
                let val = s(cmd, "val");
                let num = || val.parse::<u64>().map(Value::from).unwrap_or(Value::Null);
                match var.as_str() {
                    "size" | "min_size" => p[var.as_str()] = num(),
                    "crush_rule" => {
                        p["crush_rule"] = rules
                            .iter()
                            .find(|r| s(r, "rule_name") == val)
                            .map(|r| r["rule_id"].clone())
                            .ok_or_else(|| not_found(val.clone()))?
                    }
                    "bulk" | "nodeep-scrub" | "noscrub" | "nodelete" | "allow_ec_overwrites" => {
                        let flag = if var == "allow_ec_overwrites" {
                            "ec_overwrites"
                        } else {
                            var.as_str()
                        };
                        let mut flags: Vec<String> = s(p, "flags_names")
                            .split(',')
                            .filter(|f| !f.is_empty() && *f != flag)
                            .map(str::to_string)
                            .collect();
                        if matches!(val.as_str(), "true" | "1") {
                            flags.push(flag.to_string());
                        }
                        p["flags_names"] = json!(flags.join(","));
                    }
                    _ => {
                        let opts = p["options"]
                            .as_object_mut()
                            .ok_or_else(|| not_found("options".into()))?;
                        if val == "unset" || val == "0" {
                            opts.remove(&var);
                        } else if let Ok(f) = val.parse::<f64>() {
                            opts.insert(var.clone(), json!(f));
                        } else {
                            opts.insert(var.clone(), json!(val));
                        }
                    }
                }
                Ok(Value::Null)
            }
            "osd pool set-quota" => {
                let p = st
                    .pools
                    .get_mut(&pool)
                    .ok_or_else(|| not_found(pool.clone()))?;
                let field = format!("quota_{}", s(cmd, "field"));
                p[field.as_str()] = json!(s(cmd, "val").parse::<u64>().unwrap_or(0));
                Ok(Value::Null)
            }
            "osd pool application enable" => {
                let p = st
                    .pools
                    .get_mut(&pool)
                    .ok_or_else(|| not_found(pool.clone()))?;
                p["application_metadata"][s(cmd, "app")] = json!({});
                Ok(Value::Null)
            }
            "osd pool application set" => {
                let p = st
                    .pools
                    .get_mut(&pool)
                    .ok_or_else(|| not_found(pool.clone()))?;
                let app = s(cmd, "app");
                if p["application_metadata"].get(&app).is_none() {
                    return Err(not_found(format!(
                        "application {app} not enabled on {pool}"
                    )));
                }
                p["application_metadata"][app][s(cmd, "key")] = json!(s(cmd, "value"));
                Ok(Value::Null)
            }
            "osd pool delete" => {
                st.pools.remove(&pool);
                Ok(Value::Null)
            }
            "auth get-or-create" => {
                let e = s(cmd, "entity");
                if !st.users.contains_key(&e) {
                    st.key_seq += 1;
                    let caps = caps_of(cmd);
                    let key = format!("AQfake{}==", st.key_seq);
                    st.users.insert(e.clone(), (key, caps));
                }
                let (key, caps) = st.users[&e].clone();
                Ok(json!([{"entity": e, "key": key, "caps": caps}]))
            }
            "auth caps" => {
                let e = s(cmd, "entity");
                let caps = caps_of(cmd);
                let u = st.users.get_mut(&e).ok_or_else(|| not_found(e.clone()))?;
                u.1 = caps;
                Ok(Value::Null)
            }
            "auth import" => {
                let text = String::from_utf8_lossy(input).into_owned();
                let entity = text
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_matches(|c| c == '[' || c == ']')
                    .to_string();
                let mut key = String::new();
                let mut caps = BTreeMap::new();
                for l in text.lines().skip(1) {
                    let l = l.trim();
                    if let Some(k) = l.strip_prefix("key = ") {
                        key = k.to_string();
                    } else if let Some(c) = l.strip_prefix("caps ")
                        && let Some((svc, cap)) = c.split_once(" = ")
                    {
                        caps.insert(svc.to_string(), cap.trim_matches('"').to_string());
                    }
                }
                st.users.insert(entity, (key, caps));
                Ok(Value::Null)
            }
            "auth del" => {
                st.users.remove(&s(cmd, "entity"));
                Ok(Value::Null)
            }
            other => Err(BackendError::Other {
                errno: -22,
                context: format!("fake mon does not know '{other}'"),
            }),
        }
    }
}

fn caps_of(cmd: &Value) -> BTreeMap<String, String> {
    let flat: Vec<String> = cmd["caps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    flat.chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect()
}

impl MonClient for FakeMon {
    fn mon_command(
        &self,
        cmd: &Value,
        input: Vec<u8>,
    ) -> impl Future<Output = Result<MonReply, BackendError>> + Send {
        let result = self.handle(cmd, &input).map(|v| MonReply {
            out: if v.is_null() {
                Vec::new()
            } else {
                v.to_string().into_bytes()
            },
            status: String::new(),
        });
        std::future::ready(result)
    }
}
