//! Mail objects on the wire: encoding metadata per `rbox_cfg`, writing bodies (one op or
//! chunked), decoding what is stored.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::backend::{Backend, BackendError, ObjectLocation, WriteLimits, WriteOp};
use crate::error::{Result, StoreError};
use crate::format::cfg::{MetadataStorage, RboxConfig};
use crate::format::metadata::{
    MailMetadata, MetadataError, MetadataKey, decode_keywords, encode_keywords, ima,
};

/// Size with CRLF line endings (`V`): every LF not preceded by CR counts twice.
pub fn virtual_size(body: &[u8]) -> u64 {
    let mut n = body.len() as u64;
    let mut prev = 0u8;
    for &b in body {
        if b == b'\n' && prev != b'\r' {
            n += 1;
        }
        prev = b;
    }
    n
}

pub(crate) fn to_system_time(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// xattrs and omap entries of a mail object, as `rbox_cfg` says to store them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct EncodedMetadata {
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub omap: BTreeMap<String, Vec<u8>>,
}

impl EncodedMetadata {
    fn payload(&self) -> u64 {
        self.xattrs
            .iter()
            .chain(self.omap.iter())
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum()
    }
}

/// Encode metadata and keywords. With the `ima` module, every key that is not updateable
/// goes into one JSON xattr; updateable keys stay separate (librmb-format §1.8).
pub(crate) fn encode_metadata(
    cfg: &RboxConfig,
    m: &MailMetadata,
    keywords: &[String],
) -> EncodedMetadata {
    let kw_in_omap = cfg.is_mail_attribute(MetadataKey::Keywords) && !keywords.is_empty();
    match cfg.metadata_storage {
        MetadataStorage::Default => EncodedMetadata {
            xattrs: m.encode(),
            omap: if kw_in_omap {
                encode_keywords(keywords)
            } else {
                BTreeMap::new()
            },
        },
        MetadataStorage::Ima => {
            let all = m.encode();
            let mut separate = BTreeMap::new();
            let mut packed = MailMetadata::default();
            for (name, v) in all {
                let key = single_letter(&name);
                match key {
                    Some(k) if !cfg.may_update(k) => {
                        // Cannot fail: the value came from encode().
                        let _ = packed.set_from_xattr(k, &v);
                    }
                    _ => {
                        separate.insert(name, v);
                    }
                }
            }
            let kw_separate = cfg.may_update(MetadataKey::Keywords);
            let packed_kw: &[String] = if kw_in_omap && !kw_separate {
                keywords
            } else {
                &[]
            };
            separate.insert(
                cfg.storage_metadata_attr.clone(),
                ima::encode(&packed, packed_kw),
            );
            EncodedMetadata {
                xattrs: separate,
                omap: if kw_in_omap && kw_separate {
                    encode_keywords(keywords)
                } else {
                    BTreeMap::new()
                },
            }
        }
    }
}

fn single_letter(name: &str) -> Option<MetadataKey> {
    let mut c = name.chars();
    match (c.next(), c.next()) {
        (Some(ch), None) => MetadataKey::from_letter(ch),
        _ => None,
    }
}

/// Decode a mail object's metadata from its xattrs (either module), leniently: bad values
/// are reported, good ones kept. Keywords stored inside an `ima` xattr are returned too.
pub(crate) fn decode_metadata(
    cfg: &RboxConfig,
    xattrs: &BTreeMap<String, Vec<u8>>,
) -> (MailMetadata, Vec<MetadataError>, Vec<String>) {
    let (mut m, mut errors) = MailMetadata::decode_lenient(xattrs);
    let mut keywords = Vec::new();
    if let Some(raw) = m.other.remove(&cfg.storage_metadata_attr) {
        match ima::decode(&raw) {
            Ok((packed, kw)) => {
                keywords = kw;
                merge_missing(&mut m, packed);
            }
            Err(e) => {
                errors.push(e);
                m.other.insert(cfg.storage_metadata_attr.clone(), raw);
            }
        }
    }
    (m, errors, keywords)
}

/// Fill fields of `m` that are unset from `from` (separate xattrs win over packed ones).
fn merge_missing(m: &mut MailMetadata, from: MailMetadata) {
    macro_rules! fill {
        ($($f:ident),*) => { $( if m.$f.is_none() { m.$f = from.$f; } )* };
    }
    fill!(
        mailbox_guid,
        guid,
        pop3_uidl,
        pop3_order,
        received,
        physical_size,
        virtual_size,
        orig_mailbox,
        uid,
        version,
        from_envelope,
        pvt_flags,
        flags,
        save_time,
        ext_ref
    );
    for (k, v) in from.other {
        m.other.entry(k).or_insert(v);
    }
}

/// Keywords of a mail object from its omap (librmb keeps them there when `K` is on).
pub(crate) async fn read_object_keywords(
    backend: &dyn Backend,
    loc: &ObjectLocation,
) -> Result<Result<Vec<String>, MetadataError>> {
    let mut all = BTreeMap::new();
    let mut after = String::new();
    loop {
        let page = match backend.omap_get_vals(loc, &after, "", 1000).await {
            Ok(p) => p,
            Err(BackendError::NotFound(_)) => return Ok(Ok(Vec::new())),
            Err(e) => return Err(e.into()),
        };
        if let Some(last) = page.entries.keys().next_back() {
            after = last.clone();
        }
        let more = page.more && !page.entries.is_empty();
        all.extend(page.entries);
        if !more {
            break;
        }
    }
    Ok(decode_keywords(&all))
}

/// Headroom kept below `osd_max_write_size` for the op's own framing.
fn margin(limits: &WriteLimits) -> u64 {
    (limits.max_write_size / 16).min(4096)
}

/// How a body will be written, decided before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WritePlan {
    /// Bytes of the body in the first op (with all metadata).
    pub first: u64,
    /// Bytes per later op.
    pub chunk: u64,
}

impl WritePlan {
    /// Number of write ops for a body of `len` bytes.
    #[cfg(test)]
    pub fn ops(&self, len: u64) -> u64 {
        if len <= self.first {
            1
        } else {
            1 + (len - self.first).div_ceil(self.chunk)
        }
    }
}

/// Refuse bodies larger than `osd_max_object_size`; plan chunks for bodies larger than one
/// write op. Nothing is written here.
pub(crate) fn plan_write(limits: &WriteLimits, len: u64, meta: u64) -> Result<WritePlan> {
    if len > limits.max_object_size {
        return Err(StoreError::TooLarge {
            size: len,
            max: limits.max_object_size,
        });
    }
    let budget = limits.max_write_size.saturating_sub(margin(limits));
    if meta > budget {
        return Err(StoreError::Invalid(format!(
            "metadata of {meta} bytes does not fit one write op of {budget} bytes"
        )));
    }
    Ok(WritePlan {
        first: budget - meta,
        chunk: budget.max(1),
    })
}

/// Write a new mail object: create it exclusively with every xattr (and omap), the whole
/// body when it fits one op, else the first part followed by `write(offset)` chunks.
/// `Exists` when the object id is taken.
pub(crate) async fn write_new_object(
    backend: &dyn Backend,
    limits: &WriteLimits,
    loc: &ObjectLocation,
    body: &[u8],
    meta: &EncodedMetadata,
    mtime: SystemTime,
) -> Result<(), StoreError> {
    let plan = plan_write(limits, body.len() as u64, meta.payload())?;
    let first = (plan.first as usize).min(body.len());
    let mut op = WriteOp::new().create(true);
    op = if first == body.len() {
        op.write_full(body.to_vec())
    } else {
        op.write(0, body[..first].to_vec())
    };
    for (k, v) in &meta.xattrs {
        op = op.set_xattr(k.clone(), v.clone());
    }
    if !meta.omap.is_empty() {
        op = op.omap_set(meta.omap.clone());
    }
    backend.write_op(loc, op.with_mtime(mtime)).await?;
    let mut off = first;
    while off < body.len() {
        let end = (off + plan.chunk as usize).min(body.len());
        // Offset writes, not appends: a retried chunk cannot duplicate data.
        let op = WriteOp::new()
            .assert_exists()
            .write(off as u64, body[off..end].to_vec())
            .with_mtime(mtime);
        backend.write_op(loc, op).await?;
        off = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::guid::Guid128;

    #[test]
    fn virtual_size_counts_bare_lf_twice() {
        assert_eq!(virtual_size(b"a\nb\n"), 6);
        assert_eq!(virtual_size(b"a\r\nb\r\n"), 6);
        assert_eq!(virtual_size(b""), 0);
        // Observed alice UID 3: Z=256, V=265 (9 LFs).
        let body = b"From: sender3 <sender3@peer.test>\nTo: alice\nSubject: rbox ground truth 3 (imap append)\nMessage-ID: <peer-msg-3@peer.test>\nDate: Mon, 01 Jan 2024 12:00:03 +0000\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\nMessage three, appended via IMAP.\n";
        assert_eq!(body.len(), 256);
        assert_eq!(virtual_size(body), 265);
    }

    #[test]
    fn plans_refuse_oversize_and_chunk_large_bodies() {
        let limits = WriteLimits {
            max_write_size: 1600,
            max_object_size: 10_000,
        };
        assert!(matches!(
            plan_write(&limits, 10_001, 10),
            Err(StoreError::TooLarge {
                size: 10_001,
                max: 10_000
            })
        ));
        let p = plan_write(&limits, 5000, 100).unwrap();
        assert_eq!(p.chunk, 1500);
        assert_eq!(p.first, 1400);
        assert_eq!(p.ops(5000), 4);
        assert_eq!(p.ops(1400), 1);
        assert_eq!(p.ops(1401), 2);
    }

    #[test]
    fn ima_packs_non_updateable_keys_into_one_xattr() {
        let cfg = RboxConfig::default()
            .apply_updates(&[
                "rbox_metadata_storage=ima",
                "rbox_update_attributes=true",
                "rbox_updateable_attributes=B",
            ])
            .unwrap();
        let m = MailMetadata {
            mailbox_guid: Some(Guid128::generate()),
            uid: Some(3),
            orig_mailbox: Some("INBOX".into()),
            ..Default::default()
        };
        let enc = encode_metadata(&cfg, &m, &[]);
        let names: Vec<&str> = enc.xattrs.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["B", "ima"]);
        let (back, errors, _) = decode_metadata(&cfg, &enc.xattrs);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(back, m);
    }
}
