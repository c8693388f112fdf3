//! Send and receive connector operations (New-/Set-/Remove-SendConnector and
//! -ReceiveConnector), authorised per edge.

use domainsec_model::{
    AuthMechanism, Binding, Domain, IpRange, MessageSize, ObjectName, PermissionGroup, ProtocolLoggingLevel,
    ReceiveConnector, Routing, SendConnector,
};

use super::{Directory, Result};
use crate::{
    authz::Admin,
    db::{
        self,
        change::{Audit, Change, json},
        receive_connectors::StoredReceiveConnector,
        send_connectors::StoredSendConnector,
    },
};

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
    /// DANE on or off.
    pub dane_enabled: Option<bool>,
    /// MTA-STS on or off.
    pub mta_sts_enabled: Option<bool>,
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
}

fn apply_send_change(connector: &mut SendConnector, change: SendConnectorChange) {
    let SendConnectorChange {
        address_spaces,
        routing,
        fqdn,
        domain_secure_enabled,
        dane_enabled,
        mta_sts_enabled,
        protocol_logging_level,
        source_edges,
        max_message_size,
    } = change;
    set(&mut connector.address_spaces, address_spaces);
    set(&mut connector.routing, routing);
    set(&mut connector.fqdn, fqdn);
    set(&mut connector.domain_secure_enabled, domain_secure_enabled);
    set(&mut connector.dane_enabled, dane_enabled);
    set(&mut connector.mta_sts_enabled, mta_sts_enabled);
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
