//! RADOS namespaces: one per user (`<user><suffix>`), `public` for shared folders, and the
//! user-mapping objects of the `users` namespace (librmb-format §1.2).
//!
//! With `user_mapping=false` the key `<user><suffix>` *is* the namespace. With
//! `user_mapping=true` an object named by that key in namespace `user_ns` of the mail pool
//! holds, as its whole data (no NUL), the real namespace — a fresh 32-hex GUID when created.
//! Shared folders use the key `rbox_public_namespace`, which goes through the same mapping.

use thiserror::Error;

/// Namespace of the operator's canary mails. Its leading dot cannot come out of
/// `<user><suffix>` for a sane user name, and [`user_key`] refuses it explicitly.
pub const CANARY_NAMESPACE: &str = ".rbox-canary";

/// Longest namespace accepted. RADOS has no small hard limit, but the namespace is part of
/// every object locator and of omap keys of the recovery index.
pub const MAX_NAMESPACE_LEN: usize = 255;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NamespaceError {
    #[error("user name must not be empty")]
    EmptyUser,
    #[error("namespace must not be empty")]
    Empty,
    #[error("namespace is {0} bytes long; at most {MAX_NAMESPACE_LEN} are allowed")]
    TooLong(usize),
    #[error("namespace contains a control character (byte {0:#04x})")]
    ControlChar(u32),
    #[error("namespace has leading or trailing whitespace")]
    Whitespace,
    #[error("{0:?} is reserved and cannot be a user's namespace")]
    Reserved(String),
    #[error("user mapping object does not hold a valid namespace: {0}")]
    BadMapping(String),
}

/// Rules for anything used as a RADOS namespace (C string, printable, bounded).
pub fn validate_namespace(ns: &str) -> Result<(), NamespaceError> {
    if ns.is_empty() {
        return Err(NamespaceError::Empty);
    }
    if ns.len() > MAX_NAMESPACE_LEN {
        return Err(NamespaceError::TooLong(ns.len()));
    }
    if let Some(c) = ns.chars().find(|c| c.is_control()) {
        return Err(NamespaceError::ControlChar(c as u32));
    }
    if ns.trim() != ns {
        return Err(NamespaceError::Whitespace);
    }
    Ok(())
}

/// The lookup key for a user: `<user><suffix>` (`alice` → `alice_u`). Without user mapping
/// this is the namespace itself.
pub fn user_key(user: &str, suffix: &str) -> Result<String, NamespaceError> {
    if user.is_empty() {
        return Err(NamespaceError::EmptyUser);
    }
    // Surrounding spaces in a user name are a typo, not a different user.
    if user.trim() != user {
        return Err(NamespaceError::Whitespace);
    }
    let key = format!("{user}{suffix}");
    validate_namespace(&key)?;
    if key == CANARY_NAMESPACE {
        return Err(NamespaceError::Reserved(key));
    }
    Ok(key)
}

/// Data of a user-mapping object: the namespace string, nothing else.
pub fn encode_mapping(ns: &str) -> Vec<u8> {
    ns.as_bytes().to_vec()
}

/// Read a user-mapping object. A trailing NUL (C tools) is tolerated; anything else must
/// be a valid namespace.
pub fn decode_mapping(data: &[u8]) -> Result<String, NamespaceError> {
    let body = data.strip_suffix(&[0]).unwrap_or(data);
    let s =
        std::str::from_utf8(body).map_err(|_| NamespaceError::BadMapping("not UTF-8".into()))?;
    validate_namespace(s).map_err(|e| NamespaceError::BadMapping(e.to_string()))?;
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_user_namespaces() {
        // rbox-observed §2.1: alice → alice_u.
        assert_eq!(user_key("alice", "_u").unwrap(), "alice_u");
        assert_eq!(
            user_key("user-rbox-test@localhost", "_u").unwrap(),
            "user-rbox-test@localhost_u"
        );
    }

    #[test]
    fn invalid_users_are_clear_errors() {
        assert_eq!(user_key("", "_u"), Err(NamespaceError::EmptyUser));
        assert!(matches!(
            user_key("a\nb", "_u"),
            Err(NamespaceError::ControlChar(10))
        ));
        assert!(matches!(
            user_key("a\0b", "_u"),
            Err(NamespaceError::ControlChar(0))
        ));
        assert_eq!(user_key(" a", "_u"), Err(NamespaceError::Whitespace));
        assert_eq!(user_key("a ", "_u"), Err(NamespaceError::Whitespace));
        assert!(matches!(
            user_key(&"x".repeat(300), "_u"),
            Err(NamespaceError::TooLong(302))
        ));
        assert!(matches!(
            user_key(".rbox-", "canary"),
            Err(NamespaceError::Reserved(_))
        ));
    }

    #[test]
    fn mapping_objects_hold_the_bare_namespace() {
        let ns = "4563a01079ba046b8622000083ecc375";
        assert_eq!(encode_mapping(ns), ns.as_bytes());
        assert_eq!(decode_mapping(ns.as_bytes()).unwrap(), ns);
        assert_eq!(decode_mapping(b"abc\0").unwrap(), "abc");
        assert!(decode_mapping(b"").is_err());
        assert!(decode_mapping(b"a\nb").is_err());
        assert!(decode_mapping(&[0xff]).is_err());
    }
}
