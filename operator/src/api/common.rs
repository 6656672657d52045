//! Pieces shared by the three kinds: the group, references by name, patterns.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every kind.
pub const GROUP: &str = "mail.rbox.io";
/// The API version of every kind.
pub const VERSION: &str = "v1alpha1";

/// Pattern of a Kubernetes object name (DNS-1123 subdomain, lower case).
pub const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// Pattern of a key inside a Secret or ConfigMap.
pub const CONFIG_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";
/// Pattern of a cephx entity name of a client (`client.<id>`).
pub const CEPHX_CLIENT_PATTERN: &str = r"^client\.[A-Za-z0-9][A-Za-z0-9_.@-]*$";

/// A reference to another object of this API in the same namespace, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// Name of the referenced object, in the same namespace as this one.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
}

impl LocalRef {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}
