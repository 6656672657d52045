//! Property tests of every parser: arbitrary input never panics, valid values round-trip,
//! and decoders are canonical (whatever decodes re-encodes to the same bytes).
//!
//! Case counts are in the test names; a full run executes 2 × 4096 + 10 × 2048 + 6 × 1024
//! = 34,816 cases (plus 2 × 1024 of the `rbox` command line in `src/cli/args.rs`).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rbox_core::format::cfg::{KEYS, RboxConfig};
use rbox_core::format::date::{format_date, parse_date};
use rbox_core::format::flags::{FlagsByte, MailFlags};
use rbox_core::format::guid::{Guid128, MailGuid};
use rbox_core::format::metadata::{
    MailMetadata, decode_keywords, decode_text, encode_keywords, ima,
};
use rbox_core::format::namespace::{decode_mapping, encode_mapping, user_key};
use rbox_core::format::query::Query;
use rbox_core::format::recovery_index;
use rbox_core::index::format::{MailRecord, MailboxHeader, MailboxRecord, MailboxState};

/// No regression files: the targets stay corpus-free; a failure prints its minimal input.
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(n)
    }
}

fn guid() -> impl Strategy<Value = Guid128> {
    any::<[u8; 16]>().prop_map(Guid128)
}

/// Text as librmb can store it: no NUL.
fn text() -> impl Strategy<Value = String> {
    "[^\\x00]{0,40}"
}

fn mail_guid() -> impl Strategy<Value = MailGuid> {
    prop_oneof![
        guid().prop_map(MailGuid::Compact),
        guid().prop_map(MailGuid::Dashed),
        "[^\\x00]{1,40}".prop_map(|s| MailGuid::parse(&s)),
    ]
}

fn keyword() -> impl Strategy<Value = String> {
    "[A-Za-z0-9$_.+-]{1,20}"
}

fn metadata() -> impl Strategy<Value = MailMetadata> {
    (
        (
            proptest::option::of(guid()),
            proptest::option::of(mail_guid()),
            proptest::option::of(text()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(0i64..=i64::MAX),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
        ),
        (
            proptest::option::of(text()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(any::<u8>().prop_map(FlagsByte::from_mask)),
            proptest::option::of(any::<u8>().prop_map(FlagsByte::from_mask)),
            proptest::option::of(0i64..=i64::MAX),
        ),
    )
        .prop_map(
            |((m, g, p, o, r, z, v), (b, u, i, a, c, f, s))| MailMetadata {
                mailbox_guid: m,
                guid: g,
                pop3_uidl: p,
                pop3_order: o,
                received: r,
                physical_size: z,
                virtual_size: v,
                orig_mailbox: b,
                uid: u,
                version: i,
                from_envelope: a,
                pvt_flags: c,
                flags: f,
                save_time: s,
                ext_ref: None,
                other: BTreeMap::new(),
            },
        )
}

fn record() -> impl Strategy<Value = MailRecord> {
    (
        guid(),
        mail_guid(),
        0u8..=0x3f,
        proptest::collection::vec(keyword(), 0..5),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<i64>(),
        any::<i64>(),
    )
        .prop_map(
            |(oid, guid, flags, keywords, modseq, z, v, r, s)| MailRecord {
                oid,
                guid,
                flags: MailFlags(flags),
                keywords,
                modseq,
                physical_size: z,
                virtual_size: v,
                received: r,
                saved: s,
            },
        )
}

fn xattrs() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    proptest::collection::btree_map(
        prop_oneof![
            "[MGPORZVXBUIACEFKS ]".prop_map(String::from),
            "[a-z]{0,4}".prop_map(String::from),
        ],
        proptest::collection::vec(any::<u8>(), 0..48),
        0..12,
    )
}

/// Whatever decodes as an index value (mail record, mailbox header, mailbox-list record)
/// re-encodes to the very same bytes.
fn index_values_are_canonical(v: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(r) = MailRecord::decode(v) {
        prop_assert_eq!(&r.encode()[..], v);
    }
    if let Ok(h) = MailboxHeader::decode(v) {
        prop_assert_eq!(&h.encode()[..], v);
    }
    if let Ok(m) = MailboxRecord::decode(v) {
        prop_assert_eq!(&m.encode()[..], v);
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(4096))]

    #[test]
    fn metadata_decode_never_panics_4096_cases(x in xattrs()) {
        let (m, errors) = MailMetadata::decode_lenient(&x);
        // Whatever decoded cleanly re-encodes to exactly the stored bytes, except legacy
        // values without NUL (which gain one).
        if errors.is_empty() {
            for (k, v) in m.encode() {
                let orig = &x[&k];
                prop_assert!(v == *orig || (v.last() == Some(&0) && v[..v.len() - 1] == orig[..]),
                    "{k}: {orig:?} -> {v:?}");
            }
        }
    }

    #[test]
    fn metadata_round_trips_4096_cases(m in metadata()) {
        let x = m.encode();
        for v in x.values() {
            prop_assert_eq!(v.last(), Some(&0u8), "every value ends with NUL");
        }
        prop_assert_eq!(MailMetadata::decode(&x).unwrap(), m);
    }
}

proptest! {
    #![proptest_config(cases(2048))]

    #[test]
    fn text_and_flags_values_never_panic_2048_cases(v in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_text(&v);
        if let Ok(f) = FlagsByte::decode(&v) {
            prop_assert_eq!(FlagsByte::decode(&f.encode()).unwrap(), f);
        }
    }

    #[test]
    fn keywords_round_trip_2048_cases(kw in proptest::collection::vec(keyword(), 0..12),
                                      junk in proptest::collection::btree_map(".{0,6}", proptest::collection::vec(any::<u8>(), 0..10), 0..6)) {
        prop_assert_eq!(decode_keywords(&encode_keywords(&kw)).unwrap(), kw.clone());
        let _ = decode_keywords(&junk);
        let m = MailMetadata { uid: Some(1), ..Default::default() };
        let (back, kw2) = ima::decode(&ima::encode(&m, &kw)).unwrap();
        prop_assert_eq!(back, m);
        prop_assert_eq!(kw2, kw);
    }

    #[test]
    fn ima_json_never_panics_2048_cases(v in proptest::collection::vec(any::<u8>(), 0..80), s in ".{0,80}") {
        let _ = ima::decode(&v);
        let _ = ima::decode(s.as_bytes());
    }

    #[test]
    fn cfg_parse_never_panics_2048_cases(v in proptest::collection::vec(any::<u8>(), 0..300), s in ".{0,300}") {
        let _ = RboxConfig::from_json(&v);
        let _ = RboxConfig::from_json(s.as_bytes());
    }

    #[test]
    fn cfg_updates_validate_and_round_trip_2048_cases(
        key in prop_oneof![proptest::sample::select(KEYS.to_vec()).prop_map(String::from), "[a-z_]{0,12}"],
        value in prop_oneof![
            Just("true".to_string()), Just("false".to_string()), Just("default".to_string()),
            Just("ima".to_string()), "[MGPORZVBUIACFKSQ]{0,8}", ".{0,20}"
        ],
    ) {
        let base = RboxConfig::default();
        let result = base.apply_updates(&[format!("{key}={value}")]);
        if !KEYS.contains(&key.as_str()) {
            prop_assert!(result.is_err(), "unknown key {key:?} accepted");
        }
        if let Ok(next) = result {
            prop_assert_eq!(next.get(&key).unwrap(), value);
            let json = next.to_json();
            prop_assert_eq!(RboxConfig::from_json(&json).unwrap(), next);
        }
    }

    #[test]
    fn query_parse_never_panics_2048_cases(s in ".{0,60}", t in "[MGRZVUBS][=<>][0-9a-z: -]{0,20}(;[MGRZVUBS][=<>][0-9a-z: -]{0,20}){0,3}") {
        let _ = Query::parse(&s);
        if let Ok(q) = Query::parse(&t) {
            // Rendering and re-parsing gives the same predicates.
            let rendered = q.predicates.iter().map(ToString::to_string).collect::<Vec<_>>().join(";");
            prop_assert_eq!(Query::parse(&rendered).unwrap(), q);
        }
    }

    #[test]
    fn mail_record_decode_never_panics_and_is_canonical_2048_cases(v in proptest::collection::vec(any::<u8>(), 0..120)) {
        index_values_are_canonical(&v)?;
    }

    #[test]
    fn mail_record_round_trips_2048_cases(r in record()) {
        prop_assert!(r.validate().is_ok());
        let v = r.encode();
        prop_assert_eq!(MailRecord::decode(&v).unwrap(), r);
        // Any cut is an error, never a panic or a shorter record.
        for cut in [0, 1, v.len() / 2, v.len() - 1] {
            prop_assert!(MailRecord::decode(&v[..cut]).is_err());
        }
    }

    #[test]
    fn mutated_index_values_never_panic_and_stay_canonical_2048_cases(
        r in record(), edits in proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        // Random bytes rarely get past the version byte; edits of a valid value reach the
        // length prefixes, enum bytes and UTF-8 checks behind it.
        let mut v = r.encode();
        for (pos, byte, kind) in edits {
            let i = pos as usize % (v.len() + 1);
            match kind {
                0 if i < v.len() => v[i] = byte,
                1 => v.insert(i, byte),
                _ if i < v.len() => { v.remove(i); }
                _ => v.push(byte),
            }
        }
        index_values_are_canonical(&v)?;
    }

    #[test]
    fn headers_and_mailbox_records_round_trip_2048_cases(
        uv in any::<u32>(), next in 1u32.., modseq in any::<u64>(), span in 1u32..,
        deleting in any::<bool>(), created in any::<i64>(), name in "[^\\p{Cc}]{1,60}",
    ) {
        let h = MailboxHeader { deleting, uidvalidity: uv, next_uid: next, highest_modseq: modseq, shard_span: span };
        prop_assert_eq!(MailboxHeader::decode(&h.encode()).unwrap(), h);
        let m = MailboxRecord {
            state: if deleting { MailboxState::Deleting } else { MailboxState::Active },
            uidvalidity: uv, created, name,
        };
        prop_assert_eq!(MailboxRecord::decode(&m.encode()).unwrap(), m);
    }
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn recovery_index_never_panics_and_round_trips_1024_cases(
        v in proptest::collection::vec(any::<u8>(), 0..200),
        oids in proptest::collection::btree_set("[0-9a-f]{32}", 0..10),
    ) {
        let _ = recovery_index::decode(&v);
        let set: BTreeSet<String> = oids;
        prop_assert_eq!(recovery_index::decode(&recovery_index::encode(&set)).unwrap(), set);
    }

    #[test]
    fn guids_parse_strictly_and_round_trip_1024_cases(g in guid(), s in ".{0,40}") {
        prop_assert_eq!(Guid128::parse_hex(&g.to_hex()).unwrap(), g);
        prop_assert_eq!(Guid128::parse_dashed(&g.to_dashed()).unwrap(), g);
        if let Ok(p) = Guid128::parse_hex(&s) {
            prop_assert_eq!(p.to_hex(), s.clone());
        }
        prop_assert_eq!(MailGuid::parse(&s).to_string(), s);
    }

    #[test]
    fn namespaces_and_mappings_never_panic_1024_cases(user in ".{0,40}", suffix in ".{0,4}", v in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(k) = user_key(&user, &suffix) {
            prop_assert_eq!(decode_mapping(&encode_mapping(&k)).unwrap(), k);
        }
        let _ = decode_mapping(&v);
    }

    #[test]
    fn dates_round_trip_1024_cases(secs in 0i64..253_402_300_799, s in ".{0,25}") {
        prop_assert_eq!(parse_date(&format_date(secs)).unwrap(), secs);
        let _ = parse_date(&s);
    }

    #[test]
    fn flags_bytes_round_trip_for_every_mask_1024_cases(mask in any::<u8>()) {
        let f = FlagsByte::from_mask(mask);
        let back = FlagsByte::decode(&f.encode()).unwrap();
        prop_assert_eq!(back, f);
        prop_assert_eq!(back.mask().is_none(), matches!(mask, 0x09..=0x0d | 0x20));
    }

    #[test]
    fn user_keys_reject_control_characters_1024_cases(user in ".{1,20}") {
        let bad = user.chars().any(char::is_control) || user.trim() != user;
        if bad {
            prop_assert!(user_key(&user, "_u").is_err());
        } else {
            prop_assert_eq!(user_key(&user, "_u").unwrap(), format!("{user}_u"));
        }
    }
}
