//! librmb's recovery ("ceph index") object (librmb-format §1.13, rbox-observed §2.1).
//!
//! With `rbox_object_search_method=2` the plugin keeps, in pool `rbox_index_pool_name`,
//! default namespace, one object per user named after the user's namespace. Its data is
//! the OIDs of saved mails, each followed by `,`, appended on every save and never pruned on
//! expunge. Readers split on `,` and ignore empty items.

use std::collections::BTreeSet;

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RecoveryIndexError {
    #[error("recovery index is not valid UTF-8")]
    NotUtf8,
    #[error("recovery index entry {0:?} contains a control character")]
    ControlChar(String),
}

/// The bytes appended for one saved object: `oid,`.
pub fn encode_entry(oid: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(oid.len() + 1);
    v.extend_from_slice(oid.as_bytes());
    v.push(b',');
    v
}

/// The whole object for a set of OIDs (what a rebuild writes).
pub fn encode(oids: &BTreeSet<String>) -> Vec<u8> {
    oids.iter().flat_map(|o| encode_entry(o)).collect()
}

/// The set of OIDs in the object (duplicates and empty items collapse, as upstream's
/// `ceph_index_to_set` does).
pub fn decode(data: &[u8]) -> Result<BTreeSet<String>, RecoveryIndexError> {
    let text = std::str::from_utf8(data).map_err(|_| RecoveryIndexError::NotUtf8)?;
    let mut out = BTreeSet::new();
    for item in text.split(',').filter(|s| !s.is_empty()) {
        if item.chars().any(char::is_control) {
            return Err(RecoveryIndexError::ControlChar(
                item.chars().take(40).collect(),
            ));
        }
        out.insert(item.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_create_read_index() {
        // upstream test create_read_index: "1,2,3,4,5," and "abd,".
        let set: BTreeSet<String> = ["1", "2", "3", "4", "5"].map(String::from).into();
        assert_eq!(encode(&set), b"1,2,3,4,5,");
        assert_eq!(decode(b"1,2,3,4,5,").unwrap(), set);
        assert_eq!(encode_entry("abd"), b"abd,");
        assert_eq!(
            decode(b"abd,").unwrap().into_iter().collect::<Vec<_>>(),
            ["abd"]
        );
    }

    #[test]
    fn observed_66_byte_object() {
        let data = b"73b774041cbb046b452d000083ecc375,31bc62061cbb046b452d000083ecc375,";
        assert_eq!(data.len(), 66);
        let set = decode(data).unwrap();
        assert_eq!(set.len(), 2);
        let mut appended = encode_entry("73b774041cbb046b452d000083ecc375");
        appended.extend(encode_entry("31bc62061cbb046b452d000083ecc375"));
        assert_eq!(appended, data);
    }

    #[test]
    fn empty_items_duplicates_and_garbage() {
        assert!(decode(b"").unwrap().is_empty());
        assert_eq!(decode(b",,a,,a,").unwrap().len(), 1);
        assert_eq!(decode(&[0xff, b',']), Err(RecoveryIndexError::NotUtf8));
        assert!(decode(b"a\nb,").is_err());
    }
}
