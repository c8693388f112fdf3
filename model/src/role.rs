//! Admin roles, following the paper's split of Exchange administrator roles.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// What an admin credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Exchange Organization Administrator: transport config, accepted domains,
    /// connectors, edges and subscriptions — everything.
    OrgAdmin,
    /// Exchange Server Administrator: connectors and certificates of the edges
    /// named in the credential.
    ServerAdmin,
    /// Exchange View-Only Administrator: reads and status only.
    ViewOnly,
}

/// A word that names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; expected org-admin, server-admin or view-only")]
pub struct UnknownRole(pub String);

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Self; 3] = [Self::OrgAdmin, Self::ServerAdmin, Self::ViewOnly];

    /// The role's name in credentials, the CLI and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrgAdmin => "org-admin",
            Self::ServerAdmin => "server-admin",
            Self::ViewOnly => "view-only",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "org-admin" => Ok(Self::OrgAdmin),
            "server-admin" => Ok(Self::ServerAdmin),
            "view-only" => Ok(Self::ViewOnly),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}
