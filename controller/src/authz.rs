//! Who an admin is and what their role lets them do.
//!
//! Roles follow the paper's split of Exchange administrator roles: org-admin for
//! organization-wide settings, server-admin for the connectors (and later the
//! certificates) of named edges, view-only for reading.

use domainsec_model::{ObjectName, Role};

/// An authenticated admin, derived from the client certificate of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// The name in the credential.
    pub name: String,
    /// The role in the credential.
    pub role: Role,
    /// Edges a server-admin may manage.
    pub edges: Vec<ObjectName>,
}

/// A call the caller's role does not allow; the text names the role needed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{action} requires {needed}; {caller}")]
pub struct Denied {
    action: String,
    needed: String,
    caller: String,
}

impl Admin {
    /// Allows org-admins only.
    pub fn require_org_admin(&self, action: &str) -> Result<(), Denied> {
        if self.role == Role::OrgAdmin {
            return Ok(());
        }
        Err(self.denied(action, "role org-admin".to_owned()))
    }

    /// Allows org-admins, and server-admins whose scope holds every edge in `edges`.
    /// An empty `edges` allows org-admins only.
    pub fn require_edges<'a>(
        &self,
        action: &str,
        edges: impl IntoIterator<Item = &'a ObjectName>,
    ) -> Result<(), Denied> {
        if self.role == Role::OrgAdmin {
            return Ok(());
        }
        let edges: Vec<&ObjectName> = edges.into_iter().collect();
        let in_scope = !edges.is_empty() && edges.iter().all(|edge| self.edges.contains(edge));
        if self.role == Role::ServerAdmin && in_scope {
            return Ok(());
        }
        let names: Vec<&str> = edges.iter().map(|e| e.as_str()).collect();
        let needed = if names.is_empty() {
            "role org-admin".to_owned()
        } else {
            format!("role org-admin, or server-admin for edge(s) {}", names.join(","))
        };
        Err(self.denied(action, needed))
    }

    fn denied(&self, action: &str, needed: String) -> Denied {
        let scope = if self.role == Role::ServerAdmin {
            let names: Vec<&str> = self.edges.iter().map(ObjectName::as_str).collect();
            format!(" for edge(s) {}", names.join(","))
        } else {
            String::new()
        };
        Denied { action: action.to_owned(), needed, caller: format!("{:?} has role {}{scope}", self.name, self.role) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(role: Role, edges: &[&str]) -> Admin {
        Admin { name: "pat".into(), role, edges: edges.iter().map(|e| ObjectName::parse(e).unwrap()).collect() }
    }

    fn edge(name: &str) -> ObjectName {
        ObjectName::parse(name).unwrap()
    }

    #[test]
    fn org_admin_may_do_everything() {
        let org = admin(Role::OrgAdmin, &[]);
        assert!(org.require_org_admin("set transport config").is_ok());
        assert!(org.require_edges("x", [&edge("mail1")]).is_ok());
        assert!(org.require_edges("x", []).is_ok());
    }

    #[test]
    fn server_admin_is_scoped_to_its_edges() {
        let server = admin(Role::ServerAdmin, &["mail1"]);
        assert!(server.require_edges("x", [&edge("mail1")]).is_ok());
        let denied = server.require_edges("change receive connector mail2/Inet", [&edge("mail2")]).unwrap_err();
        assert_eq!(
            denied.to_string(),
            "change receive connector mail2/Inet requires role org-admin, or server-admin for edge(s) mail2; \
             \"pat\" has role server-admin for edge(s) mail1"
        );
        assert!(server.require_edges("x", [&edge("mail1"), &edge("mail2")]).is_err());
        assert!(server.require_edges("x", []).is_err());
        assert!(server.require_org_admin("set transport config").is_err());
    }

    #[test]
    fn view_only_may_change_nothing() {
        let viewer = admin(Role::ViewOnly, &[]);
        let denied = viewer.require_org_admin("set transport config").unwrap_err();
        assert_eq!(denied.to_string(), "set transport config requires role org-admin; \"pat\" has role view-only");
        assert!(viewer.require_edges("x", [&edge("mail1")]).is_err());
    }
}
