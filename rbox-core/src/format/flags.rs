//! IMAP system flags as Dovecot numbers them, and the librmb flags-byte quirk.
//!
//! librmb writes the `F` (flags) and `C` (private flags) xattrs through
//! `flags_to_string`, which streams the mask as a `uint8_t` — i.e. as one raw *character*
//! whose value is the mask — and reads it back with `operator>>` into a string. So the value
//! is that single byte, followed by the usual NUL: `\Answered` (0x01) is stored as `01 00`.
//! `operator>>` skips whitespace, so masks that are whitespace characters (0x09–0x0d and
//! 0x20) come out as the empty string and are stored as a lone `00`: the mask is lost.

use std::fmt;

use thiserror::Error;

/// Dovecot's `enum mail_flags` (the low six bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MailFlags(pub u8);

impl MailFlags {
    pub const ANSWERED: MailFlags = MailFlags(0x01);
    pub const FLAGGED: MailFlags = MailFlags(0x02);
    pub const DELETED: MailFlags = MailFlags(0x04);
    pub const SEEN: MailFlags = MailFlags(0x08);
    pub const DRAFT: MailFlags = MailFlags(0x10);
    pub const RECENT: MailFlags = MailFlags(0x20);
    /// Every bit that has a meaning.
    pub const ALL: u8 = 0x3f;

    const NAMES: [(MailFlags, &'static str); 6] = [
        (Self::ANSWERED, "\\Answered"),
        (Self::FLAGGED, "\\Flagged"),
        (Self::DELETED, "\\Deleted"),
        (Self::SEEN, "\\Seen"),
        (Self::DRAFT, "\\Draft"),
        (Self::RECENT, "\\Recent"),
    ];

    pub fn empty() -> Self {
        Self(0)
    }
    pub fn bits(self) -> u8 {
        self.0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, other: MailFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn union(self, other: MailFlags) -> Self {
        Self(self.0 | other.0)
    }
    pub fn difference(self, other: MailFlags) -> Self {
        Self(self.0 & !other.0)
    }

    /// Parse one IMAP system flag name (`\Seen`, case-insensitive as IMAP says).
    pub fn from_name(name: &str) -> Option<MailFlags> {
        Self::NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(f, _)| *f)
    }

    /// The IMAP names of the set bits, in Dovecot's order.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(f, _)| self.contains(*f))
            .map(|(_, n)| *n)
            .collect()
    }
}

impl fmt::Debug for MailFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailFlags({:#04x} {})", self.0, self.names().join(" "))
    }
}

impl fmt::Display for MailFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

/// The decoded value of an `F` or `C` xattr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlagsByte {
    /// The raw mask byte as stored.
    Mask(u8),
    /// Stored as the empty string: the mask was a whitespace character (0x09–0x0d, 0x20)
    /// and librmb's stream conversion dropped it. The flags cannot be recovered from RADOS.
    Lost,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FlagsByteError {
    #[error("flags value must be one byte plus NUL, got {0} bytes")]
    Length(usize),
    #[error("flags value must end with NUL")]
    NoNul,
}

/// Is this byte skipped by C++ `operator>>` (the `isspace` set in the C locale)?
fn is_stream_space(b: u8) -> bool {
    matches!(b, 0x09..=0x0d | 0x20)
}

impl FlagsByte {
    /// What librmb stores for a mask (before the NUL terminator is added).
    pub fn from_mask(mask: u8) -> Self {
        if is_stream_space(mask) {
            FlagsByte::Lost
        } else {
            FlagsByte::Mask(mask)
        }
    }

    /// The xattr value bytes, NUL included.
    pub fn encode(self) -> Vec<u8> {
        match self {
            FlagsByte::Mask(m) => vec![m, 0],
            FlagsByte::Lost => vec![0],
        }
    }

    /// Decode an xattr value. Accepts the value with its NUL (`m 00`, or `00` alone for a
    /// lost mask); a legacy value without NUL (one byte) is accepted too.
    pub fn decode(v: &[u8]) -> Result<Self, FlagsByteError> {
        match v {
            [0] | [] => Ok(FlagsByte::Lost),
            [m, 0] => Ok(FlagsByte::Mask(*m)),
            [m] => Ok(FlagsByte::Mask(*m)),
            [_, _] => Err(FlagsByteError::NoNul),
            _ => Err(FlagsByteError::Length(v.len())),
        }
    }

    pub fn mask(self) -> Option<u8> {
        match self {
            FlagsByte::Mask(m) => Some(m),
            FlagsByte::Lost => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_is_stored_as_byte_01_then_nul() {
        // upstream test mail_save_to_inbox_with_flags: \Answered → 0x01.
        assert_eq!(FlagsByte::from_mask(0x01).encode(), vec![0x01, 0x00]);
    }

    #[test]
    fn all_flags_round_trip_like_convert_flags() {
        // upstream test convert_flags round-trips 0x3f.
        let v = FlagsByte::from_mask(0x3f).encode();
        assert_eq!(v, vec![0x3f, 0x00]);
        assert_eq!(FlagsByte::decode(&v).unwrap().mask(), Some(0x3f));
    }

    #[test]
    fn whitespace_masks_are_lost() {
        for m in [0x09u8, 0x0a, 0x0b, 0x0c, 0x0d, 0x20] {
            assert_eq!(FlagsByte::from_mask(m), FlagsByte::Lost, "{m:#x}");
            assert_eq!(FlagsByte::from_mask(m).encode(), vec![0]);
        }
        assert_eq!(FlagsByte::decode(&[0]).unwrap(), FlagsByte::Lost);
        // Every other mask survives.
        for m in 0u8..=0x3f {
            let f = FlagsByte::from_mask(m);
            if f != FlagsByte::Lost {
                assert_eq!(FlagsByte::decode(&f.encode()).unwrap().mask(), Some(m));
            }
        }
    }

    #[test]
    fn malformed_values_are_errors() {
        assert_eq!(FlagsByte::decode(&[1, 2]), Err(FlagsByteError::NoNul));
        assert_eq!(
            FlagsByte::decode(&[1, 2, 0]),
            Err(FlagsByteError::Length(3))
        );
    }

    #[test]
    fn names() {
        let f = MailFlags::SEEN.union(MailFlags::ANSWERED);
        assert_eq!(f.names(), vec!["\\Answered", "\\Seen"]);
        assert_eq!(MailFlags::from_name("\\seen"), Some(MailFlags::SEEN));
        assert_eq!(MailFlags::from_name("Seen"), None);
        assert_eq!(f.difference(MailFlags::SEEN), MailFlags::ANSWERED);
    }
}
