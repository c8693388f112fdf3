//! The directory's operations: authorise, read-modify-write in one change, audit.
//!
//! gRPC handlers parse requests into the types here and encode the results;
//! nothing in this module knows about protobuf.

use domainsec_model::{
    AuthMechanism, Binding, Domain, DomainPattern, InvalidField, IpRange, MessageSize, ObjectName, PermissionGroup,
    ProtocolLoggingLevel, ReceiveConnector, Routing, SendConnector, TransportConfig,
};
use sqlx::PgPool;

use crate::{
    authz::{Admin, Denied},
    db::{
        self,
        accepted_domains::AcceptedDomain,
        change::{Audit, Change, json},
        edges::Edge,
        receive_connectors::StoredReceiveConnector,
        send_connectors::StoredSendConnector,
    },
};

mod certificates;
mod edges;

pub use certificates::NewCertificate;

pub use edges::{EdgeSide, EdgeSyncOutcome, EdgeSyncTest, FleetEntry, NewSubscription};

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
}

/// A Set-SendConnector call: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SendConnectorChange {
    /// New address spaces.
    pub address_spaces: Option<Vec<domainsec_model::AddressSpace>>,
    /// New routing.
    pub routing: Option<Routing>,
    /// New EHLO name (`Some(None)` clears it).
    pub fqdn: Option<Option<Domain>>,
    /// Domain Security on or off.
    pub domain_secure_enabled: Option<bool>,
    /// Protocol logging.
    pub protocol_logging_level: Option<ProtocolLoggingLevel>,
    /// New source edges.
    pub source_edges: Option<Vec<ObjectName>>,
    /// New size limit.
    pub max_message_size: Option<MessageSize>,
}

/// A Set-ReceiveConnector call: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ReceiveConnectorChange {
    /// New bindings.
    pub bindings: Option<Vec<Binding>>,
    /// New remote IP ranges.
    pub remote_ip_ranges: Option<Vec<IpRange>>,
    /// New banner name (`Some(None)` clears it).
    pub fqdn: Option<Option<Domain>>,
    /// New auth mechanisms.
    pub auth_mechanisms: Option<Vec<AuthMechanism>>,
    /// Domain Security on or off.
    pub domain_secure_enabled: Option<bool>,
    /// New permission groups.
    pub permission_groups: Option<Vec<PermissionGroup>>,
    /// Protocol logging.
    pub protocol_logging_level: Option<ProtocolLoggingLevel>,
    /// New size limit.
    pub max_message_size: Option<MessageSize>,
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

    // --- send connectors ---

    /// All send connectors.
    pub async fn send_connectors(&self) -> Result<Vec<StoredSendConnector>> {
        let mut conn = self.pool.acquire().await.map_err(db::Error::from)?;
        Ok(db::send_connectors::list(&mut conn).await?)
    }

    /// One send connector.
    pub async fn send_connector(&self, name: &ObjectName) -> Result<StoredSendConnector> {
        let mut conn = self.pool.acquire().await.map_err(db::Error::from)?;
        Ok(db::send_connectors::fetch(&mut conn, name, false).await?)
    }

    /// Creates a send connector (New-SendConnector).
    pub async fn create_send_connector(&self, admin: &Admin, connector: SendConnector) -> Result<StoredSendConnector> {
        let action = format!("create send connector {}", connector.name);
        admin.require_edges(&action, &connector.source_edges)?;
        connector.check()?;
        let mut tx = Change::begin(&self.pool).await?;
        db::send_connectors::insert(tx.conn(), &connector).await?;
        let stored = db::send_connectors::fetch(tx.conn(), &connector.name, false).await?;
        tx.commit(Audit {
            actor: &admin.name,
            actor_role: admin.role.as_str(),
            action: "send-connector.new",
            target: connector.name.to_string(),
            before: None,
            after: json(&stored.connector),
        })
        .await?;
        Ok(stored)
    }

    /// Changes a send connector (Set-SendConnector). A server-admin must hold
    /// every source edge both before and after the change.
    pub async fn update_send_connector(
        &self,
        admin: &Admin,
        name: ObjectName,
        change: SendConnectorChange,
    ) -> Result<StoredSendConnector> {
        let action = format!("change send connector {name}");
        let mut tx = Change::begin(&self.pool).await?;
        let before = db::send_connectors::fetch(tx.conn(), &name, true).await?.connector;
        admin.require_edges(&action, &before.source_edges)?;
        let mut after = before.clone();
        apply_send_change(&mut after, change);
        admin.require_edges(&action, &after.source_edges)?;
        after.check()?;
        db::send_connectors::update(tx.conn(), &after).await?;
        let stored = db::send_connectors::fetch(tx.conn(), &name, false).await?;
        tx.commit(Audit {
            actor: &admin.name,
            actor_role: admin.role.as_str(),
            action: "send-connector.set",
            target: name.to_string(),
            before: json(&before),
            after: json(&stored.connector),
        })
        .await?;
        Ok(stored)
    }

    /// Removes a send connector.
    pub async fn remove_send_connector(&self, admin: &Admin, name: ObjectName) -> Result<u64> {
        let action = format!("remove send connector {name}");
        let mut tx = Change::begin(&self.pool).await?;
        let before = db::send_connectors::fetch(tx.conn(), &name, true).await?.connector;
        admin.require_edges(&action, &before.source_edges)?;
        db::send_connectors::delete(tx.conn(), &name).await?;
        Ok(tx
            .commit(Audit {
                actor: &admin.name,
                actor_role: admin.role.as_str(),
                action: "send-connector.remove",
                target: name.to_string(),
                before: json(&before),
                after: None,
            })
            .await?)
    }

    // --- receive connectors ---

    /// Receive connectors of one edge, or of all.
    pub async fn receive_connectors(&self, edge: Option<&ObjectName>) -> Result<Vec<StoredReceiveConnector>> {
        let mut conn = self.pool.acquire().await.map_err(db::Error::from)?;
        if let Some(edge) = edge {
            db::edges::resolve(&mut conn, "edge", edge).await?;
        }
        Ok(db::receive_connectors::list(&mut conn, edge).await?)
    }

    /// One receive connector.
    pub async fn receive_connector(&self, edge: &ObjectName, name: &ObjectName) -> Result<StoredReceiveConnector> {
        let mut conn = self.pool.acquire().await.map_err(db::Error::from)?;
        Ok(db::receive_connectors::fetch(&mut conn, edge, name, false).await?)
    }

    /// Creates a receive connector (New-ReceiveConnector).
    pub async fn create_receive_connector(
        &self,
        admin: &Admin,
        connector: ReceiveConnector,
    ) -> Result<StoredReceiveConnector> {
        let action = format!("create receive connector {}/{}", connector.edge, connector.name);
        admin.require_edges(&action, [&connector.edge])?;
        connector.check()?;
        let mut tx = Change::begin(&self.pool).await?;
        db::receive_connectors::insert(tx.conn(), &connector).await?;
        let stored = db::receive_connectors::fetch(tx.conn(), &connector.edge, &connector.name, false).await?;
        tx.commit(Audit {
            actor: &admin.name,
            actor_role: admin.role.as_str(),
            action: "receive-connector.new",
            target: format!("{}/{}", connector.edge, connector.name),
            before: None,
            after: json(&stored.connector),
        })
        .await?;
        Ok(stored)
    }

    /// Changes a receive connector (Set-ReceiveConnector).
    pub async fn update_receive_connector(
        &self,
        admin: &Admin,
        edge: ObjectName,
        name: ObjectName,
        change: ReceiveConnectorChange,
    ) -> Result<StoredReceiveConnector> {
        admin.require_edges(&format!("change receive connector {edge}/{name}"), [&edge])?;
        let mut tx = Change::begin(&self.pool).await?;
        let before = db::receive_connectors::fetch(tx.conn(), &edge, &name, true).await?.connector;
        let mut after = before.clone();
        apply_receive_change(&mut after, change);
        after.check()?;
        db::receive_connectors::update(tx.conn(), &after).await?;
        let stored = db::receive_connectors::fetch(tx.conn(), &edge, &name, false).await?;
        tx.commit(Audit {
            actor: &admin.name,
            actor_role: admin.role.as_str(),
            action: "receive-connector.set",
            target: format!("{edge}/{name}"),
            before: json(&before),
            after: json(&stored.connector),
        })
        .await?;
        Ok(stored)
    }

    /// Removes a receive connector.
    pub async fn remove_receive_connector(&self, admin: &Admin, edge: ObjectName, name: ObjectName) -> Result<u64> {
        admin.require_edges(&format!("remove receive connector {edge}/{name}"), [&edge])?;
        let mut tx = Change::begin(&self.pool).await?;
        let before = db::receive_connectors::fetch(tx.conn(), &edge, &name, true).await?.connector;
        db::receive_connectors::delete(tx.conn(), &edge, &name).await?;
        Ok(tx
            .commit(Audit {
                actor: &admin.name,
                actor_role: admin.role.as_str(),
                action: "receive-connector.remove",
                target: format!("{edge}/{name}"),
                before: json(&before),
                after: None,
            })
            .await?)
    }

    // --- audit ---

    /// The newest audit entries.
    pub async fn audit(&self, limit: u32) -> Result<Vec<db::audit::AuditEntry>> {
        Ok(db::audit::list(&self.pool, i64::from(limit.clamp(1, MAX_AUDIT_LIMIT))).await?)
    }
}

/// Applies one list edit; adding a present entry or removing an absent one is refused.
fn apply_edit(field: &str, current: &[DomainPattern], edit: ListEdit) -> Result<Vec<DomainPattern>, InvalidField> {
    match edit {
        ListEdit::Keep => Ok(current.to_vec()),
        ListEdit::Replace(list) => Ok(list),
        ListEdit::Edit { add, remove } => {
            let mut list = current.to_vec();
            for (index, entry) in remove.iter().enumerate() {
                let Some(position) = list.iter().position(|e| e == entry) else {
                    return Err(InvalidField::new(
                        format!("remove_{}[{index}]", singular(field)),
                        entry.to_string(),
                        format!("not in {field}"),
                    ));
                };
                list.remove(position);
            }
            for (index, entry) in add.into_iter().enumerate() {
                if list.contains(&entry) {
                    return Err(InvalidField::new(
                        format!("add_{}[{index}]", singular(field)),
                        entry.to_string(),
                        format!("already in {field}"),
                    ));
                }
                list.push(entry);
            }
            Ok(list)
        }
    }
}

/// `tls_send_domain_secure_list` → `tls_send_domain_secure`, matching the request fields.
fn singular(field: &str) -> &str {
    field.strip_suffix("_list").unwrap_or(field)
}

fn apply_send_change(connector: &mut SendConnector, change: SendConnectorChange) {
    let SendConnectorChange {
        address_spaces,
        routing,
        fqdn,
        domain_secure_enabled,
        protocol_logging_level,
        source_edges,
        max_message_size,
    } = change;
    set(&mut connector.address_spaces, address_spaces);
    set(&mut connector.routing, routing);
    set(&mut connector.fqdn, fqdn);
    set(&mut connector.domain_secure_enabled, domain_secure_enabled);
    set(&mut connector.protocol_logging_level, protocol_logging_level);
    set(&mut connector.source_edges, source_edges);
    set(&mut connector.max_message_size, max_message_size);
}

fn apply_receive_change(connector: &mut ReceiveConnector, change: ReceiveConnectorChange) {
    let ReceiveConnectorChange {
        bindings,
        remote_ip_ranges,
        fqdn,
        auth_mechanisms,
        domain_secure_enabled,
        permission_groups,
        protocol_logging_level,
        max_message_size,
    } = change;
    set(&mut connector.bindings, bindings);
    set(&mut connector.remote_ip_ranges, remote_ip_ranges);
    set(&mut connector.fqdn, fqdn);
    set(&mut connector.auth_mechanisms, auth_mechanisms);
    set(&mut connector.domain_secure_enabled, domain_secure_enabled);
    set(&mut connector.permission_groups, permission_groups);
    set(&mut connector.protocol_logging_level, protocol_logging_level);
    set(&mut connector.max_message_size, max_message_size);
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
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
