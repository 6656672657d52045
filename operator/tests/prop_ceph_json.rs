//! Property tests of every Ceph JSON reply the operator parses (issue 8, bad input): each
//! reader of `ceph::observe` (one monitor command + its parser, through `Admin` exactly as
//! the controllers call it) is fed arbitrary bytes, arbitrary JSON, and replies captured
//! from Ceph 16 that are mutated byte-wise and value-wise. Never a panic; a reply that
//! cannot be used is a `CephError::Parse` naming the command, with a message.
//!
//! 4 properties × 1024 cases, each case running all 9 readers: 4,096 cases, 36,864 parses.

use std::future::Future;
use std::sync::OnceLock;

use proptest::prelude::*;
use rbox_core::backend::BackendError;
use rbox_core::rados::MonReply;
use rbox_operator::ceph::{Admin, CephError, MonClient};
use serde_json::{Value, json};

const CASES: u32 = 1024;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(CASES)
    }
}

/// A monitor that answers every command with the same bytes.
struct Canned(Vec<u8>);

impl MonClient for Canned {
    fn mon_command(
        &self,
        _cmd: &Value,
        _input: Vec<u8>,
    ) -> impl Future<Output = Result<MonReply, BackendError>> + Send {
        let out = self.0.clone();
        async move {
            Ok(MonReply {
                out,
                status: String::new(),
            })
        }
    }
}

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    })
}

/// The readers and the command prefix each sends.
const READERS: [(&str, &str); 9] = [
    ("pools", "osd pool ls"),
    ("crush_rules", "osd crush rule dump"),
    ("ec_profile", "osd erasure-code-profile get"),
    ("pool_get_all", "osd pool get"),
    ("usage", "df"),
    ("health", "status"),
    ("version", "version"),
    ("pg_states", "pg ls-by-pool"),
    ("user", "auth get"),
];

/// Run one reader on `reply`; `Ok(())` when it produced a value, the error otherwise.
async fn read(reader: &str, reply: &[u8]) -> Result<(), CephError> {
    let admin = Admin::new(Canned(reply.to_vec()), None);
    match reader {
        "pools" => admin.pools().await.map(drop),
        "crush_rules" => admin.crush_rules().await.map(drop),
        "ec_profile" => admin.ec_profile("p").await.map(drop),
        "pool_get_all" => admin.pool_get_all("mail").await.map(drop),
        "usage" => admin.usage().await.map(drop),
        "health" => admin.health().await.map(drop),
        "version" => admin.version().await.map(drop),
        "pg_states" => admin.pg_states("mail").await.map(drop),
        "user" => admin.user("client.x").await.map(drop),
        other => panic!("no reader {other}"),
    }
}

/// Every reader on `reply`: no panic, and every failure is a clear parse error.
fn all_readers(reply: &[u8]) -> Result<(), TestCaseError> {
    let is_json = serde_json::from_slice::<Value>(reply).is_ok();
    for (reader, prefix) in READERS {
        let r = rt().block_on(read(reader, reply));
        match r {
            Ok(()) => prop_assert!(is_json, "{reader} accepted a reply that is not JSON"),
            Err(CephError::Parse { prefix: p, message }) => {
                prop_assert_eq!(p.as_str(), prefix, "{} names its command", reader);
                prop_assert!(!message.is_empty(), "{} says why", reader);
                if !is_json {
                    prop_assert!(message.starts_with("not JSON"), "{reader}: {message}");
                }
                let shown = CephError::Parse {
                    prefix: p.clone(),
                    message: message.clone(),
                }
                .to_string();
                prop_assert!(shown.contains(prefix), "{shown}");
            }
            Err(e) => prop_assert!(false, "{reader}: not a parse error: {e:?}"),
        }
    }
    Ok(())
}

/// Replies as Ceph 16 sends them, one per reader.
fn captured() -> Vec<Value> {
    vec![
        json!([{
            "pool_id": 3, "pool_name": "mail", "flags": 1, "flags_names": "hashpspool,bulk",
            "type": 1, "size": 3, "min_size": 2, "crush_rule": 1, "pg_num": 8,
            "quota_max_bytes": 1024, "quota_max_objects": 0, "erasure_code_profile": "",
            "options": {"compression_mode": "aggressive", "target_size_ratio": 0.2},
            "application_metadata": {"rbox": {}}
        }]),
        json!([{"rule_id": 1, "rule_name": "r_ssd", "type": 1, "steps": [
            {"op": "take", "item": -2, "item_name": "default~ssd"},
            {"op": "choose_firstn", "num": 0, "type": "osd"}, {"op": "emit"}]}]),
        json!({"k": "2", "m": "1", "plugin": "jerasure", "technique": "reed_sol_van",
               "crush-failure-domain": "osd", "crush-root": "default", "crush-device-class": ""}),
        json!({"pool": "mail", "pool_id": 3, "size": 3, "min_size": 2, "pg_num": 8,
               "crush_rule": "replicated_rule", "compression_mode": "aggressive"}),
        json!({"stats": {"total_bytes": 100, "total_avail_bytes": 90},
               "pools": [{"name": "mail", "id": 3,
                          "stats": {"stored": 100, "objects": 2, "max_avail": 1000}}]}),
        json!({"fsid": "f", "health": {"status": "HEALTH_WARN", "checks": {
                "POOL_NEARFULL": {"severity": "HEALTH_WARN",
                                  "summary": {"message": "1 pool nearfull"}}}},
               "pgmap": {"bytes_total": 100, "bytes_used": 10, "bytes_avail": 90}}),
        json!({"version": "ceph version 16.2.11 (3cf40e2dca667f68c6ce3ff5cd94f01e711af894) pacific (stable)"}),
        json!({"pg_ready": true, "pg_stats": [
            {"state": "active+clean", "stat_sum": {"num_large_omap_objects": 1}},
            {"state": "peering"}]}),
        json!([{"entity": "client.x", "key": "AQBvaFZlAAAAABAAdGVzdHRlc3R0ZXN0dGVzdA==",
                "caps": {"mon": "allow r", "osd": "allow rw pool=mail"}}]),
    ]
}

/// Keys the parsers look up, so generated objects reach the interesting paths.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "pool_name", "pool_id", "type", "size", "min_size", "crush_rule", "pg_num",
            "flags_names", "options", "application_metadata", "quota_max_bytes", "steps",
            "op", "item_name", "rule_id", "rule_name", "k", "m", "crush-failure-domain",
            "pools", "stats", "stored", "objects", "max_avail", "name", "health", "status",
            "checks", "summary", "message", "severity", "pgmap", "bytes_total", "fsid",
            "version", "pg_stats", "state", "stat_sum", "num_large_omap_objects", "entity",
            "key", "caps",
        ]).prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replace the `pick`-th node (pre-order) of `v` with `new`.
fn replace_nth(v: &mut Value, pick: &mut usize, new: &Value) -> bool {
    if *pick == 0 {
        *v = new.clone();
        return true;
    }
    *pick -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| replace_nth(x, pick, new)),
        Value::Object(o) => o.values_mut().any(|x| replace_nth(x, pick, new)),
        _ => false,
    }
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_1024(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        all_readers(&bytes)?;
    }

    #[test]
    fn arbitrary_json_1024(v in arb_json()) {
        all_readers(&serde_json::to_vec(&v).expect("encodes"))?;
    }

    #[test]
    fn captured_replies_mutated_bytewise_1024(
        which in 0usize..9,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut b = serde_json::to_vec(&captured()[which]).expect("encodes");
        for (at, byte, how) in edits {
            if b.is_empty() { break; }
            let i = at.index(b.len());
            match how {
                0 => b[i] = byte,
                1 => b.insert(i, byte),
                _ => { b.remove(i); }
            }
        }
        if let Some(c) = cut && !b.is_empty() {
            b.truncate(c.index(b.len()));
        }
        all_readers(&b)?;
    }

    #[test]
    fn captured_replies_with_a_value_replaced_1024(
        which in 0usize..9,
        at in any::<prop::sample::Index>(),
        new in arb_json(),
    ) {
        let mut v = captured()[which].clone();
        let mut pick = at.index(count(&v));
        replace_nth(&mut v, &mut pick, &new);
        all_readers(&serde_json::to_vec(&v).expect("encodes"))?;
    }
}

/// The captured replies parse (the mutations start from something the readers accept).
#[test]
fn captured_replies_are_accepted() {
    for (i, v) in captured().iter().enumerate() {
        let (reader, _) = READERS[i];
        rt().block_on(read(reader, &serde_json::to_vec(v).unwrap()))
            .unwrap_or_else(|e| panic!("{reader}: {e}"));
    }
}
