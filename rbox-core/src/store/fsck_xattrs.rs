//! fsck's repair of garbage metadata xattrs on an *indexed* mail.
//!
//! The index record holds the mailbox, UID, mail GUID, flags, sizes and dates, so every xattr
//! that no longer decodes and carries one of those is rewritten from it, in librmb's exact
//! encoding (the same bytes a save writes). Values the index knows nothing about (`P`, `O`,
//! `A`, `C`, `X`, a packed `ima` attribute, foreign keys) cannot be rebuilt: they are left as
//! they are and reported. The body is never touched, so no repair here can lose a mail.
//!
//! The rewrite is guarded by a compare on every bad value (`cmpxattr ==` the bytes read), so
//! a concurrent `rbox set` or save wins and fsck leaves the object alone.

use super::Mailspace;
use crate::backend::{BackendError, CmpOp, WriteOp};
use crate::error::{Result, StoreError};
use crate::format::flags::FlagsByte;
use crate::format::guid::Guid128;
use crate::format::metadata::{
    MailMetadata, MetadataError, MetadataKey, RBOX_VERSION, ValueError, encode_text,
};
use crate::index::MailRecord;

/// What a repair writes for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fix {
    Set(Vec<u8>),
    /// librmb writes no `F` when no flag is set: a garbage `F` of a mail without flags goes.
    Remove,
}

/// Where the index says a mail is, and what it knows about it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Indexed<'a> {
    pub mailbox: Guid128,
    /// The mailbox's current name (for `B`); `None` when the mailbox is not listed.
    pub mailbox_name: Option<&'a str>,
    pub uid: u32,
    pub record: &'a MailRecord,
}

/// The value the index record gives `key`, encoded as librmb writes it; `None` when the
/// index holds nothing for that key.
pub(crate) fn rebuild(key: MetadataKey, ix: Indexed<'_>) -> Option<Fix> {
    let r = ix.record;
    let text = |s: String| Some(Fix::Set(encode_text(&s)));
    match key {
        MetadataKey::MailboxGuid => text(ix.mailbox.to_hex()),
        MetadataKey::MailUid => text(ix.uid.to_string()),
        MetadataKey::Guid => text(r.guid.to_string()),
        MetadataKey::ReceivedTime => text(r.received.to_string()),
        MetadataKey::SaveTime => text(r.saved.to_string()),
        MetadataKey::PhysicalSize => text(r.physical_size.to_string()),
        MetadataKey::VirtualSize => text(r.virtual_size.to_string()),
        MetadataKey::Version => text(RBOX_VERSION.to_string()),
        MetadataKey::OrigMailbox => ix.mailbox_name.and_then(|n| text(n.to_string())),
        MetadataKey::Flags if r.flags.is_empty() => Some(Fix::Remove),
        MetadataKey::Flags => Some(Fix::Set(FlagsByte::from_mask(r.flags.bits()).encode())),
        MetadataKey::Pop3Uidl
        | MetadataKey::Pop3Order
        | MetadataKey::ExtRef
        | MetadataKey::FromEnvelope
        | MetadataKey::PvtFlags
        | MetadataKey::OldV1Expunged
        | MetadataKey::Keywords
        | MetadataKey::Space => None,
    }
}

/// Can the index rebuild the value behind this decode error? (A bad packed `ima` attribute
/// is reported under key ` ` but is not a ` ` xattr: never.)
pub(crate) fn rebuildable(e: &MetadataError, ix: Indexed<'_>) -> bool {
    !matches!(e.error, ValueError::Ima(_)) && rebuild(e.key, ix).is_some()
}

/// "R: not a decimal number …; F: …" for a finding's detail.
pub(crate) fn describe(errors: &[&MetadataError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.key.letter(), e.error))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The write that repairs the xattrs `current` holds: every single-letter xattr that does
/// not decode and that the index can rebuild, plus `M`/`U` when they name another place
/// than the index does. Returns the op (guarded by compares on the bad values) and the
/// letters it rewrites; `None` when nothing needs writing.
pub(crate) fn plan(
    current: &std::collections::BTreeMap<String, Vec<u8>>,
    ix: Indexed<'_>,
) -> Option<(WriteOp, Vec<char>)> {
    let mut op = WriteOp::new().assert_exists();
    let mut fixed = Vec::new();
    let mut decoded = MailMetadata::default();
    for (name, raw) in current {
        let mut chars = name.chars();
        let Some(key) = (match (chars.next(), chars.next()) {
            (Some(c), None) => MetadataKey::from_letter(c),
            _ => None,
        }) else {
            continue;
        };
        if decoded.set_from_xattr(key, raw).is_ok() {
            continue;
        }
        let Some(fix) = rebuild(key, ix) else {
            continue;
        };
        op = op.cmp_xattr(name.clone(), CmpOp::Eq, raw.clone());
        op = match fix {
            Fix::Set(v) => op.set_xattr(name.clone(), v),
            Fix::Remove => op.rm_xattr(name.clone()),
        };
        fixed.push(key.letter());
    }
    // M and U must point where the index entry is (what `MismatchedEntry` repairs too).
    for (key, right) in [
        (
            MetadataKey::MailboxGuid,
            decoded.mailbox_guid == Some(ix.mailbox),
        ),
        (MetadataKey::MailUid, decoded.uid == Some(ix.uid)),
    ] {
        if !right
            && !fixed.contains(&key.letter())
            && let Some(Fix::Set(v)) = rebuild(key, ix)
        {
            op = op.set_xattr(key.xattr_name(), v);
            fixed.push(key.letter());
        }
    }
    (!fixed.is_empty()).then_some((op, fixed))
}

impl Mailspace {
    /// Rewrite an indexed mail's garbage xattrs from its index record (see the module docs).
    pub(super) async fn rewrite_xattrs_from_index(
        &self,
        oid: &str,
        ix: Indexed<'_>,
    ) -> Result<String> {
        let loc = self.mail_loc(oid);
        let current = self.backend().get_xattrs(&loc).await?;
        let Some((op, fixed)) = plan(&current, ix) else {
            return Ok("nothing left to rewrite (changed meanwhile)".into());
        };
        match self.backend().write_op(&loc, op).await {
            Ok(()) => Ok(format!(
                "rewrote {} from the index record",
                fixed
                    .iter()
                    .map(char::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            Err(BackendError::Canceled(_)) => Err(StoreError::Invalid(
                "xattrs changed meanwhile; left alone".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::backend::WriteStep;
    use crate::format::flags::MailFlags;
    use crate::format::guid::MailGuid;

    fn record(flags: u8) -> MailRecord {
        MailRecord {
            oid: Guid128::parse_hex("13e7af1c77ba046b6022000083ecc375").unwrap(),
            guid: MailGuid::Compact(
                Guid128::parse_hex("00112233445566778899aabbccddeeff").unwrap(),
            ),
            flags: MailFlags(flags),
            keywords: Vec::new(),
            modseq: 3,
            physical_size: 256,
            virtual_size: 265,
            received: 1_704_110_403,
            saved: 1_704_110_404,
        }
    }

    fn ix(r: &MailRecord) -> Indexed<'_> {
        Indexed {
            mailbox: Guid128::parse_hex("ffeeddccbbaa99887766554433221100").unwrap(),
            mailbox_name: Some("INBOX"),
            uid: 7,
            record: r,
        }
    }

    #[test]
    fn rebuilt_values_are_librmb_bytes() {
        let r = record(0x08);
        let set = |k| match rebuild(k, ix(&r)) {
            Some(Fix::Set(v)) => v,
            other => panic!("{k:?}: {other:?}"),
        };
        assert_eq!(set(MetadataKey::ReceivedTime), b"1704110403\0");
        assert_eq!(set(MetadataKey::MailUid), b"7\0");
        assert_eq!(
            set(MetadataKey::MailboxGuid),
            b"ffeeddccbbaa99887766554433221100\0"
        );
        assert_eq!(
            set(MetadataKey::Guid),
            b"00112233445566778899aabbccddeeff\0"
        );
        assert_eq!(set(MetadataKey::PhysicalSize), b"256\0");
        assert_eq!(set(MetadataKey::VirtualSize), b"265\0");
        assert_eq!(set(MetadataKey::OrigMailbox), b"INBOX\0");
        assert_eq!(set(MetadataKey::Version), b"0.1\0");
        // \Seen = 0x08: one raw byte plus NUL (the flags-byte quirk).
        assert_eq!(set(MetadataKey::Flags), vec![0x08, 0]);
        let none = record(0);
        assert_eq!(rebuild(MetadataKey::Flags, ix(&none)), Some(Fix::Remove));
        for k in [
            MetadataKey::Pop3Uidl,
            MetadataKey::Pop3Order,
            MetadataKey::FromEnvelope,
            MetadataKey::PvtFlags,
            MetadataKey::ExtRef,
        ] {
            assert_eq!(rebuild(k, ix(&r)), None, "{k:?}");
        }
        let unlisted = Indexed {
            mailbox_name: None,
            ..ix(&r)
        };
        assert_eq!(rebuild(MetadataKey::OrigMailbox, unlisted), None);
    }

    #[test]
    fn plan_rewrites_only_bad_rebuildable_values_under_guards() {
        let r = record(0x01);
        let mut x: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        x.insert("M".into(), b"not-a-guid\0".to_vec());
        x.insert("U".into(), b"7\0".to_vec());
        x.insert("R".into(), b"yesterday\0".to_vec());
        x.insert("F".into(), b"xyz".to_vec());
        x.insert("P".into(), vec![0xff, 0]);
        x.insert("Z".into(), b"256\0".to_vec());
        let (op, fixed) = plan(&x, ix(&r)).expect("something to fix");
        assert_eq!(fixed, vec!['F', 'M', 'R']);
        let guards = op
            .steps
            .iter()
            .filter(|s| matches!(s, WriteStep::CmpXattr { op: CmpOp::Eq, .. }))
            .count();
        assert_eq!(guards, 3, "{op:?}");
        assert!(op.steps.iter().any(|s| matches!(
            s,
            WriteStep::SetXattr { name, value } if name == "F" && value == &[0x01, 0]
        )));
        // Nothing bad: nothing to do.
        let mut good = x.clone();
        good.insert("M".into(), b"ffeeddccbbaa99887766554433221100\0".to_vec());
        good.insert("R".into(), b"1\0".to_vec());
        good.insert("F".into(), vec![0x01, 0]);
        good.remove("P");
        assert!(plan(&good, ix(&r)).is_none());
        // A valid U naming another UID is corrected along with the garbage.
        let mut moved = x.clone();
        moved.insert("U".into(), b"9\0".to_vec());
        assert_eq!(plan(&moved, ix(&r)).unwrap().1, vec!['F', 'M', 'R', 'U']);
    }

    #[test]
    fn ima_errors_are_never_rebuildable() {
        let r = record(0);
        let e = MetadataError {
            key: MetadataKey::Space,
            error: ValueError::Ima("not an object".into()),
        };
        assert!(!rebuildable(&e, ix(&r)));
        let e = MetadataError {
            key: MetadataKey::ReceivedTime,
            error: ValueError::NotDecimal("x".into()),
        };
        assert!(rebuildable(&e, ix(&r)));
        assert_eq!(describe(&[&e]), "R: not a decimal number: \"x\"");
    }
}
