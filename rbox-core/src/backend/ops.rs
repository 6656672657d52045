//! Compound operations: the unit of atomicity in RADOS.

use std::collections::BTreeMap;
use std::time::SystemTime;

/// Comparison for `cmpxattr` / `omap_cmp` guards. The stored value is compared against the
/// given one byte-wise (RADOS `CEPH_OSD_CMPXATTR_OP_*` with `CEPH_OSD_CMPXATTR_MODE_STRING`).
/// A failed comparison aborts the whole op with [`super::BackendError::Canceled`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    /// librados' numeric code (`LIBRADOS_CMPXATTR_OP_*`).
    pub fn code(self) -> u8 {
        match self {
            CmpOp::Eq => 1,
            CmpOp::Ne => 2,
            CmpOp::Gt => 3,
            CmpOp::Gte => 4,
            CmpOp::Lt => 5,
            CmpOp::Lte => 6,
        }
    }

    /// Does `stored <op> given` hold? (RADOS compares the *stored* value on the left.)
    pub fn holds(self, stored: &[u8], given: &[u8]) -> bool {
        use std::cmp::Ordering::*;
        let ord = stored.cmp(given);
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Gt => ord == Greater,
            CmpOp::Gte => ord != Less,
            CmpOp::Lt => ord == Less,
            CmpOp::Lte => ord != Greater,
        }
    }
}

/// One step of a [`WriteOp`], applied in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteStep {
    /// Fail with `NotFound` unless the object exists.
    AssertExists,
    /// Create the object; `exclusive` fails with `Exists` if it already exists.
    Create {
        exclusive: bool,
    },
    /// Guard on an xattr (a missing xattr compares as the empty value).
    CmpXattr {
        name: String,
        op: CmpOp,
        value: Vec<u8>,
    },
    /// Guard on an omap value (a missing key compares as the empty value, as in the OSD).
    OmapCmp {
        key: String,
        op: CmpOp,
        value: Vec<u8>,
    },
    WriteFull(Vec<u8>),
    Write {
        offset: u64,
        data: Vec<u8>,
    },
    Append(Vec<u8>),
    Truncate(u64),
    SetXattr {
        name: String,
        value: Vec<u8>,
    },
    RmXattr(String),
    OmapSet(BTreeMap<String, Vec<u8>>),
    OmapRmKeys(Vec<String>),
    OmapClear,
    Remove,
}

/// An ordered, atomic set of steps on one object, plus an optional mtime to stamp.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOp {
    pub steps: Vec<WriteStep>,
    pub mtime: Option<SystemTime>,
}

impl WriteOp {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
    fn push(mut self, s: WriteStep) -> Self {
        self.steps.push(s);
        self
    }
    pub fn assert_exists(self) -> Self {
        self.push(WriteStep::AssertExists)
    }
    pub fn create(self, exclusive: bool) -> Self {
        self.push(WriteStep::Create { exclusive })
    }
    pub fn cmp_xattr(self, name: impl Into<String>, op: CmpOp, value: impl Into<Vec<u8>>) -> Self {
        self.push(WriteStep::CmpXattr {
            name: name.into(),
            op,
            value: value.into(),
        })
    }
    pub fn omap_cmp(self, key: impl Into<String>, op: CmpOp, value: impl Into<Vec<u8>>) -> Self {
        self.push(WriteStep::OmapCmp {
            key: key.into(),
            op,
            value: value.into(),
        })
    }
    pub fn write_full(self, data: impl Into<Vec<u8>>) -> Self {
        self.push(WriteStep::WriteFull(data.into()))
    }
    pub fn write(self, offset: u64, data: impl Into<Vec<u8>>) -> Self {
        self.push(WriteStep::Write {
            offset,
            data: data.into(),
        })
    }
    pub fn append(self, data: impl Into<Vec<u8>>) -> Self {
        self.push(WriteStep::Append(data.into()))
    }
    pub fn truncate(self, size: u64) -> Self {
        self.push(WriteStep::Truncate(size))
    }
    pub fn set_xattr(self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.push(WriteStep::SetXattr {
            name: name.into(),
            value: value.into(),
        })
    }
    pub fn rm_xattr(self, name: impl Into<String>) -> Self {
        self.push(WriteStep::RmXattr(name.into()))
    }
    pub fn omap_set<K: Into<String>, V: Into<Vec<u8>>>(
        self,
        kv: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map = kv.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self.push(WriteStep::OmapSet(map))
    }
    pub fn omap_rm_keys<K: Into<String>>(self, keys: impl IntoIterator<Item = K>) -> Self {
        self.push(WriteStep::OmapRmKeys(
            keys.into_iter().map(Into::into).collect(),
        ))
    }
    pub fn omap_clear(self) -> Self {
        self.push(WriteStep::OmapClear)
    }
    pub fn remove(self) -> Self {
        self.push(WriteStep::Remove)
    }
    pub fn with_mtime(mut self, t: SystemTime) -> Self {
        self.mtime = Some(t);
        self
    }
}

/// What a compound read returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResult {
    pub size: u64,
    pub mtime: SystemTime,
    pub data: Vec<u8>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}
