//! Dovecot-style 128-bit GUIDs: mail object ids, mail GUIDs, mailbox GUIDs.
//!
//! Layout (Dovecot `guid_128_generate()`, observed in rbox-observed §2.1):
//! bytes 0..4 = a nanosecond counter (LE), 4..8 = seconds (LE), 8..12 = pid (LE),
//! 12..16 = the last 4 bytes of SHA-1 of the host name. Rendered as 32 lowercase hex
//! characters (`guid_128_to_string`), or in "record" form `8-4-4-4-12` for dashed GUIDs.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use sha1::{Digest, Sha1};
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum GuidError {
    #[error("GUID must be 32 hex characters, got {0} characters")]
    Length(usize),
    #[error("GUID contains a character that is not lowercase hex at position {0}")]
    NotHex(usize),
    #[error("dashed GUID must look like xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")]
    Dashed,
}

/// A 128-bit GUID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid128(pub [u8; 16]);

impl fmt::Debug for Guid128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid128({self})")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn decode_hex_into(s: &[u8], out: &mut [u8], pos_base: usize) -> Result<(), GuidError> {
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = hex_val(pair[0]).ok_or(GuidError::NotHex(pos_base + 2 * i))?;
        let lo = hex_val(pair[1]).ok_or(GuidError::NotHex(pos_base + 2 * i + 1))?;
        out[i] = (hi << 4) | lo;
    }
    Ok(())
}

impl Guid128 {
    pub fn from_bytes(b: [u8; 16]) -> Self {
        Self(b)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Build a GUID from its parts, in Dovecot's layout.
    pub fn from_parts(nsec: u32, sec: u32, pid: u32, host_hash: [u8; 4]) -> Self {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&nsec.to_le_bytes());
        b[4..8].copy_from_slice(&sec.to_le_bytes());
        b[8..12].copy_from_slice(&pid.to_le_bytes());
        b[12..16].copy_from_slice(&host_hash);
        Self(b)
    }

    pub fn nsec(&self) -> u32 {
        u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
    pub fn sec(&self) -> u32 {
        u32::from_le_bytes([self.0[4], self.0[5], self.0[6], self.0[7]])
    }
    pub fn pid(&self) -> u32 {
        u32::from_le_bytes([self.0[8], self.0[9], self.0[10], self.0[11]])
    }
    pub fn host_hash(&self) -> [u8; 4] {
        [self.0[12], self.0[13], self.0[14], self.0[15]]
    }

    /// 32 lowercase hex characters (`guid_128_to_string`).
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(32);
        for b in self.0 {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    /// Parse exactly 32 lowercase hex characters. Uppercase is refused on purpose: object
    /// ids are case-sensitive and Dovecot only ever writes lowercase.
    pub fn parse_hex(s: &str) -> Result<Self, GuidError> {
        let b = s.as_bytes();
        if b.len() != 32 {
            return Err(GuidError::Length(b.len()));
        }
        let mut out = [0u8; 16];
        decode_hex_into(b, &mut out, 0)?;
        Ok(Self(out))
    }

    /// "Record" form: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, bytes in order.
    pub fn to_dashed(&self) -> String {
        let h = self.to_hex();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    pub fn parse_dashed(s: &str) -> Result<Self, GuidError> {
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return Err(GuidError::Dashed);
        }
        let compact: Vec<u8> = b.iter().copied().filter(|&c| c != b'-').collect();
        if compact.len() != 32 {
            return Err(GuidError::Dashed);
        }
        let mut out = [0u8; 16];
        decode_hex_into(&compact, &mut out, 0).map_err(|_| GuidError::Dashed)?;
        Ok(Self(out))
    }

    /// A fresh GUID from the process-wide generator.
    pub fn generate() -> Self {
        GENERATOR.next()
    }
}

impl fmt::Display for Guid128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for Guid128 {
    type Err = GuidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_hex(s)
    }
}

/// The last 4 bytes of SHA-1 of the host name (Dovecot `guid_128_host_hash_get`).
pub fn host_hash(host: &str) -> [u8; 4] {
    let d = Sha1::digest(host.as_bytes());
    let n = d.len();
    [d[n - 4], d[n - 3], d[n - 2], d[n - 1]]
}

struct GenState {
    sec: u32,
    nsec: u32,
}

/// Dovecot's generator: the first call takes the wall clock; every later call increments
/// the nanosecond field as a counter (carrying into seconds), so GUIDs of one process are
/// unique and ordered without asking the clock again.
pub struct GuidGenerator {
    pid: u32,
    host_hash: [u8; 4],
    state: Mutex<Option<GenState>>,
}

impl fmt::Debug for GuidGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuidGenerator")
            .field("pid", &self.pid)
            .field("host_hash", &self.host_hash)
            .finish_non_exhaustive()
    }
}

impl GuidGenerator {
    pub const fn new(pid: u32, host_hash: [u8; 4]) -> Self {
        Self {
            pid,
            host_hash,
            state: Mutex::new(None),
        }
    }

    /// Start the counter at a given time (tests pin it to reproduce known bytes).
    pub fn starting_at(pid: u32, host_hash: [u8; 4], sec: u32, nsec: u32) -> Self {
        Self {
            pid,
            host_hash,
            state: Mutex::new(Some(GenState {
                sec,
                nsec: nsec.wrapping_sub(1),
            })),
        }
    }

    pub fn next(&self) -> Guid128 {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let s = match st.as_mut() {
            None => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                st.insert(GenState {
                    sec: now.as_secs() as u32,
                    nsec: now.subsec_nanos(),
                })
            }
            Some(s) => {
                if s.nsec < u32::MAX {
                    s.nsec += 1;
                } else {
                    s.sec = s.sec.wrapping_add(1);
                    s.nsec = 0;
                }
                s
            }
        };
        Guid128::from_parts(s.nsec, s.sec, self.pid, self.host_hash)
    }
}

struct LazyGenerator(std::sync::OnceLock<GuidGenerator>);

impl LazyGenerator {
    fn next(&self) -> Guid128 {
        self.0
            .get_or_init(|| {
                let host = hostname::get()
                    .ok()
                    .and_then(|h| h.into_string().ok())
                    .unwrap_or_else(|| "localhost".to_string());
                GuidGenerator::new(std::process::id(), host_hash(&host))
            })
            .next()
    }
}

static GENERATOR: LazyGenerator = LazyGenerator(std::sync::OnceLock::new());

/// A mail GUID (`G`): Dovecot writes the compact hex form, or the dashed "record" form when
/// the GUID it was given had dashes (#286). Anything else is kept verbatim as text so an
/// object written by another tool round-trips byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MailGuid {
    Compact(Guid128),
    Dashed(Guid128),
    Text(String),
}

impl MailGuid {
    /// Classify a non-empty text form.
    pub fn parse(s: &str) -> Self {
        if let Ok(g) = Guid128::parse_hex(s) {
            MailGuid::Compact(g)
        } else if let Ok(g) = Guid128::parse_dashed(s) {
            MailGuid::Dashed(g)
        } else {
            MailGuid::Text(s.to_string())
        }
    }

    /// The 128-bit value, when the text is a GUID.
    pub fn guid128(&self) -> Option<Guid128> {
        match self {
            MailGuid::Compact(g) | MailGuid::Dashed(g) => Some(*g),
            MailGuid::Text(_) => None,
        }
    }
}

impl fmt::Display for MailGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailGuid::Compact(g) => f.write_str(&g.to_hex()),
            MailGuid::Dashed(g) => f.write_str(&g.to_dashed()),
            MailGuid::Text(t) => f.write_str(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_oid_layout() {
        // rbox-observed §2.1: 13e7af1c 77ba046b 60220000 83ecc375 → sec 0x6b04ba77, pid 0x2260.
        let g = Guid128::parse_hex("13e7af1c77ba046b6022000083ecc375").unwrap();
        assert_eq!(g.sec(), 0x6b04_ba77);
        assert_eq!(g.pid(), 0x2260);
        assert_eq!(g.nsec(), 0x1caf_e713);
        assert_eq!(g.host_hash(), [0x83, 0xec, 0xc3, 0x75]);
        assert_eq!(
            Guid128::from_parts(0x1caf_e713, 0x6b04_ba77, 0x2260, [0x83, 0xec, 0xc3, 0x75])
                .to_hex(),
            "13e7af1c77ba046b6022000083ecc375"
        );
    }

    #[test]
    fn next_call_increments_byte_zero_like_oid_then_g() {
        // The observed G of a mail is the OID with byte 0 incremented: 13e7… → 14e7….
        let gen_ =
            GuidGenerator::starting_at(0x2260, [0x83, 0xec, 0xc3, 0x75], 0x6b04_ba77, 0x1caf_e713);
        let oid = gen_.next();
        let g = gen_.next();
        assert_eq!(oid.to_hex(), "13e7af1c77ba046b6022000083ecc375");
        assert_eq!(g.to_hex(), "14e7af1c77ba046b6022000083ecc375");
    }

    #[test]
    fn counter_carries_into_seconds() {
        let gen_ = GuidGenerator::starting_at(1, [0; 4], 10, u32::MAX);
        assert_eq!(gen_.next().nsec(), u32::MAX);
        let g = gen_.next();
        assert_eq!((g.sec(), g.nsec()), (11, 0));
    }

    #[test]
    fn strict_hex_and_dashed_round_trip() {
        let g = Guid128::parse_hex("4563a01079ba046b8622000083ecc375").unwrap();
        assert_eq!(g.to_dashed(), "4563a010-79ba-046b-8622-000083ecc375");
        assert_eq!(Guid128::parse_dashed(&g.to_dashed()).unwrap(), g);
        assert_eq!(
            Guid128::parse_hex("4563A01079ba046b8622000083ecc375"),
            Err(GuidError::NotHex(4))
        );
        assert_eq!(Guid128::parse_hex("abc"), Err(GuidError::Length(3)));
        assert!(Guid128::parse_dashed("4563a010-79ba-046b-8622000083ecc375-").is_err());
    }

    #[test]
    fn mail_guid_keeps_its_form() {
        for s in [
            "4563a01079ba046b8622000083ecc375",
            "4563a010-79ba-046b-8622-000083ecc375",
            "<some@message.id>",
        ] {
            assert_eq!(MailGuid::parse(s).to_string(), s);
        }
        assert!(MailGuid::parse("x").guid128().is_none());
    }

    #[test]
    fn host_hash_is_the_sha1_tail() {
        // SHA-1("localhost") = 334389048b872a533002b34d73f8c29fd09efc50.
        assert_eq!(host_hash("localhost"), [0xd0, 0x9e, 0xfc, 0x50]);
    }

    #[test]
    fn generated_guids_are_unique_and_hex() {
        let a = Guid128::generate();
        let b = Guid128::generate();
        assert_ne!(a, b);
        assert_eq!(Guid128::parse_hex(&a.to_hex()).unwrap(), a);
        assert_eq!(a.pid(), std::process::id());
    }
}
