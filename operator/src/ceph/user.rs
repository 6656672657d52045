//! The cephx user Dovecot connects as: caps limited to the MailPool's two pools, created,
//! corrected and rotated through monitor commands.

use std::collections::BTreeMap;

use rbox_core::rados::Secret;

use super::command::{self, MonCmd};

/// A user as `auth get` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub entity: String,
    pub key: Secret,
    pub caps: BTreeMap<String, String>,
}

/// Keyring text (contains a key): never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyringText(pub String);

impl KeyringText {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for KeyringText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyringText(***)")
    }
}

/// `client.<name>`.
pub fn entity(name: &str) -> String {
    if name.starts_with("client.") {
        name.to_string()
    } else {
        format!("client.{name}")
    }
}

/// Exactly what the rbox plugin needs: read the maps (pool lookup), read and write objects
/// (with xattrs and omap) in the mail and index pools, nothing else — in particular no right
/// to create pools (the plugin would create wrongly sized ones, see rbox-observed §1).
pub fn dovecot_caps(data_pool: &str, index_pool: &str) -> Vec<(String, String)> {
    let osd = if data_pool == index_pool {
        format!("allow rw pool={data_pool}")
    } else {
        format!("allow rw pool={data_pool}, allow rw pool={index_pool}")
    };
    vec![("mon".into(), "allow r".into()), ("osd".into(), osd)]
}

/// A keyring file for `entity` with `key` (and the caps, for `auth import`).
pub fn keyring(entity: &str, key: &Secret, caps: &[(String, String)]) -> KeyringText {
    let mut s = format!("[{entity}]\n\tkey = {}\n", key.0);
    for (svc, cap) in caps {
        s.push_str(&format!("\tcaps {svc} = \"{cap}\"\n"));
    }
    KeyringText(s)
}

/// What to do with the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserAction {
    Nothing,
    Create,
    FixCaps,
    Rotate,
}

/// Pure: compare the observed user with the desired caps. `rotate` is set when the user asked
/// for a new key (annotation value not handled yet).
pub fn plan_user(
    observed: Option<&UserInfo>,
    caps: &[(String, String)],
    rotate: bool,
) -> UserAction {
    match observed {
        None => UserAction::Create,
        Some(_) if rotate => UserAction::Rotate,
        Some(u) => {
            let want: BTreeMap<String, String> = caps.iter().cloned().collect();
            if u.caps == want {
                UserAction::Nothing
            } else {
                UserAction::FixCaps
            }
        }
    }
}

/// The commands of an action. Rotation imports a keyring with a fresh key: the user keeps
/// existing throughout (no window in which Dovecot cannot authenticate at all).
pub fn commands(action: &UserAction, entity: &str, caps: &[(String, String)]) -> Vec<MonCmd> {
    match action {
        UserAction::Nothing => Vec::new(),
        UserAction::Create => vec![command::auth_get_or_create(entity, caps)],
        UserAction::FixCaps => vec![command::auth_caps(entity, caps)],
        UserAction::Rotate => vec![command::auth_import(keyring(entity, &new_key(), caps))],
    }
}

/// A new cephx secret, encoded as Ceph does (`CryptoKey::encode`): type 1 (AES), creation
/// time, length 16, then 16 random bytes — base64.
pub fn new_key() -> Secret {
    use rand::RngCore;
    let mut secret = [0u8; 16];
    rand::rng().fill_bytes(&mut secret);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut raw = Vec::with_capacity(28);
    raw.extend_from_slice(&1u16.to_le_bytes());
    raw.extend_from_slice(&(now.as_secs() as u32).to_le_bytes());
    raw.extend_from_slice(&now.subsec_nanos().to_le_bytes());
    raw.extend_from_slice(&16u16.to_le_bytes());
    raw.extend_from_slice(&secret);
    Secret(base64(&raw))
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_name_exactly_the_two_pools() {
        let caps = dovecot_caps("mail", "mail_index");
        assert_eq!(caps[0], ("mon".to_string(), "allow r".to_string()));
        assert_eq!(caps[1].1, "allow rw pool=mail, allow rw pool=mail_index");
    }

    #[test]
    fn plan_creates_fixes_and_rotates() {
        let caps = dovecot_caps("a", "b");
        assert_eq!(plan_user(None, &caps, false), UserAction::Create);
        let mut u = UserInfo {
            entity: "client.d".into(),
            key: Secret("k".into()),
            caps: caps.iter().cloned().collect(),
        };
        assert_eq!(plan_user(Some(&u), &caps, false), UserAction::Nothing);
        assert_eq!(plan_user(Some(&u), &caps, true), UserAction::Rotate);
        u.caps.insert("mgr".into(), "allow *".into());
        assert_eq!(plan_user(Some(&u), &caps, false), UserAction::FixCaps);
    }

    #[test]
    fn new_keys_have_cephx_shape_and_differ() {
        let a = new_key();
        let b = new_key();
        assert_ne!(a, b);
        // 28 bytes → 40 base64 chars; AES type 1 → "AQ" prefix, like every ceph-authtool key.
        assert_eq!(a.0.len(), 40);
        assert!(a.0.starts_with("AQ"), "{}", a.0);
        assert!(a.0.ends_with('='));
    }

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn keyring_and_rotation_never_print_the_key() {
        let k = keyring("client.d", &Secret("SECRET".into()), &[]);
        assert!(!format!("{k:?}").contains("SECRET"));
        let cmds = commands(&UserAction::Rotate, "client.d", &dovecot_caps("a", "b"));
        let shown = format!("{:?} {}", cmds, cmds[0].describe());
        assert!(!shown.contains("key ="), "{shown}");
    }
}
