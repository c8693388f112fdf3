//! The directory's operations: authorise, read-modify-write in one change, audit.
//!
//! gRPC handlers parse requests into the types here and encode the results;
//! nothing in this module knows about protobuf.
//!
//! # Layout
//! - this file: transport config, accepted domains, edges, audit.
//! - `connectors`: send and receive connectors.
//! - `edges`: subscriptions, fleet status, forced sync, sync tests.
//! - `certificates`: certificate tasks and trusted roots.
//! - `history`: one audit entry's differences, export, apply and rollback of the
//!   whole configuration; `apply` writes a document's differences.
//! - `publish`: the organization's own TLSA, MTA-STS and TLS-RPT records.

use domainsec_model::{CrlProxy, Domain, DomainPattern, InvalidField, ObjectName, ProxyBypass, TransportConfig};
use sqlx::PgPool;

use crate::{
    authz::{Admin, Denied},
    db::{
        self,
        accepted_domains::AcceptedDomain,
        change::{Audit, Change, json},
        edges::Edge,
    },
};

mod apply;
mod certificates;
mod connectors;
mod edges;
mod history;
mod publish;
mod relay;

pub use certificates::NewCertificate;
pub use connectors::{ReceiveConnectorChange, SendConnectorChange};

pub use history::{Applied, AuditDetail};
pub use publish::{MtaStsPublication, TlsaPublication, TlsaRecord, TxtRecord};

pub use edges::{EXPIRY_WATCH_DAYS, EdgeSide, EdgeSyncOutcome, EdgeSyncTest, FleetEntry, NewSubscription};

/// The directory, shared by every request.
#[derive(Clone)]
pub struct Directory {
    pool: PgPool,
    edge_side: Option<EdgeSide>,
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's role does not allow it.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] db::Error),
    /// An edge did not answer a live command in time.
    #[error("edge {edge} did not answer within {seconds} s; is it connected? (dsctl fleet status)")]
    EdgeUnavailable { edge: String, seconds: u64 },
    /// The edge answered with a refusal (e.g. no such queued message).
    #[error("edge {edge}: {reason}")]
    EdgeRefused { edge: String, reason: String },
    /// The operating system's random number generator failed, so no secret was made.
    #[error("the system random number generator failed; no secret was made")]
    NoRandomness,
}

impl From<InvalidField> for Error {
    fn from(value: InvalidField) -> Self {
        Self::Store(db::Error::Invalid(value))
    }
}

/// One `Result` for directory operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How one secure-domain list changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ListEdit {
    /// Leave it.
    #[default]
    Keep,
    /// Replace the whole list (Set-TransportConfig semantics).
    Replace(Vec<DomainPattern>),
    /// Add and remove single entries.
    Edit {
        /// Entries to add; each must be absent.
        add: Vec<DomainPattern>,
        /// Entries to remove; each must be present.
        remove: Vec<DomainPattern>,
    },
}

/// A Set-TransportConfig call.
#[derive(Debug, Clone, Default)]
pub struct TransportConfigChange {
    /// `TLSSendDomainSecureList`.
    pub send: ListEdit,
    /// `TLSReceiveDomainSecureList`.
    pub receive: ListEdit,
    /// The CRL proxy: `None` keeps it, `Some(None)` fetches directly.
    pub crl_proxy: Option<Option<CrlProxy>>,
    /// The proxy bypass list, replaced whole when given.
    pub crl_proxy_bypass: Option<Vec<ProxyBypass>>,
}

impl Directory {
    /// A directory over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool, edge_side: None }
    }

    /// Adds the edge port's handles (subscriptions, fleet status, forced sync).
    pub fn with_edge_side(mut self, edge_side: EdgeSide) -> Self {
        self.edge_side = Some(edge_side);
        self
    }

    /// The pool, for callers that read directly (authentication).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The organization's name and current config version.
    pub async fn organization(&self) -> Result<(String, u64)> {
        let organization = db::organization::fetch(&self.pool).await?;
        Ok((organization.name, version(organization.config_version)))
    }

    // --- transport config ---

    /// Reads the transport config with the current version.
    pub async fn transport_config(&self) -> Result<(TransportConfig, u64)> {
        let mut conn = self.pool.acquire().await.map_err(db::Error::from)?;
        let config = db::transport::fetch(&mut conn).await?;
        let (_, version) = self.organization().await?;
        Ok((config, version))
    }

    /// Applies a Set-TransportConfig call.
    pub async fn set_transport_config(
        &self,
        admin: &Admin,
        change: TransportConfigChange,
    ) -> Result<(TransportConfig, u64)> {
        admin.require_org_admin("set transport config")?;
        let mut tx = Change::begin(&self.pool).await?;
        let before = db::transport::fetch(tx.conn()).await?;
        let after = TransportConfig {
            tls_send_domain_secure_list: apply_edit(
                "tls_send_domain_secure_list",
                &before.tls_send_domain_secure_list,
                change.send,
            )?,
            tls_receive_domain_secure_list: apply_edit(
                "tls_receive_domain_secure_list",
                &before.tls_receive_domain_secure_list,
                change.receive,
            )?,
            crl_proxy: change.crl_proxy.unwrap_or_else(|| before.crl_proxy.clone()),
            crl_proxy_bypass: change.crl_proxy_bypass.unwrap_or_else(|| before.crl_proxy_bypass.clone()),
        };
        db::transport::store(tx.conn(), &after).await?;
        let version = tx
            .commit(Audit {
                actor: &admin.name,
                actor_role: admin.role.as_str(),
                action: "transport-config.set",
                target: "transport-config".to_owned(),
                before: json(&before),
                after: json(&after),
            })
            .await?;
        Ok((after, version))
    }

    // --- accepted domains ---

    /// All accepted domains.
    pub async fn accepted_domains(&self) -> Result<Vec<AcceptedDomain>> {
        let mut conn = self.pool.acquire().await.map_err(db::Error::from)?;
        Ok(db::accepted_domains::list(&mut conn).await?)
    }

    /// Adds an accepted domain.
    pub async fn add_accepted_domain(&self, admin: &Admin, domain: DomainPattern) -> Result<AcceptedDomain> {
        admin.require_org_admin("add accepted domain")?;
        let mut tx = Change::begin(&self.pool).await?;
        let added = db::accepted_domains::insert(tx.conn(), &domain).await?;
        tx.commit(Audit {
            actor: &admin.name,
            actor_role: admin.role.as_str(),
            action: "accepted-domain.add",
            target: domain.to_string(),
            before: None,
            after: json(&domain),
        })
        .await?;
        Ok(added)
    }

    /// Removes an accepted domain.
    pub async fn remove_accepted_domain(&self, admin: &Admin, domain: DomainPattern) -> Result<u64> {
        admin.require_org_admin("remove accepted domain")?;
        let mut tx = Change::begin(&self.pool).await?;
        db::accepted_domains::delete(tx.conn(), &domain).await?;
        Ok(tx
            .commit(Audit {
                actor: &admin.name,
                actor_role: admin.role.as_str(),
                action: "accepted-domain.remove",
                target: domain.to_string(),
                before: json(&domain),
                after: None,
            })
            .await?)
    }

    // --- edges ---

    /// All edges.
    pub async fn edges(&self) -> Result<Vec<Edge>> {
        let mut conn = self.pool.acquire().await.map_err(db::Error::from)?;
        Ok(db::edges::list(&mut conn).await?)
    }

    /// Records an edge before it subscribes, so its connectors can be configured.
    pub async fn create_edge(&self, admin: &Admin, name: ObjectName, fqdn: Domain) -> Result<Edge> {
        admin.require_org_admin("create edge")?;
        let mut tx = Change::begin(&self.pool).await?;
        let edge = db::edges::insert(tx.conn(), &name, &fqdn).await?;
        tx.commit(Audit {
            actor: &admin.name,
            actor_role: admin.role.as_str(),
            action: "edge.create",
            target: name.to_string(),
            before: None,
            after: json(&edge),
        })
        .await?;
        Ok(edge)
    }

    /// Removes an edge with its receive connectors and its place in send connectors.
    pub async fn remove_edge(&self, admin: &Admin, name: ObjectName) -> Result<u64> {
        admin.require_org_admin("remove edge")?;
        let mut tx = Change::begin(&self.pool).await?;
        let before = db::edges::list(tx.conn()).await?.into_iter().find(|edge| edge.name == name);
        for stored in db::send_connectors::list(tx.conn()).await? {
            if stored.connector.source_edges == [name.clone()] {
                return Err(InvalidField::new(
                    "name",
                    name.as_str(),
                    format!(
                        "edge is the only source of send connector {:?}; add another source edge or remove \
                         the connector first",
                        stored.connector.name.as_str()
                    ),
                )
                .into());
            }
        }
        db::edges::delete(tx.conn(), &name).await?;
        tx.edges_changed();
        let version = tx
            .commit(Audit {
                actor: &admin.name,
                actor_role: admin.role.as_str(),
                action: "edge.remove",
                target: name.to_string(),
                before: before.as_ref().and_then(json),
                after: None,
            })
            .await?;
        // Cut this replica's stream now; the others follow on the notification.
        if let Some(side) = &self.edge_side {
            side.handle.trusted.forget_edge(name.as_str());
            side.handle.fleet.retain(|edge| edge != name.as_str());
        }
        Ok(version)
    }

    // --- audit ---

    /// The newest audit entries.
    pub async fn audit(&self, limit: u32) -> Result<Vec<db::audit::AuditEntry>> {
        Ok(db::audit::list(&self.pool, i64::from(limit.clamp(1, MAX_AUDIT_LIMIT))).await?)
    }
}

/// Applies one list edit; adding a present entry or removing an absent one is refused,
/// and so is a list past [`domainsec_model::transport::MAX_SECURE_LIST_ENTRIES`].
/// Linear in the list's length.
fn apply_edit(field: &str, current: &[DomainPattern], edit: ListEdit) -> Result<Vec<DomainPattern>, InvalidField> {
    let list = match edit {
        ListEdit::Keep => return Ok(current.to_vec()),
        ListEdit::Replace(list) => list,
        ListEdit::Edit { add, remove } => {
            let present: std::collections::HashSet<&DomainPattern> = current.iter().collect();
            for (index, entry) in remove.iter().enumerate() {
                if !present.contains(entry) {
                    return Err(InvalidField::new(
                        format!("remove_{}[{index}]", singular(field)),
                        entry.to_string(),
                        format!("not in {field}"),
                    ));
                }
            }
            let removed: std::collections::HashSet<&DomainPattern> = remove.iter().collect();
            for (index, entry) in add.iter().enumerate() {
                if present.contains(entry) && !removed.contains(entry) {
                    return Err(InvalidField::new(
                        format!("add_{}[{index}]", singular(field)),
                        entry.to_string(),
                        format!("already in {field}"),
                    ));
                }
            }
            let mut list: Vec<DomainPattern> = current.iter().filter(|e| !removed.contains(e)).cloned().collect();
            list.extend(add);
            list
        }
    };
    domainsec_model::transport::check_secure_list_size(field, &list)?;
    Ok(list)
}

/// `tls_send_domain_secure_list` → `tls_send_domain_secure`, matching the request fields.
fn singular(field: &str) -> &str {
    field.strip_suffix("_list").unwrap_or(field)
}

fn version(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

const MAX_AUDIT_LIMIT: u32 = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<DomainPattern> {
        list.iter().map(|d| DomainPattern::parse(d).unwrap()).collect()
    }

    #[test]
    fn a_replacement_replaces_the_whole_list() {
        let current = patterns(&["a.com", "b.com"]);
        let after = apply_edit("x_list", &current, ListEdit::Replace(patterns(&["c.com"]))).unwrap();
        assert_eq!(after, patterns(&["c.com"]));
    }

    #[test]
    fn edits_add_and_remove_single_entries() {
        let current = patterns(&["a.com", "b.com"]);
        let edit = ListEdit::Edit { add: patterns(&["c.com"]), remove: patterns(&["a.com"]) };
        assert_eq!(apply_edit("x_list", &current, edit).unwrap(), patterns(&["b.com", "c.com"]));
    }

    #[test]
    fn edits_refuse_absent_removals_and_present_additions() {
        let current = patterns(&["a.com"]);
        let error = apply_edit(
            "tls_send_domain_secure_list",
            &current,
            ListEdit::Edit { add: vec![], remove: patterns(&["z.com"]) },
        )
        .unwrap_err();
        assert_eq!(error.field, "remove_tls_send_domain_secure[0]");
        assert_eq!(error.rule, "not in tls_send_domain_secure_list");
        let error = apply_edit(
            "tls_send_domain_secure_list",
            &current,
            ListEdit::Edit { add: patterns(&["a.com"]), remove: vec![] },
        )
        .unwrap_err();
        assert_eq!(error.field, "add_tls_send_domain_secure[0]");
    }
}
