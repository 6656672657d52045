//! The `rmb ls` query language: `K<op>V` predicates joined by `;`, e.g.
//! `M=abc;U=1;R<2013-12-04 15:03` (librmb-format §3.1, upstream `ls_cmd_parser`).
//!
//! Reproduced from upstream: the operator is the first `=` in a predicate, else the first
//! `>`, else the first `<`; `R` and `S` compare as dates, `U`, `Z` and `V` numerically,
//! every other key by string equality; `-` and `all` select everything.
//!
//! Deliberately stricter (upstream silently mis-evaluates these): the key must be one
//! known metadata letter; `<`/`>` on a string key is an error instead of equality; values
//! of numeric keys must be decimal and dates must parse; empty predicates are errors; a key
//! missing on a mail makes its predicate false (upstream compared against -1). Several
//! predicates on one key all apply (`U>10;U<20` is a range), where upstream kept the last.

use std::fmt;

use thiserror::Error;

use super::date::{DateError, parse_date};
use super::metadata::{MailMetadata, MetadataKey, parse_decimal};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum QueryError {
    #[error("empty predicate in query {0:?} (remove the extra ';')")]
    EmptyPredicate(String),
    #[error("predicate {0:?} has no operator: use K=V, K<V or K>V")]
    NoOperator(String),
    #[error("predicate {0:?}: key must be one metadata letter (M G P O R Z V B U I A C F S X)")]
    BadKey(String),
    #[error("predicate {pred:?}: {key} is compared as text, only '=' is allowed")]
    OrderOnText { pred: String, key: char },
    #[error("predicate {pred:?}: {key} needs a decimal number, got {value:?}")]
    NotNumber {
        pred: String,
        key: char,
        value: String,
    },
    #[error("predicate {pred:?}: {error}")]
    BadDate { pred: String, error: DateError },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryOp {
    Eq,
    Lt,
    Gt,
}

impl QueryOp {
    fn symbol(self) -> char {
        match self {
            QueryOp::Eq => '=',
            QueryOp::Lt => '<',
            QueryOp::Gt => '>',
        }
    }
    fn holds<T: Ord>(self, actual: T, wanted: T) -> bool {
        match self {
            QueryOp::Eq => actual == wanted,
            QueryOp::Lt => actual < wanted,
            QueryOp::Gt => actual > wanted,
        }
    }
}

/// The parsed right-hand side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryValue {
    /// Unix seconds (UTC) for `R` and `S`.
    Date(i64),
    /// `U`, `Z`, `V`.
    Number(u64),
    /// Everything else, compared for equality.
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Predicate {
    pub key: MetadataKey,
    pub op: QueryOp,
    pub value: QueryValue,
}

/// What a query is evaluated against: a mail's metadata plus its object mtime (the save
/// date upstream shows when `S` is absent).
#[derive(Clone, Copy, Debug)]
pub struct QueryTarget<'a> {
    pub metadata: &'a MailMetadata,
    pub save_time: Option<i64>,
}

impl Predicate {
    pub fn matches(&self, t: QueryTarget<'_>) -> bool {
        match &self.value {
            QueryValue::Date(want) => {
                let actual = match self.key {
                    MetadataKey::SaveTime => t.metadata.save_time.or(t.save_time),
                    _ => t.metadata.received,
                };
                actual.is_some_and(|a| self.op.holds(a, *want))
            }
            QueryValue::Number(want) => t
                .metadata
                .value_of(self.key)
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|a| self.op.holds(a, *want)),
            QueryValue::Text(want) => t.metadata.value_of(self.key).as_deref() == Some(want),
        }
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = match &self.value {
            QueryValue::Date(d) => super::date::format_date(*d),
            QueryValue::Number(n) => n.to_string(),
            QueryValue::Text(s) => s.clone(),
        };
        write!(f, "{}{}{}", self.key.letter(), self.op.symbol(), v)
    }
}

/// A conjunction of predicates; empty = every mail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub predicates: Vec<Predicate>,
}

fn parse_predicate(p: &str) -> Result<Predicate, QueryError> {
    let pos = p
        .find('=')
        .or_else(|| p.find('>'))
        .or_else(|| p.find('<'))
        .ok_or_else(|| QueryError::NoOperator(p.to_string()))?;
    let (k, rest) = p.split_at(pos);
    let op = match rest.as_bytes()[0] {
        b'=' => QueryOp::Eq,
        b'>' => QueryOp::Gt,
        _ => QueryOp::Lt,
    };
    let value = &rest[1..];
    let mut chars = k.chars();
    let key = match (chars.next(), chars.next()) {
        (Some(c), None) => MetadataKey::from_letter(c),
        _ => None,
    }
    .filter(|k| {
        !matches!(
            k,
            MetadataKey::Keywords | MetadataKey::OldV1Expunged | MetadataKey::Space
        )
    })
    .ok_or_else(|| QueryError::BadKey(p.to_string()))?;
    let value = if key.is_date() {
        let secs = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            parse_decimal::<i64>(value).map_err(|_| QueryError::NotNumber {
                pred: p.to_string(),
                key: key.letter(),
                value: value.to_string(),
            })?
        } else {
            parse_date(value).map_err(|error| QueryError::BadDate {
                pred: p.to_string(),
                error,
            })?
        };
        QueryValue::Date(secs)
    } else if key.is_numeric() {
        QueryValue::Number(
            parse_decimal::<u64>(value).map_err(|_| QueryError::NotNumber {
                pred: p.to_string(),
                key: key.letter(),
                value: value.to_string(),
            })?,
        )
    } else {
        if op != QueryOp::Eq {
            return Err(QueryError::OrderOnText {
                pred: p.to_string(),
                key: key.letter(),
            });
        }
        QueryValue::Text(value.to_string())
    };
    Ok(Predicate { key, op, value })
}

impl Query {
    /// Parse a query. `-`, `all` and the empty string select everything.
    pub fn parse(s: &str) -> Result<Query, QueryError> {
        if s.is_empty() || s == "-" || s == "all" {
            return Ok(Query::default());
        }
        let mut predicates = Vec::new();
        for part in s.split(';') {
            if part.is_empty() {
                return Err(QueryError::EmptyPredicate(s.to_string()));
            }
            predicates.push(parse_predicate(part)?);
        }
        Ok(Query { predicates })
    }

    pub fn matches(&self, t: QueryTarget<'_>) -> bool {
        self.predicates.iter().all(|p| p.matches(t))
    }

    /// Does any predicate use this key (upstream `contains_key`)?
    pub fn contains_key(&self, key: MetadataKey) -> bool {
        self.predicates.iter().any(|p| p.key == key)
    }
}

/// Orders `rmb ls` can sort by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Uid,
    RecvDate,
    SaveDate,
    PhySize,
}

impl SortKey {
    pub fn parse(s: &str) -> Option<SortKey> {
        match s {
            "uid" => Some(SortKey::Uid),
            "recv_date" => Some(SortKey::RecvDate),
            "save_date" => Some(SortKey::SaveDate),
            "phy_size" => Some(SortKey::PhySize),
            _ => None,
        }
    }

    /// The sort value of a mail (missing values sort first).
    pub fn value(self, t: QueryTarget<'_>) -> i128 {
        let v = match self {
            SortKey::Uid => t.metadata.uid.map(i128::from),
            SortKey::RecvDate => t.metadata.received.map(i128::from),
            SortKey::SaveDate => t.metadata.save_time.or(t.save_time).map(i128::from),
            SortKey::PhySize => t.metadata.physical_size.map(i128::from),
        };
        v.unwrap_or(i128::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::guid::Guid128;

    fn mail(m: &str, uid: u32, r: i64) -> MailMetadata {
        MailMetadata {
            mailbox_guid: Guid128::parse_hex(m).ok(),
            uid: Some(uid),
            received: Some(r),
            orig_mailbox: Some("INBOX".into()),
            physical_size: Some(100),
            ..Default::default()
        }
    }

    fn t(m: &MailMetadata) -> QueryTarget<'_> {
        QueryTarget {
            metadata: m,
            save_time: Some(1_600_000_000),
        }
    }

    #[test]
    fn upstream_test_cmd_parser() {
        // test_cmd_parser: "M=abc;U=1;R<2013-12-04 15:03": three predicates; U=1 matches "1";
        // R< that date does not match 1503393219.
        let q = Query::parse("M=abc;U=1;R<2013-12-04 15:03").unwrap();
        assert_eq!(q.predicates.len(), 3);
        for k in [
            MetadataKey::MailboxGuid,
            MetadataKey::MailUid,
            MetadataKey::ReceivedTime,
        ] {
            assert!(q.contains_key(k));
        }
        assert_eq!(q.predicates[0].value, QueryValue::Text("abc".into()));
        let m = mail("11e7af1c77ba046b6022000083ecc375", 1, 1_503_393_219);
        assert!(q.predicates[1].matches(t(&m)));
        assert!(!q.predicates[2].matches(t(&m)));
        let older = mail("11e7af1c77ba046b6022000083ecc375", 1, 1_000_000_000);
        assert!(q.predicates[2].matches(t(&older)));
    }

    #[test]
    fn operator_is_first_eq_then_gt_then_lt() {
        let p = parse_predicate("B=a<b").unwrap();
        assert_eq!(p.op, QueryOp::Eq);
        assert_eq!(p.value, QueryValue::Text("a<b".into()));
        assert_eq!(parse_predicate("U>5").unwrap().op, QueryOp::Gt);
        assert_eq!(parse_predicate("Z<5").unwrap().op, QueryOp::Lt);
        assert!(matches!(
            parse_predicate("U>1=2"),
            Err(QueryError::BadKey(_))
        ));
    }

    #[test]
    fn ranges_and_everything() {
        let q = Query::parse("U>1;U<3").unwrap();
        let m = |u| mail("11e7af1c77ba046b6022000083ecc375", u, 0);
        assert!(!q.matches(t(&m(1))));
        assert!(q.matches(t(&m(2))));
        assert!(!q.matches(t(&m(3))));
        for all in ["-", "all", ""] {
            assert!(Query::parse(all).unwrap().matches(t(&m(9))));
        }
    }

    #[test]
    fn strict_errors() {
        assert!(matches!(
            Query::parse("M=a;"),
            Err(QueryError::EmptyPredicate(_))
        ));
        assert!(matches!(
            Query::parse("Mabc"),
            Err(QueryError::NoOperator(_))
        ));
        assert!(matches!(Query::parse("MM=a"), Err(QueryError::BadKey(_))));
        assert!(matches!(Query::parse("Q=a"), Err(QueryError::BadKey(_))));
        assert!(matches!(Query::parse("K=a"), Err(QueryError::BadKey(_))));
        assert!(matches!(
            Query::parse("B>a"),
            Err(QueryError::OrderOnText { .. })
        ));
        assert!(matches!(
            Query::parse("U=x"),
            Err(QueryError::NotNumber { .. })
        ));
        assert!(matches!(
            Query::parse("R<yesterday"),
            Err(QueryError::BadDate { .. })
        ));
    }

    #[test]
    fn missing_keys_do_not_match_and_save_date_falls_back_to_mtime() {
        let mut m = mail("11e7af1c77ba046b6022000083ecc375", 1, 0);
        m.physical_size = None;
        assert!(!Query::parse("Z<1000").unwrap().matches(t(&m)));
        assert!(Query::parse("S=1600000000").unwrap().matches(t(&m)));
        assert!(Query::parse("S>2010-01-01").unwrap().matches(t(&m)));
    }

    #[test]
    fn sort_keys() {
        assert_eq!(SortKey::parse("recv_date"), Some(SortKey::RecvDate));
        assert_eq!(SortKey::parse("size"), None);
        let m = mail("11e7af1c77ba046b6022000083ecc375", 7, 5);
        assert_eq!(SortKey::Uid.value(t(&m)), 7);
        assert_eq!(SortKey::SaveDate.value(t(&m)), 1_600_000_000);
    }
}
