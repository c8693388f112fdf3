//! Send connectors and their source edges.

use chrono::{DateTime, Utc};
use domainsec_model::{AddressSpace, Domain, ObjectName, ProtocolLoggingLevel, Routing, SendConnector, SmartHost};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    Error, Result, edges, is_unique_violation, parse_stored, parse_stored_all, size_column, stored_size, strings,
};

/// A send connector with its last change time.
#[derive(Debug, Clone)]
pub struct StoredSendConnector {
    /// The connector.
    pub connector: SendConnector,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    address_spaces: Vec<String>,
    smart_hosts: Vec<String>,
    fqdn: Option<String>,
    domain_secure_enabled: bool,
    dane_enabled: bool,
    mta_sts_enabled: bool,
    protocol_logging_level: String,
    max_message_size: i64,
    source_edges: Vec<String>,
    updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT c.name, c.address_spaces, c.smart_hosts, c.fqdn, c.domain_secure_enabled,
        c.dane_enabled, c.mta_sts_enabled, c.protocol_logging_level, c.max_message_size, c.updated_at,
        COALESCE(ARRAY(SELECT e.name FROM send_connector_source_edges s JOIN edges e ON e.id = s.edge_id
                       WHERE s.send_connector_id = c.id ORDER BY s.position), '{}') AS source_edges
    FROM send_connectors c";

/// All send connectors by name.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<StoredSendConnector>> {
    let rows: Vec<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY c.name"))).fetch_all(conn).await?;
    rows.into_iter().map(Row::into_model).collect()
}

/// The named connector; `lock` takes a row lock for a read-modify-write.
pub async fn fetch(conn: &mut PgConnection, name: &ObjectName, lock: bool) -> Result<StoredSendConnector> {
    let lock = if lock { " FOR UPDATE OF c" } else { "" };
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE c.name = $1{lock}")))
        .bind(name.as_str())
        .fetch_optional(conn)
        .await?;
    row.ok_or_else(|| not_found(name))?.into_model()
}

/// Inserts a new connector.
pub async fn insert(conn: &mut PgConnection, connector: &SendConnector) -> Result<()> {
    let id = Uuid::new_v4();
    let edge_ids = edges::resolve_all(&mut *conn, "source_edges", &connector.source_edges).await?;
    sqlx::query(
        "INSERT INTO send_connectors (id, name, address_spaces, smart_hosts, fqdn, domain_secure_enabled,
             protocol_logging_level, max_message_size, dane_enabled, mta_sts_enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(connector.name.as_str())
    .bind(strings(&connector.address_spaces))
    .bind(smart_hosts(connector))
    .bind(connector.fqdn.as_ref().map(Domain::to_string))
    .bind(connector.domain_secure_enabled)
    .bind(connector.protocol_logging_level.as_str())
    .bind(size_column(connector.max_message_size))
    .bind(connector.dane_enabled)
    .bind(connector.mta_sts_enabled)
    .execute(&mut *conn)
    .await
    .map_err(|error| {
        if is_unique_violation(&error) {
            Error::AlreadyExists { kind: "send connector", name: connector.name.to_string() }
        } else {
            error.into()
        }
    })?;
    store_source_edges(conn, id, &edge_ids).await
}

/// Replaces the named connector's settings (the name does not change).
pub async fn update(conn: &mut PgConnection, connector: &SendConnector) -> Result<()> {
    let edge_ids = edges::resolve_all(&mut *conn, "source_edges", &connector.source_edges).await?;
    let id: Option<Uuid> = sqlx::query_scalar(
        "UPDATE send_connectors SET address_spaces = $2, smart_hosts = $3, fqdn = $4, domain_secure_enabled = $5,
             protocol_logging_level = $6, max_message_size = $7, dane_enabled = $8, mta_sts_enabled = $9,
             updated_at = now()
         WHERE name = $1 RETURNING id",
    )
    .bind(connector.name.as_str())
    .bind(strings(&connector.address_spaces))
    .bind(smart_hosts(connector))
    .bind(connector.fqdn.as_ref().map(Domain::to_string))
    .bind(connector.domain_secure_enabled)
    .bind(connector.protocol_logging_level.as_str())
    .bind(size_column(connector.max_message_size))
    .bind(connector.dane_enabled)
    .bind(connector.mta_sts_enabled)
    .fetch_optional(&mut *conn)
    .await?;
    let id = id.ok_or_else(|| not_found(&connector.name))?;
    sqlx::query("DELETE FROM send_connector_source_edges WHERE send_connector_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    store_source_edges(conn, id, &edge_ids).await
}

/// Removes the named connector.
pub async fn delete(conn: &mut PgConnection, name: &ObjectName) -> Result<()> {
    let result = sqlx::query("DELETE FROM send_connectors WHERE name = $1").bind(name.as_str()).execute(conn).await?;
    if result.rows_affected() == 0 {
        return Err(not_found(name));
    }
    Ok(())
}

async fn store_source_edges(conn: &mut PgConnection, id: Uuid, edge_ids: &[Uuid]) -> Result<()> {
    for (position, edge_id) in edge_ids.iter().enumerate() {
        sqlx::query(
            "INSERT INTO send_connector_source_edges (send_connector_id, edge_id, position) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(edge_id)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn smart_hosts(connector: &SendConnector) -> Vec<String> {
    match &connector.routing {
        Routing::Dns => Vec::new(),
        Routing::SmartHosts(hosts) => strings(hosts),
    }
}

fn not_found(name: &ObjectName) -> Error {
    Error::NotFound { kind: "send connector", name: name.to_string() }
}

impl Row {
    fn into_model(self) -> Result<StoredSendConnector> {
        let smart_hosts = parse_stored_all("smart host", &self.smart_hosts, SmartHost::parse)?;
        let connector = SendConnector {
            name: parse_stored("connector name", &self.name, ObjectName::parse)?,
            address_spaces: parse_stored_all("address space", &self.address_spaces, AddressSpace::parse)?,
            routing: if smart_hosts.is_empty() { Routing::Dns } else { Routing::SmartHosts(smart_hosts) },
            fqdn: self.fqdn.as_deref().map(|f| parse_stored("fqdn", f, Domain::parse)).transpose()?,
            domain_secure_enabled: self.domain_secure_enabled,
            dane_enabled: self.dane_enabled,
            mta_sts_enabled: self.mta_sts_enabled,
            protocol_logging_level: parse_stored(
                "protocol logging level",
                &self.protocol_logging_level,
                str::parse::<ProtocolLoggingLevel>,
            )?,
            source_edges: parse_stored_all("edge name", &self.source_edges, ObjectName::parse)?,
            max_message_size: stored_size(self.max_message_size)?,
        };
        Ok(StoredSendConnector { connector, updated_at: self.updated_at })
    }
}
