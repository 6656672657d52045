//! Byte layout of the omap index, format version 1 (the normative text is
//! `docs/rbox-index-format.md`; keep the two in step).
//!
//! All objects live in the index pool, in the RADOS namespace of the user they index:
//! - `rbox.index`: the mailbox list (`format`, `uidvalidity`, `mb.<guid>`, `name.<name>`);
//! - `rbox.mbox.<guid>`: a mailbox's header (`hdr`) plus shard 0 of its mail records;
//! - `rbox.mbox.<guid>.<k>`: shard `k ≥ 1` of its mail records.
//!
//! Integers are little-endian; UIDs in keys are 10-digit zero-padded decimal so key order is
//! UID order. Decoders are strict: exact lengths, known versions, valid UTF-8.

use thiserror::Error;

use crate::format::flags::MailFlags;
use crate::format::guid::{Guid128, MailGuid};

/// Format version written in `rbox.index` key `format`.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the mailbox list object.
pub const LIST_OBJECT: &str = "rbox.index";
/// Prefix of mailbox head and shard objects.
pub const MAILBOX_OBJECT_PREFIX: &str = "rbox.mbox.";
/// UIDs per shard object. Ceph warns about objects with more than 200,000 omap keys
/// (`osd_deep_scrub_large_omap_object_key_threshold`); a shard holds at most this many
/// records plus one header key.
pub const SHARD_SPAN: u32 = 100_000;

pub const KEY_FORMAT: &str = "format";
pub const KEY_UIDVALIDITY: &str = "uidvalidity";
pub const KEY_HEADER: &str = "hdr";
/// Key in `rbox.index`: who owns the truth when objects and index disagree (`objects` or
/// `index`; absent means `index`). See `docs/rbox-index-format.md` §3.
pub const KEY_TRUTH: &str = "truth";

/// Who wins when a mail object's valid `M`/`U` and its index record disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Truth {
    /// The index (stateless mode: rbox-core is the only writer of `M`/`U`); fsck rewrites
    /// the object's `M`/`U` from the record.
    #[default]
    Index,
    /// The objects (a Dovecot whose own index is authoritative — upstream's plugin — moves
    /// and renumbers mail by rewriting `M`/`U`); fsck re-indexes from them.
    Objects,
}

impl Truth {
    pub fn as_str(self) -> &'static str {
        match self {
            Truth::Index => "index",
            Truth::Objects => "objects",
        }
    }

    pub fn parse(s: &[u8]) -> Option<Self> {
        match s {
            b"index" => Some(Truth::Index),
            b"objects" => Some(Truth::Objects),
            _ => None,
        }
    }
}
pub const PREFIX_MAILBOX: &str = "mb.";
pub const PREFIX_NAME: &str = "name.";
pub const PREFIX_MAIL: &str = "u.";

/// Longest mailbox name (bytes); also bounded by the u16 length field.
pub const MAX_MAILBOX_NAME: usize = 1024;
/// Longest keyword (bytes), bounded by the u8 length field.
pub const MAX_KEYWORD_LEN: usize = 255;
/// Most keywords on one mail.
pub const MAX_KEYWORDS: usize = 1024;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IndexFormatError {
    #[error("{what}: value is {len} bytes, expected {expected}")]
    Length {
        what: &'static str,
        len: usize,
        expected: String,
    },
    #[error("{what}: unsupported version {version}")]
    Version { what: &'static str, version: u8 },
    #[error("{what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}

fn invalid(what: &'static str, reason: impl Into<String>) -> IndexFormatError {
    IndexFormatError::Invalid {
        what,
        reason: reason.into(),
    }
}

/// A cursor that refuses to read past the end.
struct Reader<'a> {
    what: &'static str,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(what: &'static str, buf: &'a [u8]) -> Self {
        Self { what, buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], IndexFormatError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(IndexFormatError::Length {
                what: self.what,
                len: self.buf.len(),
                expected: format!("at least {}", self.pos + n),
            }),
        }
    }
    fn u8(&mut self) -> Result<u8, IndexFormatError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, IndexFormatError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, IndexFormatError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, IndexFormatError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn i64(&mut self) -> Result<i64, IndexFormatError> {
        Ok(self.u64()? as i64)
    }
    fn utf8(&mut self, n: usize) -> Result<String, IndexFormatError> {
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| invalid(self.what, "text is not UTF-8"))
    }
    fn finish(self) -> Result<(), IndexFormatError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(IndexFormatError::Length {
                what: self.what,
                len: self.buf.len(),
                expected: format!("exactly {}", self.pos),
            })
        }
    }
}

/// Object name of a mailbox's shard `k` (shard 0 is the head).
pub fn shard_object(mailbox: &Guid128, shard: u32) -> String {
    if shard == 0 {
        format!("{MAILBOX_OBJECT_PREFIX}{mailbox}")
    } else {
        format!("{MAILBOX_OBJECT_PREFIX}{mailbox}.{shard}")
    }
}

/// Parse a mailbox object name back into (mailbox GUID, shard).
pub fn parse_shard_object(oid: &str) -> Option<(Guid128, u32)> {
    let rest = oid.strip_prefix(MAILBOX_OBJECT_PREFIX)?;
    let (guid, shard) = match rest.split_once('.') {
        Some((g, s)) => {
            // Canonical decimal only: "01" or "0" would alias another object name.
            if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (g, s.parse::<u32>().ok()?)
        }
        None => (rest, 0),
    };
    Some((Guid128::parse_hex(guid).ok()?, shard))
}

/// Which shard holds a UID (UIDs start at 1).
pub fn shard_of(uid: u32, span: u32) -> u32 {
    uid.saturating_sub(1) / span.max(1)
}

/// Omap key of a mail record.
pub fn mail_key(uid: u32) -> String {
    format!("{PREFIX_MAIL}{uid:010}")
}

/// UID of a mail record key (strict: `u.` + exactly 10 digits, UID ≥ 1).
pub fn parse_mail_key(key: &str) -> Option<u32> {
    let d = key.strip_prefix(PREFIX_MAIL)?;
    if d.len() != 10 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse::<u32>().ok().filter(|&u| u >= 1)
}

pub fn mailbox_key(guid: &Guid128) -> String {
    format!("{PREFIX_MAILBOX}{guid}")
}

pub fn parse_mailbox_key(key: &str) -> Option<Guid128> {
    Guid128::parse_hex(key.strip_prefix(PREFIX_MAILBOX)?).ok()
}

pub fn name_key(name: &str) -> String {
    format!("{PREFIX_NAME}{name}")
}

/// Rules for mailbox names: non-empty UTF-8 without control characters, at most
/// [`MAX_MAILBOX_NAME`] bytes (the name is an omap key and a length-prefixed field).
pub fn validate_mailbox_name(name: &str) -> Result<(), IndexFormatError> {
    let what = "mailbox name";
    if name.is_empty() {
        return Err(invalid(what, "must not be empty"));
    }
    if name.len() > MAX_MAILBOX_NAME {
        return Err(invalid(
            what,
            format!("longer than {MAX_MAILBOX_NAME} bytes"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(what, "contains a control character"));
    }
    Ok(())
}

/// IMAP keywords are atoms: printable ASCII without specials, not starting with `\`.
pub fn validate_keyword(k: &str) -> Result<(), IndexFormatError> {
    let what = "keyword";
    if k.is_empty() || k.len() > MAX_KEYWORD_LEN {
        return Err(invalid(
            what,
            format!("must be 1..={MAX_KEYWORD_LEN} bytes"),
        ));
    }
    if k.starts_with('\\') {
        return Err(invalid(
            what,
            format!("{k:?} is a system flag, not a keyword"),
        ));
    }
    if let Some(c) = k
        .chars()
        .find(|c| !c.is_ascii_graphic() || "(){%*\"\\]".contains(*c))
    {
        return Err(invalid(what, format!("{k:?} contains {c:?}")));
    }
    Ok(())
}

/// Decimal ASCII counters (`format`, `uidvalidity`).
pub fn encode_counter(n: u64) -> Vec<u8> {
    n.to_string().into_bytes()
}

pub fn decode_counter(what: &'static str, v: &[u8]) -> Result<u64, IndexFormatError> {
    let s = std::str::from_utf8(v).map_err(|_| invalid(what, "not ASCII"))?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(invalid(
            what,
            format!(
                "not a canonical decimal: {:?}",
                s.chars().take(24).collect::<String>()
            ),
        ));
    }
    s.parse().map_err(|_| invalid(what, "out of range"))
}

/// State of a mailbox in the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailboxState {
    Active,
    /// Deletion started; fsck `--repair` finishes it.
    Deleting,
}

/// Value of `mb.<guid>` in `rbox.index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxRecord {
    pub state: MailboxState,
    pub uidvalidity: u32,
    pub created: i64,
    pub name: String,
}

const MAILBOX_RECORD_VERSION: u8 = 1;

impl MailboxRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(16 + self.name.len());
        v.push(MAILBOX_RECORD_VERSION);
        v.push(match self.state {
            MailboxState::Active => 0,
            MailboxState::Deleting => 1,
        });
        v.extend_from_slice(&self.uidvalidity.to_le_bytes());
        v.extend_from_slice(&self.created.to_le_bytes());
        let name = self.name.as_bytes();
        v.extend_from_slice(&(name.len().min(u16::MAX as usize) as u16).to_le_bytes());
        v.extend_from_slice(&name[..name.len().min(u16::MAX as usize)]);
        v
    }

    pub fn decode(v: &[u8]) -> Result<Self, IndexFormatError> {
        let what = "mailbox record";
        let mut r = Reader::new(what, v);
        let version = r.u8()?;
        if version != MAILBOX_RECORD_VERSION {
            return Err(IndexFormatError::Version { what, version });
        }
        let state = match r.u8()? {
            0 => MailboxState::Active,
            1 => MailboxState::Deleting,
            s => return Err(invalid(what, format!("unknown state {s}"))),
        };
        let uidvalidity = r.u32()?;
        let created = r.i64()?;
        let n = r.u16()? as usize;
        let name = r.utf8(n)?;
        r.finish()?;
        validate_mailbox_name(&name)?;
        Ok(Self {
            state,
            uidvalidity,
            created,
            name,
        })
    }
}

/// Value of `hdr` in a mailbox head object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailboxHeader {
    /// Set when deletion started: no new UIDs are handed out.
    pub deleting: bool,
    pub uidvalidity: u32,
    /// The UID the next saved mail gets (≥ 1).
    pub next_uid: u32,
    /// Highest modification sequence handed out.
    pub highest_modseq: u64,
    /// UIDs per shard object (fixed when the mailbox is created).
    pub shard_span: u32,
}

const HEADER_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 22;

impl MailboxHeader {
    pub fn new(uidvalidity: u32) -> Self {
        Self {
            deleting: false,
            uidvalidity,
            next_uid: 1,
            highest_modseq: 1,
            shard_span: SHARD_SPAN,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER_LEN);
        v.push(HEADER_VERSION);
        v.push(u8::from(self.deleting));
        v.extend_from_slice(&self.uidvalidity.to_le_bytes());
        v.extend_from_slice(&self.next_uid.to_le_bytes());
        v.extend_from_slice(&self.highest_modseq.to_le_bytes());
        v.extend_from_slice(&self.shard_span.to_le_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Result<Self, IndexFormatError> {
        let what = "mailbox header";
        let mut r = Reader::new(what, v);
        let version = r.u8()?;
        if version != HEADER_VERSION {
            return Err(IndexFormatError::Version { what, version });
        }
        let deleting = match r.u8()? {
            0 => false,
            1 => true,
            f => return Err(invalid(what, format!("unknown flags {f:#x}"))),
        };
        let h = Self {
            deleting,
            uidvalidity: r.u32()?,
            next_uid: r.u32()?,
            highest_modseq: r.u64()?,
            shard_span: r.u32()?,
        };
        r.finish()?;
        if h.next_uid == 0 {
            return Err(invalid(what, "next_uid is 0"));
        }
        if h.shard_span == 0 {
            return Err(invalid(what, "shard_span is 0"));
        }
        Ok(h)
    }

    /// Shard objects that may hold records: 0 ..= the shard of the last UID handed out.
    pub fn last_shard(&self) -> u32 {
        shard_of(self.next_uid.saturating_sub(1).max(1), self.shard_span)
    }
}

/// Value of `u.<uid>`: what the index knows about one mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailRecord {
    pub oid: Guid128,
    pub guid: MailGuid,
    pub flags: MailFlags,
    pub keywords: Vec<String>,
    pub modseq: u64,
    pub physical_size: u64,
    pub virtual_size: u64,
    /// Received date (`R`), Unix seconds.
    pub received: i64,
    /// Save date (object mtime), Unix seconds.
    pub saved: i64,
}

const MAIL_RECORD_VERSION: u8 = 1;

impl MailRecord {
    /// Refuse what cannot be encoded faithfully.
    pub fn validate(&self) -> Result<(), IndexFormatError> {
        if self.keywords.len() > MAX_KEYWORDS {
            return Err(invalid(
                "mail record",
                format!("more than {MAX_KEYWORDS} keywords"),
            ));
        }
        for k in &self.keywords {
            validate_keyword(k)?;
        }
        if let MailGuid::Text(t) = &self.guid
            && (t.is_empty() || t.len() > u16::MAX as usize)
        {
            return Err(invalid("mail record", "GUID text must be 1..=65535 bytes"));
        }
        if self.flags.bits() & !MailFlags::ALL != 0 {
            return Err(invalid("mail record", "unknown flag bits"));
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        v.push(MAIL_RECORD_VERSION);
        v.push(self.flags.bits());
        v.extend_from_slice(self.oid.as_bytes());
        v.extend_from_slice(&self.modseq.to_le_bytes());
        v.extend_from_slice(&self.physical_size.to_le_bytes());
        v.extend_from_slice(&self.virtual_size.to_le_bytes());
        v.extend_from_slice(&self.received.to_le_bytes());
        v.extend_from_slice(&self.saved.to_le_bytes());
        match &self.guid {
            MailGuid::Compact(g) => {
                v.push(0);
                v.extend_from_slice(g.as_bytes());
            }
            MailGuid::Dashed(g) => {
                v.push(1);
                v.extend_from_slice(g.as_bytes());
            }
            MailGuid::Text(t) => {
                v.push(2);
                let b = &t.as_bytes()[..t.len().min(u16::MAX as usize)];
                v.extend_from_slice(&(b.len() as u16).to_le_bytes());
                v.extend_from_slice(b);
            }
        }
        let kws: Vec<&String> = self
            .keywords
            .iter()
            .filter(|k| !k.is_empty() && k.len() <= MAX_KEYWORD_LEN)
            .take(u16::MAX as usize)
            .collect();
        v.extend_from_slice(&(kws.len() as u16).to_le_bytes());
        for k in kws {
            v.push(k.len() as u8);
            v.extend_from_slice(k.as_bytes());
        }
        v
    }

    pub fn decode(v: &[u8]) -> Result<Self, IndexFormatError> {
        let what = "mail record";
        let mut r = Reader::new(what, v);
        let version = r.u8()?;
        if version != MAIL_RECORD_VERSION {
            return Err(IndexFormatError::Version { what, version });
        }
        let flags = r.u8()?;
        if flags & !MailFlags::ALL != 0 {
            return Err(invalid(what, format!("unknown flag bits {flags:#x}")));
        }
        let mut oid = [0u8; 16];
        oid.copy_from_slice(r.take(16)?);
        let modseq = r.u64()?;
        let physical_size = r.u64()?;
        let virtual_size = r.u64()?;
        let received = r.i64()?;
        let saved = r.i64()?;
        let guid = match r.u8()? {
            kind @ (0 | 1) => {
                let mut g = [0u8; 16];
                g.copy_from_slice(r.take(16)?);
                if kind == 0 {
                    MailGuid::Compact(Guid128(g))
                } else {
                    MailGuid::Dashed(Guid128(g))
                }
            }
            2 => {
                let n = r.u16()? as usize;
                let t = r.utf8(n)?;
                if t.is_empty() {
                    return Err(invalid(what, "empty GUID text"));
                }
                // A text that is a GUID would decode as another kind: not canonical.
                if !matches!(MailGuid::parse(&t), MailGuid::Text(_)) {
                    return Err(invalid(what, "GUID text is a GUID; kind must be 0 or 1"));
                }
                MailGuid::Text(t)
            }
            k => return Err(invalid(what, format!("unknown GUID kind {k}"))),
        };
        let count = r.u16()? as usize;
        let mut keywords = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let n = r.u8()? as usize;
            let k = r.utf8(n)?;
            validate_keyword(&k)?;
            keywords.push(k);
        }
        r.finish()?;
        Ok(Self {
            oid: Guid128(oid),
            guid,
            flags: MailFlags(flags),
            keywords,
            modseq,
            physical_size,
            virtual_size,
            received,
            saved,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MailRecord {
        MailRecord {
            oid: Guid128::parse_hex("4463a01079ba046b8622000083ecc375").unwrap(),
            guid: MailGuid::parse("4563a01079ba046b8622000083ecc375"),
            flags: MailFlags::SEEN.union(MailFlags::FLAGGED),
            keywords: vec!["$Label1".into(), "Junk".into()],
            modseq: 7,
            physical_size: 256,
            virtual_size: 265,
            received: 1_704_110_403,
            saved: 1_704_110_404,
        }
    }

    #[test]
    fn mail_record_bytes_are_exact() {
        let v = sample().encode();
        let mut want = vec![1u8, 0x0a];
        want.extend_from_slice(&[
            0x44, 0x63, 0xa0, 0x10, 0x79, 0xba, 0x04, 0x6b, 0x86, 0x22, 0x00, 0x00, 0x83, 0xec,
            0xc3, 0x75,
        ]);
        want.extend_from_slice(&7u64.to_le_bytes());
        want.extend_from_slice(&256u64.to_le_bytes());
        want.extend_from_slice(&265u64.to_le_bytes());
        want.extend_from_slice(&1_704_110_403i64.to_le_bytes());
        want.extend_from_slice(&1_704_110_404i64.to_le_bytes());
        want.push(0);
        want.extend_from_slice(&[
            0x45, 0x63, 0xa0, 0x10, 0x79, 0xba, 0x04, 0x6b, 0x86, 0x22, 0x00, 0x00, 0x83, 0xec,
            0xc3, 0x75,
        ]);
        want.extend_from_slice(&[2, 0, 7]);
        want.extend_from_slice(b"$Label1");
        want.push(4);
        want.extend_from_slice(b"Junk");
        assert_eq!(v, want);
        assert_eq!(v.len(), 90);
        assert_eq!(MailRecord::decode(&v).unwrap(), sample());
    }

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn examples_in_the_spec_decode() {
        // docs/rbox-index-format.md §3, §4.1, §4.3, byte for byte.
        let m = MailboxRecord::decode(&hex(
            "01 00 43 a9 92 65 43 a9 92 65 00 00 00 00 05 00 49 4e 42 4f 58",
        ))
        .unwrap();
        assert_eq!(
            (m.state, m.uidvalidity, m.created, m.name.as_str()),
            (MailboxState::Active, 1_704_110_403, 1_704_110_403, "INBOX")
        );
        let h = MailboxHeader::decode(&hex(
            "01 00 77 ba 04 6b 04 00 00 00 09 00 00 00 00 00 00 00 a0 86 01 00",
        ))
        .unwrap();
        assert_eq!(
            (h.uidvalidity, h.next_uid, h.highest_modseq, h.shard_span),
            (0x6b04_ba77, 4, 9, SHARD_SPAN)
        );
        let doc = "01 0a
            44 63 a0 10 79 ba 04 6b 86 22 00 00 83 ec c3 75
            07 00 00 00 00 00 00 00
            00 01 00 00 00 00 00 00
            09 01 00 00 00 00 00 00
            43 a9 92 65 00 00 00 00
            44 a9 92 65 00 00 00 00
            00 45 63 a0 10 79 ba 04 6b 86 22 00 00 83 ec c3 75
            02 00 07 24 4c 61 62 65 6c 31 04 4a 75 6e 6b";
        let v = hex(doc);
        assert_eq!(v.len(), 90);
        assert_eq!(MailRecord::decode(&v).unwrap(), sample());
    }

    #[test]
    fn guid_kinds_round_trip() {
        for g in [
            "4563a010-79ba-046b-8622-000083ecc375",
            "<x@y>",
            "4563a01079ba046b8622000083ecc375",
        ] {
            let mut r = sample();
            r.guid = MailGuid::parse(g);
            assert_eq!(MailRecord::decode(&r.encode()).unwrap(), r, "{g}");
        }
    }

    #[test]
    fn strict_record_decoding() {
        let v = sample().encode();
        for cut in 0..v.len() {
            assert!(MailRecord::decode(&v[..cut]).is_err(), "prefix {cut}");
        }
        let mut long = v.clone();
        long.push(0);
        assert!(MailRecord::decode(&long).is_err());
        let mut ver = v.clone();
        ver[0] = 2;
        assert!(matches!(
            MailRecord::decode(&ver),
            Err(IndexFormatError::Version { version: 2, .. })
        ));
        let mut flags = v.clone();
        flags[1] = 0x40;
        assert!(MailRecord::decode(&flags).is_err());
    }

    #[test]
    fn header_is_22_bytes() {
        let h = MailboxHeader {
            deleting: false,
            uidvalidity: 0x6b04_ba77,
            next_uid: 4,
            highest_modseq: 9,
            shard_span: SHARD_SPAN,
        };
        let v = h.encode();
        assert_eq!(v.len(), HEADER_LEN);
        assert_eq!(
            v,
            [
                1, 0, 0x77, 0xba, 0x04, 0x6b, 4, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0xa0, 0x86, 0x01,
                0
            ]
        );
        assert_eq!(MailboxHeader::decode(&v).unwrap(), h);
        assert!(MailboxHeader::decode(&v[..21]).is_err());
        let mut zero = v.clone();
        zero[6] = 0;
        assert!(MailboxHeader::decode(&zero).is_err(), "next_uid 0");
    }

    #[test]
    fn mailbox_record_round_trip() {
        let m = MailboxRecord {
            state: MailboxState::Active,
            uidvalidity: 1_700_000_000,
            created: 1_700_000_000,
            name: "Archive/2024 – ä".into(),
        };
        let v = m.encode();
        assert_eq!(v[0], 1);
        assert_eq!(v.len(), 16 + m.name.len());
        assert_eq!(MailboxRecord::decode(&v).unwrap(), m);
        let mut bad = v.clone();
        bad[1] = 9;
        assert!(MailboxRecord::decode(&bad).is_err());
    }

    #[test]
    fn keys_sort_in_uid_order_and_shards() {
        assert_eq!(mail_key(3), "u.0000000003");
        assert_eq!(mail_key(u32::MAX), "u.4294967295");
        assert!(mail_key(9) < mail_key(10));
        assert_eq!(parse_mail_key("u.0000000003"), Some(3));
        assert_eq!(parse_mail_key("u.3"), None);
        assert_eq!(parse_mail_key("u.0000000000"), None);
        assert_eq!(shard_of(1, SHARD_SPAN), 0);
        assert_eq!(shard_of(100_000, SHARD_SPAN), 0);
        assert_eq!(shard_of(100_001, SHARD_SPAN), 1);
        let g = Guid128::parse_hex("11e7af1c77ba046b6022000083ecc375").unwrap();
        assert_eq!(
            shard_object(&g, 0),
            "rbox.mbox.11e7af1c77ba046b6022000083ecc375"
        );
        assert_eq!(
            shard_object(&g, 2),
            "rbox.mbox.11e7af1c77ba046b6022000083ecc375.2"
        );
        assert_eq!(parse_shard_object(&shard_object(&g, 2)), Some((g, 2)));
        assert_eq!(parse_shard_object(&shard_object(&g, 0)), Some((g, 0)));
        assert_eq!(
            parse_shard_object("rbox.mbox.11e7af1c77ba046b6022000083ecc375.02"),
            None
        );
        assert_eq!(parse_shard_object("rbox.index"), None);
        let h = MailboxHeader::new(1);
        assert_eq!(h.last_shard(), 0);
        let h = MailboxHeader {
            next_uid: 100_002,
            ..h
        };
        assert_eq!(h.last_shard(), 1);
    }

    #[test]
    fn names_keywords_counters() {
        assert!(validate_mailbox_name("INBOX").is_ok());
        assert!(validate_mailbox_name("").is_err());
        assert!(validate_mailbox_name("a\tb").is_err());
        assert!(validate_keyword("$Label1").is_ok());
        assert!(validate_keyword("\\Seen").is_err());
        assert!(validate_keyword("a b").is_err());
        assert!(validate_keyword("ä").is_err());
        assert_eq!(decode_counter("c", b"17").unwrap(), 17);
        assert!(decode_counter("c", b"017").is_err());
        assert!(decode_counter("c", b"").is_err());
        assert!(decode_counter("c", b"-1").is_err());
    }
}
