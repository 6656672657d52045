//! A desired pool and the pure planner: (desired, observed) → the monitor commands that make
//! Ceph match, or an error naming why an existing pool cannot be adopted. An empty plan means
//! nothing differs — the reason an unchanged MailPool reconciles with zero Ceph writes.

use std::collections::BTreeMap;

use super::APPLICATION;
use super::command::{self, MonCmd};
use super::error::CephError;
use super::observe::{CrushRule, EcProfile, ObservedPool, TYPE_ERASURE, TYPE_REPLICATED};

/// Replicated or erasure-coded.
#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    Replicated { size: u32, min_size: Option<u32> },
    Erasure { k: u32, m: u32, profile: String },
}

/// One pool as the spec wants it. Optional fields are left as Ceph has them when `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredPool {
    pub name: String,
    pub layout: Layout,
    pub device_class: Option<String>,
    pub failure_domain: String,
    pub crush_root: String,
    pub compression_mode: Option<String>,
    pub compression_algorithm: Option<String>,
    /// 0 = no quota.
    pub quota_max_bytes: u64,
    pub quota_max_objects: u64,
    /// PG count at creation only (the autoscaler owns it afterwards).
    pub pg_num: u32,
    pub pg_num_min: Option<u32>,
    pub target_size_ratio: Option<f64>,
    pub bulk: Option<bool>,
    /// Free-form `osd pool set` properties.
    pub parameters: BTreeMap<String, String>,
    /// Recorded on a pool this plan creates (the MailPool's uid), never on an adopted one.
    pub owner: Option<String>,
}

/// Properties the typed fields own: free-form parameters may not set them (two owners of one
/// value would fight on every reconcile).
pub const RESERVED_PARAMETERS: &[&str] = &[
    "size",
    "min_size",
    "crush_rule",
    "pg_num",
    "pgp_num",
    "compression_mode",
    "compression_algorithm",
    "target_size_ratio",
    "pg_num_min",
    "bulk",
    "allow_ec_overwrites",
    "erasure_code_profile",
];

/// Pool options stored as strings: `osd pool set <p> <opt> unset` removes them. Numeric
/// options are removed by setting 0.
const STRING_OPTIONS: &[&str] = &[
    "compression_mode",
    "compression_algorithm",
    "fingerprint_algorithm",
    "dedup_tier",
];

impl DesiredPool {
    /// A replicated pool under the `default` root with nothing else asked for (8 PGs).
    pub fn replicated(name: &str, size: u32, failure_domain: &str) -> Self {
        Self {
            name: name.into(),
            layout: Layout::Replicated {
                size,
                min_size: None,
            },
            device_class: None,
            failure_domain: failure_domain.into(),
            crush_root: "default".into(),
            compression_mode: None,
            compression_algorithm: None,
            quota_max_bytes: 0,
            quota_max_objects: 0,
            pg_num: 8,
            pg_num_min: None,
            target_size_ratio: None,
            bulk: None,
            parameters: BTreeMap::new(),
            owner: None,
        }
    }

    /// Name of the replicated CRUSH rule this placement needs. Named by content, so pools
    /// with the same placement share one rule and a rule is never rewritten under a pool.
    pub fn rule_name(&self) -> String {
        let mut n = format!("rbox-{}-{}", self.crush_root, self.failure_domain);
        if let Some(c) = &self.device_class {
            n.push('-');
            n.push_str(c);
        }
        n
    }

    fn rule_matches(&self, r: &CrushRule) -> bool {
        r.root == self.crush_root
            && r.failure_domain == self.failure_domain
            && r.device_class == self.device_class
    }

    /// The `osd erasure-code-profile set` arguments.
    pub fn ec_profile_args(&self) -> Vec<String> {
        let Layout::Erasure { k, m, .. } = &self.layout else {
            return Vec::new();
        };
        let mut a = vec![
            format!("k={k}"),
            format!("m={m}"),
            format!("crush-failure-domain={}", self.failure_domain),
            format!("crush-root={}", self.crush_root),
        ];
        if let Some(c) = &self.device_class {
            a.push(format!("crush-device-class={c}"));
        }
        a
    }
}

/// What Ceph has that concerns one desired pool.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    pub pool: Option<&'a ObservedPool>,
    pub rules: &'a [CrushRule],
    /// The EC profile the pool uses (existing pool) or would use (new pool), if it exists.
    pub ec_profile: Option<&'a EcProfile>,
    /// `osd pool get <pool> all`, read only when free-form parameters are in play.
    pub pool_all: Option<&'a BTreeMap<String, String>>,
}

/// The commands for one pool, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolPlan {
    pub commands: Vec<MonCmd>,
    /// The plan creates the pool (it did not exist).
    pub creates_pool: bool,
    /// The plan creates the EC profile.
    pub creates_profile: bool,
}

impl PoolPlan {
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

fn incompatible(pool: &str, why: impl Into<String>) -> CephError {
    CephError::Incompatible {
        what: format!("pool {pool}"),
        why: why.into(),
    }
}

/// Plan `desired` against what Ceph has. `restore` holds free-form parameters removed from the
/// spec, with the value to put back (`None`: the property was unset before the operator set it).
pub fn plan_pool(
    d: &DesiredPool,
    o: &Observed<'_>,
    restore: &BTreeMap<String, Option<String>>,
) -> Result<PoolPlan, CephError> {
    let mut plan = PoolPlan::default();
    let cmds = &mut plan.commands;
    let p = &d.name;
    match (&d.layout, o.pool) {
        (Layout::Replicated { size, min_size }, None) => {
            ensure_rule(d, o.rules, cmds)?;
            cmds.push(command::pool_create_replicated(
                p,
                d.pg_num,
                &d.rule_name(),
                *size,
                d.pg_num_min,
            ));
            if let Some(ms) = min_size {
                cmds.push(command::pool_set(p, "min_size", &ms.to_string(), false));
            }
            plan.creates_pool = true;
        }
        (Layout::Replicated { size, min_size }, Some(cur)) => {
            if cur.pool_type != TYPE_REPLICATED {
                return Err(incompatible(
                    p,
                    format!(
                        "it is erasure-coded (profile {}), the spec asks for a replicated pool",
                        cur.erasure_code_profile
                    ),
                ));
            }
            let current_rule = o.rules.iter().find(|r| r.id == cur.crush_rule);
            if !current_rule.is_some_and(|r| d.rule_matches(r)) {
                ensure_rule(d, o.rules, cmds)?;
                cmds.push(command::pool_set(p, "crush_rule", &d.rule_name(), false));
            }
            if cur.size != *size {
                cmds.push(command::pool_set(p, "size", &size.to_string(), *size == 1));
            }
            if let Some(ms) = min_size
                && cur.min_size != *ms
            {
                cmds.push(command::pool_set(p, "min_size", &ms.to_string(), false));
            }
        }
        (Layout::Erasure { k, m, profile }, None) => {
            match o.ec_profile {
                None => {
                    cmds.push(command::ec_profile_set(profile, &d.ec_profile_args()));
                    plan.creates_profile = true;
                }
                Some(have) => check_profile(p, profile, have, *k, *m, d)?,
            }
            cmds.push(command::pool_create_erasure(
                p,
                d.pg_num,
                profile,
                d.pg_num_min,
            ));
            // Chunked mail writes append; EC pools refuse partial writes without this.
            cmds.push(command::pool_set(p, "allow_ec_overwrites", "true", false));
            plan.creates_pool = true;
        }
        (Layout::Erasure { k, m, .. }, Some(cur)) => {
            if cur.pool_type != TYPE_ERASURE {
                return Err(incompatible(
                    p,
                    "it is replicated, the spec asks for an erasure-coded pool",
                ));
            }
            let have = o.ec_profile.ok_or_else(|| {
                incompatible(
                    p,
                    format!(
                        "its erasure-code profile {} cannot be read",
                        cur.erasure_code_profile
                    ),
                )
            })?;
            check_profile(p, &cur.erasure_code_profile, have, *k, *m, d)?;
            if !cur.has_flag("ec_overwrites") {
                cmds.push(command::pool_set(p, "allow_ec_overwrites", "true", false));
            }
        }
    }
    plan_common(d, o, restore, &mut plan)?;
    Ok(plan)
}

/// Make sure the replicated rule exists; a rule of that name with another placement is
/// someone else's and is never rewritten.
fn ensure_rule(
    d: &DesiredPool,
    rules: &[CrushRule],
    cmds: &mut Vec<MonCmd>,
) -> Result<(), CephError> {
    let name = d.rule_name();
    match rules.iter().find(|r| r.name == name) {
        Some(r) if d.rule_matches(r) => Ok(()),
        Some(r) => Err(CephError::Incompatible {
            what: format!("CRUSH rule {name}"),
            why: format!(
                "it exists with root {} failure domain {} device class {:?}",
                r.root, r.failure_domain, r.device_class
            ),
        }),
        None => {
            cmds.push(command::crush_rule_create_replicated(
                &name,
                &d.crush_root,
                &d.failure_domain,
                d.device_class.as_deref(),
            ));
            Ok(())
        }
    }
}

fn check_profile(
    pool: &str,
    name: &str,
    have: &EcProfile,
    k: u32,
    m: u32,
    d: &DesiredPool,
) -> Result<(), CephError> {
    let mut diffs = Vec::new();
    if have.k != k || have.m != m {
        diffs.push(format!("k={} m={} (spec: k={k} m={m})", have.k, have.m));
    }
    if have.failure_domain != d.failure_domain {
        diffs.push(format!(
            "failure domain {} (spec: {})",
            have.failure_domain, d.failure_domain
        ));
    }
    if have.device_class != d.device_class {
        diffs.push(format!(
            "device class {:?} (spec: {:?})",
            have.device_class, d.device_class
        ));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(incompatible(
            pool,
            format!("erasure-code profile {name} has {}", diffs.join(", ")),
        ))
    }
}

fn plan_common(
    d: &DesiredPool,
    o: &Observed<'_>,
    restore: &BTreeMap<String, Option<String>>,
    plan: &mut PoolPlan,
) -> Result<(), CephError> {
    let p = &d.name;
    let empty = ObservedPool {
        id: -1,
        name: p.clone(),
        pool_type: 0,
        size: 0,
        min_size: 0,
        crush_rule: -1,
        erasure_code_profile: String::new(),
        pg_num: 0,
        quota_max_bytes: 0,
        quota_max_objects: 0,
        flags: Vec::new(),
        options: BTreeMap::new(),
        applications: Vec::new(),
        owner: None,
    };
    // A new pool starts with what its create command set.
    let mut empty = empty;
    if let Some(n) = d.pg_num_min {
        empty
            .options
            .insert("pg_num_min".into(), serde_json::json!(n));
    }
    let cur = o.pool.unwrap_or(&empty);
    let cmds = &mut plan.commands;

    let foreign: Vec<&String> = cur
        .applications
        .iter()
        .filter(|a| a.as_str() != APPLICATION)
        .collect();
    if !foreign.is_empty() {
        return Err(incompatible(
            p,
            format!("it is tagged for application(s) {foreign:?}, not {APPLICATION}"),
        ));
    }
    if !cur.applications.iter().any(|a| a == APPLICATION) {
        cmds.push(command::pool_application_enable(p, APPLICATION));
    }
    if o.pool.is_none()
        && let Some(owner) = &d.owner
    {
        cmds.push(command::pool_application_set(
            p,
            APPLICATION,
            super::observe::OWNER_KEY,
            owner,
        ));
    }
    if cur.quota_max_bytes != d.quota_max_bytes {
        cmds.push(command::pool_set_quota(p, "max_bytes", d.quota_max_bytes));
    }
    if cur.quota_max_objects != d.quota_max_objects {
        cmds.push(command::pool_set_quota(
            p,
            "max_objects",
            d.quota_max_objects,
        ));
    }
    for (key, want) in [
        ("compression_mode", &d.compression_mode),
        ("compression_algorithm", &d.compression_algorithm),
    ] {
        if let Some(w) = want
            && cur.option_str(key).as_deref() != Some(w.as_str())
        {
            cmds.push(command::pool_set(p, key, w, false));
        }
    }
    if let Some(n) = d.pg_num_min
        && cur.option_str("pg_num_min") != Some(n.to_string())
    {
        cmds.push(command::pool_set(p, "pg_num_min", &n.to_string(), false));
    }
    if let Some(r) = d.target_size_ratio {
        let have = cur
            .option_str("target_size_ratio")
            .and_then(|s| s.parse::<f64>().ok());
        if !have.is_some_and(|h| (h - r).abs() < 1e-9) {
            cmds.push(command::pool_set(
                p,
                "target_size_ratio",
                &r.to_string(),
                false,
            ));
        }
    }
    if let Some(b) = d.bulk
        && cur.has_flag("bulk") != b
    {
        cmds.push(command::pool_set(p, "bulk", &b.to_string(), false));
    }
    for (key, want) in &d.parameters {
        let have = o.pool_all.and_then(|a| a.get(key)).map(String::as_str);
        if !equivalent(have, want) {
            cmds.push(command::pool_set(p, key, want, false));
        }
    }
    for (key, back) in restore {
        if d.parameters.contains_key(key) {
            continue;
        }
        let have = o.pool_all.and_then(|a| a.get(key)).map(String::as_str);
        match back {
            Some(v) if !equivalent(have, v) => cmds.push(command::pool_set(p, key, v, false)),
            None if have.is_some() => cmds.push(command::pool_set(p, key, unset_value(key), false)),
            _ => {}
        }
    }
    Ok(())
}

/// The value that removes a pool option.
pub fn unset_value(key: &str) -> &'static str {
    if STRING_OPTIONS.contains(&key) {
        "unset"
    } else {
        "0"
    }
}

/// Does Ceph's `have` mean the same as the spec's `want`? Booleans and numbers are compared by
/// meaning (`1` = `true`, `0.50` = `0.5`), so a spec spelled differently does not write on
/// every reconcile.
pub fn equivalent(have: Option<&str>, want: &str) -> bool {
    let Some(have) = have else {
        return false;
    };
    if have == want {
        return true;
    }
    let as_bool = |s: &str| match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    };
    if matches!(have, "true" | "false")
        && let (Some(a), Some(b)) = (as_bool(have), as_bool(want))
    {
        return a == b;
    }
    match (have.parse::<f64>(), want.parse::<f64>()) {
        (Ok(a), Ok(b)) => (a - b).abs() < 1e-9,
        _ => false,
    }
}

/// Track which free-form parameters the operator set, and what they were before, so a
/// parameter removed from the spec is put back. `baseline` (kept in status) maps each
/// managed key to its value before the operator first set it (`None`: was unset).
/// Returns the new baseline and the keys to restore now.
pub fn track_parameters(
    spec: &BTreeMap<String, String>,
    baseline: &BTreeMap<String, Option<String>>,
    pool_all: Option<&BTreeMap<String, String>>,
) -> (
    BTreeMap<String, Option<String>>,
    BTreeMap<String, Option<String>>,
) {
    let mut next = BTreeMap::new();
    for key in spec.keys() {
        let before = match baseline.get(key) {
            Some(b) => b.clone(),
            None => pool_all.and_then(|a| a.get(key)).cloned(),
        };
        next.insert(key.clone(), before);
    }
    let restore = baseline
        .iter()
        .filter(|(k, _)| !spec.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (next, restore)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn replicated(size: u32) -> DesiredPool {
        DesiredPool::replicated("mail", size, "osd")
    }

    fn rule(id: i64, name: &str, fd: &str, class: Option<&str>) -> CrushRule {
        CrushRule {
            id,
            name: name.into(),
            rule_type: 1,
            root: "default".into(),
            device_class: class.map(str::to_string),
            failure_domain: fd.into(),
        }
    }

    fn existing(d: &DesiredPool, rule_id: i64) -> ObservedPool {
        let size = match d.layout {
            Layout::Replicated { size, .. } => size,
            Layout::Erasure { k, m, .. } => k + m,
        };
        ObservedPool {
            id: 5,
            name: d.name.clone(),
            pool_type: TYPE_REPLICATED,
            size,
            min_size: 1,
            crush_rule: rule_id,
            erasure_code_profile: String::new(),
            pg_num: 8,
            quota_max_bytes: d.quota_max_bytes,
            quota_max_objects: d.quota_max_objects,
            flags: vec!["hashpspool".into()],
            options: BTreeMap::new(),
            applications: vec![APPLICATION.into()],
            owner: None,
        }
    }

    fn prefixes(p: &PoolPlan) -> Vec<String> {
        p.commands.iter().map(MonCmd::describe).collect()
    }

    #[test]
    fn new_replicated_pool_creates_rule_pool_size_app_and_quota() {
        let mut d = replicated(1);
        d.quota_max_bytes = 1 << 30;
        let plan = plan_pool(
            &d,
            &Observed {
                pool: None,
                rules: &[],
                ec_profile: None,
                pool_all: None,
            },
            &BTreeMap::new(),
        )
        .unwrap();
        assert!(plan.creates_pool);
        assert_eq!(
            prefixes(&plan),
            [
                "osd crush rule create-replicated name=rbox-default-osd root=default type=osd",
                "osd pool create pg_num=8 pgp_num=8 pool=mail pool_type=replicated rule=rbox-default-osd size=1",
                "osd pool application enable app=rbox pool=mail yes_i_really_mean_it=true",
                "osd pool set-quota field=max_bytes pool=mail val=1073741824",
            ]
        );
    }

    #[test]
    fn matching_pool_plans_nothing() {
        let mut d = replicated(1);
        d.compression_mode = Some("aggressive".into());
        d.target_size_ratio = Some(0.2);
        d.pg_num_min = Some(8);
        d.bulk = Some(true);
        d.parameters.insert("nodeep-scrub".into(), "1".into());
        let rules = [rule(2, "rbox-default-osd", "osd", None)];
        let mut pool = existing(&d, 2);
        pool.options
            .insert("compression_mode".into(), json!("aggressive"));
        pool.options.insert("target_size_ratio".into(), json!(0.2));
        pool.options.insert("pg_num_min".into(), json!(8));
        pool.flags.push("bulk".into());
        let all = BTreeMap::from([("nodeep-scrub".to_string(), "true".to_string())]);
        let plan = plan_pool(
            &d,
            &Observed {
                pool: Some(&pool),
                rules: &rules,
                ec_profile: None,
                pool_all: Some(&all),
            },
            &BTreeMap::new(),
        )
        .unwrap();
        assert!(plan.is_empty(), "{:?}", prefixes(&plan));
    }

    #[test]
    fn changed_size_quota_and_placement_are_followed() {
        let mut d = replicated(2);
        d.quota_max_objects = 1000;
        d.device_class = Some("ssd".into());
        let rules = [rule(0, "replicated_rule", "host", None)];
        let pool = ObservedPool {
            size: 1,
            quota_max_objects: 0,
            ..existing(&d, 0)
        };
        let plan = plan_pool(
            &d,
            &Observed {
                pool: Some(&pool),
                rules: &rules,
                ec_profile: None,
                pool_all: None,
            },
            &BTreeMap::new(),
        )
        .unwrap();
        assert!(!plan.creates_pool);
        assert_eq!(
            prefixes(&plan),
            [
                "osd crush rule create-replicated class=ssd name=rbox-default-osd-ssd root=default type=osd",
                "osd pool set pool=mail val=rbox-default-osd-ssd var=crush_rule",
                "osd pool set pool=mail val=2 var=size",
                "osd pool set-quota field=max_objects pool=mail val=1000",
            ]
        );
    }

    #[test]
    fn erasure_spec_on_replicated_pool_is_refused_with_the_difference() {
        let mut d = replicated(1);
        let pool = existing(&d, 0);
        d.layout = Layout::Erasure {
            k: 2,
            m: 1,
            profile: "mail_ec".into(),
        };
        let err = plan_pool(
            &d,
            &Observed {
                pool: Some(&pool),
                rules: &[],
                ec_profile: None,
                pool_all: None,
            },
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(matches!(err, CephError::Incompatible { .. }));
        assert!(err.to_string().contains("it is replicated"), "{err}");
    }

    #[test]
    fn different_k_m_is_refused() {
        let mut d = replicated(1);
        d.layout = Layout::Erasure {
            k: 4,
            m: 2,
            profile: "p".into(),
        };
        let pool = ObservedPool {
            pool_type: TYPE_ERASURE,
            erasure_code_profile: "p".into(),
            flags: vec!["ec_overwrites".into()],
            ..existing(&d, 0)
        };
        let prof = EcProfile {
            k: 2,
            m: 1,
            failure_domain: "osd".into(),
            root: "default".into(),
            ..Default::default()
        };
        let err = plan_pool(
            &d,
            &Observed {
                pool: Some(&pool),
                rules: &[],
                ec_profile: Some(&prof),
                pool_all: None,
            },
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("k=2 m=1 (spec: k=4 m=2)"), "{err}");
    }

    #[test]
    fn new_erasure_pool_gets_profile_and_overwrites() {
        let mut d = replicated(1);
        d.layout = Layout::Erasure {
            k: 2,
            m: 1,
            profile: "mail_ec".into(),
        };
        let plan = plan_pool(
            &d,
            &Observed {
                pool: None,
                rules: &[],
                ec_profile: None,
                pool_all: None,
            },
            &BTreeMap::new(),
        )
        .unwrap();
        assert!(plan.creates_profile && plan.creates_pool);
        let p = prefixes(&plan);
        assert!(
            p[0].starts_with("osd erasure-code-profile set name=mail_ec"),
            "{p:?}"
        );
        assert!(p[1].contains("pool_type=erasure"));
        assert!(p[2].contains("var=allow_ec_overwrites"));
    }

    #[test]
    fn foreign_application_is_not_adopted() {
        let d = replicated(1);
        let mut pool = existing(&d, 0);
        pool.applications = vec!["rgw".into()];
        let err = plan_pool(
            &d,
            &Observed {
                pool: Some(&pool),
                rules: &[rule(0, "rbox-default-osd", "osd", None)],
                ec_profile: None,
                pool_all: None,
            },
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("rgw"), "{err}");
    }

    #[test]
    fn removed_parameters_are_restored_or_unset() {
        let spec = BTreeMap::from([("nodeep-scrub".to_string(), "true".to_string())]);
        let all = BTreeMap::from([("nodeep-scrub".to_string(), "false".to_string())]);
        let (base, restore) = track_parameters(&spec, &BTreeMap::new(), Some(&all));
        assert_eq!(base.get("nodeep-scrub"), Some(&Some("false".to_string())));
        assert!(restore.is_empty());
        // Later: the key is gone from the spec; a recorded unset option goes with it.
        let mut baseline = base;
        baseline.insert("csum_min_block".into(), None);
        let (next, restore) = track_parameters(&BTreeMap::new(), &baseline, None);
        assert!(next.is_empty());
        let d = replicated(1);
        let pool = existing(&d, 2);
        let now = BTreeMap::from([
            ("nodeep-scrub".to_string(), "true".to_string()),
            ("csum_min_block".to_string(), "4096".to_string()),
        ]);
        let plan = plan_pool(
            &d,
            &Observed {
                pool: Some(&pool),
                rules: &[rule(2, "rbox-default-osd", "osd", None)],
                ec_profile: None,
                pool_all: Some(&now),
            },
            &restore,
        )
        .unwrap();
        assert_eq!(
            prefixes(&plan),
            [
                "osd pool set pool=mail val=0 var=csum_min_block",
                "osd pool set pool=mail val=false var=nodeep-scrub",
            ]
        );
    }

    #[test]
    fn equivalence_by_meaning() {
        assert!(equivalent(Some("true"), "1"));
        assert!(equivalent(Some("0.5"), "0.50"));
        assert!(!equivalent(Some("false"), "true"));
        assert!(!equivalent(None, "x"));
        assert!(equivalent(Some("on"), "on"));
    }

    #[test]
    fn the_owner_is_recorded_on_created_pools_only() {
        let mut d = replicated(1);
        d.owner = Some("uid-7".into());
        let none = Observed {
            pool: None,
            rules: &[],
            ec_profile: None,
            pool_all: None,
        };
        let plan = plan_pool(&d, &none, &BTreeMap::new()).unwrap();
        let last = plan.commands.last().unwrap().describe();
        assert_eq!(
            last,
            "osd pool application set app=rbox key=owner pool=mail value=uid-7"
        );
        // An existing pool (adopted, no owner) never gets one.
        let rules = [rule(2, "rbox-default-osd", "osd", None)];
        let pool = existing(&d, 2);
        let plan = plan_pool(
            &d,
            &Observed {
                pool: Some(&pool),
                ..none
            },
            &BTreeMap::new(),
        );
        let _ = rules;
        assert!(
            plan.unwrap()
                .commands
                .iter()
                .all(|c| c.prefix() != "osd pool application set")
        );
    }
}
