//! Mail metadata xattrs exactly as librmb writes them (librmb-format §1.6, rbox-observed §2.2).
//!
//! Every value is ASCII text followed by one NUL byte (`bl.append(s, len + 1)`); numbers and
//! times are decimal. The flags keys `F`/`C` use the raw-byte quirk of [`FlagsByte`].
//! Keywords (`K`) live in the mail object's omap, not in an xattr: key = keyword index in
//! decimal, value = keyword name + NUL.
//!
//! Decoding is strict and never panics: each key is checked on its own and errors name the
//! key. Two leniencies are deliberate: a value without the trailing NUL is accepted
//! (plugin releases before the 2.3.19 adaptation wrote none), and unknown xattrs are kept
//! verbatim in [`MailMetadata::other`] so rewriting an object never drops them.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

use super::flags::{FlagsByte, FlagsByteError};
use super::guid::{Guid128, GuidError, MailGuid};

/// The metadata keys (`enum rbox_metadata_key`, one character each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetadataKey {
    MailboxGuid,
    Guid,
    Pop3Uidl,
    Pop3Order,
    ReceivedTime,
    PhysicalSize,
    VirtualSize,
    ExtRef,
    OrigMailbox,
    MailUid,
    Version,
    FromEnvelope,
    PvtFlags,
    OldV1Expunged,
    Flags,
    Keywords,
    SaveTime,
    Space,
}

impl MetadataKey {
    pub const ALL: [MetadataKey; 18] = [
        MetadataKey::MailboxGuid,
        MetadataKey::Guid,
        MetadataKey::Pop3Uidl,
        MetadataKey::Pop3Order,
        MetadataKey::ReceivedTime,
        MetadataKey::PhysicalSize,
        MetadataKey::VirtualSize,
        MetadataKey::ExtRef,
        MetadataKey::OrigMailbox,
        MetadataKey::MailUid,
        MetadataKey::Version,
        MetadataKey::FromEnvelope,
        MetadataKey::PvtFlags,
        MetadataKey::OldV1Expunged,
        MetadataKey::Flags,
        MetadataKey::Keywords,
        MetadataKey::SaveTime,
        MetadataKey::Space,
    ];

    pub fn letter(self) -> char {
        match self {
            MetadataKey::MailboxGuid => 'M',
            MetadataKey::Guid => 'G',
            MetadataKey::Pop3Uidl => 'P',
            MetadataKey::Pop3Order => 'O',
            MetadataKey::ReceivedTime => 'R',
            MetadataKey::PhysicalSize => 'Z',
            MetadataKey::VirtualSize => 'V',
            MetadataKey::ExtRef => 'X',
            MetadataKey::OrigMailbox => 'B',
            MetadataKey::MailUid => 'U',
            MetadataKey::Version => 'I',
            MetadataKey::FromEnvelope => 'A',
            MetadataKey::PvtFlags => 'C',
            MetadataKey::OldV1Expunged => 'E',
            MetadataKey::Flags => 'F',
            MetadataKey::Keywords => 'K',
            MetadataKey::SaveTime => 'S',
            MetadataKey::Space => ' ',
        }
    }

    pub fn from_letter(c: char) -> Option<MetadataKey> {
        Self::ALL.into_iter().find(|k| k.letter() == c)
    }

    /// The xattr name: the letter as a one-character string.
    pub fn xattr_name(self) -> String {
        self.letter().to_string()
    }

    /// R and S hold dates (`is_date_attribute`).
    pub fn is_date(self) -> bool {
        matches!(self, MetadataKey::ReceivedTime | MetadataKey::SaveTime)
    }

    /// Keys `rmb` compares numerically (`Predicate::eval`): V, Z, U.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            MetadataKey::VirtualSize | MetadataKey::PhysicalSize | MetadataKey::MailUid
        )
    }

    /// A short English name, as `rmb ls` prints next to the letter.
    pub fn description(self) -> &'static str {
        match self {
            MetadataKey::MailboxGuid => "mailbox_guid",
            MetadataKey::Guid => "mail_guid",
            MetadataKey::Pop3Uidl => "pop3_uidl",
            MetadataKey::Pop3Order => "pop3_order",
            MetadataKey::ReceivedTime => "receive_time",
            MetadataKey::PhysicalSize => "phy_size",
            MetadataKey::VirtualSize => "v_size",
            MetadataKey::ExtRef => "ext_ref",
            MetadataKey::OrigMailbox => "mailbox_orig_name",
            MetadataKey::MailUid => "uid",
            MetadataKey::Version => "rbox_version",
            MetadataKey::FromEnvelope => "from_envelope",
            MetadataKey::PvtFlags => "pvt_flags",
            MetadataKey::OldV1Expunged => "expunged",
            MetadataKey::Flags => "flags",
            MetadataKey::Keywords => "keywords",
            MetadataKey::SaveTime => "save_time",
            MetadataKey::Space => "space",
        }
    }
}

impl fmt::Display for MetadataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// Why one value did not decode.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ValueError {
    #[error("value is not valid UTF-8")]
    NotUtf8,
    #[error("value contains a NUL byte before its end")]
    EmbeddedNul,
    #[error("value is empty")]
    Empty,
    #[error("not a decimal number: {0:?}")]
    NotDecimal(String),
    #[error("number out of range: {0:?}")]
    OutOfRange(String),
    #[error("not a GUID: {0}")]
    Guid(#[from] GuidError),
    #[error("bad flags byte: {0}")]
    Flags(#[from] FlagsByteError),
    #[error("keyword index {0:?} is not a decimal number")]
    KeywordIndex(String),
    #[error("ima attribute is not a JSON object of strings: {0}")]
    Ima(String),
}

/// A value that did not decode, with the key it belongs to.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("xattr '{key}' ({}): {error}", key.description())]
pub struct MetadataError {
    pub key: MetadataKey,
    pub error: ValueError,
}

/// The version librmb writes in `I`.
pub const RBOX_VERSION: &str = "0.1";

/// Encode a text value: the bytes plus the terminating NUL.
pub fn encode_text(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

/// Decode a text value: strip one trailing NUL (absent in pre-2.3.19 plugin releases),
/// refuse NUL inside, require UTF-8.
pub fn decode_text(v: &[u8]) -> Result<&str, ValueError> {
    let body = v.strip_suffix(&[0]).unwrap_or(v);
    if body.contains(&0) {
        return Err(ValueError::EmbeddedNul);
    }
    std::str::from_utf8(body).map_err(|_| ValueError::NotUtf8)
}

/// Strict decimal: ASCII digits only (no sign, no spaces), at least one digit.
pub fn parse_decimal<T: std::str::FromStr>(s: &str) -> Result<T, ValueError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::NotDecimal(s.chars().take(40).collect()));
    }
    s.parse::<T>()
        .map_err(|_| ValueError::OutOfRange(s.chars().take(40).collect()))
}

/// Everything rbox-core knows about a mail object's metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailMetadata {
    /// `M`: GUID of the mailbox the mail is in.
    pub mailbox_guid: Option<Guid128>,
    /// `G`: the mail GUID.
    pub guid: Option<MailGuid>,
    /// `P`: POP3 UIDL.
    pub pop3_uidl: Option<String>,
    /// `O`: POP3 order.
    pub pop3_order: Option<u32>,
    /// `R`: received date, Unix seconds.
    pub received: Option<i64>,
    /// `Z`: physical size (the object's size for an uncompressed mail).
    pub physical_size: Option<u64>,
    /// `V`: virtual size (size with CRLF line endings).
    pub virtual_size: Option<u64>,
    /// `B`: mailbox name at save time.
    pub orig_mailbox: Option<String>,
    /// `U`: IMAP UID.
    pub uid: Option<u32>,
    /// `I`: rbox metadata version.
    pub version: Option<String>,
    /// `A`: envelope sender (only when configured).
    pub from_envelope: Option<String>,
    /// `C`: private flags byte (only when configured).
    pub pvt_flags: Option<FlagsByte>,
    /// `F`: flags byte (only when configured).
    pub flags: Option<FlagsByte>,
    /// `S`: save date of old plugin versions, Unix seconds.
    pub save_time: Option<i64>,
    /// `X`: external reference (never written by librmb).
    pub ext_ref: Option<String>,
    /// Any other xattr, verbatim (including `E`, ` ` and foreign names).
    pub other: BTreeMap<String, Vec<u8>>,
}

fn text_field(key: MetadataKey, v: &[u8]) -> Result<String, MetadataError> {
    decode_text(v)
        .map(str::to_string)
        .map_err(|error| MetadataError { key, error })
}

fn num_field<T: std::str::FromStr>(key: MetadataKey, v: &[u8]) -> Result<T, MetadataError> {
    decode_text(v)
        .and_then(parse_decimal::<T>)
        .map_err(|error| MetadataError { key, error })
}

fn nonempty(key: MetadataKey, s: String) -> Result<String, MetadataError> {
    if s.is_empty() {
        Err(MetadataError {
            key,
            error: ValueError::Empty,
        })
    } else {
        Ok(s)
    }
}

impl MailMetadata {
    /// Decode strictly: the first bad value is an error.
    pub fn decode(xattrs: &BTreeMap<String, Vec<u8>>) -> Result<Self, MetadataError> {
        let (m, errors) = Self::decode_lenient(xattrs);
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(m),
        }
    }

    /// Decode every key on its own: bad values are left out of the result and reported.
    pub fn decode_lenient(xattrs: &BTreeMap<String, Vec<u8>>) -> (Self, Vec<MetadataError>) {
        let mut m = MailMetadata::default();
        let mut errors = Vec::new();
        for (name, v) in xattrs {
            let mut chars = name.chars();
            let key = match (chars.next(), chars.next()) {
                (Some(c), None) => MetadataKey::from_letter(c),
                _ => None,
            };
            let Some(key) = key else {
                m.other.insert(name.clone(), v.clone());
                continue;
            };
            if let Err(e) = m.set_from_xattr(key, v) {
                errors.push(e);
            }
        }
        (m, errors)
    }

    /// Decode one xattr value into its field.
    pub fn set_from_xattr(&mut self, key: MetadataKey, v: &[u8]) -> Result<(), MetadataError> {
        let err = |error| MetadataError { key, error };
        match key {
            MetadataKey::MailboxGuid => {
                let s = text_field(key, v)?;
                self.mailbox_guid = Some(Guid128::parse_hex(&s).map_err(|e| err(e.into()))?);
            }
            MetadataKey::Guid => {
                let s = nonempty(key, text_field(key, v)?)?;
                self.guid = Some(MailGuid::parse(&s));
            }
            MetadataKey::Pop3Uidl => self.pop3_uidl = Some(text_field(key, v)?),
            MetadataKey::Pop3Order => self.pop3_order = Some(num_field(key, v)?),
            MetadataKey::ReceivedTime => self.received = Some(num_field(key, v)?),
            MetadataKey::PhysicalSize => self.physical_size = Some(num_field(key, v)?),
            MetadataKey::VirtualSize => self.virtual_size = Some(num_field(key, v)?),
            MetadataKey::ExtRef => self.ext_ref = Some(text_field(key, v)?),
            MetadataKey::OrigMailbox => self.orig_mailbox = Some(text_field(key, v)?),
            MetadataKey::MailUid => self.uid = Some(num_field(key, v)?),
            MetadataKey::Version => self.version = Some(text_field(key, v)?),
            MetadataKey::FromEnvelope => self.from_envelope = Some(text_field(key, v)?),
            MetadataKey::PvtFlags => {
                self.pvt_flags = Some(FlagsByte::decode(v).map_err(|e| err(e.into()))?)
            }
            MetadataKey::Flags => {
                self.flags = Some(FlagsByte::decode(v).map_err(|e| err(e.into()))?)
            }
            MetadataKey::SaveTime => self.save_time = Some(num_field(key, v)?),
            MetadataKey::Keywords | MetadataKey::OldV1Expunged | MetadataKey::Space => {
                // Not metadata librmb keeps in xattrs: carried verbatim.
                self.other.insert(key.xattr_name(), v.to_vec());
            }
        }
        Ok(())
    }

    /// The xattrs to write, byte-exact. Only present fields are written.
    pub fn encode(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = self.other.clone();
        let mut put = |k: MetadataKey, v: Vec<u8>| {
            out.insert(k.xattr_name(), v);
        };
        if let Some(g) = self.mailbox_guid {
            put(MetadataKey::MailboxGuid, encode_text(&g.to_hex()));
        }
        if let Some(g) = &self.guid {
            put(MetadataKey::Guid, encode_text(&g.to_string()));
        }
        if let Some(s) = &self.pop3_uidl {
            put(MetadataKey::Pop3Uidl, encode_text(s));
        }
        if let Some(n) = self.pop3_order {
            put(MetadataKey::Pop3Order, encode_text(&n.to_string()));
        }
        if let Some(n) = self.received {
            put(MetadataKey::ReceivedTime, encode_text(&n.to_string()));
        }
        if let Some(n) = self.physical_size {
            put(MetadataKey::PhysicalSize, encode_text(&n.to_string()));
        }
        if let Some(n) = self.virtual_size {
            put(MetadataKey::VirtualSize, encode_text(&n.to_string()));
        }
        if let Some(s) = &self.ext_ref {
            put(MetadataKey::ExtRef, encode_text(s));
        }
        if let Some(s) = &self.orig_mailbox {
            put(MetadataKey::OrigMailbox, encode_text(s));
        }
        if let Some(n) = self.uid {
            put(MetadataKey::MailUid, encode_text(&n.to_string()));
        }
        if let Some(s) = &self.version {
            put(MetadataKey::Version, encode_text(s));
        }
        if let Some(s) = &self.from_envelope {
            put(MetadataKey::FromEnvelope, encode_text(s));
        }
        if let Some(f) = self.pvt_flags {
            put(MetadataKey::PvtFlags, f.encode());
        }
        if let Some(f) = self.flags {
            put(MetadataKey::Flags, f.encode());
        }
        if let Some(n) = self.save_time {
            put(MetadataKey::SaveTime, encode_text(&n.to_string()));
        }
        out
    }

    /// Refuse values that cannot be written faithfully (a NUL inside a text value would be
    /// cut off by every C reader) or that decode differently (negative times, empty G).
    pub fn check_encodable(&self) -> Result<(), MetadataError> {
        let texts = [
            (MetadataKey::Pop3Uidl, &self.pop3_uidl),
            (MetadataKey::ExtRef, &self.ext_ref),
            (MetadataKey::OrigMailbox, &self.orig_mailbox),
            (MetadataKey::Version, &self.version),
            (MetadataKey::FromEnvelope, &self.from_envelope),
        ];
        for (key, v) in texts {
            if v.as_deref().is_some_and(|s| s.contains('\0')) {
                return Err(MetadataError {
                    key,
                    error: ValueError::EmbeddedNul,
                });
            }
        }
        if let Some(MailGuid::Text(t)) = &self.guid
            && (t.is_empty() || t.contains('\0'))
        {
            return Err(MetadataError {
                key: MetadataKey::Guid,
                error: if t.is_empty() {
                    ValueError::Empty
                } else {
                    ValueError::EmbeddedNul
                },
            });
        }
        for (key, v) in [
            (MetadataKey::ReceivedTime, self.received),
            (MetadataKey::SaveTime, self.save_time),
        ] {
            if let Some(n) = v
                && n < 0
            {
                return Err(MetadataError {
                    key,
                    error: ValueError::OutOfRange(n.to_string()),
                });
            }
        }
        Ok(())
    }

    /// Keys a mail needs before it can be indexed: `M` (which mailbox) and `G` (its GUID).
    /// librmb's `validate_metadata` additionally wants `U R Z V`; rbox-core can rebuild
    /// those (see [`Self::missing_for_librmb`]).
    pub fn missing_for_index(&self) -> Vec<MetadataKey> {
        let mut v = Vec::new();
        if self.mailbox_guid.is_none() {
            v.push(MetadataKey::MailboxGuid);
        }
        if self.guid.is_none() {
            v.push(MetadataKey::Guid);
        }
        v
    }

    /// Keys upstream's `validate_metadata` requires that are missing.
    pub fn missing_for_librmb(&self) -> Vec<MetadataKey> {
        let mut v = self.missing_for_index();
        if self.uid.is_none() {
            v.push(MetadataKey::MailUid);
        }
        if self.received.is_none() {
            v.push(MetadataKey::ReceivedTime);
        }
        if self.physical_size.is_none() {
            v.push(MetadataKey::PhysicalSize);
        }
        if self.virtual_size.is_none() {
            v.push(MetadataKey::VirtualSize);
        }
        v
    }

    /// The textual value of one key as `rmb ls` and the query language see it (no NUL).
    pub fn value_of(&self, key: MetadataKey) -> Option<String> {
        match key {
            MetadataKey::MailboxGuid => self.mailbox_guid.map(|g| g.to_hex()),
            MetadataKey::Guid => self.guid.as_ref().map(ToString::to_string),
            MetadataKey::Pop3Uidl => self.pop3_uidl.clone(),
            MetadataKey::Pop3Order => self.pop3_order.map(|n| n.to_string()),
            MetadataKey::ReceivedTime => self.received.map(|n| n.to_string()),
            MetadataKey::PhysicalSize => self.physical_size.map(|n| n.to_string()),
            MetadataKey::VirtualSize => self.virtual_size.map(|n| n.to_string()),
            MetadataKey::ExtRef => self.ext_ref.clone(),
            MetadataKey::OrigMailbox => self.orig_mailbox.clone(),
            MetadataKey::MailUid => self.uid.map(|n| n.to_string()),
            MetadataKey::Version => self.version.clone(),
            MetadataKey::FromEnvelope => self.from_envelope.clone(),
            MetadataKey::PvtFlags => self
                .pvt_flags
                .and_then(FlagsByte::mask)
                .map(|m| m.to_string()),
            MetadataKey::Flags => self.flags.and_then(FlagsByte::mask).map(|m| m.to_string()),
            MetadataKey::SaveTime => self.save_time.map(|n| n.to_string()),
            MetadataKey::Keywords | MetadataKey::OldV1Expunged | MetadataKey::Space => self
                .other
                .get(&key.xattr_name())
                .and_then(|v| decode_text(v).ok().map(str::to_string)),
        }
    }
}

/// Keywords as librmb keeps them in the mail object's omap: `"0" → "name\0"`, ….
pub fn encode_keywords(keywords: &[String]) -> BTreeMap<String, Vec<u8>> {
    keywords
        .iter()
        .enumerate()
        .map(|(i, k)| (i.to_string(), encode_text(k)))
        .collect()
}

/// Decode keyword omap entries, in index order. Keys that are not decimal are errors.
pub fn decode_keywords(omap: &BTreeMap<String, Vec<u8>>) -> Result<Vec<String>, MetadataError> {
    let err = |error| MetadataError {
        key: MetadataKey::Keywords,
        error,
    };
    let mut by_index = BTreeMap::new();
    for (k, v) in omap {
        let idx: u32 = parse_decimal(k)
            .map_err(|_| err(ValueError::KeywordIndex(k.chars().take(40).collect())))?;
        let name = decode_text(v).map_err(err)?;
        if name.is_empty() {
            return Err(err(ValueError::Empty));
        }
        by_index.insert(idx, name.to_string());
    }
    Ok(by_index.into_values().collect())
}

/// The `ima` metadata module (librmb-format §1.8): one xattr holding a flat JSON object of
/// `letter → string` (no NUL), keywords nested under `"K"` as `{index: name}`.
pub mod ima {
    use super::*;

    /// Decode the ima JSON into metadata (fields only; keywords returned separately).
    pub fn decode(v: &[u8]) -> Result<(MailMetadata, Vec<String>), MetadataError> {
        let bad = |msg: String| MetadataError {
            key: MetadataKey::Space,
            error: ValueError::Ima(msg),
        };
        let json: serde_json::Value = serde_json::from_slice(v.strip_suffix(&[0]).unwrap_or(v))
            .map_err(|e| bad(e.to_string()))?;
        let obj = json
            .as_object()
            .ok_or_else(|| bad("not an object".into()))?;
        let mut m = MailMetadata::default();
        let mut keywords = Vec::new();
        for (k, val) in obj {
            let mut chars = k.chars();
            let key = match (chars.next(), chars.next()) {
                (Some(c), None) => MetadataKey::from_letter(c),
                _ => None,
            };
            let Some(key) = key else {
                return Err(bad(format!("unknown key {k:?}")));
            };
            if key == MetadataKey::Keywords {
                let kw = val
                    .as_object()
                    .ok_or_else(|| bad("K is not an object".into()))?;
                let mut omap = BTreeMap::new();
                for (i, name) in kw {
                    let name = name
                        .as_str()
                        .ok_or_else(|| bad(format!("keyword {i} is not a string")))?;
                    omap.insert(i.clone(), encode_text(name));
                }
                keywords = decode_keywords(&omap)?;
                continue;
            }
            let s = val
                .as_str()
                .ok_or_else(|| bad(format!("value of {k} is not a string")))?;
            m.set_from_xattr(key, &encode_text(s))?;
        }
        Ok((m, keywords))
    }

    /// Encode metadata (and keywords) as the ima JSON value.
    pub fn encode(m: &MailMetadata, keywords: &[String]) -> Vec<u8> {
        let mut obj = serde_json::Map::new();
        for (name, v) in m.encode() {
            if let Ok(s) = decode_text(&v) {
                obj.insert(name, serde_json::Value::String(s.to_string()));
            }
        }
        if !keywords.is_empty() {
            let kw: serde_json::Map<String, serde_json::Value> = keywords
                .iter()
                .enumerate()
                .map(|(i, k)| (i.to_string(), serde_json::Value::String(k.clone())))
                .collect();
            obj.insert("K".into(), serde_json::Value::Object(kw));
        }
        serde_json::to_vec(&serde_json::Value::Object(obj)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed_alice_uid3() -> BTreeMap<String, Vec<u8>> {
        // rbox-observed §2.2, alice UID 3, byte for byte.
        let mut x = BTreeMap::new();
        x.insert("B".into(), vec![0x49, 0x4e, 0x42, 0x4f, 0x58, 0x00]);
        x.insert("G".into(), b"4563a01079ba046b8622000083ecc375\0".to_vec());
        x.insert("I".into(), vec![0x30, 0x2e, 0x31, 0x00]);
        x.insert("M".into(), b"11e7af1c77ba046b6022000083ecc375\0".to_vec());
        x.insert(
            "R".into(),
            vec![
                0x31, 0x37, 0x30, 0x34, 0x31, 0x31, 0x30, 0x34, 0x30, 0x33, 0x00,
            ],
        );
        x.insert("U".into(), vec![0x33, 0x00]);
        x.insert("V".into(), vec![0x32, 0x36, 0x35, 0x00]);
        x.insert("Z".into(), vec![0x32, 0x35, 0x36, 0x00]);
        x
    }

    #[test]
    fn decodes_and_reencodes_the_observed_object_byte_for_byte() {
        let x = observed_alice_uid3();
        let m = MailMetadata::decode(&x).unwrap();
        assert_eq!(m.uid, Some(3));
        assert_eq!(m.received, Some(1_704_110_403));
        assert_eq!(m.physical_size, Some(256));
        assert_eq!(m.virtual_size, Some(265));
        assert_eq!(m.orig_mailbox.as_deref(), Some("INBOX"));
        assert_eq!(m.version.as_deref(), Some(RBOX_VERSION));
        assert_eq!(
            m.mailbox_guid.unwrap().to_hex(),
            "11e7af1c77ba046b6022000083ecc375"
        );
        assert!(matches!(m.guid, Some(MailGuid::Compact(_))));
        assert!(m.other.is_empty());
        assert_eq!(m.encode(), x);
        assert!(m.missing_for_librmb().is_empty());
    }

    #[test]
    fn every_key_letter_is_exact() {
        // upstream convert_enum: key ↔ letter.
        let letters: String = MetadataKey::ALL.iter().map(|k| k.letter()).collect();
        assert_eq!(letters, "MGPORZVXBUIACEFKS ");
        for k in MetadataKey::ALL {
            assert_eq!(MetadataKey::from_letter(k.letter()), Some(k));
        }
        assert_eq!(MetadataKey::from_letter('Q'), None);
        assert!(MetadataKey::ReceivedTime.is_date() && MetadataKey::SaveTime.is_date());
        assert!(!MetadataKey::Version.is_date());
    }

    #[test]
    fn each_key_encodes_with_a_trailing_nul() {
        let m = MailMetadata {
            mailbox_guid: Some(Guid128::parse_hex("11e7af1c77ba046b6022000083ecc375").unwrap()),
            guid: Some(MailGuid::parse("4563a010-79ba-046b-8622-000083ecc375")),
            pop3_uidl: Some("uidl-1".into()),
            pop3_order: Some(7),
            received: Some(1_503_488_583),
            physical_size: Some(100),
            virtual_size: Some(100),
            ext_ref: Some("ref".into()),
            orig_mailbox: Some("Drafts".into()),
            uid: Some(4_294_967_295),
            version: Some("0.1".into()),
            from_envelope: Some("a@b.c".into()),
            pvt_flags: Some(FlagsByte::from_mask(0x08)),
            flags: Some(FlagsByte::from_mask(0x01)),
            save_time: Some(0),
            other: BTreeMap::new(),
        };
        let x = m.encode();
        let want: &[(&str, &[u8])] = &[
            ("A", b"a@b.c\0"),
            ("B", b"Drafts\0"),
            ("C", &[0x08, 0x00]),
            ("F", &[0x01, 0x00]),
            ("G", b"4563a010-79ba-046b-8622-000083ecc375\0"),
            ("I", b"0.1\0"),
            ("M", b"11e7af1c77ba046b6022000083ecc375\0"),
            ("O", b"7\0"),
            ("P", b"uidl-1\0"),
            ("R", b"1503488583\0"),
            ("S", b"0\0"),
            ("U", b"4294967295\0"),
            ("V", b"100\0"),
            ("X", b"ref\0"),
            ("Z", b"100\0"),
        ];
        assert_eq!(x.len(), want.len());
        for (k, v) in want {
            assert_eq!(x.get(*k).map(Vec::as_slice), Some(*v), "key {k}");
        }
        assert_eq!(MailMetadata::decode(&x).unwrap(), m);
    }

    #[test]
    fn strict_errors_name_the_key() {
        let mut x = observed_alice_uid3();
        x.insert("U".into(), b"12a\0".to_vec());
        let e = MailMetadata::decode(&x).unwrap_err();
        assert_eq!(e.key, MetadataKey::MailUid);
        assert!(matches!(e.error, ValueError::NotDecimal(_)));
        x.insert("U".into(), b"4294967296\0".to_vec());
        assert!(matches!(
            MailMetadata::decode(&x).unwrap_err().error,
            ValueError::OutOfRange(_)
        ));
        x.insert("U".into(), b"-1\0".to_vec());
        assert!(MailMetadata::decode(&x).is_err());
        x.insert("U".into(), b"1\x002\0".to_vec());
        assert_eq!(
            MailMetadata::decode(&x).unwrap_err().error,
            ValueError::EmbeddedNul
        );
        x.insert("U".into(), b"3\0".to_vec());
        x.insert("M".into(), b"INBOX\0".to_vec());
        assert_eq!(
            MailMetadata::decode(&x).unwrap_err().key,
            MetadataKey::MailboxGuid
        );
        x.insert("M".into(), vec![0xff, 0xfe, 0]);
        assert_eq!(
            MailMetadata::decode(&x).unwrap_err().error,
            ValueError::NotUtf8
        );
    }

    #[test]
    fn lenient_decode_keeps_good_keys_and_lists_bad_ones() {
        let mut x = observed_alice_uid3();
        x.insert("Z".into(), b"big\0".to_vec());
        x.insert("R".into(), b"\0".to_vec());
        let (m, errs) = MailMetadata::decode_lenient(&x);
        assert_eq!(errs.len(), 2);
        assert_eq!(m.uid, Some(3));
        assert!(m.physical_size.is_none());
        assert_eq!(
            m.missing_for_librmb(),
            vec![MetadataKey::ReceivedTime, MetadataKey::PhysicalSize]
        );
    }

    #[test]
    fn legacy_values_without_nul_and_foreign_xattrs() {
        let mut x = BTreeMap::new();
        x.insert("R".into(), b"1531485201".to_vec());
        x.insert("user.foo".into(), vec![1, 2, 3]);
        x.insert("E".into(), b"1\0".to_vec());
        let m = MailMetadata::decode(&x).unwrap();
        assert_eq!(m.received, Some(1_531_485_201));
        let out = m.encode();
        assert_eq!(out.get("R").unwrap(), b"1531485201\0");
        assert_eq!(out.get("user.foo").unwrap(), &vec![1, 2, 3]);
        assert_eq!(out.get("E").unwrap(), b"1\0");
    }

    #[test]
    fn empty_guid_is_invalid() {
        let mut x = BTreeMap::new();
        x.insert("G".into(), b"\0".to_vec());
        assert_eq!(
            MailMetadata::decode(&x).unwrap_err().error,
            ValueError::Empty
        );
    }

    #[test]
    fn keywords_live_in_omap_with_decimal_indexes() {
        let kw = vec!["$Label1".to_string(), "Junk".to_string()];
        let omap = encode_keywords(&kw);
        assert_eq!(omap.get("0").unwrap(), b"$Label1\0");
        assert_eq!(omap.get("1").unwrap(), b"Junk\0");
        assert_eq!(decode_keywords(&omap).unwrap(), kw);
        let mut bad = omap.clone();
        bad.insert("x".into(), b"y\0".to_vec());
        assert!(decode_keywords(&bad).is_err());
        // Order follows the numeric index, not the key's string order.
        let mut ten = BTreeMap::new();
        ten.insert("10".to_string(), b"b\0".to_vec());
        ten.insert("9".to_string(), b"a\0".to_vec());
        assert_eq!(decode_keywords(&ten).unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn check_encodable_refuses_nul_and_negative_times() {
        let mut m = MailMetadata {
            orig_mailbox: Some("a\0b".into()),
            ..Default::default()
        };
        assert!(m.check_encodable().is_err());
        m.orig_mailbox = Some("INBOX".into());
        m.received = Some(-1);
        assert!(m.check_encodable().is_err());
        m.received = Some(1);
        assert!(m.check_encodable().is_ok());
    }

    #[test]
    fn ima_round_trip() {
        let m = MailMetadata::decode(&observed_alice_uid3()).unwrap();
        let kw = vec!["Junk".to_string()];
        let v = ima::encode(&m, &kw);
        let (back, kw2) = ima::decode(&v).unwrap();
        assert_eq!(back, m);
        assert_eq!(kw2, kw);
        assert!(ima::decode(b"[1]").is_err());
        assert!(ima::decode(br#"{"U":"x"}"#).is_err());
        assert!(ima::decode(br#"{"UU":"1"}"#).is_err());
    }
}
