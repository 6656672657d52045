//! The `rbox_cfg` object: one JSON object with nine string values, in the default namespace
//! of the mail pool (librmb-format §1.3, rbox-observed §2.1).
//!
//! Upstream serialises it with jansson's `json_dumps(root, 0)`: keys in insertion order,
//! `", "` between members, `": "` after keys, no trailing newline. The defaults are exactly
//! 282 bytes; [`RboxConfig::to_json`] reproduces them byte for byte.
//!
//! Reading is strict where upstream is silently wrong: all nine keys must be present (the
//! plugin crashes otherwise), every value must be a string, booleans must be `true` or
//! `false`, attribute sets must use known letters. Unknown keys written by some newer tool
//! are kept and written back after the nine. Updates (`key=value`) accept only the nine
//! keys and validated values.

use std::fmt;

use thiserror::Error;

use super::metadata::MetadataKey;
use super::namespace::{NamespaceError, validate_namespace};

/// Default object name (`rbox_cfg_object_name`).
pub const DEFAULT_CFG_OBJECT: &str = "rbox_cfg";

/// The nine keys, in upstream's order.
pub const KEYS: [&str; 9] = [
    "user_mapping",
    "user_ns",
    "user_suffix",
    "rbox_public_namespace",
    "rbox_mail_attributes",
    "rbox_updateable_attributes",
    "rbox_update_attributes",
    "rbox_metadata_storage",
    "rbox_storage_metadata_attr",
];

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CfgError {
    #[error("rbox_cfg is not valid JSON: {0}")]
    Json(String),
    #[error("rbox_cfg must be a JSON object")]
    NotObject,
    #[error("rbox_cfg is missing key {0:?} (all nine keys are required)")]
    MissingKey(&'static str),
    #[error("rbox_cfg key {0:?} must have a string value")]
    NotString(String),
    #[error("unknown rbox_cfg key {0:?}; valid keys: {keys}", keys = KEYS.join(", "))]
    UnknownKey(String),
    #[error("rbox_cfg key {key:?}: {reason}")]
    BadValue { key: String, reason: String },
    #[error("update must look like key=value, got {0:?}")]
    BadUpdateSyntax(String),
}

fn bad(key: &str, reason: impl Into<String>) -> CfgError {
    CfgError::BadValue {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// A set of metadata letters (`rbox_mail_attributes`, `rbox_updateable_attributes`),
/// kept as written so it round-trips.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeSet(String);

/// Letters that may appear in an attribute set: the keys librmb can write.
const ATTRIBUTE_LETTERS: &str = "MGPORZVBUIACFKS";

impl AttributeSet {
    pub fn parse(key: &str, s: &str) -> Result<Self, CfgError> {
        let mut seen = Vec::new();
        for c in s.chars() {
            if !ATTRIBUTE_LETTERS.contains(c) {
                return Err(bad(
                    key,
                    format!("{c:?} is not a metadata letter (allowed: {ATTRIBUTE_LETTERS})"),
                ));
            }
            if seen.contains(&c) {
                return Err(bad(key, format!("letter {c:?} appears twice")));
            }
            seen.push(c);
        }
        Ok(Self(s.to_string()))
    }

    pub fn contains(&self, key: MetadataKey) -> bool {
        self.0.contains(key.letter())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which metadata module writes the xattrs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataStorage {
    /// One xattr per key.
    Default,
    /// All non-updateable keys in one JSON xattr.
    Ima,
}

impl MetadataStorage {
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataStorage::Default => "default",
            MetadataStorage::Ima => "ima",
        }
    }
}

/// The parsed `rbox_cfg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RboxConfig {
    pub user_mapping: bool,
    pub user_ns: String,
    pub user_suffix: String,
    pub public_namespace: String,
    pub mail_attributes: AttributeSet,
    pub updateable_attributes: AttributeSet,
    pub update_attributes: bool,
    pub metadata_storage: MetadataStorage,
    pub storage_metadata_attr: String,
    /// Keys this version does not know, in file order; written back unchanged.
    pub extra: Vec<(String, String)>,
}

impl Default for RboxConfig {
    fn default() -> Self {
        Self {
            user_mapping: false,
            user_ns: "users".into(),
            user_suffix: "_u".into(),
            public_namespace: "public".into(),
            mail_attributes: AttributeSet("MGPORZVBUI".into()),
            updateable_attributes: AttributeSet("B".into()),
            update_attributes: false,
            metadata_storage: MetadataStorage::Default,
            storage_metadata_attr: "ima".into(),
            extra: Vec::new(),
        }
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, CfgError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(
            key,
            format!("must be \"true\" or \"false\", got {v:?}"),
        )),
    }
}

fn check_plain(key: &str, v: &str) -> Result<(), CfgError> {
    if v.is_empty() {
        return Err(bad(key, "must not be empty"));
    }
    if v.chars().any(char::is_control) {
        return Err(bad(key, "must not contain control characters"));
    }
    Ok(())
}

fn ns_err(key: &str, e: NamespaceError) -> CfgError {
    bad(key, e.to_string())
}

/// JSON string literal as jansson writes it for the values we accept (no control chars):
/// only `"` and `\` need escaping; non-ASCII stays UTF-8.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl RboxConfig {
    /// The value of one of the nine keys, as stored.
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            "user_mapping" => self.user_mapping.to_string(),
            "user_ns" => self.user_ns.clone(),
            "user_suffix" => self.user_suffix.clone(),
            "rbox_public_namespace" => self.public_namespace.clone(),
            "rbox_mail_attributes" => self.mail_attributes.0.clone(),
            "rbox_updateable_attributes" => self.updateable_attributes.0.clone(),
            "rbox_update_attributes" => self.update_attributes.to_string(),
            "rbox_metadata_storage" => self.metadata_storage.as_str().to_string(),
            "rbox_storage_metadata_attr" => self.storage_metadata_attr.clone(),
            _ => return None,
        })
    }

    /// The nine keys and their values, in upstream's order (for `cfg show`).
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        KEYS.iter()
            .map(|k| (*k, self.get(k).unwrap_or_default()))
            .collect()
    }

    /// Set one of the nine keys after validating the value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), CfgError> {
        check_plain(key, value)?;
        match key {
            "user_mapping" => self.user_mapping = parse_bool(key, value)?,
            "user_ns" => {
                validate_namespace(value).map_err(|e| ns_err(key, e))?;
                self.user_ns = value.into();
            }
            "user_suffix" => self.user_suffix = value.into(),
            "rbox_public_namespace" => {
                validate_namespace(value).map_err(|e| ns_err(key, e))?;
                self.public_namespace = value.into();
            }
            "rbox_mail_attributes" => {
                let set = AttributeSet::parse(key, value)?;
                for required in [MetadataKey::MailboxGuid, MetadataKey::Guid] {
                    if !set.contains(required) {
                        return Err(bad(
                            key,
                            format!(
                                "must contain {} ({}): without it mails cannot be recovered",
                                required.letter(),
                                required.description()
                            ),
                        ));
                    }
                }
                self.mail_attributes = set;
            }
            "rbox_updateable_attributes" => {
                self.updateable_attributes = AttributeSet::parse(key, value)?
            }
            "rbox_update_attributes" => self.update_attributes = parse_bool(key, value)?,
            "rbox_metadata_storage" => {
                self.metadata_storage = match value {
                    "default" => MetadataStorage::Default,
                    "ima" => MetadataStorage::Ima,
                    _ => {
                        return Err(bad(
                            key,
                            format!("must be \"default\" or \"ima\", got {value:?}"),
                        ));
                    }
                }
            }
            "rbox_storage_metadata_attr" => {
                if value.len() > 255 {
                    return Err(bad(key, "xattr name longer than 255 bytes"));
                }
                let mut chars = value.chars();
                if let (Some(c), None) = (chars.next(), chars.next())
                    && MetadataKey::from_letter(c).is_some()
                {
                    return Err(bad(key, format!("{value:?} is a metadata key name")));
                }
                self.storage_metadata_attr = value.into();
            }
            other => return Err(CfgError::UnknownKey(other.to_string())),
        }
        Ok(())
    }

    /// Apply `key=value` updates (all or nothing).
    pub fn apply_updates<S: AsRef<str>>(&self, updates: &[S]) -> Result<RboxConfig, CfgError> {
        let mut next = self.clone();
        for u in updates {
            let (k, v) = parse_update(u.as_ref())?;
            next.set(k, v)?;
        }
        Ok(next)
    }

    /// Parse the object's data.
    pub fn from_json(data: &[u8]) -> Result<Self, CfgError> {
        let value: serde_json::Value =
            serde_json::from_slice(data).map_err(|e| CfgError::Json(e.to_string()))?;
        let obj = value.as_object().ok_or(CfgError::NotObject)?;
        let mut cfg = RboxConfig::default();
        for key in KEYS {
            let v = obj.get(key).ok_or(CfgError::MissingKey(key))?;
            let s = v
                .as_str()
                .ok_or_else(|| CfgError::NotString(key.to_string()))?;
            cfg.set(key, s)?;
        }
        // serde_json's map keeps keys sorted, not in file order; recover file order for the
        // unknown keys by their position in the text so a rewrite does not reorder them.
        let text = String::from_utf8_lossy(data);
        let mut extra: Vec<(usize, String, String)> = Vec::new();
        for (k, v) in obj {
            if KEYS.contains(&k.as_str()) {
                continue;
            }
            let s = v.as_str().ok_or_else(|| CfgError::NotString(k.clone()))?;
            let mut lit = String::new();
            json_str(&mut lit, k);
            let pos = text.find(&lit).unwrap_or(usize::MAX);
            extra.push((pos, k.clone(), s.to_string()));
        }
        extra.sort();
        cfg.extra = extra.into_iter().map(|(_, k, v)| (k, v)).collect();
        Ok(cfg)
    }

    /// Serialise exactly as upstream does.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = String::from("{");
        let mut first = true;
        let pairs = self
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain(self.extra.iter().cloned());
        for (k, v) in pairs {
            if !first {
                out.push_str(", ");
            }
            first = false;
            json_str(&mut out, &k);
            out.push_str(": ");
            json_str(&mut out, &v);
        }
        out.push('}');
        out.into_bytes()
    }

    /// Is the namespace-creating indirection on?
    pub fn is_mail_attribute(&self, key: MetadataKey) -> bool {
        self.mail_attributes.contains(key)
    }

    /// May this key be rewritten after save (and is rewriting switched on)?
    pub fn may_update(&self, key: MetadataKey) -> bool {
        self.update_attributes && self.updateable_attributes.contains(key)
    }
}

impl fmt::Display for RboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in self.entries() {
            writeln!(f, "{k}={v}")?;
        }
        for (k, v) in &self.extra {
            writeln!(f, "{k}={v} (unknown key, kept)")?;
        }
        Ok(())
    }
}

/// Split `key=value` (the value may itself contain `=`).
pub fn parse_update(s: &str) -> Result<(&str, &str), CfgError> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(CfgError::BadUpdateSyntax(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBSERVED: &str = r#"{"user_mapping": "false", "user_ns": "users", "user_suffix": "_u", "rbox_public_namespace": "public", "rbox_mail_attributes": "MGPORZVBUI", "rbox_updateable_attributes": "B", "rbox_update_attributes": "false", "rbox_metadata_storage": "default", "rbox_storage_metadata_attr": "ima"}"#;

    #[test]
    fn defaults_are_the_observed_282_bytes() {
        let bytes = RboxConfig::default().to_json();
        assert_eq!(bytes.len(), 282);
        assert_eq!(String::from_utf8(bytes).unwrap(), OBSERVED);
    }

    #[test]
    fn observed_object_parses_to_defaults_and_round_trips() {
        let cfg = RboxConfig::from_json(OBSERVED.as_bytes()).unwrap();
        assert_eq!(cfg, RboxConfig::default());
        assert_eq!(cfg.to_json(), OBSERVED.as_bytes());
        assert!(cfg.is_mail_attribute(MetadataKey::Pop3Uidl));
        assert!(!cfg.is_mail_attribute(MetadataKey::Flags));
        assert!(
            !cfg.may_update(MetadataKey::OrigMailbox),
            "updates off by default"
        );
    }

    #[test]
    fn missing_keys_and_non_strings_are_errors() {
        let missing = OBSERVED.replace(r#""user_ns": "users", "#, "");
        assert_eq!(
            RboxConfig::from_json(missing.as_bytes()),
            Err(CfgError::MissingKey("user_ns"))
        );
        let num = OBSERVED.replace(r#""user_mapping": "false""#, r#""user_mapping": false"#);
        assert_eq!(
            RboxConfig::from_json(num.as_bytes()),
            Err(CfgError::NotString("user_mapping".into()))
        );
        assert!(matches!(
            RboxConfig::from_json(b"{"),
            Err(CfgError::Json(_))
        ));
        assert_eq!(RboxConfig::from_json(b"[]"), Err(CfgError::NotObject));
        let yes = OBSERVED.replace(r#""user_mapping": "false""#, r#""user_mapping": "yes""#);
        assert!(matches!(
            RboxConfig::from_json(yes.as_bytes()),
            Err(CfgError::BadValue { .. })
        ));
    }

    #[test]
    fn unknown_keys_in_the_object_are_kept_in_order() {
        let text = OBSERVED.replace('}', r#", "zeta": "1", "alpha": "2"}"#);
        let cfg = RboxConfig::from_json(text.as_bytes()).unwrap();
        assert_eq!(
            cfg.extra,
            vec![("zeta".into(), "1".into()), ("alpha".into(), "2".into())]
        );
        assert_eq!(cfg.to_json(), text.as_bytes());
    }

    #[test]
    fn updates_are_validated() {
        let cfg = RboxConfig::default();
        // upstream test_update_config_invalid_key: unknown key → error.
        assert!(matches!(
            cfg.apply_updates(&["no_such_key=1"]),
            Err(CfgError::UnknownKey(_))
        ));
        assert!(matches!(
            cfg.apply_updates(&["user_mapping"]),
            Err(CfgError::BadUpdateSyntax(_))
        ));
        assert!(cfg.apply_updates(&["user_mapping=TRUE"]).is_err());
        assert!(cfg.apply_updates(&["user_suffix="]).is_err());
        assert!(cfg.apply_updates(&["rbox_metadata_storage=json"]).is_err());
        assert!(cfg.apply_updates(&["rbox_mail_attributes=MGQ"]).is_err());
        assert!(cfg.apply_updates(&["rbox_mail_attributes=MGG"]).is_err());
        assert!(cfg.apply_updates(&["rbox_mail_attributes=RZV"]).is_err());
        assert!(cfg.apply_updates(&["user_ns=a\nb"]).is_err());
        assert!(
            cfg.apply_updates(&["rbox_storage_metadata_attr=M"])
                .is_err()
        );
        let next = cfg
            .apply_updates(&[
                "user_mapping=true",
                "rbox_mail_attributes=MGPORZVBUIFK",
                "rbox_updateable_attributes=FK",
                "rbox_update_attributes=true",
            ])
            .unwrap();
        assert!(next.user_mapping);
        assert!(next.may_update(MetadataKey::Flags));
        assert!(next.may_update(MetadataKey::Keywords));
        assert!(!next.may_update(MetadataKey::OrigMailbox));
        // All or nothing: a bad update later in the list leaves nothing applied.
        assert!(cfg.apply_updates(&["user_mapping=true", "bad=1"]).is_err());
        assert!(!cfg.user_mapping);
        let back = RboxConfig::from_json(&next.to_json()).unwrap();
        assert_eq!(back, next);
    }

    #[test]
    fn values_with_quotes_are_escaped() {
        let mut cfg = RboxConfig::default();
        cfg.set("rbox_storage_metadata_attr", "a\"b\\c").unwrap();
        let json = cfg.to_json();
        assert!(String::from_utf8_lossy(&json).contains(r#""a\"b\\c""#));
        assert_eq!(RboxConfig::from_json(&json).unwrap(), cfg);
    }
}
