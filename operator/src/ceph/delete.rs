//! Deleting a MailPool's Ceph state: the guard (does a pool still hold mail?) and the plan.
//! Only what the operator created is ever deleted.

use rbox_core::backend::ListedObject;
use rbox_core::format::namespace::CANARY_NAMESPACE;

use super::command::{self, MonCmd};

/// Objects that count as mail (or user data) in a listing: everything except the `rbox_cfg`
/// object in the default namespace and the canary's reserved namespace.
pub fn mail_objects(listed: &[ListedObject], cfg_object: &str) -> usize {
    listed
        .iter()
        .filter(|o| !(o.namespace.is_empty() && o.oid == cfg_object))
        .filter(|o| o.namespace != CANARY_NAMESPACE)
        .count()
}

/// One pool the MailPool names, and whether the operator created it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedPool {
    pub name: String,
    pub created: bool,
    /// EC profile the operator created for it.
    pub created_profile: Option<String>,
    /// Erasure-coded: the monitors made a CRUSH rule named after the pool.
    pub erasure_coded: bool,
    pub exists: bool,
}

/// Delete the pools (and EC profiles) the operator created and the Dovecot user. Adopted
/// pools are left alone. CRUSH rules are shared by placement and stay.
pub fn plan_delete(pools: &[OwnedPool], user: Option<&str>) -> Vec<MonCmd> {
    let mut cmds = Vec::new();
    for p in pools {
        if p.created && p.exists {
            cmds.push(command::pool_delete(&p.name));
        }
    }
    for p in pools.iter().filter(|p| p.created) {
        if p.erasure_coded {
            cmds.push(command::crush_rule_rm(&p.name));
        }
        if let Some(prof) = &p.created_profile {
            cmds.push(command::ec_profile_rm(prof));
        }
    }
    if let Some(u) = user {
        cmds.push(command::auth_del(u));
    }
    cmds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(ns: &str, oid: &str) -> ListedObject {
        ListedObject {
            namespace: ns.into(),
            oid: oid.into(),
        }
    }

    #[test]
    fn cfg_and_canary_objects_are_not_mail() {
        let listed = [
            o("", "rbox_cfg"),
            o(CANARY_NAMESPACE, "abc"),
            o("alice_u", "0123"),
        ];
        assert_eq!(mail_objects(&listed, "rbox_cfg"), 1);
        assert_eq!(mail_objects(&listed[..2], "rbox_cfg"), 0);
    }

    #[test]
    fn adopted_pools_are_never_deleted() {
        let pools = [
            OwnedPool {
                name: "mine".into(),
                created: true,
                created_profile: None,
                erasure_coded: false,
                exists: true,
            },
            OwnedPool {
                name: "adopted".into(),
                created: false,
                created_profile: None,
                erasure_coded: false,
                exists: true,
            },
        ];
        let cmds: Vec<String> = plan_delete(&pools, Some("client.d"))
            .iter()
            .map(MonCmd::describe)
            .collect();
        assert_eq!(cmds.len(), 2);
        assert!(cmds[0].contains("pool=mine"));
        assert!(!cmds.iter().any(|c| c.contains("adopted")));
        assert!(cmds[1].starts_with("auth del"));
    }

    #[test]
    fn a_created_erasure_coded_pool_takes_its_rule_and_profile_along() {
        let pools = [OwnedPool {
            name: "ec".into(),
            created: true,
            created_profile: Some("ec_ecprofile".into()),
            erasure_coded: true,
            exists: true,
        }];
        let cmds: Vec<String> = plan_delete(&pools, None)
            .iter()
            .map(|c| c.prefix().to_string())
            .collect();
        assert_eq!(
            cmds,
            [
                "osd pool delete",
                "osd crush rule rm",
                "osd erasure-code-profile rm"
            ]
        );
    }
}
