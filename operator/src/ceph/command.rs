//! The monitor commands the operator sends, as JSON, each marked as a read or a write.
//!
//! Arguments follow the monitors' command table of Ceph 16 (Pacific); values of `osd pool
//! set` and `set-quota` are strings there, as the CLI sends them.

use serde_json::{Value, json};

/// One monitor command.
#[derive(Clone, Debug, PartialEq)]
pub struct MonCmd {
    pub json: Value,
    /// Does it change cluster state? (Counted; steady state must issue none.)
    pub write: bool,
    /// Keyring text sent as the command's input buffer (`auth import`); never printed.
    pub input: Option<crate::ceph::user::KeyringText>,
}

impl MonCmd {
    pub fn read(json: Value) -> Self {
        Self {
            json,
            write: false,
            input: None,
        }
    }

    pub fn write(json: Value) -> Self {
        Self {
            json,
            write: true,
            input: None,
        }
    }

    pub fn prefix(&self) -> &str {
        self.json
            .get("prefix")
            .and_then(Value::as_str)
            .unwrap_or("?")
    }

    /// A one-line description for logs and plans (never contains key material: keys travel
    /// only in `input`).
    pub fn describe(&self) -> String {
        let mut args: Vec<String> = Vec::new();
        if let Some(obj) = self.json.as_object() {
            for (k, v) in obj {
                if k == "prefix" || k == "format" {
                    continue;
                }
                match v {
                    Value::String(s) => args.push(format!("{k}={s}")),
                    other => args.push(format!("{k}={other}")),
                }
            }
        }
        format!("{} {}", self.prefix(), args.join(" "))
    }
}

// ---- reads ----

pub fn pool_ls_detail() -> MonCmd {
    MonCmd::read(json!({"prefix": "osd pool ls", "detail": "detail", "format": "json"}))
}

pub fn pool_get_all(pool: &str) -> MonCmd {
    MonCmd::read(json!({"prefix": "osd pool get", "pool": pool, "var": "all", "format": "json"}))
}

pub fn crush_rule_dump() -> MonCmd {
    MonCmd::read(json!({"prefix": "osd crush rule dump", "format": "json"}))
}

pub fn ec_profile_get(name: &str) -> MonCmd {
    MonCmd::read(json!({"prefix": "osd erasure-code-profile get", "name": name, "format": "json"}))
}

pub fn auth_get(entity: &str) -> MonCmd {
    MonCmd::read(json!({"prefix": "auth get", "entity": entity, "format": "json"}))
}

pub fn df_detail() -> MonCmd {
    MonCmd::read(json!({"prefix": "df", "detail": "detail", "format": "json"}))
}

pub fn status() -> MonCmd {
    MonCmd::read(json!({"prefix": "status", "format": "json"}))
}

pub fn version() -> MonCmd {
    MonCmd::read(json!({"prefix": "version", "format": "json"}))
}

pub fn pg_ls_by_pool(pool: &str) -> MonCmd {
    MonCmd::read(json!({"prefix": "pg ls-by-pool", "poolstr": pool, "format": "json"}))
}

// ---- writes ----

pub fn crush_rule_create_replicated(
    name: &str,
    root: &str,
    failure_domain: &str,
    device_class: Option<&str>,
) -> MonCmd {
    let mut j = json!({
        "prefix": "osd crush rule create-replicated",
        "name": name, "root": root, "type": failure_domain,
    });
    if let Some(c) = device_class {
        j["class"] = json!(c);
    }
    MonCmd::write(j)
}

pub fn crush_rule_create_erasure(name: &str, profile: &str) -> MonCmd {
    MonCmd::write(json!({
        "prefix": "osd crush rule create-erasure", "name": name, "profile": profile,
    }))
}

pub fn ec_profile_set(name: &str, profile: &[String]) -> MonCmd {
    MonCmd::write(json!({
        "prefix": "osd erasure-code-profile set", "name": name, "profile": profile,
    }))
}

/// Create a replicated pool with its size and `pg_num_min` in the same map update (Pacific
/// takes both at creation; size 1 still needs `mon_allow_pool_size_one`).
pub fn pool_create_replicated(
    pool: &str,
    pg_num: u32,
    rule: &str,
    size: u32,
    pg_num_min: Option<u32>,
) -> MonCmd {
    let mut j = json!({
        "prefix": "osd pool create", "pool": pool, "pg_num": pg_num, "pgp_num": pg_num,
        "pool_type": "replicated", "rule": rule, "size": size,
    });
    if let Some(n) = pg_num_min {
        j["pg_num_min"] = json!(n);
    }
    MonCmd::write(j)
}

/// Create an erasure-coded pool; the monitors make its CRUSH rule (named after the pool) from
/// the profile (naming a rule that does not exist yet is refused).
pub fn pool_create_erasure(
    pool: &str,
    pg_num: u32,
    profile: &str,
    pg_num_min: Option<u32>,
) -> MonCmd {
    let mut j = json!({
        "prefix": "osd pool create", "pool": pool, "pg_num": pg_num, "pgp_num": pg_num,
        "pool_type": "erasure", "erasure_code_profile": profile,
    });
    if let Some(n) = pg_num_min {
        j["pg_num_min"] = json!(n);
    }
    MonCmd::write(j)
}

/// `osd pool set <pool> <var> <val>`; `confirm` adds `--yes-i-really-mean-it` (size 1).
pub fn pool_set(pool: &str, var: &str, val: &str, confirm: bool) -> MonCmd {
    let mut j = json!({"prefix": "osd pool set", "pool": pool, "var": var, "val": val});
    if confirm {
        j["yes_i_really_mean_it"] = json!(true);
    }
    MonCmd::write(j)
}

pub fn pool_set_quota(pool: &str, field: &str, val: u64) -> MonCmd {
    MonCmd::write(json!({
        "prefix": "osd pool set-quota", "pool": pool, "field": field, "val": val.to_string(),
    }))
}

pub fn pool_application_enable(pool: &str, app: &str) -> MonCmd {
    MonCmd::write(json!({
        "prefix": "osd pool application enable", "pool": pool, "app": app,
        "yes_i_really_mean_it": true,
    }))
}

/// `osd pool application set <pool> <app> <key> <value>`: metadata on the application tag.
pub fn pool_application_set(pool: &str, app: &str, key: &str, value: &str) -> MonCmd {
    MonCmd::write(json!({
        "prefix": "osd pool application set", "pool": pool, "app": app, "key": key,
        "value": value,
    }))
}

pub fn pool_delete(pool: &str) -> MonCmd {
    MonCmd::write(json!({
        "prefix": "osd pool delete", "pool": pool, "pool2": pool,
        "yes_i_really_really_mean_it": true,
    }))
}

pub fn crush_rule_rm(name: &str) -> MonCmd {
    MonCmd::write(json!({"prefix": "osd crush rule rm", "name": name}))
}

pub fn ec_profile_rm(name: &str) -> MonCmd {
    MonCmd::write(json!({"prefix": "osd erasure-code-profile rm", "name": name}))
}

/// `auth get-or-create <entity> <caps…>`: returns the keyring (JSON) of the new or existing
/// user.
pub fn auth_get_or_create(entity: &str, caps: &[(String, String)]) -> MonCmd {
    MonCmd::write(json!({
        "prefix": "auth get-or-create", "entity": entity, "caps": flat_caps(caps),
        "format": "json",
    }))
}

pub fn auth_caps(entity: &str, caps: &[(String, String)]) -> MonCmd {
    MonCmd::write(json!({"prefix": "auth caps", "entity": entity, "caps": flat_caps(caps)}))
}

/// `auth import` with a keyring as input: replaces the key (and caps) of an existing user in
/// one step, so rotation never leaves a window without the user.
pub fn auth_import(keyring: crate::ceph::user::KeyringText) -> MonCmd {
    MonCmd {
        json: json!({"prefix": "auth import"}),
        write: true,
        input: Some(keyring),
    }
}

pub fn auth_del(entity: &str) -> MonCmd {
    MonCmd::write(json!({"prefix": "auth del", "entity": entity}))
}

fn flat_caps(caps: &[(String, String)]) -> Vec<String> {
    caps.iter()
        .flat_map(|(svc, cap)| [svc.clone(), cap.clone()])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_the_arguments_and_marks_writes() {
        let c = pool_set("mail", "size", "3", false);
        assert!(c.write);
        assert_eq!(c.describe(), "osd pool set pool=mail val=3 var=size");
        assert!(!pool_ls_detail().write);
        let caps = vec![("mon".to_string(), "allow r".to_string())];
        assert_eq!(
            auth_caps("client.x", &caps).json["caps"],
            json!(["mon", "allow r"])
        );
    }
}
